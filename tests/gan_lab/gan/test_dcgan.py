import keras
import numpy as np
import pytest

from detector.base.errors import LabError
from detector.base.runs import atomic_save_model, create_run_dir, write_json
from detector.models.zoo import build_model
from gan_lab.gan.dcgan import (
    AUGMENT_POLICIES,
    DCGAN,
    RampDown,
    SpectralNorm,
    build_discriminator,
    build_generator,
    copy_detector_weights,
    diff_augment,
    generator_options,
    holding_u,
    spectral_norm_layers,
)


def test_seed128_preset_is_the_published_generator():
    generator = build_generator(preset="seed128")
    assert generator.count_params() == 1_520_643
    assert generator.output_shape == (None, 128, 128, 3)
    assert generator.input_shape == (None, 128)
    pixels = np.asarray(generator(np.random.default_rng(0).standard_normal((2, 128)).astype("float32")))
    assert pixels.shape == (2, 128, 128, 3)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_generator_sizes_start_at_a_sixteenth(size):
    generator = build_generator(size=size, latent_dim=16, filters=(8, 8, 8, 8))
    assert generator.output_shape == (None, size, size, 3)
    assert generator.get_layer("reshape").output.shape[1:] == (size // 16, size // 16, 128)


def test_generator_options_are_checked():
    assert generator_options()["size"] == 64 and generator_options(preset="seed128")["size"] == 128
    with pytest.raises(ValueError, match="size=64"):
        build_generator(size=64, preset="seed128")
    with pytest.raises(ValueError, match="multiple of 16"):
        build_generator(size=40)
    with pytest.raises(ValueError, match="filters"):
        build_generator(size=32, filters=(8, 8))
    with pytest.raises(ValueError, match="preset"):
        build_generator(preset="huge")
    batch_norm = build_generator(size=32, filters=(8, 8, 8, 8), batch_norm=True)
    assert [layer.name for layer in batch_norm.layers if "bn" in layer.name] == ["bn1", "bn2", "bn3", "bn4"]


@pytest.mark.parametrize("size", [32, 64])
def test_discriminator_is_the_detector_with_one_logit(size):
    discriminator = build_discriminator("cnn3", size)
    assert discriminator.count_params() == build_model("cnn3", size, head="probability").count_params()
    assert discriminator.output_shape == (None, 1)
    assert discriminator.layers[-1].name == "fake_logit"
    assert discriminator.layers[-1].get_config()["activation"] == "linear"
    names = {layer.name for layer in discriminator.layers}
    assert {"conv1", "conv2", "conv3", "dense", "bn_dense", "dropout_dense"} <= names


def test_spectral_norm_divides_each_kernel_by_its_largest_singular_value(tmp_path):
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator("cnn3", 32, spectral_norm=True)
    plain = build_discriminator("cnn3", 32)
    assert [layer.name for layer in discriminator.layers] == [layer.name for layer in plain.layers]
    wrapped = [layer for layer in discriminator.layers if isinstance(layer, SpectralNorm)]
    assert [layer.name for layer in wrapped] == ["conv1", "conv2", "conv3", "dense", "fake_logit"]
    for layer in wrapped:
        inputs = np.random.default_rng(1).random((1, *layer.input.shape[1:]), dtype=np.float32)
        kernel = keras.ops.convert_to_numpy(layer.layer.kernel)
        _, singular_values, right = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), full_matrices=False)
        start = keras.ops.convert_to_numpy(layer.u)
        layer(inputs, training=False)  # one power iteration per call, in inference mode too
        assert not np.allclose(keras.ops.convert_to_numpy(layer.u), start)
        layer.u.assign(right[:1])  # the iteration's fixed point: the top right singular vector
        normalised = keras.ops.convert_to_numpy(layer(inputs, training=False))
        layer.layer.kernel.assign(kernel / singular_values[0])
        np.testing.assert_allclose(normalised, layer.layer(inputs), rtol=1e-3, atol=1e-6)
        layer.layer.kernel.assign(kernel)  # the stored kernel stays as trained
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    path = tmp_path / "discriminator.keras"
    discriminator.save(path)
    np.testing.assert_array_equal(
        keras.models.load_model(path, compile=False)(images), discriminator(images, training=False)
    )


def test_holding_u_normalises_without_refining_u():
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator("cnn3", 32, spectral_norm=True)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    wrapped = spectral_norm_layers(discriminator)
    start = [keras.ops.convert_to_numpy(layer.u) for layer in wrapped]
    with holding_u(discriminator):
        held = keras.ops.convert_to_numpy(discriminator(images, training=False))
    assert all(np.array_equal(keras.ops.convert_to_numpy(layer.u), u) for layer, u in zip(wrapped, start))
    # The same normalisation as the refining call that follows, which then stores its `u`.
    np.testing.assert_allclose(held, discriminator(images, training=False), rtol=1e-5, atol=1e-6)
    assert all(layer.refine_u for layer in wrapped)
    assert not any(np.array_equal(keras.ops.convert_to_numpy(layer.u), u) for layer, u in zip(wrapped, start))


def _tiny_gan(spectral_norm=False, **options):
    keras.utils.set_random_seed(0)
    generator = build_generator(size=32, latent_dim=8, filters=(8, 8, 8, 8))
    gan = DCGAN(generator, build_discriminator("cnn3", 32, spectral_norm=spectral_norm), seed=0, **options)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5)
    )
    return gan


def test_train_step_returns_the_four_metrics_and_steps_both_optimizers():
    gan = _tiny_gan(label_smoothing=0.1, label_noise=0.05)
    images = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    before = [
        keras.ops.convert_to_numpy(v)
        for v in gan.discriminator.trainable_variables[:1] + gan.generator.trainable_variables[:1]
    ]
    history = gan.fit(images, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    assert set(history) == {"d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake"}
    assert all(np.isfinite(values[0]) for values in history.values())
    assert 0 <= history["d_p_fake_real"][0] <= 1 and 0 <= history["d_p_fake_fake"][0] <= 1
    assert int(gan.d_optimizer.iterations) == 2 and int(gan.g_optimizer.iterations) == 2
    after = [
        keras.ops.convert_to_numpy(v)
        for v in gan.discriminator.trainable_variables[:1] + gan.generator.trainable_variables[:1]
    ]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


def test_label_options_are_checked():
    with pytest.raises(ValueError, match="label_noise"):
        _tiny_gan(label_noise=0.7)


@pytest.fixture()
def tiny_detector_run(tmp_path):
    keras.utils.set_random_seed(1)
    run_dir = create_run_dir("detector", "tiny", tmp_path / "runs")
    atomic_save_model(build_model("cnn3", 32), run_dir / "model.keras")
    write_json(run_dir / "config.json", {"model": "cnn3", "size": 32, "head": "probability", "crop": "resize"})
    return run_dir


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_starts_from_a_detector_run(tiny_detector_run, spectral_norm):
    keras.utils.set_random_seed(2)
    discriminator = build_discriminator("cnn3", 32, spectral_norm=spectral_norm)
    detector = keras.models.load_model(tiny_detector_run / "model.keras", compile=False)
    head_before = discriminator.get_layer("fake_logit").get_weights()[0].copy()
    copied = copy_detector_weights(discriminator, tiny_detector_run)
    assert {"conv1", "bn1", "dense", "bn_dense"} <= set(copied) and "fake_logit" not in copied
    for name in ("conv1", "conv3", "bn_dense"):
        layer = discriminator.get_layer(name)
        for mine, theirs in zip(getattr(layer, "layer", layer).get_weights(), detector.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(discriminator.get_layer("fake_logit").get_weights()[0], head_before)


def test_detector_of_another_size_or_architecture_is_refused(tiny_detector_run):
    with pytest.raises(LabError, match="32 px"):
        copy_detector_weights(build_discriminator("cnn3", 48), tiny_detector_run)
    with pytest.raises(LabError, match="small_cnn"):
        copy_detector_weights(build_discriminator("small_cnn", 32), tiny_detector_run)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_learns_to_separate_reals_from_fakes(spectral_norm):
    # The discriminator's BatchNorm sits just before its linear head: with batch statistics
    # on batches of one class each, every batch has the same mean logit and it cannot learn.
    gan = _tiny_gan(spectral_norm=spectral_norm)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5)
    )
    bright = np.full((64, 32, 32, 3), 0.9, dtype=np.float32)
    history = gan.fit(bright, batch_size=16, epochs=5, shuffle=False, verbose=0).history
    assert history["d_p_fake_fake"][-1] > history["d_p_fake_real"][-1] + 0.2


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), AUGMENT_POLICIES])
def test_diff_augment_draws_per_image_and_passes_gradients(policy):
    import tensorflow as tf

    images = tf.constant(np.random.default_rng(0).random((16, 64, 64, 3), dtype=np.float32))
    seed = keras.random.SeedGenerator(0)
    with tf.GradientTape() as tape:
        tape.watch(images)
        augmented = diff_augment(images, policy, seed)
        total = keras.ops.sum(augmented)
    assert augmented.shape == images.shape
    changes = np.asarray(augmented - images).reshape(16, -1)
    # A shift of (0, 0) out of 17 x 17 can leave an image as it was, and two can draw the same one.
    assert (np.abs(changes).max(axis=1) > 0).sum() >= 14, "images are augmented"
    assert len({change.tobytes() for change in changes}) >= 12, "each image has its own draw"
    gradient = np.asarray(tape.gradient(total, images))
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    if policy == ("translation",):  # a shift only moves pixels (edges repeat)
        assert set(np.unique(np.asarray(augmented))) <= set(np.unique(np.asarray(images)))


def test_no_augmentation_leaves_batches_alone():
    gan = _tiny_gan(augment=())
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(gan._augmented(images)), images)
    with pytest.raises(ValueError, match="augment"):
        _tiny_gan(augment=("mixup",))


def _d_losses_and_slope(r1_gamma, r1_interval=1, steps=1, rate=0.0, gans=None):
    """The d_loss of each of `steps` steps on one batch at SGD `rate`, and the squared slope at it before them."""
    import tensorflow as tf

    real = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    keras.utils.set_random_seed(0)
    gan = DCGAN(
        build_generator(size=32, filters=(8, 8, 8, 8)),
        build_discriminator("cnn3", 32),
        seed=0,
        r1_gamma=r1_gamma,
        r1_interval=r1_interval,
    )
    gan.compile(d_optimizer=keras.optimizers.SGD(rate), g_optimizer=keras.optimizers.SGD(rate))
    if gans is not None:
        gans.append(gan)
    with tf.GradientTape() as tape:
        images = tf.constant(real)
        tape.watch(images)
        total = tf.reduce_sum(gan.discriminator(images, training=False))
    slope = float(tf.reduce_mean(tf.reduce_sum(tape.gradient(total, images) ** 2, axis=(1, 2, 3))))
    losses = [float(gan.train_on_batch(real, return_dict=True)["d_loss"]) for _ in range(steps)]
    return losses, slope


def test_r1_penalty_adds_the_squared_slope_at_real_images():
    (plain,), slope = _d_losses_and_slope(0.0)
    (penalised,), _ = _d_losses_and_slope(10.0)
    assert slope > 0
    assert penalised == pytest.approx(plain + 0.5 * 10.0 * slope, rel=1e-3)
    with pytest.raises(ValueError, match="r1_gamma"):
        DCGAN(build_generator(size=32, filters=(8, 8, 8, 8)), build_discriminator("cnn3", 32), r1_gamma=-1.0)


def test_lazy_r1_penalty_comes_every_interval_steps_weighted_by_the_interval():
    # The rates are 0, so every step sees the same networks; label noise and latents differ per step.
    plain, slope = _d_losses_and_slope(0.0, steps=4)
    lazy, _ = _d_losses_and_slope(10.0, r1_interval=3, steps=4)
    penalty = 3 * 0.5 * 10.0 * slope
    assert lazy == pytest.approx([plain[0] + penalty, plain[1], plain[2], plain[3] + penalty], rel=1e-3)
    # Its gradient is the every-step penalty's at r1_gamma times the interval.
    trained = []
    for gamma, interval in ((0.0, 1), (10.0, 3), (30.0, 1)):
        _d_losses_and_slope(gamma, r1_interval=interval, rate=0.1, gans=trained)
    plain, lazy, every_step = ([w.numpy() for w in gan.discriminator.trainable_weights] for gan in trained)
    assert not all(np.allclose(a, b) for a, b in zip(plain, lazy))
    assert all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(lazy, every_step))
    for interval in (0, 1.5, True):
        with pytest.raises(ValueError, match="r1_interval"):
            DCGAN(build_generator(size=32, filters=(8, 8, 8, 8)), build_discriminator("cnn3", 32), r1_interval=interval)


def test_ramp_down_holds_the_rate_then_eases_it_to_zero():
    schedule = RampDown(1e-3, total_steps=100, fraction=0.5)
    rates = [float(schedule(step)) for step in (0, 50, 75, 100, 120)]
    assert rates == pytest.approx([1e-3, 1e-3, 0.5e-3, 0.0, 0.0], abs=1e-9)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(restored(75)) == pytest.approx(0.5e-3)
    assert float(RampDown(1e-3, total_steps=100, fraction=0.0)(99)) == pytest.approx(1e-3)

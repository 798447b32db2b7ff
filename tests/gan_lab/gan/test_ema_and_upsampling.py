import typing

import keras
import numpy as np
import pytest

from gan_lab.gan.dcgan import DCGAN, UPSAMPLING, build_discriminator, build_generator, ema_decay
from gan_lab.gan.train import GanConfig, Upsampling, restore_dcgan, train_gan


def _expected_parameters(kind: str, size=32, latent=128, filters=(256, 128, 64, 32), dense=128, kernel=5) -> int:
    start = size // 16
    count = latent * start * start * dense + start * start * dense
    channels = dense
    for width in filters:
        if kind == "transpose":
            count += 4 * 4 * channels * width + width
        elif kind == "pixelshuffle":
            count += (9 * channels + 1) * 4 * width
        else:
            count += 9 * channels * width + width
        channels = width
    return count + kernel * kernel * channels * 3 + 3


@pytest.mark.parametrize("kind", UPSAMPLING)
def test_each_upsampling_kind_makes_the_image_size_with_its_own_parameter_count(kind):
    generator = build_generator(size=32, upsampling=kind)
    assert generator.output_shape == (None, 32, 32, 3)
    assert generator.count_params() == _expected_parameters(kind)
    pixels = np.asarray(generator(np.zeros((2, 128), "float32")))
    assert pixels.shape == (2, 32, 32, 3) and pixels.min() >= 0 and pixels.max() <= 1


def test_the_published_generator_keeps_its_parameter_count_and_the_choices_agree():
    assert build_generator(preset="seed128").count_params() == 1_520_643
    assert typing.get_args(Upsampling) == UPSAMPLING
    with pytest.raises(ValueError, match="upsampling must be one of"):
        build_generator(size=32, upsampling="cubic")


def test_the_ema_decay_follows_its_half_life_and_ramps_up():
    assert float(ema_decay(1e9, 32.0, 10_000.0)) == pytest.approx(0.5 ** (32 / 10_000))
    # Early on the half-life is 5% of the images shown: 100 images in, it is 5 images.
    assert float(ema_decay(100.0, 32.0, 10_000.0)) == pytest.approx(0.5 ** (32 / 5))
    # A longer ramp-up lets the average reach further back as soon as the images shown allow it.
    assert float(ema_decay(100.0, 32.0, 10_000.0, rampup=0.25)) == pytest.approx(0.5 ** (32 / 25))
    for rampup in (0.0, 1.5):
        with pytest.raises(ValueError, match="ema_rampup"):
            DCGAN(build_generator(size=32, filters=(8, 8, 8, 8)), build_discriminator("cnn3", 32), ema_rampup=rampup)


@pytest.mark.parametrize("rampup", [0.05, 0.5])
def test_the_ema_generator_averages_the_generators_weights(rampup):
    generator, discriminator = build_generator(size=32), build_discriminator("cnn3", 32)
    gan = DCGAN(generator, discriminator, ema_kimg=1.0, ema_rampup=rampup, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    before = [np.array(weight) for weight in generator.get_weights()]
    gan.fit(np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32), batch_size=16, epochs=1, verbose=0)
    after, average = generator.get_weights(), gan.generator_ema.get_weights()
    decay = float(ema_decay(16.0, 16.0, 1000.0, rampup))
    for old, new, mean in zip(before, after, average):
        np.testing.assert_allclose(mean, decay * old + (1 - decay) * new, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(mean, new) for mean, new in zip(average, after))


def test_ema_resume_tensorboard_kimg_and_reals(synth_root, tmp_path):
    from PIL import Image

    from gan_lab.gan.checkpoints import load_generator
    from gan_lab.gan.report import read_history

    config = GanConfig(
        data=str(synth_root),
        size=32,
        epochs=1,
        batch_size=8,
        steps_per_epoch=2,
        grid_size=4,
        diversity_n=8,
        upsampling="nearest",
        ema_kimg=0.5,
        name="ema",
    )
    run_dir = train_gan(config, runs_dir=tmp_path, progress=False)
    ema = load_generator(run_dir, 1)
    raw = load_generator(run_dir, 1, raw=True)
    assert ema.name == "generator_ema" and raw.name == "generator"
    restored = restore_dcgan(run_dir, 1)
    for saved, loaded in zip(ema.get_weights(), restored.generator_ema.get_weights()):
        np.testing.assert_array_equal(saved, loaded)
    # More images: --kimg sets a new total, in epochs of 2 x 8 images.
    train_gan(GanConfig(**{**config.__dict__, "kimg": 0.048}), resume=run_dir, progress=False)
    rows = read_history(run_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3] and [row["kimg"] for row in rows] == [0.016, 0.032, 0.048]
    restored = restore_dcgan(run_dir, 3)
    assert int(restored.g_optimizer.iterations) == 6
    assert any((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len((run_dir / "stats.jsonl").read_text().splitlines()) == 3
    with Image.open(run_dir / "reals.png") as reals:
        assert reals.format == "PNG" and reals.width > 32


def test_the_live_view_draws_without_a_display():
    from gan_lab.gan.live import LiveView

    generator, discriminator = build_generator(size=32), build_discriminator("cnn3", 32)
    gan = DCGAN(generator, discriminator, ema_kimg=1.0, seed=0)
    view = LiveView(n=4)
    view.set_model(gan)
    for epoch in range(2):
        view.on_epoch_end(epoch, {"d_loss": 0.7 - epoch / 10, "g_loss": 0.6 + epoch / 10})
    assert view.last_png.startswith(b"\x89PNG") and [row["epoch"] for row in view.rows] == [1, 2]

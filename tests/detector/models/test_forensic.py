"""The forensic detectors: NPR's neighbour residual and the SRM high-pass bank, and that both learn a fingerprint."""

import json

import keras
import numpy as np
import pytest

from detector.models.forensic import LogSpectrum, srm_kernel
from detector.models.zoo import build_model
from detector.training.callbacks import RecalibrateBatchNorm

SIZE = 32


def _faces_with_and_without_fingerprint(n: int, seed: int):
    """Smooth random images (real) and the same kind with a stride-2 checkerboard blended in at 10% (fake)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, SIZE // 8, SIZE // 8, 3)).astype(np.float32)
    smooth = np.asarray(keras.ops.image.resize(coarse, (SIZE, SIZE), interpolation="bilinear"))
    checker = np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 2.0 - 1.0  # +1/-1 alternating pixels
    labels = rng.integers(0, 2, n)
    images = np.clip(smooth + 0.1 * 0.5 * checker[None, :, :, None] * labels[:, None, None, None], 0, 1)
    return images.astype(np.float32), labels.astype(np.float32)


@pytest.mark.parametrize(
    "name, parameters, frozen",
    [
        ("npr", 170_785, 960),
        ("highpass", 96_452, 1_123),
        ("npr_spectrum", 176_061, 1_062),
        ("highpass_spectrum", 102_616, 1_237),
    ],
)
def test_exact_parameter_counts_and_every_head(name, parameters, frozen):
    model = build_model(name, size=64)
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert model.count_params() == parameters and parameters - trainable == frozen
    for head, width in (("probability", 1), ("logit", 1), ("softmax2", 2)):
        out = build_model(name, size=SIZE, head=head)(np.zeros((2, SIZE, SIZE, 3), np.float32))
        assert tuple(out.shape) == (2, width)


def test_npr_sees_nothing_in_a_nearest_upsampled_image_and_something_in_a_photo():
    model = build_model("npr", size=SIZE)
    residual = keras.Model(model.inputs[0], model.get_layer("npr").output)
    small = np.random.default_rng(0).random((1, SIZE // 2, SIZE // 2, 3)).astype(np.float32)
    upsampled = np.repeat(np.repeat(small, 2, axis=1), 2, axis=2)
    assert np.abs(np.asarray(residual(upsampled))).max() == 0.0
    assert np.abs(np.asarray(residual(np.random.default_rng(1).random((1, SIZE, SIZE, 3), np.float32)))).max() > 0.1
    with pytest.raises(ValueError, match="even input size"):
        build_model("npr", size=33)


def test_the_srm_bank_is_high_pass_and_stays_fixed():
    kernel = srm_kernel()
    assert kernel.shape == (5, 5, 3, 9)
    np.testing.assert_allclose(kernel.sum(axis=(0, 1, 2)), 0.0, atol=1e-6)  # a flat image leaves no residual
    model = build_model("highpass", size=SIZE)
    srm = model.get_layer("srm")
    assert not srm.trainable
    np.testing.assert_array_equal(srm.get_weights()[0], kernel)


def test_the_log_spectrum_is_numpys_centred_fft_and_a_checkerboard_is_one_peak():
    images = np.random.default_rng(3).random((2, 8, 6, 3)).astype(np.float32)
    expected = np.fft.fftshift(np.log1p(np.abs(np.fft.fft2(images, axes=(1, 2)))), axes=(1, 2))
    np.testing.assert_allclose(np.asarray(LogSpectrum()(images)), expected, atol=2e-5)
    checker = (np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 2.0 - 1.0).astype(np.float32)
    spectrum = np.asarray(LogSpectrum()(checker[None, :, :, None]))[0, :, :, 0]
    # All its energy sits at the highest frequency in both axes: row and column 0 once centred.
    assert np.unravel_index(spectrum.argmax(), spectrum.shape) == (0, 0)
    assert np.sort(spectrum.ravel())[-2] < 1e-4


def test_a_spectrum_model_saves_loads_and_exports_to_onnx_with_the_same_scores(tmp_path):
    import onnxruntime

    model = build_model("highpass_spectrum", size=SIZE)
    images = np.random.default_rng(4).random((3, SIZE, SIZE, 3)).astype(np.float32)
    expected = np.asarray(model(images))
    model.save(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(keras.models.load_model(tmp_path / "model.keras")(images)), expected)
    model.export(tmp_path / "model.onnx", format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(tmp_path / "model.onnx")
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: images})[0], expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["npr", "highpass", "highpass_spectrum"])
def test_each_learns_a_faint_upsampling_fingerprint(name):
    keras.utils.set_random_seed(0)
    train_images, train_labels = _faces_with_and_without_fingerprint(512, seed=0)
    test_images, test_labels = _faces_with_and_without_fingerprint(200, seed=1)
    model = build_model(name, size=SIZE)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(train_images, train_labels, epochs=4, batch_size=32, verbose=0)
    # As lab runs do (--bn-recalibration): BatchNorm statistics from training batches, not 64 steps' lagging average.
    recalibrate = RecalibrateBatchNorm(train_images[:256], 32)
    _, accuracy = model.evaluate(test_images, test_labels, verbose=0, callbacks=[recalibrate])
    assert accuracy > 0.9, f"{name}: test accuracy {accuracy:.3f} on a 10% checkerboard"


def test_their_saved_files_need_no_lab_class(tmp_path):
    for name in ("npr", "highpass"):
        config = json.dumps(build_model(name, size=SIZE).get_config())
        assert "detector>" not in config and "gan_lab>" not in config


def test_grad_cam_and_activation_maps_read_the_branching_npr_graph():
    from detector.inference.explain import activation_maps, gradcam

    keras.utils.set_random_seed(0)
    model = build_model("npr", size=SIZE, head="logit")
    image = np.random.default_rng(2).random((SIZE, SIZE, 3)).astype(np.float32)
    fake, real = gradcam(model, image, "fake"), gradcam(model, image, "real")
    assert fake.shape == real.shape == (SIZE, SIZE)
    assert 0.0 <= fake.min() and fake.max() <= 1.0 and (fake.max() == 1.0 or real.max() == 1.0)
    maps = activation_maps(model, image)
    assert "stem_conv" in maps and "stage2b_conv2" in maps

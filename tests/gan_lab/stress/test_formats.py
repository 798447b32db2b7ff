"""Fakes stored as the reals are: the encoding chosen from the real files, and a format gap it closes."""

import keras
import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from gan_lab.stress.formats import Encoding, resolve_encoding
from gan_lab.stress.run import build_fused_scorer

SIZE = 32


def _write(folder, count: int, fmt: str, quality: int = 80) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng, paths = np.random.default_rng(0), []
    for index in range(count):
        path = folder / f"real-{index}.{fmt.lower()}"
        Image.fromarray((rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(path, format=fmt, quality=quality)
        paths.append(str(path))
    return paths


def test_the_encoding_follows_the_reals_files(tmp_path):
    jpegs, pngs = _write(tmp_path / "jpeg", 10, "JPEG", quality=80), _write(tmp_path / "png", 10, "PNG")
    auto = resolve_encoding("auto", None, jpegs)
    assert (auto.kind, auto.jpeg_quality) == ("jpeg", 80) and "10 of 10 sampled real files are JPEG" in auto.source
    assert resolve_encoding("auto", None, pngs).kind == "png"
    assert resolve_encoding("auto", 60, jpegs).jpeg_quality == 60
    assert resolve_encoding("float", None, jpegs).kind == "float"
    assert resolve_encoding("auto", None, jpegs, jit=True).kind == "png"  # XLA cannot encode JPEG: quantised only
    with pytest.raises(LabError, match="needs --fake-jpeg-quality"):
        resolve_encoding("jpeg", None, pngs)
    with pytest.raises(LabError, match="--jit cannot compile JPEG"):
        resolve_encoding("jpeg", 75, pngs, jit=True)
    with pytest.raises(LabError, match="fake_format must be one of"):
        resolve_encoding("tiff", None, pngs)


def test_stored_fakes_are_what_an_8_bit_or_jpeg_file_gives_back(tmp_path):
    coarse = np.random.default_rng(1).random((3, 4, 4, 3)).astype(np.float32)
    pixels = np.asarray(keras.ops.image.resize(coarse, (SIZE, SIZE)), dtype=np.float32)  # smooth, as photos are
    png = np.asarray(Encoding("png")(pixels))
    np.testing.assert_array_equal(png * 255.0, np.round(pixels * 255.0))
    jpeg = np.asarray(Encoding("jpeg", 75)(pixels))
    np.testing.assert_allclose(jpeg * 255.0, np.round(jpeg * 255.0), atol=1e-3)  # 8-bit after decoding
    assert 0 < np.abs(jpeg - png).mean() < 0.02  # lossy, but the same picture


def _format_detector():
    """Calls an image fake when its pixels sit off the 8-bit grid: what a detector can learn from float fakes."""
    inputs = keras.Input((SIZE, SIZE, 3))
    scaled = keras.layers.Rescaling(255.0)(inputs)
    off_grid = keras.layers.Lambda(lambda x: keras.ops.abs(x - keras.ops.round(x)))(scaled)
    features = keras.layers.GlobalAveragePooling2D(name="features")(off_grid)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="p_fake")(features)
    model = keras.Model(inputs, outputs)
    model.get_layer("p_fake").set_weights([np.full((3, 1), 100.0, np.float32), np.array([-10.0], np.float32)])
    return model


def test_a_detector_that_sees_only_the_format_catches_float_fakes_and_none_stored_as_reals():
    keras.utils.set_random_seed(0)
    generator = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(SIZE * SIZE * 3, activation="sigmoid"),
            keras.layers.Reshape((SIZE, SIZE, 3)),
        ]
    )
    detector = _format_detector()
    latents = np.random.default_rng(2).normal(size=(16, 8)).astype(np.float32)
    as_generated = build_fused_scorer(generator, detector)(latents)
    stored = build_fused_scorer(generator, detector, encode=Encoding("png"))(latents)
    assert np.all(np.asarray(as_generated["outputs"]) > 0.9)  # float fakes: caught for their format alone
    assert np.all(np.asarray(stored["outputs"]) < 0.01)  # stored as 8-bit files are: nothing left to catch
    stored_bytes = np.asarray(stored["pixels"]) * 255.0
    np.testing.assert_allclose(stored_bytes, np.round(stored_bytes), atol=1e-3)

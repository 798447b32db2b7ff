import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.data.images import (
    fit_image,
    image_grid,
    is_image_file,
    load_rgb,
    open_rgb,
    save_png,
)


def _save(path, mode, size=(40, 30), **kwargs):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    "mode,suffix", [("L", ".png"), ("RGBA", ".png"), ("P", ".png"), ("CMYK", ".jpg"), ("I;16", ".png"), ("LA", ".png")]
)
def test_every_mode_loads_as_rgb(tmp_path, mode, suffix):
    image = load_rgb(_save(tmp_path / f"face{suffix}", mode))
    assert image.dtype == np.uint8 and image.shape == (30, 40, 3)


def test_transparent_pixels_become_white(tmp_path):
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(tmp_path / "clear.png")
    assert (load_rgb(tmp_path / "clear.png") == 255).all()


def test_bad_files_are_named(tmp_path):
    with pytest.raises(LabError, match="not found: .*missing.png"):
        load_rgb(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(LabError, match="notes.png is not an image"):
        load_rgb(tmp_path / "notes.png")
    data = tmp_path / "whole.jpg"
    _save(data, "RGB", size=(64, 64), quality=95)
    (tmp_path / "cut.jpg").write_bytes(data.read_bytes()[:300])
    with pytest.raises(LabError, match="cut.jpg could not be decoded"):
        load_rgb(tmp_path / "cut.jpg")
    with pytest.raises(LabError, match="upload.png"):
        open_rgb(b"garbage", name="upload.png")


def test_extensions_are_case_insensitive_and_hidden_files_ignored():
    assert is_image_file("a/B.JPG") and is_image_file("c.webp") and is_image_file("d.Jpeg")
    assert not is_image_file("a/.hidden.png") and not is_image_file("notes.txt")


def test_fit_image_crops_the_centre_or_resizes():
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # the centred square is white
    cropped = fit_image(wide, 10, mode="crop")
    assert cropped.shape == (10, 10, 3) and cropped.dtype == np.float32
    assert cropped.min() == pytest.approx(1.0)
    resized = fit_image(wide, 10, mode="resize")
    assert 0.2 < resized.mean() < 0.5
    with pytest.raises(LabError, match="photo.jpg is 60x20 pixels, smaller than the model's input of 32x32"):
        fit_image(wide, 32, min_size=32, name="photo.jpg")
    with pytest.raises(ValueError, match="mode"):
        fit_image(wide, 10, mode="stretch")


def test_grid_and_png_round_trip(tmp_path):
    batch = np.random.default_rng(1).random((5, 8, 8, 3)).astype(np.float32)
    grid = image_grid(batch, columns=3, padding=1)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    path = save_png(tmp_path / "grid.png", grid)
    assert load_rgb(path).shape == grid.shape
    np.testing.assert_allclose(load_rgb(path)[1:9, 1:9] / 255.0, batch[0], atol=1 / 255)

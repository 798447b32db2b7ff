"""Reading image files into RGB arrays and fitting them to a model's input size."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from detector.errors import LabError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# How an image of another shape is fitted to the model's square input: stretched, or its centre square.
FitMode = Literal["resize", "crop"]
FIT_MODES = get_args(FitMode)


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a visible file whose extension (any case) is a supported image type."""
    path = Path(path)
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, LA, P, RGBA, CMYK, I;16, ...) to RGB.

    Transparent pixels are composited on white, so an RGBA face keeps its look.
    """
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8))
    return image.convert("RGB")


def open_rgb(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Open an image file (or its bytes), apply EXIF orientation and convert to RGB.

    Raises LabError naming the file when it is missing, not an image, or truncated.
    """
    label = name or (f"{len(source)} bytes" if isinstance(source, bytes) else os.fspath(source))
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise LabError(f"Image not found: {label}")
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
        with handle, Image.open(handle) as image:
            image.load()  # decodes now, so a truncated file fails here, not later
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except UnidentifiedImageError:
        raise LabError(f"{label} is not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise LabError(f"{label} could not be decoded ({error}); is it truncated?") from None


def load_rgb(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """The image as a uint8 array of shape (height, width, 3)."""
    return np.asarray(open_rgb(source, name), dtype=np.uint8)


def fit_image(
    image: Image.Image | np.ndarray,
    size: int,
    mode: str = "crop",
    min_size: int | None = None,
    name: str = "image",
) -> np.ndarray:
    """Fit an RGB image to `size` x `size` and return float32 pixels in [0, 1].

    mode="crop" takes the largest centred square first (faces keep their proportions);
    mode="resize" stretches the whole image. An image whose shorter side is below
    `min_size` is refused with a LabError naming it.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"mode must be one of {FIT_MODES}. Received: mode={mode!r}")
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    image = to_rgb(image)
    width, height = image.size
    if min_size is not None and min(width, height) < min_size:
        raise LabError(
            f"{name} is {width}x{height} pixels, smaller than the model's input of "
            f"{min_size}x{min_size}; use an image at least that large"
        )
    if mode == "crop" and width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def save_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Save float [0, 1] or uint8 pixels (H, W, 3) as a PNG, atomically."""
    from detector.runs import atomic_write_bytes

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile a batch (N, H, W, 3) into one image, white padding between tiles."""
    images = np.asarray(images)
    count, height, width, channels = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    fill = 255 if images.dtype == np.uint8 else 1.0
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        fill,
        dtype=images.dtype,
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid

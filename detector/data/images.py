"""Reading image files into RGB arrays and fitting them to a model's input size."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from detector.base.errors import LabError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# The formats the lab decodes, whatever a file calls itself: PIL knows many more (EPS is handed
# to Ghostscript, for one), and none of those is a face photo worth the risk.
READ_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF")
# Bytes per pixel of each PIL mode once decoded (before conversion to RGB), for the memory cap.
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "I;16": 2, "I;16B": 2, "I;16L": 2, "RGB": 3, "YCbCr": 3}
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
        # float32 in place: a large 16-bit image must not cost eight bytes a pixel on the way.
        array = np.array(image, dtype=np.float32)  # a copy of its own: PIL's buffer may be read-only
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        np.multiply(array, 255.0 / peak, out=array)
        np.clip(array, 0, 255, out=array)
        image = Image.fromarray(array.astype(np.uint8))
    return image.convert("RGB")


def decoded_bytes(image: Image.Image) -> int:
    """What decoding `image` costs in memory, from its header alone: pixels times bytes per pixel."""
    return image.width * image.height * _MODE_BYTES.get(image.mode, 4)


def _limit_decode(image: Image.Image, label: str, max_bytes: int | None) -> None:
    """Refuse (or, for a JPEG, decode at a reduced scale) an image whose decoded pixels exceed `max_bytes`."""
    if max_bytes is None or decoded_bytes(image) <= max_bytes:
        return
    fits = [factor for factor in (2, 4, 8) if decoded_bytes(image) / factor**2 <= max_bytes]
    if image.format == "JPEG" and fits:  # the decoder can skip detail: 1/2, 1/4 or 1/8 of each side
        image.draft(image.mode, (-(-image.width // fits[0]), -(-image.height // fits[0])))
        if decoded_bytes(image) <= max_bytes:
            return
    raise LabError(
        f"{label} is {image.width}x{image.height} {image.mode} pixels: {decoded_bytes(image) / 1e6:.1f} MB decoded, "
        f"over the limit of {max_bytes / 1e6:.1f} MB. Send a smaller image"
    )


def open_rgb(source: str | os.PathLike | bytes, name: str | None = None, max_bytes: int | None = None) -> Image.Image:
    """Open an image file (or its bytes), apply EXIF orientation and convert to RGB.

    Only READ_FORMATS are decoded (a GIF's first frame). Raises LabError naming the file when
    it is missing, not an image of those formats, truncated, or (with `max_bytes`) too large
    to decode.
    """
    label = name or (f"{len(source)} bytes" if isinstance(source, bytes) else os.fspath(source))
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise LabError(f"Image not found: {label}")
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
        with handle, Image.open(handle, formats=READ_FORMATS) as image:
            _limit_decode(image, label, max_bytes)
            image.load()  # decodes now, so a truncated file fails here, not later
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except LabError:
        raise
    except UnidentifiedImageError:
        raise LabError(f"{label} is not an image the lab reads ({', '.join(READ_FORMATS)})") from None
    except Exception as error:  # PIL raises many types for damaged data (OSError, ValueError, struct.error, ...)
        raise LabError(f"{label} could not be decoded ({type(error).__name__}: {error}); is it truncated?") from None


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


# The IJG standard luminance quantisation table (quality 50), summed: libjpeg scales it by quality.
_IJG_LUMINANCE_SUM = 3688


def jpeg_quality(path: str | os.PathLike) -> int | None:
    """The IJG quality a JPEG file was most likely saved at, from its luminance table; None if not a JPEG.

    Exact for files written by libjpeg and its descendants (PIL, OpenCV, most cameras' software);
    for other encoders, the quality whose standard table is nearest in scale.
    """
    try:
        with Image.open(path) as image:
            if image.format != "JPEG" or not getattr(image, "quantization", None):
                return None
            table = image.quantization[0]
    except (OSError, ValueError):
        return None
    if max(table) == 1:
        return 100
    scale = 100.0 * sum(table) / _IJG_LUMINANCE_SUM
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(min(100, max(1, round(quality))))


def save_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Save float [0, 1] or uint8 pixels (H, W, 3) as a PNG, atomically."""
    from detector.base.runs import atomic_write_bytes

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

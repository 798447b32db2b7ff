"""Deterministic image perturbations for robustness sweeps: JPEG, blur, rescaling, noise.

Every function takes a batch of float32 RGB pixels (N, S, S, 3) in [0, 1] and returns a
new batch of the same shape and range. A level meaning "no change" (blur sigma 0,
rescale factor 1, noise sigma 0) returns an exact copy; JPEG at quality 100 is still lossy.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be an RGB batch of shape (N, H, W, 3). Received: images.shape={images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def jpeg(images, quality: int, seed: int = 0) -> np.ndarray:
    """Encode each image as JPEG at `quality` (1-95 useful, 100 allowed) and decode it again."""
    if not np.isscalar(quality) or quality != int(quality) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100. Received: quality={quality!r}")
    images = _check_images(images)
    output = np.empty_like(images)
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        # 4:4:4 chroma: subsampling would blur colour even at quality 100.
        Image.fromarray(_to_uint8(image)).save(buffer, format="JPEG", quality=int(quality), subsampling=0)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            output[index] = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
    return output


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images, sigma: float, seed: int = 0) -> np.ndarray:
    """Separable Gaussian blur with standard deviation `sigma` pixels (0: unchanged)."""
    from scipy import ndimage

    if not np.isscalar(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a number >= 0. Received: sigma={sigma!r}")
    images = _check_images(images)
    if sigma == 0:
        return images.copy()
    kernel = _gaussian_kernel(float(sigma))
    blurred = images.astype(np.float64)
    for axis in (1, 2):
        # Reflected about the edge pixel (d c b | a b c d), so the border does not darken as zero
        # padding would make it; an image narrower than the kernel repeats its edge pixel too.
        mode = "mirror" if len(kernel) // 2 < images.shape[axis] else "reflect"
        blurred = ndimage.correlate1d(blurred, kernel, axis=axis, mode=mode)
    return np.clip(blurred, 0.0, 1.0).astype(np.float32)


def rescale(images, factor: float, seed: int = 0) -> np.ndarray:
    """Downscale by `factor` (e.g. 0.5) with bilinear filtering, then upscale back (1: unchanged)."""
    if not np.isscalar(factor) or not 0 < factor <= 1:
        raise ValueError(f"factor must be in (0, 1]. Received: factor={factor!r}")
    images = _check_images(images)
    if factor == 1:
        return images.copy()
    height, width = images.shape[1:3]
    small = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
    output = np.empty_like(images)
    for index, image in enumerate(images):
        for channel in range(3):
            # Mode "F" keeps float precision; no rounding to 8 bits between the two resizes.
            plane = Image.fromarray(image[..., channel].astype(np.float32), mode="F")
            plane = plane.resize(small, Image.Resampling.BILINEAR).resize((width, height), Image.Resampling.BILINEAR)
            output[index, ..., channel] = np.asarray(plane, dtype=np.float32)
    return np.clip(output, 0.0, 1.0)


def gaussian_noise(images, sigma: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of standard deviation `sigma` (pixel scale [0, 1]) and clip (0: unchanged)."""
    if not np.isscalar(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a number >= 0. Received: sigma={sigma!r}")
    images = _check_images(images)
    if sigma == 0:
        return images.copy()
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=images.shape)
    return np.clip(images + noise, 0.0, 1.0).astype(np.float32)


# name: (function(images, level, seed), what the level means, the level that means "unperturbed" or None)
PERTURBATIONS: dict[str, tuple[Callable[..., np.ndarray], str, float | None]] = {
    "jpeg": (jpeg, "JPEG quality", None),
    "blur": (gaussian_blur, "Gaussian blur sigma (px)", 0),
    "rescale": (rescale, "downscale factor, then back up", 1),
    "noise": (gaussian_noise, "Gaussian noise sigma", 0),
}

# The sweep the stress harness runs: (perturbation, level), mildest first within each.
DEFAULT_SWEEP: tuple[tuple[str, float], ...] = (
    ("jpeg", 100),
    ("jpeg", 90),
    ("jpeg", 70),
    ("jpeg", 50),
    ("jpeg", 30),
    ("blur", 0),
    ("blur", 1),
    ("blur", 2),
    ("blur", 3),
    ("rescale", 1),
    ("rescale", 0.5),
    ("rescale", 0.25),
    ("noise", 0),
    ("noise", 0.02),
    ("noise", 0.05),
    ("noise", 0.1),
)


def perturb(images, name: str, level: float, seed: int = 0) -> np.ndarray:
    """Apply the registered perturbation `name` at `level`; the same seed gives the same pixels."""
    if name not in PERTURBATIONS:
        raise ValueError(f"Unknown perturbation. Expected one of {sorted(PERTURBATIONS)}. Received: name={name!r}")
    function, _, _ = PERTURBATIONS[name]
    return function(images, level, seed=seed)

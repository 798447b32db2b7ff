"""Azimuthally averaged power spectra: where GAN upsampling leaves its fingerprint.

Transposed convolutions and nearest/zero-insertion upsampling copy the spectrum into
the high frequencies, so fakes often show a bump near the Nyquist frequency that real
photographs lack (Durall et al., 2020). One curve per image set makes that visible.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# ITU-R BT.601 luma, the usual grayscale conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


def _grayscale(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square arrays of shape (N, S, S, 3). Received: images.shape={images.shape}")
    if len(images) == 0:
        raise ValueError("images is empty. Received: images.shape[0]=0")
    pixels = images.astype(np.float64)
    if images.dtype == np.uint8:
        pixels /= 255.0
    return pixels[..., 0] if images.shape[-1] == 1 else pixels @ _LUMA


def radial_frequencies(size: int) -> np.ndarray:
    """Each radial bin's frequency in cycles per pixel, from 0 out to the corner (about 0.707)."""
    radius = _radius(size)
    return np.arange(int(radius.max()) + 1) / size


def _radius(size: int) -> np.ndarray:
    centre = size // 2
    rows, columns = np.indices((size, size))
    return np.rint(np.hypot(rows - centre, columns - centre)).astype(np.int64)


def power_spectrum(images, log: bool = True) -> np.ndarray:
    """Mean azimuthally averaged power spectrum of grayscale images, one value per radial bin.

    images: (N, S, S, 3) float in [0, 1] or uint8. Bin r holds the mean |FFT|^2 over the
    frequencies whose distance from the centre rounds to r (see `radial_frequencies`).
    log=True returns log10 of the power, the scale the spectra are plotted on.
    """
    gray = _grayscale(images)
    size = gray.shape[1]
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray), axes=(-2, -1))) ** 2 / (size * size)
    mean_power = power.mean(axis=0)
    radius = _radius(size).ravel()
    counts = np.bincount(radius)
    profile = np.bincount(radius, weights=mean_power.ravel()) / counts
    # A tiny floor keeps log10 finite for an exactly flat image.
    return np.log10(profile + 1e-12) if log else profile


def plot_spectra(
    curves: dict[str, np.ndarray], size: int, path: str | os.PathLike, title: str = "Azimuthally averaged power spectra"
) -> Path:
    """One line per labelled log10 spectrum of `size`-pixel images (from `power_spectrum`), saved as a PNG.

    Labels starting with "GAN" are shaded along one colour map, in order (say, by epoch).
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from detector.base.runs import atomic_write_bytes

    if not curves:
        raise ValueError("curves is empty. Received: curves={}")
    figure, axes = plt.subplots(figsize=(7, 4.5))
    colormap = plt.get_cmap("viridis")
    gan_labels = [label for label in curves if label.startswith("GAN")]
    frequencies = radial_frequencies(size)
    for label, spectrum in curves.items():
        if len(spectrum) != len(frequencies):
            raise ValueError(
                f"Spectrum {label!r} has {len(spectrum)} bins, but {size}-pixel images give {len(frequencies)}"
            )
        if label in gan_labels:
            shade = gan_labels.index(label) / max(len(gan_labels) - 1, 1)
            axes.plot(frequencies, spectrum, color=colormap(0.15 + 0.8 * shade), linewidth=1.2, label=label)
        else:
            axes.plot(frequencies, spectrum, linewidth=2.2, linestyle="--" if "training" in label else "-", label=label)
    axes.set_xlabel("spatial frequency (cycles per pixel; 0.5 is Nyquist)")
    axes.set_ylabel("log10 power")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())

import numpy as np
import pytest

from gan_lab.metrics.spectra import plot_spectra, power_spectrum, radial_frequencies


def _smooth_images(count, size, seed=0):
    """Random images with only low frequencies: noise upsampled 8x by bilinear interpolation."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        coarse = rng.random((size // 8, size // 8, 3)).astype(np.float32)
        planes = [
            np.asarray(Image.fromarray(coarse[..., c], mode="F").resize((size, size), Image.Resampling.BILINEAR))
            for c in range(3)
        ]
        images.append(np.stack(planes, axis=-1))
    return np.clip(np.stack(images), 0, 1)


def _frequency_bin(size, frequency):
    return int(np.argmin(np.abs(radial_frequencies(size) - frequency)))


def test_zero_insertion_upsampling_shows_a_peak_near_nyquist():
    smooth = _smooth_images(8, 16)
    upsampled = np.zeros((8, 32, 32, 3), dtype=np.float32)
    upsampled[:, ::2, ::2] = smooth  # the checkerboard of a stride-2 transposed convolution
    spectrum = power_spectrum(upsampled)
    reference = power_spectrum(_smooth_images(8, 32, seed=1))
    nyquist, middle = _frequency_bin(32, 0.5), _frequency_bin(32, 0.3)
    # The copied spectrum rises again towards Nyquist instead of falling as natural images do.
    assert spectrum[nyquist] > spectrum[middle] + 1.0
    assert spectrum[nyquist] > reference[nyquist] + 2.0


def test_spectrum_shape_and_dtype_handling():
    images = _smooth_images(3, 32)
    spectrum = power_spectrum(images)
    assert spectrum.shape == radial_frequencies(32).shape
    assert np.isfinite(spectrum).all()
    as_uint8 = np.rint(images * 255).astype(np.uint8)
    np.testing.assert_allclose(power_spectrum(as_uint8), power_spectrum(as_uint8 / np.float32(255)), atol=1e-6)
    flat = power_spectrum(np.full((1, 32, 32, 3), 0.5, dtype=np.float32), log=False)
    assert flat[0] > 0 and np.allclose(flat[1:], 0)


def test_spectrum_rejects_non_square_batches():
    with pytest.raises(ValueError, match="images.shape"):
        power_spectrum(np.zeros((2, 32, 16, 3)))


def test_plot_spectra_writes_a_png(tmp_path):
    images = _smooth_images(2, 32)
    path = plot_spectra(
        {"real test": power_spectrum(images), "GAN epoch 1": power_spectrum(images[:1])}, 32, tmp_path / "s.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

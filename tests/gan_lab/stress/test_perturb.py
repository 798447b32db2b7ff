import numpy as np
import pytest

from gan_lab.stress.perturb import (
    DEFAULT_SWEEP,
    PERTURBATIONS,
    gaussian_blur,
    gaussian_noise,
    jpeg,
    perturb,
    rescale,
)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((4, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("name, level", [("blur", 0), ("rescale", 1), ("noise", 0)])
def test_identity_levels_are_exact(images, name, level):
    output = perturb(images, name, level)
    np.testing.assert_array_equal(output, images)
    assert output is not images


def test_jpeg_100_is_close_but_not_lossless(images):
    output = jpeg(images, 100)
    difference = np.abs(output - images)
    assert 0 < difference.max() < 0.05


def test_lower_jpeg_quality_loses_more(images):
    errors = [np.abs(jpeg(images, quality) - images).mean() for quality in (90, 50, 30)]
    assert errors[0] < errors[1] < errors[2]


def test_blur_removes_detail_more_with_larger_sigma(images):
    # Neighbour differences measure fine detail; random noise has plenty of it.
    detail = [np.abs(np.diff(gaussian_blur(images, sigma), axis=1)).mean() for sigma in (0, 1, 2, 3)]
    assert detail[0] > detail[1] > detail[2] > detail[3]
    assert gaussian_blur(images, 2).shape == images.shape


def test_blur_keeps_a_constant_image_constant():
    flat = np.full((1, 16, 16, 3), 0.4, dtype=np.float32)
    np.testing.assert_allclose(gaussian_blur(flat, 3), flat, atol=1e-6)


def test_rescale_loses_detail_and_keeps_shape(images):
    half, quarter = rescale(images, 0.5), rescale(images, 0.25)
    assert half.shape == quarter.shape == images.shape
    assert np.abs(half - images).mean() < np.abs(quarter - images).mean()


def test_noise_is_seeded_and_in_range(images):
    first, again, other = (
        gaussian_noise(images, 0.1, seed=1),
        gaussian_noise(images, 0.1, seed=1),
        gaussian_noise(images, 0.1, seed=2),
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.min() >= 0 and first.max() <= 1


def test_every_sweep_point_runs_and_stays_in_range(images):
    for name, level in DEFAULT_SWEEP:
        output = perturb(images, name, level)
        assert output.shape == images.shape and output.dtype == np.float32
        assert output.min() >= 0 and output.max() <= 1, (name, level)
    assert set(name for name, _ in DEFAULT_SWEEP) == set(PERTURBATIONS)


def test_bad_levels_are_refused(images):
    with pytest.raises(ValueError, match="quality"):
        jpeg(images, 0)
    with pytest.raises(ValueError, match="factor"):
        rescale(images, 2)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(images, -1)
    with pytest.raises(ValueError, match="Unknown perturbation"):
        perturb(images, "rotate", 1)

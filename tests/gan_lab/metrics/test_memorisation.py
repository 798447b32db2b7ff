import numpy as np
import pytest

from gan_lab.metrics.memorisation import closest_pairs, memorisation_figures, nearest_reals, thumbnails


def _faces(rng, n, size=64):
    """Smooth random images: a few blobs each, so that images differ as photos do, not as white noise."""
    grid = np.linspace(-1, 1, size)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    images = np.zeros((n, size, size, 3))
    for _ in range(3):
        centre = rng.uniform(-0.7, 0.7, (n, 2, 1, 1))
        colour = rng.uniform(0, 1, (n, 1, 1, 3))
        blob = np.exp(-((x - centre[:, 0]) ** 2 + (y - centre[:, 1]) ** 2) / 0.1)[..., None]
        images += blob * colour
    return np.clip(images, 0, 1).astype(np.float32)


def test_thumbnails_average_blocks_to_32_px():
    images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3))
    shrunk = thumbnails(images).reshape(2, 32, 32, 3)
    assert shrunk[1, 3, 5] == pytest.approx(images[1, 6:8, 10:12].mean(axis=(0, 1)))
    assert thumbnails(images[:, :20, :20]).shape == (2, 20 * 20 * 3)  # small images are kept as they are


def test_copies_of_training_images_are_flagged_and_paired_with_their_originals():
    rng = np.random.default_rng(0)
    training, held_out = _faces(rng, 100), _faces(rng, 100)
    copied = rng.choice(100, 60, replace=False)
    fakes = np.clip(training[copied] + rng.normal(0, 0.02, training[copied].shape), 0, 1)
    nearest = nearest_reals(fakes, training, held_out)
    figures = memorisation_figures(nearest)
    assert figures["nearer_training"] == 1.0 and figures["memorisation_p"] == pytest.approx(1 / 1000)
    assert figures["nearest_ratio"] < 0.3 and figures["near_copies"] == figures["n_memorisation"] == 60
    assert all(copied[fake] == original for fake, original in closest_pairs(nearest, 8))


def test_a_tenth_of_fakes_copied_is_found_though_the_share_nearer_training_barely_moves():
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(10):
        training, held_out, fakes = _faces(rng, 100), _faces(rng, 100), _faces(rng, 100)
        fakes[:10] = np.clip(training[:10] + rng.normal(0, 0.02, training[:10].shape), 0, 1)
        figures = memorisation_figures(nearest_reals(fakes, training, held_out), permutations=199)
        found += figures["memorisation_p"] < 0.05
        assert figures["near_copies"] >= 10
    assert found >= 8


def test_fakes_of_the_same_distribution_are_flagged_at_about_the_test_level():
    rng = np.random.default_rng(5)
    p_values, shares = [], []
    for trial in range(100):
        nearest = nearest_reals(_faces(rng, 100), _faces(rng, 100), _faces(rng, 100))
        figures = memorisation_figures(nearest, permutations=199, seed=trial)
        p_values.append(figures["memorisation_p"])
        shares.append(figures["nearer_training"])
    assert np.mean(np.array(p_values) < 0.05) <= 0.10  # 5% expected; 10% is 2.3 standard errors above
    assert abs(np.mean(shares) - 0.5) < 0.03


def test_a_collapsed_gan_whose_fakes_share_one_nearest_real_is_not_called_a_copier():
    """Every fake near one point: the share nearer training is all or nothing, a binomial test would flag half."""
    rng = np.random.default_rng(2)
    p_values, extremes = [], []
    for _ in range(40):
        mode = _faces(rng, 1)
        fakes = np.clip(mode + rng.normal(0, 0.01, (50, *mode.shape[1:])), 0, 1)
        figures = memorisation_figures(nearest_reals(fakes, _faces(rng, 60), _faces(rng, 60)), permutations=199)
        extremes.append(figures["nearer_training"] in (0.0, 1.0))
        p_values.append(figures["memorisation_p"])
    assert np.mean(extremes) >= 0.5  # the case where counting fakes as independent coins fails
    assert np.mean(np.array(p_values) < 0.05) <= 0.15


def test_the_two_real_sets_must_be_of_one_size():
    images = np.zeros((4, 8, 8, 3))
    with pytest.raises(ValueError, match="of one size"):
        nearest_reals(images, images, images[:3])

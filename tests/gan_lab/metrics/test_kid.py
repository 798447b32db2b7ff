import numpy as np
import pytest

from gan_lab.metrics.kid import kernel_inception_distance, polynomial_kernel


def test_kid_of_a_set_with_itself_is_about_zero():
    features = np.random.default_rng(0).normal(size=(1000, 16))
    kid, std = kernel_inception_distance(features, features, num_subsets=50, max_subset_size=100, seed=0)
    shifted, _ = kernel_inception_distance(features, features + 0.3, num_subsets=50, max_subset_size=100, seed=0)
    assert abs(kid) < 2 * std
    assert abs(kid) < 0.1 * shifted


def test_kid_grows_with_the_distance_between_distributions():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(150, 16))
    near = rng.normal(loc=0.3, size=(150, 16))
    far = rng.normal(loc=1.5, size=(150, 16))
    kid_near, _ = kernel_inception_distance(real, near, num_subsets=20)
    kid_far, _ = kernel_inception_distance(real, far, num_subsets=20)
    assert 0 < kid_near < kid_far
    assert np.isfinite(kid_far)


def test_kid_is_unbiased_for_two_samples_of_one_distribution():
    rng = np.random.default_rng(2)
    estimates = [
        kernel_inception_distance(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)), num_subsets=5, seed=s)[0]
        for s in range(20)
    ]
    spread = np.std(estimates)
    # A biased (V-statistic) estimate would sit clearly above 0 at 40 samples.
    assert abs(np.mean(estimates)) < spread


def test_kid_same_seed_same_result_and_subsets_capped():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 4)), rng.normal(size=(50, 4)) + 1
    assert kernel_inception_distance(real, fake, seed=7) == kernel_inception_distance(real, fake, seed=7)
    kid, std = kernel_inception_distance(real, fake, num_subsets=10, max_subset_size=10)
    assert kid > 0 and std > 0


def test_polynomial_kernel_matches_definition():
    x, y = np.array([[1.0, 2.0]]), np.array([[3.0, -1.0], [0.0, 0.0]])
    np.testing.assert_allclose(polynomial_kernel(x, y), [[(1 / 2 + 1) ** 3, 1.0]])


def test_kid_rejects_bad_features():
    with pytest.raises(ValueError, match="same width"):
        kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least two rows"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        kernel_inception_distance(np.full((3, 3), np.nan), np.zeros((5, 3)))


def test_kid_is_unbiased_within_its_standard_error():
    from gan_lab.metrics.kid import polynomial_kernel

    rng = np.random.default_rng(5)
    unbiased, biased = [], []
    for seed in range(300):
        real, fake = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
        unbiased.append(kernel_inception_distance(real, fake, num_subsets=1, seed=seed)[0])
        # The plain (V-statistic) estimate keeps the diagonal k(x_i, x_i) and sits above 0.
        biased.append(
            polynomial_kernel(real, real).mean()
            + polynomial_kernel(fake, fake).mean()
            - 2 * polynomial_kernel(real, fake).mean()
        )
    standard_error = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * standard_error
    assert np.mean(biased) > 3 * np.std(biased) / np.sqrt(len(biased))


def test_kid_from_shared_kernels_equals_kid_subset_by_subset(monkeypatch):
    from gan_lab.metrics import kid

    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(60, 5)), rng.normal(size=(90, 5)) + 0.5
    shared = kernel_inception_distance(real, fake, num_subsets=7, seed=2)
    monkeypatch.setattr(kid, "FULL_KERNEL_LIMIT", 10)
    assert kernel_inception_distance(real, fake, num_subsets=7, seed=2) == pytest.approx(shared, rel=1e-9)


def test_kid_spread_is_not_zero_for_small_sets_and_separates_same_from_different():
    from gan_lab.metrics.kid import kid_subset_size

    assert kid_subset_size(256, 256) == 128 and kid_subset_size(5000, 3000) == 1000 and kid_subset_size(3, 9) == 2
    rng = np.random.default_rng(4)
    same, different = [], []
    for trial in range(20):
        real, fake = rng.normal(size=(256, 16)), rng.normal(size=(256, 16))
        kid, spread = kernel_inception_distance(real, fake, seed=trial)
        assert spread > 0  # with subsets as large as the sets every subset is the whole set: spread 0
        same.append(abs(kid) <= 2 * spread)
        kid, spread = kernel_inception_distance(real, rng.normal(loc=0.5, size=(256, 16)), seed=trial)
        different.append(kid > 2 * spread)
    assert np.mean(same) >= 0.9 and all(different)

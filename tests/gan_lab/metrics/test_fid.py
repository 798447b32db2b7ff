import numpy as np
import pytest

from gan_lab.metrics.fid import frechet_distance, frechet_feature_distance


def test_identical_sets_are_at_distance_zero():
    features = np.random.default_rng(0).normal(size=(300, 16))
    assert frechet_feature_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    wide = np.random.default_rng(1).normal(size=(50, 256))  # fewer images than dimensions
    assert frechet_feature_distance(wide, wide) == pytest.approx(0.0, abs=1e-8)


def test_two_gaussians_give_the_closed_form():
    mean_1, mean_2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    variances_1, variances_2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # Diagonal covariances: |m1 - m2|^2 + sum (sqrt(v1) - sqrt(v2))^2 = 5 + 1 + 1 + 4.
    expected = 11.0
    assert frechet_distance(mean_1, np.diag(variances_1), mean_2, np.diag(variances_2)) == pytest.approx(expected)
    rotation = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0]
    rotated = frechet_distance(
        rotation @ mean_1,
        rotation @ np.diag(variances_1) @ rotation.T,
        rotation @ mean_2,
        rotation @ np.diag(variances_2) @ rotation.T,
    )
    assert rotated == pytest.approx(expected)
    rng = np.random.default_rng(3)
    sample_1 = rng.normal(size=(40000, 3)) * np.sqrt(variances_1) + mean_1
    sample_2 = rng.normal(size=(40000, 3)) * np.sqrt(variances_2) + mean_2
    assert frechet_feature_distance(sample_1, sample_2) == pytest.approx(expected, rel=0.02)


def test_both_routes_agree_when_there_are_fewer_images_than_dimensions():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(30, 64)), rng.normal(size=(40, 64)) * 1.5 + 0.2
    direct = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert frechet_feature_distance(real, fake) == pytest.approx(direct, rel=1e-6)


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match="same width"):
        frechet_feature_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least two rows"):
        frechet_feature_distance(np.zeros((1, 3)), np.zeros((5, 3)))

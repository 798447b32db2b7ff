"""Fréchet distance between two sets of feature vectors (FID when the features are InceptionV3's pool features).

Each set is summarised by a Gaussian (mean and covariance); the distance between the two is
||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) (Heusel et al., 2017). It is biased
upwards for small sets (the covariance of a few hundred 2048-wide vectors is rank-deficient),
so FID figures are comparable only between runs with the same number of images; KID
(`gan_lab.metrics.kid`) is the unbiased companion.

The trace of the matrix square root is the sum of the square roots of the eigenvalues of
S_1 S_2, which are those of the symmetric S_1^(1/2) S_2 S_1^(1/2): two symmetric
eigendecompositions instead of a general matrix square root (seconds instead of most of a
minute at 2048 dimensions). With fewer images than dimensions it is cheaper still: those
eigenvalues are the squared singular values of X_1 X_2^T (the centred feature matrices),
scaled.
"""

from __future__ import annotations

import numpy as np


def _check_gaussians(mean_1, covariance_1, mean_2, covariance_2):
    mean_1, mean_2 = np.atleast_1d(np.asarray(mean_1, np.float64)), np.atleast_1d(np.asarray(mean_2, np.float64))
    covariance_1 = np.atleast_2d(np.asarray(covariance_1, np.float64))
    covariance_2 = np.atleast_2d(np.asarray(covariance_2, np.float64))
    dimension = (len(mean_1), len(mean_1))
    if mean_1.shape != mean_2.shape or covariance_1.shape != dimension or covariance_2.shape != dimension:
        raise ValueError(
            "Both Gaussians must have the same dimension. "
            f"Received: means {mean_1.shape} and {mean_2.shape}, covariances {covariance_1.shape} and {covariance_2.shape}"
        )
    return mean_1, covariance_1, mean_2, covariance_2


def frechet_distance(mean_1, covariance_1, mean_2, covariance_2) -> float:
    """The Fréchet distance between the Gaussians N(mean_1, covariance_1) and N(mean_2, covariance_2)."""
    mean_1, covariance_1, mean_2, covariance_2 = _check_gaussians(mean_1, covariance_1, mean_2, covariance_2)
    values, vectors = np.linalg.eigh(covariance_1)
    root_1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    # Rounding can leave tiny negative eigenvalues of a positive semi-definite product.
    product = np.linalg.eigvalsh(root_1 @ covariance_2 @ root_1)
    trace_root = float(np.sqrt(np.clip(product, 0.0, None)).sum())
    difference = mean_1 - mean_2
    value = difference @ difference + np.trace(covariance_1) + np.trace(covariance_2) - 2.0 * trace_root
    return float(max(value, 0.0))


def _check_features(name: str, features) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"{name} must be a 2-D array with at least two rows (one feature vector each). "
            f"Received: {name}.shape={features.shape}"
        )
    if not np.isfinite(features).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return features


def frechet_feature_distance(real_features, fake_features) -> float:
    """FID between two sets of feature vectors (rows), each summarised by its mean and covariance."""
    real = _check_features("real_features", real_features)
    fake = _check_features("fake_features", fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real_features and fake_features must have the same width. Received: {real.shape[1]} and {fake.shape[1]}"
        )
    if len(real) * len(fake) > real.shape[1] ** 2:
        return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    centred_real, centred_fake = real - real.mean(0), fake - fake.mean(0)
    singular = np.linalg.svd(centred_real @ centred_fake.T, compute_uv=False)
    trace_root = singular.sum() / np.sqrt((len(real) - 1) * (len(fake) - 1))
    traces = (centred_real**2).sum() / (len(real) - 1) + (centred_fake**2).sum() / (len(fake) - 1)
    difference = real.mean(0) - fake.mean(0)
    return float(max(difference @ difference + traces - 2.0 * trace_root, 0.0))

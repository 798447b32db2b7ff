"""Kernel Inception Distance (Binkowski et al., 2018) between two sets of feature vectors.

KID is the squared maximum mean discrepancy under the cubic polynomial kernel
k(x, y) = (x . y / d + 1) ** 3, estimated without bias on random subsets and averaged
over them. Unlike FID it is unbiased for small sets, which is why the stress harness,
scoring a few hundred fakes per epoch, uses it. The features here are whatever the caller
passes (the harness passes the detector's penultimate layer, not Inception's).
"""

from __future__ import annotations

import numpy as np

KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
# Up to this many vectors per set, every kernel value is computed once (n x n floats) and shared by all subsets.
FULL_KERNEL_LIMIT = 4096


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The cubic polynomial kernel matrix (x . y / d + 1) ** 3 between the rows of x and y."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _check_features(name: str, features) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"{name} must be a 2-D array with at least two rows (one feature vector each). "
            f"Received: {name}.shape={features.shape}"
        )
    if not np.isfinite(features).all():
        raise ValueError(
            f"{name} contains NaN or infinite values. Received: {int((~np.isfinite(features)).sum())} of them"
        )
    return features


def _subset_estimate(x: np.ndarray, y: np.ndarray, m: int) -> float:
    within = polynomial_kernel(x, x) + polynomial_kernel(y, y)
    # Within-set sums leave out the diagonal (k(x_i, x_i)): that is what makes it unbiased.
    return (within.sum() - np.trace(within)) / (m * (m - 1)) - 2.0 * polynomial_kernel(x, y).sum() / (m * m)


def _estimates_from_full_kernels(fake: np.ndarray, real: np.ndarray, draws, m: int) -> np.ndarray:
    """Every subset's estimate from kernels computed once: a subset's block sum is s^T K s for its 0/1 row s."""
    fake_rows, real_rows = np.zeros((len(draws), len(fake))), np.zeros((len(draws), len(real)))
    for index, (x, y) in enumerate(draws):
        fake_rows[index, x], real_rows[index, y] = 1.0, 1.0
    fake_fake, real_real = polynomial_kernel(fake, fake), polynomial_kernel(real, real)
    within = ((fake_rows @ fake_fake) * fake_rows).sum(axis=1) - fake_rows @ np.diag(fake_fake)
    within += ((real_rows @ real_real) * real_rows).sum(axis=1) - real_rows @ np.diag(real_real)
    between = ((fake_rows @ polynomial_kernel(fake, real)) * real_rows).sum(axis=1)
    return within / (m * (m - 1)) - 2.0 * between / (m * m)


def kid_subset_size(n_real: int, n_fake: int, max_subset_size: int = KID_MAX_SUBSET_SIZE) -> int:
    """Vectors per set in each KID subset: min(max_subset_size, half the smaller set), and at least 2."""
    return max(2, min(max_subset_size, min(n_real, n_fake) // 2))


def kernel_inception_distance(
    real_features,
    fake_features,
    num_subsets: int = KID_SUBSETS,
    max_subset_size: int = KID_MAX_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """Unbiased KID estimate and its standard deviation over `num_subsets` random subsets.

    Each subset holds `kid_subset_size` vectors of each set, drawn without replacement: at
    most `max_subset_size`, and at most half the smaller set, so subsets differ and their
    spread measures how much the estimate moves with the sample (with subsets as large as the
    sets, every subset would be the whole set and the spread exactly 0). Near 0 for two
    samples of one distribution (it can dip just below 0, being unbiased); larger the further
    apart the distributions are.
    """
    real = _check_features("real_features", real_features)
    fake = _check_features("fake_features", fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real_features and fake_features must have the same width. Received: {real.shape[1]} and {fake.shape[1]}"
        )
    if not isinstance(num_subsets, int) or num_subsets < 1:
        raise ValueError(f"num_subsets must be a positive integer. Received: num_subsets={num_subsets!r}")
    if not isinstance(max_subset_size, int) or max_subset_size < 2:
        raise ValueError(
            f"max_subset_size must be an integer of at least 2. Received: max_subset_size={max_subset_size!r}"
        )
    rng = np.random.default_rng(seed)
    m = kid_subset_size(len(real), len(fake), max_subset_size)
    draws = [
        (rng.choice(len(fake), m, replace=False), rng.choice(len(real), m, replace=False)) for _ in range(num_subsets)
    ]
    if max(len(fake), len(real)) <= FULL_KERNEL_LIMIT:
        estimates = _estimates_from_full_kernels(fake, real, draws, m)
    else:
        estimates = np.array([_subset_estimate(fake[x], real[y], m) for x, y in draws])
    return float(estimates.mean()), float(estimates.std())

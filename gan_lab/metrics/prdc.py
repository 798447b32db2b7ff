"""Fidelity and diversity apart: k-NN precision and recall (Kynkaanniemi et al., 2019), density and coverage
(Naeem et al., 2020), between real and generated feature vectors.

Each real (or fake) vector gets a radius, the distance to its k-th nearest neighbour among its
own set; the k-NN balls of a set estimate the region its distribution covers.

- precision: the share of fakes inside some real ball (fakes look real);
- recall: the share of reals inside some fake ball (the reals' variety is reached);
- density: real balls holding each fake, counted and divided by k, averaged (about 1 when
  the two distributions match; unlike precision, not fooled by one outlying real);
- coverage: the share of reals whose ball holds at least one fake (robust recall).

FID and KID mix both into one number; a collapsed GAN has high precision and low recall.
"""

from __future__ import annotations

import numpy as np

PRDC_K = 5


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    squared = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(squared, 0.0))


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's distance to its k-th nearest other row."""
    within = _distances(x, x)
    np.fill_diagonal(within, np.inf)
    return np.partition(within, k - 1, axis=1)[:, k - 1]


def prdc(real_features, fake_features, k: int = PRDC_K) -> dict:
    """{"knn_precision", "knn_recall", "density", "coverage"} of the fakes against the reals, in these features."""
    real = np.asarray(real_features, dtype=np.float64)
    fake = np.asarray(fake_features, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features must be 2-D of one width. Received: {real.shape} and {fake.shape}")
    if not isinstance(k, int) or k < 1 or min(len(real), len(fake)) <= k:
        raise ValueError(
            f"k must be a positive integer below each set's size. Received: k={k!r} for {len(real)} and {len(fake)}"
        )
    real_radii, fake_radii = _radii(real, k), _radii(fake, k)
    between = _distances(real, fake)  # (reals, fakes)
    inside_real = between <= real_radii[:, None]
    return {
        "knn_precision": float(inside_real.any(axis=0).mean()),
        "knn_recall": float((between <= fake_radii[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum() / (k * len(fake))),
        "coverage": float((between.min(axis=1) <= real_radii).mean()),
    }

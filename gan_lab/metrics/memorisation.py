"""Whether a GAN copies its training images: each fake's nearest real among those it trained on vs held-out ones.

With as many training images as held-out images, all drawn from one folder, a GAN that learned
the distribution (and not its samples) puts each fake nearer a training image half of the
time, and is as near the one set as the other. Fakes much nearer the training images (tested by
shuffling which reals count as training images) say the GAN copies what it saw: memorisation.
Distances are Euclidean in pixels shrunk to 32 px (each colour averaged over blocks), where a
copy is near whatever it shows.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan_lab.metrics.intervals import rate_with_interval

THUMBNAIL_SIZE = 32
PERMUTATIONS = 999  # the smallest p-value is 1/1000: below 0.05 Holm-corrected over up to 50 epochs


def thumbnails(pixels, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """Images (N, H, W, C) as flat vectors of block means, at most `size` px a side (float64)."""
    images = np.asarray(pixels, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C). Received: shape {images.shape}")
    factor = max(1, images.shape[1] // size)
    height, width = images.shape[1] // factor * factor, images.shape[2] // factor * factor
    blocks = images[:, :height, :width].reshape(len(images), height // factor, factor, width // factor, factor, -1)
    return blocks.mean(axis=(2, 4)).reshape(len(images), -1)


def _distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    squared = (queries**2).sum(1)[:, None] + (references**2).sum(1)[None, :] - 2.0 * queries @ references.T
    return np.sqrt(np.maximum(squared, 0.0))


@dataclasses.dataclass
class NearestReals:
    """Each fake's distances to the training images (the first `n_training` columns) and the held-out ones."""

    distances: np.ndarray  # (fakes, training + held-out images), Euclidean in thumbnails
    n_training: int

    @property
    def training_distance(self) -> np.ndarray:
        return self.distances[:, : self.n_training].min(axis=1)

    @property
    def training_index(self) -> np.ndarray:
        return self.distances[:, : self.n_training].argmin(axis=1)

    @property
    def held_out_distance(self) -> np.ndarray:
        return self.distances[:, self.n_training :].min(axis=1)


def nearest_reals(fakes, training, held_out) -> NearestReals:
    """Each fake's distances to every training and held-out image, in thumbnails; the two sets must be of one size."""
    if len(training) != len(held_out) or not len(training):
        raise ValueError(
            "training and held-out images must be two non-empty sets of one size, so that a fake nearer "
            f"either is a fair coin without memorisation. Received: {len(training)} and {len(held_out)}"
        )
    return NearestReals(_distances(thumbnails(fakes), thumbnails(np.concatenate([training, held_out]))), len(training))


def _closeness(distances: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """The test statistic: the mean over fakes of log(distance to the nearest `second` / to the nearest `first`)."""
    near_first = np.maximum(distances[:, first].min(axis=1), 1e-12)
    return float(np.mean(np.log(np.maximum(distances[:, second].min(axis=1), 1e-12) / near_first)))


def memorisation_figures(nearest: NearestReals, permutations: int = PERMUTATIONS, seed=0) -> dict:
    """How much nearer the training images the fakes sit than held-out ones, with a permutation p-value.

    Columns: the share of fakes nearer a training image (Wilson interval; one half without
    memorisation), the median ratio of the two distances, near copies (fakes at under a third of
    the distance to a training image than to any held-out one), and `memorisation_p`. The test's
    statistic is the mean log ratio of the two distances, which a few copies move far (the share
    barely); its p-value shuffles which real images count as training images (`permutations`
    times, seeded): under no memorisation the two sets are exchangeable, so the test stays honest
    when many fakes share one nearest image (a collapsed GAN, a hub among the reals), where a
    binomial test over fakes would not.
    """
    m = nearest.n_training
    observed = _closeness(nearest.distances, np.arange(m), np.arange(m, 2 * m))
    rng = np.random.default_rng(seed)
    at_least = 0
    for _ in range(permutations):
        order = rng.permutation(2 * m)
        at_least += _closeness(nearest.distances, order[:m], order[m:]) >= observed - 1e-12
    ratio = nearest.training_distance / np.maximum(nearest.held_out_distance, 1e-12)
    return {
        **rate_with_interval("nearer_training", nearest.training_distance < nearest.held_out_distance),
        "memorisation_p": (1 + at_least) / (1 + permutations),
        "nearest_ratio": float(np.median(ratio)),
        "near_copies": int(np.sum(ratio < 1 / 3)),
        "n_memorisation": len(ratio),
    }


def closest_pairs(nearest: NearestReals, k: int) -> list[tuple[int, int]]:
    """The k (fake, training image) index pairs nearest each other, nearest first."""
    order = np.argsort(nearest.training_distance, kind="mergesort")[:k]
    return [(int(fake), int(nearest.training_index[fake])) for fake in order]

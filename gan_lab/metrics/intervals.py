"""95% intervals for the stress figures: Wilson for rates, a seeded bootstrap over images for ranking metrics.

A rate (fakes caught, reals called fake, faces found) is a count out of n: the Wilson score
interval is the one that stays inside [0, 1] and keeps its coverage near 0 and 1, where
detection rates often sit. AP, ROC-AUC and balanced accuracy depend on every image at once,
so their intervals come from resampling images: real and fake images are resampled
separately (each set keeps its size), as a case-control study is. Each resample is a vector
of counts per image, which lets every metric of every resample be computed in a few array
operations, without a Python loop over resamples.
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000
# The two-sided normal quantile of CONFIDENCE.
_Z = 1.959963984540054


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a rate successes / n; (nan, nan) when n is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"successes must lie in [0, n]. Received: successes={successes!r}, n={n!r}")
    if n == 0:
        return float("nan"), float("nan")
    rate = successes / n
    denominator = 1.0 + _Z**2 / n
    centre = (rate + _Z**2 / (2 * n)) / denominator
    half = _Z * math.sqrt(rate * (1.0 - rate) / n + _Z**2 / (4 * n * n)) / denominator
    # At 0 or n successes the formula reaches the bound itself, up to rounding: say so exactly.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def largest_half_width(n: int) -> float:
    """The widest half-width a 95% Wilson interval from n images can have (at a rate of 50%)."""
    low, high = wilson_interval(n // 2, n) if n % 2 == 0 else wilson_interval((n - 1) // 2, n)
    return (high - low) / 2.0


def rate_with_interval(name: str, hits) -> dict:
    """{name: share of True in `hits`, name_low, name_high} with the Wilson interval."""
    hits = np.asarray(hits, dtype=bool)
    low, high = wilson_interval(int(hits.sum()), int(hits.size))
    rate = float(hits.mean()) if hits.size else float("nan")
    return {name: rate, f"{name}_low": low, f"{name}_high": high}


def _resample_counts(rng: np.random.Generator, size: int, resamples: int) -> np.ndarray:
    """How often each of `size` items is drawn in each resample (with replacement): (resamples, size)."""
    draws = rng.integers(0, size, (resamples, size)) + size * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * size).reshape(resamples, size).astype(np.float64)


def weighted_roc_auc(real_scores, fake_scores, real_weights, fake_weights) -> np.ndarray:
    """ROC-AUC (ties count half) for each row of weights: (R, n_real) and (R, n_fake) -> (R,)."""
    real_scores, fake_scores = np.asarray(real_scores, np.float64), np.asarray(fake_scores, np.float64)
    order = np.argsort(real_scores, kind="mergesort")
    sorted_real = real_scores[order]
    # Cumulative weight of the reals below each position of the sorted reals, with a leading 0.
    below = np.concatenate([np.zeros((len(real_weights), 1)), np.cumsum(real_weights[:, order], axis=1)], axis=1)
    strictly_below = np.searchsorted(sorted_real, fake_scores, side="left")
    up_to = np.searchsorted(sorted_real, fake_scores, side="right")
    wins = below[:, strictly_below] + 0.5 * (below[:, up_to] - below[:, strictly_below])
    total = real_weights.sum(axis=1) * fake_weights.sum(axis=1)
    return (fake_weights * wins).sum(axis=1) / total


def weighted_average_precision(real_scores, fake_scores, real_weights, fake_weights) -> np.ndarray:
    """Average precision (scikit-learn's step-wise definition) for each row of weights -> (R,)."""
    scores = np.r_[np.asarray(real_scores, np.float64), np.asarray(fake_scores, np.float64)]
    is_fake = np.r_[np.zeros(len(real_scores), bool), np.ones(len(fake_scores), bool)]
    order = np.argsort(-scores, kind="mergesort")
    scores, is_fake = scores[order], is_fake[order]
    weights = np.concatenate([real_weights, fake_weights], axis=1)[:, order]
    true_positives = np.cumsum(np.where(is_fake, weights, 0.0), axis=1)
    false_positives = np.cumsum(np.where(is_fake, 0.0, weights), axis=1)
    # One point per distinct score: the last position of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives, false_positives = true_positives[:, last], false_positives[:, last]
    positives = true_positives[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(
            true_positives + false_positives > 0, true_positives / (true_positives + false_positives), 1.0
        )
        recall = true_positives / positives
    steps = np.diff(np.concatenate([np.zeros((len(recall), 1)), recall], axis=1), axis=1)
    return (steps * precision).sum(axis=1)


def weighted_balanced_accuracy(real_scores, fake_scores, real_weights, fake_weights, threshold: float) -> np.ndarray:
    """Mean of the share of fakes caught and the share of reals passed, at `threshold`, per row of weights."""
    caught = (fake_weights * (np.asarray(fake_scores) >= threshold)).sum(axis=1) / fake_weights.sum(axis=1)
    passed = (real_weights * (np.asarray(real_scores) < threshold)).sum(axis=1) / real_weights.sum(axis=1)
    return (caught + passed) / 2.0


def bootstrap_intervals(
    real_scores,
    fake_scores,
    threshold: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict:
    """95% percentile intervals of ROC-AUC, AP and balanced accuracy, resampling reals and fakes separately.

    Returns {metric_low, metric_high} for roc_auc, average_precision and balanced_accuracy.
    The same seed gives the same intervals.
    """
    if not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer. Received: resamples={resamples!r}")
    real_scores, fake_scores = np.asarray(real_scores, np.float64), np.asarray(fake_scores, np.float64)
    if not len(real_scores) or not len(fake_scores):
        return {
            f"{name}_{end}": float("nan")
            for name in ("roc_auc", "average_precision", "balanced_accuracy")
            for end in ("low", "high")
        }
    rng = np.random.default_rng(seed)
    real_weights = _resample_counts(rng, len(real_scores), resamples)
    fake_weights = _resample_counts(rng, len(fake_scores), resamples)
    values = {
        "roc_auc": weighted_roc_auc(real_scores, fake_scores, real_weights, fake_weights),
        "average_precision": weighted_average_precision(real_scores, fake_scores, real_weights, fake_weights),
        "balanced_accuracy": weighted_balanced_accuracy(
            real_scores, fake_scores, real_weights, fake_weights, threshold
        ),
    }
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    result = {}
    for name, samples in values.items():
        low, high = np.percentile(samples, [tail, 100.0 - tail])
        result[f"{name}_low"], result[f"{name}_high"] = float(low), float(high)
    return result


def separated(first: dict, second: dict, key: str) -> bool:
    """Whether two rows' 95% intervals of `key` do not overlap: the change between them is more than noise."""
    try:
        return first[f"{key}_high"] < second[f"{key}_low"] or second[f"{key}_high"] < first[f"{key}_low"]
    except (KeyError, TypeError):
        return False

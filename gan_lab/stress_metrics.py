"""Per-epoch stress metrics: registered functions of one epoch's scores and features, separate from the harness.

    @register_metric
    def my_metric(scores: EpochScores) -> dict: ...

adds columns to every epoch row of `gan_lab.stress`; `COLUMNS` is the order results.csv keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from gan_lab.kid import kernel_inception_distance


@dataclasses.dataclass
class EpochScores:
    """What the metrics see for one GAN epoch: scores and features of its fakes and of real test images."""

    epoch: int
    threshold: float
    fake_p_fake: np.ndarray
    real_p_fake: np.ndarray
    fake_features: np.ndarray | None = None
    real_features: np.ndarray | None = None
    discriminator_fake_p_fake: np.ndarray | None = None
    discriminator_real_p_fake: np.ndarray | None = None
    seed: int = 0


EPOCH_METRICS: dict[str, Callable[[EpochScores], dict]] = {}


def register_metric(function: Callable[[EpochScores], dict]) -> Callable[[EpochScores], dict]:
    """Add a per-epoch metric (EpochScores -> dict of columns) to `EPOCH_METRICS` under its name."""
    EPOCH_METRICS[function.__name__] = function
    return function


def detection_figures(fake_p_fake, real_p_fake, threshold: float) -> dict:
    """Detection rate, P(fake) summary and ranking metrics of fakes against real images."""
    from detector.metrics import (
        average_precision,
        best_threshold,
        binary_metrics,
        roc_auc,
    )

    fake_p_fake = np.asarray(fake_p_fake, dtype=np.float64)
    real_p_fake = np.asarray(real_p_fake, dtype=np.float64)
    labels = np.r_[np.zeros(len(real_p_fake), dtype=np.int64), np.ones(len(fake_p_fake), dtype=np.int64)]
    scores = np.r_[real_p_fake, fake_p_fake]
    best = best_threshold(labels, scores)
    return {
        "detection_rate": float(np.mean(fake_p_fake >= threshold)),
        "detection_rate_05": float(np.mean(fake_p_fake >= 0.5)),
        "mean_p_fake": float(np.mean(fake_p_fake)),
        "median_p_fake": float(np.median(fake_p_fake)),
        "roc_auc": roc_auc(labels, scores),
        "average_precision": average_precision(labels, scores),
        "accuracy": binary_metrics(labels, scores, threshold)["accuracy"],
        "best_threshold": best,
        "best_accuracy": binary_metrics(labels, scores, best)["accuracy"],
    }


@register_metric
def detection(scores: EpochScores) -> dict:
    """The detector: fakes caught at its chosen threshold and at 0.5, ROC-AUC and AP against real images."""
    return {
        "threshold": scores.threshold,
        "n_fake": len(scores.fake_p_fake),
        "n_real": len(scores.real_p_fake),
        **detection_figures(scores.fake_p_fake, scores.real_p_fake, scores.threshold),
    }


@register_metric
def discriminator(scores: EpochScores) -> dict:
    """The epoch's own discriminator used as a detector: sigmoid of its logit, threshold 0.5."""
    if scores.discriminator_fake_p_fake is None:
        return {}
    figures = detection_figures(scores.discriminator_fake_p_fake, scores.discriminator_real_p_fake, 0.5)
    return {f"disc_{key}": figures[key] for key in DISCRIMINATOR_FIGURES}


@register_metric
def kid(scores: EpochScores) -> dict:
    """KID between the fakes and real test images in the detector's penultimate-layer features.

    Each feature is standardised by the real images' mean and spread first, so that KID does
    not grow with the scale of one detector's activations (the cubic kernel would make that
    scale a million-fold difference) and runs are comparable.
    """
    if scores.fake_features is None or scores.real_features is None:
        return {}
    real = np.asarray(scores.real_features, dtype=np.float64)
    mean, scale = real.mean(axis=0), real.std(axis=0)
    scale[scale < 1e-6] = 1.0  # a feature constant on reals: centre it, leave its scale
    value, spread = kernel_inception_distance(
        (real - mean) / scale,
        (scores.fake_features - mean) / scale,
        seed=scores.seed,
    )
    return {"kid": value, "kid_std": spread}


@register_metric
def diversity(scores: EpochScores) -> dict:
    """Mean pairwise distance between the fakes' detector features (low: mode collapse)."""
    from gan_lab.diversity import mean_pairwise_distance

    if scores.fake_features is None:
        return {}
    return {"diversity": float(mean_pairwise_distance(scores.fake_features))}


DISCRIMINATOR_FIGURES = (
    "detection_rate",
    "mean_p_fake",
    "median_p_fake",
    "roc_auc",
    "average_precision",
    "best_accuracy",
)
COLUMNS = (
    "kind",
    "detector",
    "epoch",
    "perturbation",
    "level",
    "n_fake",
    "n_real",
    "threshold",
    "detection_rate",
    "detection_rate_05",
    "mean_p_fake",
    "median_p_fake",
    "roc_auc",
    "average_precision",
    "accuracy",
    "best_threshold",
    "best_accuracy",
    *(f"disc_{key}" for key in DISCRIMINATOR_FIGURES),
    "kid",
    "kid_std",
    "diversity",
)


def compute_metrics(scores: EpochScores, names: tuple[str, ...] | None = None) -> dict:
    """Run the registered metrics (all, or those named) and merge their columns."""
    row: dict[str, Any] = {}
    for name in names or tuple(EPOCH_METRICS):
        if name not in EPOCH_METRICS:
            raise ValueError(f"Unknown metric. Expected one of {sorted(EPOCH_METRICS)}. Received: name={name!r}")
        row.update(EPOCH_METRICS[name](scores))
    return row

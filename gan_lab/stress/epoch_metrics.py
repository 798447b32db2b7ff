"""Per-epoch stress metrics: registered functions of one epoch's scores and features, separate from the harness.

    @register_metric
    def my_metric(scores: EpochScores) -> dict: ...

adds columns to every epoch row of `gan_lab.stress.run`; `COLUMNS` is the order results.csv keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from gan_lab.metrics.fid import frechet_feature_distance
from gan_lab.metrics.intervals import BOOTSTRAP_RESAMPLES, bootstrap_intervals, rate_with_interval
from gan_lab.metrics.kid import kernel_inception_distance
from gan_lab.metrics.memorisation import NearestReals, memorisation_figures


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
    resamples: int = BOOTSTRAP_RESAMPLES  # bootstrap resamples for the AP and ROC-AUC intervals
    fake_inception: np.ndarray | None = None  # InceptionV3 pool features of (a sample of) the fakes
    real_inception: np.ndarray | None = None
    fake_faces: np.ndarray | None = None  # per fake (of a sample): whether MTCNN found a face
    # The detector's validation thresholds for fixed false-positive rates ({"threshold_fpr_1": t, ...}).
    operating_thresholds: dict = dataclasses.field(default_factory=dict)
    # Each fake's nearest training and held-out real image (gan_lab.metrics.memorisation), or None
    nearest: NearestReals | None = None


EPOCH_METRICS: dict[str, Callable[[EpochScores], dict]] = {}


def register_metric(function: Callable[[EpochScores], dict]) -> Callable[[EpochScores], dict]:
    """Add a per-epoch metric (EpochScores -> dict of columns) to `EPOCH_METRICS` under its name."""
    EPOCH_METRICS[function.__name__] = function
    return function


def operating_points(fake_p_fake, real_p_fake, operating_thresholds: dict) -> dict:
    """EER, AP's chance level (the fakes' share), and the fakes caught at each validation FPR threshold.

    `tpr_at_fpr_1` is the share of fakes at or above the threshold that let 1% of the validation
    reals through (Wilson interval), beside `fpr_at_fpr_1`, the share of these real images it calls
    fake: the operating point as it holds on images the threshold was not chosen on.
    """
    from detector.inference.metrics import OPERATING_FPRS, equal_error_rate, fpr_key

    labels = np.r_[np.zeros(len(real_p_fake), dtype=np.int64), np.ones(len(fake_p_fake), dtype=np.int64)]
    row = {
        "ap_chance": len(fake_p_fake) / max(len(labels), 1),
        "eer": equal_error_rate(labels, np.r_[real_p_fake, fake_p_fake]),
    }
    for fpr in OPERATING_FPRS:
        threshold = operating_thresholds.get(fpr_key(fpr))
        if threshold is None:
            continue
        row.update(rate_with_interval(fpr_key(fpr, "tpr_at_fpr"), fake_p_fake >= threshold))
        row[fpr_key(fpr, "fpr_at_fpr")] = float(np.mean(real_p_fake >= threshold)) if len(real_p_fake) else np.nan
    return row


def detection_figures(
    fake_p_fake, real_p_fake, threshold: float, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> dict:
    """Detection rates, P(fake) summary and ranking metrics of fakes against real images, with 95% intervals.

    Rates (fakes caught at `threshold` and at 0.5, reals called fake) carry Wilson intervals;
    ROC-AUC, AP and balanced accuracy carry bootstrap intervals over images (seeded), widened to
    hold the figure itself where the resamples all fall to one side of it. The
    "oracle" threshold and accuracy are fitted on these very images: an upper bound, never a
    detector's real operating point.
    """
    from detector.inference.metrics import average_precision, best_threshold, binary_metrics, roc_auc

    fake_p_fake = np.asarray(fake_p_fake, dtype=np.float64)
    real_p_fake = np.asarray(real_p_fake, dtype=np.float64)
    labels = np.r_[np.zeros(len(real_p_fake), dtype=np.int64), np.ones(len(fake_p_fake), dtype=np.int64)]
    scores = np.r_[real_p_fake, fake_p_fake]
    oracle = best_threshold(labels, scores)
    caught, passed = np.mean(fake_p_fake >= threshold), np.mean(real_p_fake < threshold)
    ranking = {
        "balanced_accuracy": float((caught + passed) / 2.0),
        "roc_auc": roc_auc(labels, scores),
        "average_precision": average_precision(labels, scores),
    }
    intervals = bootstrap_intervals(real_p_fake, fake_p_fake, threshold, resamples=resamples, seed=seed)
    for name, value in ranking.items():  # every resample can round to one side of the figure (all AP = 1, say)
        intervals[f"{name}_low"] = min(intervals[f"{name}_low"], value)
        intervals[f"{name}_high"] = max(intervals[f"{name}_high"], value)
    return {
        **rate_with_interval("detection_rate", fake_p_fake >= threshold),
        **rate_with_interval("detection_rate_05", fake_p_fake >= 0.5),
        **rate_with_interval("reals_called_fake", real_p_fake >= threshold),
        "mean_p_fake": float(np.mean(fake_p_fake)),
        "median_p_fake": float(np.median(fake_p_fake)),
        **ranking,
        **intervals,
        "oracle_threshold": oracle,
        "oracle_accuracy": binary_metrics(labels, scores, oracle)["accuracy"],
    }


@register_metric
def detection(scores: EpochScores) -> dict:
    """The detector: fakes caught at its chosen threshold and at 0.5, ROC-AUC and AP against real images, EER,
    and the fakes caught at its validation thresholds for 1% and 5% false positives."""
    return {
        "threshold": scores.threshold,
        "n_fake": len(scores.fake_p_fake),
        "n_real": len(scores.real_p_fake),
        **detection_figures(
            scores.fake_p_fake, scores.real_p_fake, scores.threshold, [scores.seed, scores.epoch], scores.resamples
        ),
        **operating_points(
            np.asarray(scores.fake_p_fake, np.float64),
            np.asarray(scores.real_p_fake, np.float64),
            scores.operating_thresholds,
        ),
    }


@register_metric
def discriminator(scores: EpochScores) -> dict:
    """The epoch's own discriminator used as a detector: sigmoid of its logit, threshold 0.5."""
    if scores.discriminator_fake_p_fake is None:
        return {}
    figures = detection_figures(
        scores.discriminator_fake_p_fake,
        scores.discriminator_real_p_fake,
        0.5,
        [scores.seed, scores.epoch, 1],
        scores.resamples,
    )
    return {f"disc_{key}": figures[key] for key in DISCRIMINATOR_FIGURES}


@register_metric
def inception_quality(scores: EpochScores) -> dict:
    """FID and KID between the fakes and real test images in InceptionV3 pool features: the field's standard."""
    if scores.fake_inception is None or scores.real_inception is None:
        return {}
    value, spread = kernel_inception_distance(scores.real_inception, scores.fake_inception, seed=scores.seed)
    return {
        "fid_inception": frechet_feature_distance(scores.real_inception, scores.fake_inception),
        "kid_inception": value,
        "kid_inception_std": spread,
        "n_inception": len(scores.fake_inception),
    }


@register_metric
def fidelity_and_diversity(scores: EpochScores) -> dict:
    """k-NN precision and recall, density and coverage of the fakes, in the same Inception features as KID."""
    from gan_lab.metrics.prdc import PRDC_K, prdc

    if scores.fake_inception is None or scores.real_inception is None:
        return {}
    if min(len(scores.fake_inception), len(scores.real_inception)) <= PRDC_K:
        return {}
    return prdc(scores.real_inception, scores.fake_inception)


@register_metric
def faces(scores: EpochScores) -> dict:
    """The share of fakes in which MTCNN finds a face."""
    if scores.fake_faces is None:
        return {}
    return {**rate_with_interval("faces_found", scores.fake_faces), "n_faces": len(scores.fake_faces)}


@register_metric
def memorisation(scores: EpochScores) -> dict:
    """The share of fakes nearer one of the GAN's training images than any held-out real image, tested against 1/2."""
    return {} if scores.nearest is None else memorisation_figures(scores.nearest, seed=[scores.seed, scores.epoch])


def standardised_kid(real_features, fake_features, seed: int = 0) -> tuple[float, float]:
    """KID after standardising each feature by the real images' mean and spread.

    So that KID does not grow with the scale of one detector's activations (the cubic kernel
    would make that scale a million-fold difference) and runs are comparable.
    """
    real = np.asarray(real_features, dtype=np.float64)
    mean, scale = real.mean(axis=0), real.std(axis=0)
    scale[scale < 1e-6] = 1.0  # a feature constant on reals: centre it, leave its scale
    return kernel_inception_distance((real - mean) / scale, (np.asarray(fake_features) - mean) / scale, seed=seed)


@register_metric
def kid_detector(scores: EpochScores) -> dict:
    """KID between the fakes and real test images as the detector sees them: in its penultimate-layer features."""
    if scores.fake_features is None or scores.real_features is None:
        return {}
    value, spread = standardised_kid(scores.real_features, scores.fake_features, seed=scores.seed)
    return {"kid_detector": value, "kid_detector_std": spread}


@register_metric
def diversity(scores: EpochScores) -> dict:
    """Mean pairwise distance between the fakes' detector features (low: mode collapse)."""
    from gan_lab.metrics.diversity import mean_pairwise_distance

    if scores.fake_features is None:
        return {}
    return {"diversity": float(mean_pairwise_distance(scores.fake_features))}


def _with_intervals(*names: str) -> tuple[str, ...]:
    return tuple(column for name in names for column in (name, f"{name}_low", f"{name}_high"))


DISCRIMINATOR_FIGURES = (
    *_with_intervals("detection_rate"),
    "mean_p_fake",
    "median_p_fake",
    *_with_intervals("roc_auc", "average_precision"),
    "oracle_accuracy",
)
DETECTION_COLUMNS = (
    *_with_intervals("detection_rate", "detection_rate_05", "reals_called_fake", "balanced_accuracy"),
    "mean_p_fake",
    "median_p_fake",
    *_with_intervals("roc_auc", "average_precision"),
    "ap_chance",
    "eer",
    *_with_intervals("tpr_at_fpr_1"),
    "fpr_at_fpr_1",
    *_with_intervals("tpr_at_fpr_5"),
    "fpr_at_fpr_5",
    "oracle_threshold",
    "oracle_accuracy",
)
# The verdicts given as mean and spread over detectors trained with different seeds (stress --seed-runs)
SEED_SPREAD_KEYS = ("detection_rate", "reals_called_fake", "average_precision", "tpr_at_fpr_1")
COLUMNS = (
    "kind",
    "detector",
    "epoch",
    "perturbation",
    "level",
    "n_fake",
    "n_real",
    "threshold",
    *DETECTION_COLUMNS,
    *(f"disc_{key}" for key in DISCRIMINATOR_FIGURES),
    "fid_inception",
    "kid_inception",
    "kid_inception_std",
    "n_inception",
    "knn_precision",
    "knn_recall",
    "density",
    "coverage",
    *_with_intervals("faces_found"),
    "n_faces",
    "kid_detector",
    "kid_detector_std",
    "diversity",
    # Seed rows name their training seed; epoch rows carry the spread over the runs (gan_lab.stress.run.with_seed_spread)
    "seed",
    "seed_runs",
    *(f"{key}_seed_{figure}" for key in SEED_SPREAD_KEYS for figure in ("mean", "sd")),
    *_with_intervals("nearer_training"),
    "nearest_ratio",
    "near_copies",
    "memorisation_p",
    "memorisation_p_holm",
    "n_memorisation",
    # The real row: the reals stored again as the fakes are (gan_lab.stress.run.format_check).
    "reencoded_reals_called_fake",
    "reencoded_reals_called_fake_low",
    "reencoded_reals_called_fake_high",
    "format_check_p",
    # Sweep rows: each rate against the same images unperturbed, McNemar (gan_lab.stress.run.sweep_rows)
    "sweep_fakes_p",
    "sweep_reals_p",
    # Hardened rows: the same fakes before and after, McNemar's test (gan_lab.stress.run.paired_hardening_columns).
    "trained_on",
    "newly_caught",
    "newly_missed",
    "paired_p",
)


def compute_metrics(scores: EpochScores, names: tuple[str, ...] | None = None) -> dict:
    """Run the registered metrics (all, or those named) and merge their columns."""
    row: dict[str, Any] = {}
    for name in names or tuple(EPOCH_METRICS):
        if name not in EPOCH_METRICS:
            raise ValueError(f"Unknown metric. Expected one of {sorted(EPOCH_METRICS)}. Received: name={name!r}")
        row.update(EPOCH_METRICS[name](scores))
    return row

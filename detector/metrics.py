"""Binary classification metrics in plain numpy, with the same definitions as scikit-learn.

Labels are real = 0, fake = 1; scores are P(fake) (any monotone score works for the
ranking metrics). An image counts as predicted fake when its score >= the threshold.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

THRESHOLD_CRITERIA = ("accuracy", "youden")


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must have the same length. Received: len(labels)={labels.size}, "
            f"len(scores)={scores.size}"
        )
    if labels.size == 0:
        raise ValueError("labels and scores are empty. Received: len(labels)=0")
    unique = np.unique(labels)
    if not np.isin(unique, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake). Received: labels with values {unique.tolist()}")
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN. Received: {int(np.isnan(scores).sum())} NaN scores")
    return labels.astype(np.int64), scores


def _ratio(numerator: float, denominator: float) -> float:
    # 0/0 counts as 0, as scikit-learn's default zero_division does (minus its warning).
    return float(numerator / denominator) if denominator else 0.0


def confusion_matrix(labels, scores, threshold: float = 0.5) -> np.ndarray:
    """[[tn, fp], [fn, tp]]: rows are the true class (real, fake), columns the predicted one."""
    labels, scores = _check(labels, scores)
    predicted = (scores >= threshold).astype(np.int64)
    matrix = np.zeros((2, 2), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def binary_metrics(labels, scores, threshold: float = 0.5) -> dict:
    """Accuracy, precision, recall and F1 for the fake class, per-class accuracy and the confusion matrix."""
    matrix = confusion_matrix(labels, scores, threshold)
    (tn, fp), (fn, tp) = matrix.tolist()
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "threshold": float(threshold),
        "accuracy": _ratio(tp + tn, matrix.sum()),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        # Per-class accuracy: how many real images are called real, and fakes fake.
        "accuracy_real": _ratio(tn, tn + fp) if tn + fp else math.nan,
        "accuracy_fake": _ratio(tp, tp + fn) if tp + fn else math.nan,
        "confusion_matrix": matrix.tolist(),
        "n": int(matrix.sum()),
        "n_real": int(tn + fp),
        "n_fake": int(fn + tp),
    }


def _cumulative_counts(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positives when cutting at each distinct score, highest first."""
    labels, scores = _check(labels, scores)
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, labels = scores[order], labels[order]
    # The last index of each run of tied scores: tied images cross the threshold together.
    distinct = np.where(np.diff(scores))[0]
    ends = np.r_[distinct, labels.size - 1]
    true_positives = np.cumsum(labels)[ends]
    false_positives = 1 + ends - true_positives
    return false_positives.astype(np.float64), true_positives.astype(np.float64), scores[ends]


def _single_class(name: str, labels: np.ndarray) -> float:
    present = "fake" if labels.any() else "real"
    warnings.warn(
        f"{name} is undefined when every label is {present} (only one class present); returning nan",
        RuntimeWarning,
        stacklevel=3,
    )
    return math.nan


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), thresholds decreasing from +inf.

    Same as scikit-learn's `roc_curve(..., drop_intermediate=False)`. Tied scores move
    both rates at once, so the curve runs diagonally through them.
    """
    false_positives, true_positives, thresholds = _cumulative_counts(labels, scores)
    false_positives = np.r_[0.0, false_positives]
    true_positives = np.r_[0.0, true_positives]
    thresholds = np.r_[np.inf, thresholds]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = false_positives / false_positives[-1] if false_positives[-1] else np.full_like(false_positives, np.nan)
        tpr = true_positives / true_positives[-1] if true_positives[-1] else np.full_like(true_positives, np.nan)
    return fpr, tpr, thresholds


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (trapezoids, so a tie counts half); nan with a warning for one class."""
    labels, scores = _check(labels, scores)
    if labels.min() == labels.max():
        return _single_class("ROC-AUC", labels)
    fpr, tpr, _ = roc_curve(labels, scores)
    # Trapezoids by hand: np.trapz was renamed in numpy 2.
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with thresholds increasing; as scikit-learn's.

    The last point is precision 1, recall 0, with no threshold.
    """
    labels, _ = _check(labels, scores)
    if not labels.any():
        _single_class("Recall", labels)
    false_positives, true_positives, thresholds = _cumulative_counts(labels, scores)
    predicted_positive = true_positives + false_positives
    precision = np.divide(
        true_positives, predicted_positive, out=np.zeros_like(true_positives), where=predicted_positive > 0
    )
    if true_positives[-1]:
        recall = true_positives / true_positives[-1]
    else:
        recall = np.ones_like(true_positives)
    # Reverse so recall decreases, then end at (recall 0, precision 1) as scikit-learn does.
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision(labels, scores) -> float:
    """Step-wise area under the precision-recall curve: sum over thresholds of (R_n - R_n-1) * P_n.

    No interpolation, the same definition as scikit-learn's `average_precision_score`.
    nan with a warning when there is no fake image.
    """
    labels, scores = _check(labels, scores)
    if not labels.any():
        return _single_class("Average precision", labels)
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def calibration_bins(labels, scores, bins: int = 10) -> dict:
    """Per equal-width bin of P(fake): image count, mean P(fake) and the fraction that is fake.

    Empty bins hold nan. Bins are closed on the right, and the first also on the left.
    """
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer. Received: bins={bins!r}")
    labels, scores = _check(labels, scores)
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise ValueError(
            f"Calibration needs probabilities in [0, 1]. Received: scores in [{scores.min()}, {scores.max()}]"
        )
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=scores, minlength=bins)
    fake_sums = np.bincount(index, weights=labels.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.where(counts > 0, score_sums / counts, np.nan)
        fraction_fake = np.where(counts > 0, fake_sums / counts, np.nan)
    return {"edges": edges, "counts": counts, "mean_score": mean_score, "fraction_fake": fraction_fake}


def expected_calibration_error(labels, scores, bins: int = 10) -> float:
    """Count-weighted mean gap |fraction fake - mean P(fake)| over equal-width bins of P(fake)."""
    table = calibration_bins(labels, scores, bins)
    filled = table["counts"] > 0
    gaps = np.abs(table["fraction_fake"][filled] - table["mean_score"][filled])
    return float(np.sum(gaps * table["counts"][filled]) / table["counts"].sum())


def best_threshold(labels, scores, criterion: str = "accuracy") -> float:
    """The threshold on P(fake) that maximises accuracy (default) or Youden's J = TPR - FPR.

    Candidates lie halfway between neighbouring distinct scores (and just beyond both
    ends), so the choice does not hinge on one image's exact score, plus 0.5 itself.
    Among equally good candidates the one closest to 0.5 wins, so the usual cut stays
    when nothing beats it.
    """
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(f"criterion must be one of {THRESHOLD_CRITERIA}. Received: criterion={criterion!r}")
    labels, scores = _check(labels, scores)
    distinct = np.unique(scores)
    candidates = np.r_[0.5, distinct[0], (distinct[:-1] + distinct[1:]) / 2.0, np.nextafter(distinct[-1], np.inf)]
    positives = np.sort(scores[labels == 1])
    negatives = np.sort(scores[labels == 0])
    # Images with score >= candidate are called fake.
    true_positives = positives.size - np.searchsorted(positives, candidates, side="left")
    false_positives = negatives.size - np.searchsorted(negatives, candidates, side="left")
    if criterion == "accuracy":
        objective = (true_positives + negatives.size - false_positives) / labels.size
    else:
        if positives.size == 0 or negatives.size == 0:
            raise ValueError(
                f"Youden's J needs both real and fake images. Received: {negatives.size} real and {positives.size} fake"
            )
        objective = true_positives / positives.size - false_positives / negatives.size
    best = np.flatnonzero(np.isclose(objective, objective.max(), rtol=0.0, atol=1e-12))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])

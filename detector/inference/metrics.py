"""Binary classification metrics: scikit-learn's, held to this project's labels, plus what it lacks.

Labels are real = 0, fake = 1; scores are P(fake) (any monotone score works for the
ranking metrics). An image counts as predicted fake when its score >= the threshold.
scikit-learn computes the curves, areas and counts; this module adds input checks with
readable errors, nan (with a warning) where one class is missing, calibration error and
the choice of threshold on validation scores.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as sklearn_metrics

THRESHOLD_CRITERIA = ("accuracy", "youden")
CLASSES = (0, 1)  # real, fake


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
    if not np.isin(unique, CLASSES).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake). Received: labels with values {unique.tolist()}")
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN. Received: {int(np.isnan(scores).sum())} NaN scores")
    return labels.astype(np.int64), scores


def _predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    return (scores >= threshold).astype(np.int64)


def _one_class(labels: np.ndarray) -> bool:
    return labels.min() == labels.max()


def _warn_single_class(name: str, labels: np.ndarray, consequence: str = "returning nan") -> None:
    present = "fake" if labels.any() else "real"
    warnings.warn(
        f"{name} is undefined when every label is {present} (only one class present); {consequence}",
        RuntimeWarning,
        stacklevel=3,
    )


def confusion_matrix(labels, scores, threshold: float = 0.5) -> np.ndarray:
    """[[tn, fp], [fn, tp]]: rows are the true class (real, fake), columns the predicted one."""
    labels, scores = _check(labels, scores)
    return sklearn_metrics.confusion_matrix(labels, _predict(scores, threshold), labels=CLASSES)


def binary_metrics(labels, scores, threshold: float = 0.5) -> dict:
    """Accuracy, precision, recall and F1 for the fake class, per-class accuracy and the confusion matrix.

    Precision, recall and F1 are 0 where they would divide by zero; the accuracy of a
    class with no images is nan.
    """
    labels, scores = _check(labels, scores)
    predicted = _predict(scores, threshold)
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        labels, predicted, labels=CLASSES, average=None, zero_division=0.0
    )
    n_real, n_fake = (int(count) for count in support)
    return {
        "threshold": float(threshold),
        "accuracy": float(sklearn_metrics.accuracy_score(labels, predicted)),
        "precision": float(precision[1]),
        "recall": float(recall[1]),
        "f1": float(f1[1]),
        # Per-class accuracy is each class's recall: real images called real, fakes called fake.
        "accuracy_real": float(recall[0]) if n_real else math.nan,
        "accuracy_fake": float(recall[1]) if n_fake else math.nan,
        "confusion_matrix": sklearn_metrics.confusion_matrix(labels, predicted, labels=CLASSES).tolist(),
        "n": n_real + n_fake,
        "n_real": n_real,
        "n_fake": n_fake,
    }


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), thresholds decreasing from +inf.

    Every distinct score is kept (no dropped collinear points), so a plot shows each step.
    With one class only, the missing class's rate is nan, with a warning.
    """
    labels, scores = _check(labels, scores)
    with warnings.catch_warnings():
        if _one_class(labels):
            _warn_single_class("The ROC curve", labels, "its rate for the missing class is nan")
            warnings.simplefilter("ignore")  # scikit-learn's own warning says the same again
        return sklearn_metrics.roc_curve(labels, scores, drop_intermediate=False)


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (a tie counts half); nan with a warning for one class."""
    labels, scores = _check(labels, scores)
    if _one_class(labels):
        # scikit-learn raises here; a metrics table wants a nan in the cell instead.
        _warn_single_class("ROC-AUC", labels)
        return math.nan
    return float(sklearn_metrics.roc_auc_score(labels, scores))


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with thresholds increasing; the last point is precision 1, recall 0.

    With no fake image recall is undefined and set to 1, with a warning.
    """
    labels, scores = _check(labels, scores)
    with warnings.catch_warnings():
        if not labels.any():
            _warn_single_class("Recall", labels, "setting it to 1")
            warnings.simplefilter("ignore")
        return sklearn_metrics.precision_recall_curve(labels, scores)


def average_precision(labels, scores) -> float:
    """Step-wise area under the precision-recall curve, without interpolation.

    nan with a warning when there is no fake image (scikit-learn would return 0).
    """
    labels, scores = _check(labels, scores)
    if not labels.any():
        _warn_single_class("Average precision", labels)
        return math.nan
    return float(sklearn_metrics.average_precision_score(labels, scores))


def calibration_bins(labels, scores, bins: int = 10) -> dict:
    """Per equal-width bin of P(fake): image count, mean P(fake) and the fraction that is fake.

    Empty bins hold nan. Bins are closed on the right, and the first also on the left, as in
    scikit-learn's `calibration_curve`, which drops empty bins and the counts ECE weighs by.
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


# The false-positive rates whose validation thresholds every run records ("threshold_fpr_1" for 1%).
OPERATING_FPRS = (0.01, 0.05)


def fpr_key(fpr: float, prefix: str = "threshold_fpr") -> str:
    """ "threshold_fpr_1" for 0.01: the name a false-positive rate's figures go by."""
    return f"{prefix}_{fpr * 100:g}"


def fpr_threshold(real_scores, fpr: float) -> float:
    """The lowest threshold at which at most `fpr` of these real images score at or above it."""
    scores = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    if not scores.size:
        return math.nan
    allowed = int(math.floor(fpr * scores.size + 1e-9))  # false positives the rate allows
    if allowed >= scores.size:
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


def operating_thresholds(labels, scores) -> dict:
    """{"threshold_fpr_1": t, "threshold_fpr_5": t}: the thresholds for OPERATING_FPRS on these (validation) reals."""
    labels, scores = _check(labels, scores)
    if not np.any(labels == 0):
        return {}
    return {fpr_key(fpr): fpr_threshold(scores[labels == 0], fpr) for fpr in OPERATING_FPRS}


def equal_error_rate(labels, scores) -> float:
    """The rate at which false positives and misses are equal, on the ROC curve's linear segments (nan for one class)."""
    labels, scores = _check(labels, scores)
    if _one_class(labels):
        return math.nan
    fpr, tpr, _ = sklearn_metrics.roc_curve(labels, scores, drop_intermediate=False)
    gap = fpr - (1.0 - tpr)  # rises from -1 to +1 along the curve
    crossing = int(np.argmax(gap >= 0))
    if crossing == 0:
        return float(fpr[0])
    before, after = gap[crossing - 1], gap[crossing]
    share = -before / (after - before)
    return float(fpr[crossing - 1] + share * (fpr[crossing] - fpr[crossing - 1]))


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

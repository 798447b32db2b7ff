import math

import numpy as np
import pytest
from sklearn import calibration
from sklearn import metrics as sklearn_metrics

from detector.inference.metrics import (
    average_precision,
    best_threshold,
    binary_metrics,
    calibration_bins,
    expected_calibration_error,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)


def _random_cases(count=60, seed=0):
    """Random labels and scores; every other case rounds scores to one decimal so ties abound."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        n = int(rng.integers(2, 80))
        labels = rng.integers(0, 2, n)
        if labels.min() == labels.max():
            continue
        scores = rng.random(n)
        if len(cases) % 2:
            scores = np.round(scores, 1)
        cases.append((labels, scores))
    return cases


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_threshold_metrics_agree_with_sklearn(threshold):
    for labels, scores in _random_cases():
        predicted = (scores >= threshold).astype(int)
        ours = binary_metrics(labels, scores, threshold)
        assert ours["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, predicted))
        assert ours["precision"] == pytest.approx(sklearn_metrics.precision_score(labels, predicted, zero_division=0))
        assert ours["recall"] == pytest.approx(sklearn_metrics.recall_score(labels, predicted, zero_division=0))
        assert ours["f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predicted, zero_division=0))
        expected_matrix = sklearn_metrics.confusion_matrix(labels, predicted, labels=[0, 1])
        assert ours["confusion_matrix"] == expected_matrix.tolist()
        recall_per_class = sklearn_metrics.recall_score(labels, predicted, average=None, labels=[0, 1], zero_division=0)
        assert ours["accuracy_real"] == pytest.approx(recall_per_class[0])
        assert ours["accuracy_fake"] == pytest.approx(recall_per_class[1])


def test_ranking_metrics_on_a_hand_worked_example():
    # Cutting below 0.8, 0.4, 0.35 and 0.1 in turn calls fake, real, fake, real images fake.
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    fpr, tpr, thresholds = roc_curve(labels, scores)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    # 3 of the 4 (fake, real) pairs are ranked the right way round.
    assert roc_auc(labels, scores) == pytest.approx(0.75)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    np.testing.assert_allclose(precision, [1 / 2, 2 / 3, 1 / 2, 1.0, 1.0])
    np.testing.assert_allclose(recall, [1.0, 1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(thresholds, [0.1, 0.35, 0.4, 0.8])
    # Recall steps of 0.5 at precision 1 and at precision 2/3.
    assert average_precision(labels, scores) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_tied_scores_cross_the_threshold_together_and_count_half():
    labels = [0, 1, 1, 0]
    scores = [0.2, 0.6, 0.6, 0.6]
    fpr, tpr, _ = roc_curve(labels, scores)
    np.testing.assert_allclose(fpr, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 1.0, 1.0])
    # Both fakes beat the real 0.2 and tie the real 0.6: (2 + 2 * 0.5) / 4.
    assert roc_auc(labels, scores) == pytest.approx(0.75)


def test_all_tied_scores_give_chance_auc():
    labels = np.array([0, 1, 0, 1, 1])
    assert roc_auc(labels, np.full(5, 0.5)) == pytest.approx(0.5)
    assert average_precision(labels, np.full(5, 0.5)) == pytest.approx(0.6)


def test_confusion_matrix_rows_are_true_real_then_fake():
    labels = [0, 0, 0, 1, 1]
    scores = [0.1, 0.9, 0.2, 0.8, 0.3]
    metrics = binary_metrics(labels, scores, threshold=0.5)
    assert metrics["confusion_matrix"] == [[2, 1], [1, 1]]  # [[tn, fp], [fn, tp]]
    assert metrics["accuracy_real"] == pytest.approx(2 / 3)
    assert metrics["accuracy_fake"] == pytest.approx(1 / 2)
    # A score exactly at the threshold counts as fake.
    assert binary_metrics([1], [0.5], 0.5)["confusion_matrix"] == [[0, 0], [0, 1]]


def test_single_class_ranking_metrics_are_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="only one class"):
        assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    with pytest.warns(RuntimeWarning, match="only one class"):
        assert math.isnan(average_precision([0, 0], [0.2, 0.5]))
    with pytest.warns(RuntimeWarning, match="only one class") as caught:
        fpr, tpr, _ = roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    assert np.isnan(fpr).all()
    np.testing.assert_allclose(tpr, [0.0, 1 / 3, 2 / 3, 1.0])
    with pytest.warns(RuntimeWarning, match="only one class") as more:
        _, recall, _ = precision_recall_curve([0, 0], [0.2, 0.5])
    np.testing.assert_allclose(recall, [1.0, 1.0, 0.0])
    # One warning each, not scikit-learn's second one on top.
    assert len(caught) == 1 and len(more) == 1
    # Threshold metrics stay defined; the missing class's accuracy is nan.
    metrics = binary_metrics([1, 1], [0.2, 0.9])
    assert metrics["accuracy"] == 0.5 and math.isnan(metrics["accuracy_real"])
    # With nothing called fake and no fakes, precision, recall and F1 are 0, not an error.
    metrics = binary_metrics([0, 0], [0.1, 0.2])
    assert (metrics["precision"], metrics["recall"], metrics["f1"], metrics["accuracy"]) == (0.0, 0.0, 0.0, 1.0)
    assert math.isnan(metrics["accuracy_fake"]) and metrics["n_real"] == 2 and metrics["n_fake"] == 0


def test_bad_input_is_refused_with_the_received_values():
    with pytest.raises(ValueError, match="same length"):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match=r"0 \(real\) or 1 \(fake\)"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        average_precision([], [])
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([0, 1], [0.5, 1.5])


def test_expected_calibration_error_by_hand():
    # Bin (0.1, 0.2]: mean score 0.2, fraction fake 0.5 -> gap 0.3 over 2 images;
    # bin (0.8, 0.9]: mean 0.9, fraction fake 1 -> gap 0.1 over 2 images.
    labels = [0, 1, 1, 1]
    scores = [0.2, 0.2, 0.9, 0.9]
    assert expected_calibration_error(labels, scores, bins=10) == pytest.approx((0.3 * 2 + 0.1 * 2) / 4)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
    table = calibration_bins(labels, scores, bins=10)
    assert table["counts"].sum() == 4 and table["counts"][1] == 2 and table["counts"][8] == 2


def test_ece_matches_sklearn_calibration_curve():
    rng = np.random.default_rng(1)
    scores = rng.random(500)
    labels = (rng.random(500) < scores**2).astype(int)
    fraction, mean = calibration.calibration_curve(labels, scores, n_bins=10, strategy="uniform")
    table = calibration_bins(labels, scores, bins=10)
    filled = table["counts"] > 0
    np.testing.assert_allclose(table["fraction_fake"][filled], fraction)
    np.testing.assert_allclose(table["mean_score"][filled], mean)
    assert 0.0 < expected_calibration_error(labels, scores) < 0.5


def test_best_threshold_separates_separable_scores():
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.05, 0.1, 0.2, 0.3, 0.35, 0.4]
    threshold = best_threshold(labels, scores)
    assert 0.2 < threshold <= 0.3
    assert binary_metrics(labels, scores, threshold)["accuracy"] == 1.0
    youden = best_threshold(labels, scores, criterion="youden")
    assert binary_metrics(labels, scores, youden)["accuracy"] == 1.0


def test_best_threshold_maximises_accuracy_and_prefers_half_on_ties():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    threshold = best_threshold(labels, scores)
    best = binary_metrics(labels, scores, threshold)["accuracy"]
    assert all(binary_metrics(labels, scores, cut)["accuracy"] <= best + 1e-12 for cut in np.linspace(0, 1, 101))
    # Perfectly separated by any cut in (0.1, 0.7]: keep the usual 0.5.
    assert best_threshold([0, 1], [0.1, 0.7]) == 0.5
    with pytest.raises(ValueError, match="criterion"):
        best_threshold([0, 1], [0.2, 0.8], criterion="f1")


def test_fpr_thresholds_let_at_most_that_share_of_reals_through():
    from detector.inference.metrics import fpr_threshold, operating_thresholds

    reals = np.random.default_rng(0).random(1000)
    for fpr in (0.01, 0.05, 0.2):
        threshold = fpr_threshold(reals, fpr)
        assert np.mean(reals >= threshold) <= fpr
        assert np.mean(reals >= np.nextafter(threshold, -np.inf) - 1e-9) > fpr  # and it is the lowest such
    assert fpr_threshold(np.full(10, 0.3), 0.05) > 0.3  # ties: none of them through
    assert math.isnan(fpr_threshold([], 0.01))
    labels = np.r_[np.zeros(200), np.ones(50)].astype(int)
    found = operating_thresholds(labels, np.r_[reals[:200], np.ones(50)])
    assert set(found) == {"threshold_fpr_1", "threshold_fpr_5"}
    assert operating_thresholds(np.ones(5, int), np.ones(5)) == {}


def test_equal_error_rate_where_misses_and_false_positives_meet():
    from detector.inference.metrics import equal_error_rate

    labels = np.r_[np.zeros(4), np.ones(4)].astype(int)
    assert equal_error_rate(labels, [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]) == 0.0
    assert equal_error_rate(labels, [0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4]) == 1.0
    # One real above one fake: at the threshold between them, 1 of 4 misses and 1 of 4 false positives.
    assert equal_error_rate(labels, [0.1, 0.2, 0.3, 0.65, 0.6, 0.7, 0.8, 0.9]) == pytest.approx(0.25)
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(0, 1, 5000), rng.normal(2, 1, 5000)]
    # Two unit normals 2 apart: EER = Phi(-1) = 0.1587.
    assert equal_error_rate(np.r_[np.zeros(5000), np.ones(5000)].astype(int), scores) == pytest.approx(0.1587, abs=0.01)

"""The report's tests: their p-values against scipy's and textbook cases, and their error rates under the null."""

import numpy as np
import pytest

from gan_lab.metrics.significance import extremes_p, holm_adjusted, mcnemar_p, p_text, two_proportion_p, verdict


def test_two_proportion_p_is_the_pooled_z_test():
    # 60/100 against 40/100: pooled 0.5, z = 0.2 / sqrt(0.25 * 0.02) = 2.828.
    assert two_proportion_p(60, 100, 40, 100) == pytest.approx(0.004678, abs=1e-5)
    assert two_proportion_p(5, 10, 50, 100) == pytest.approx(1.0)
    assert two_proportion_p(0, 50, 0, 80) == 1.0 and np.isnan(two_proportion_p(0, 0, 3, 9))
    with pytest.raises(ValueError, match=r"hits must lie in \[0, n\]"):
        two_proportion_p(11, 10, 1, 10)


def test_holm_adjusts_step_down_and_keeps_order():
    np.testing.assert_allclose(holm_adjusted([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(holm_adjusted([0.9, 0.8]), [1.0, 1.0])


def test_best_against_worst_of_many_null_epochs_is_called_different_at_most_5_percent_of_the_time():
    rng = np.random.default_rng(0)
    epochs, n, trials = 12, 400, 300
    uncorrected, corrected = 0, 0
    for _ in range(trials):
        hits = list(rng.binomial(n, 0.5, epochs))
        high, low = int(np.argmax(hits)), int(np.argmin(hits))
        uncorrected += two_proportion_p(hits[high], n, hits[low], n) < 0.05
        corrected += extremes_p(hits, [n] * epochs) < 0.05
    assert uncorrected / trials > 0.3  # what an uncorrected best-vs-worst call does
    assert corrected / trials <= 0.05
    # And it still sees a real gap: one epoch at 0.35 among epochs at 0.5.
    assert extremes_p([200] * 11 + [140], [400] * 12) < 0.05


def test_mcnemar_counts_only_the_images_whose_verdict_changed():
    before = np.array([True] * 50 + [False] * 50)
    after = before.copy()
    after[50:62] = True  # 12 images newly caught, none lost
    assert mcnemar_p(before, after) == pytest.approx(2 * 0.5**12)
    assert mcnemar_p(before, before) == 1.0
    with pytest.raises(ValueError, match="same images"):
        mcnemar_p(before, after[:10])


def test_the_words_of_a_verdict():
    assert verdict(0.0004, "two-proportion test") == "a difference (p < 0.001, two-proportion test)"
    assert verdict(0.31, "x") == "no evidence of a difference at this sample size (p = 0.31, x)"
    assert p_text(float("nan")) == "p = n/a" and p_text(0.0312) == "p = 0.031"


def _epoch_row(epoch: int, hits: int, n: int) -> dict:
    from gan_lab.metrics.intervals import wilson_interval

    low, high = wilson_interval(hits, n)
    return {
        "kind": "epoch",
        "detector": "original",
        "epoch": epoch,
        "n_fake": n,
        "threshold": 0.5,
        "detection_rate": hits / n,
        "detection_rate_low": low,
        "detection_rate_high": high,
        "reals_called_fake": 0.1,
        "average_precision": 0.8,
    }


def test_the_reports_best_against_worst_sentence_is_corrected_and_worded_as_a_test():
    from gan_lab.stress.report import plain_reading

    rng = np.random.default_rng(1)
    called = 0
    for _ in range(100):
        rows = [_epoch_row(epoch, int(hits), 400) for epoch, hits in enumerate(rng.binomial(400, 0.5, 12), start=1)]
        text = " ".join(plain_reading(rows))
        assert "within the noise" not in text
        best_worst = next((s for s in plain_reading(rows) if s.startswith("Best epoch")), "")
        if best_worst:
            assert "Holm-corrected over the 66 pairs of epochs" in best_worst
            called += "a difference (p" in best_worst
    assert called <= 5
    rows = [_epoch_row(1, 200, 400), _epoch_row(2, 120, 400), _epoch_row(3, 210, 400)]
    (first_last,) = [s for s in plain_reading(rows) if s.startswith("From epoch 1 to epoch 3")]
    assert first_last.endswith("no evidence of a difference at this sample size (p = 0.48, two-proportion test).")
    assert "a difference (p < 0.001, Holm-corrected over the 3 pairs of epochs)" in " ".join(plain_reading(rows))


def test_operating_points_and_the_ap_chance_level_reach_the_report():
    from gan_lab.stress.epoch_metrics import operating_points
    from gan_lab.stress.report import plain_reading

    rng = np.random.default_rng(2)
    fakes, reals = rng.normal(1.5, 1, 400), rng.normal(0, 1, 100)
    thresholds = {"threshold_fpr_1": 2.33, "threshold_fpr_5": 1.64}  # the 1% and 5% points of the reals' N(0, 1)
    row = operating_points(fakes, reals, thresholds)
    assert row["ap_chance"] == 0.8
    assert row["tpr_at_fpr_5"] == np.mean(fakes >= 1.64) and row["fpr_at_fpr_5"] == np.mean(reals >= 1.64)
    assert row["tpr_at_fpr_1_low"] < row["tpr_at_fpr_1"] < row["tpr_at_fpr_1_high"]
    assert set(operating_points(fakes, reals, {})) == {"ap_chance", "eer"}
    text = " ".join(plain_reading([{**_epoch_row(1, 200, 400), **row}]))
    assert "(chance level 0.800, the fakes' share)" in text
    assert "At the thresholds that let 1% and 5% of validation reals through, it catches" in text


def test_hardening_is_judged_on_the_same_fakes_and_held_out_epochs_apart():
    from gan_lab.stress.report import _before_after, _held_out_sentences
    from gan_lab.stress.run import paired_hardening_columns

    # 100 fakes per epoch; hardening turns 8 misses into catches and no catch into a miss. Two intervals
    # of 40% and 48% of 100 overlap widely; the paired test sees 8 changes all one way.
    before = {epoch: np.arange(100) < 40 for epoch in (1, 2)}
    after = {epoch: np.arange(100) < 48 for epoch in (1, 2)}
    paired = paired_hardening_columns(before, after, trained_on=[2])
    assert paired[1] == {"paired_p": 2 * 0.5**8, "newly_caught": 8, "newly_missed": 0, "trained_on": False}
    rows = [
        {**_epoch_row(epoch, int(caught[epoch].sum()), 100), "detector": detector, **extra.get(epoch, {})}
        for detector, caught, extra in (("original", before, {}), ("hardened", after, paired))
        for epoch in (1, 2)
    ]
    table = "\\n".join(_before_after(rows, [2]))
    assert "| 1 | no | 40.0% [30.9, 49.8] | 48.0% [38.5, 57.7] | 8 / 0 | a difference (p = 0.008, McNemar) |" in table
    held_out, trained = _held_out_sentences(rows, [2])[::-1]
    assert held_out.startswith("On epochs it never trained on (1; 100 fakes scored before and after): 8 newly caught")
    assert trained.startswith("On the epochs it trained on (2;")
    assert "pass --harden-epochs" in " ".join(_held_out_sentences(rows, [1, 2]))

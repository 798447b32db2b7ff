import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from gan_lab.metrics.intervals import (
    bootstrap_intervals,
    largest_half_width,
    rate_with_interval,
    separated,
    weighted_average_precision,
    weighted_roc_auc,
    wilson_interval,
)


def test_wilson_interval_matches_known_values_and_stays_in_bounds():
    # Wilson (1927) / Newcombe (1998) example: 81 of 263 -> [0.2553, 0.3662].
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    assert wilson_interval(0, 400)[0] == 0.0 and wilson_interval(400, 400)[1] == 1.0
    assert 0 < wilson_interval(0, 400)[1] < 0.01
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_400_images_keep_a_rate_within_five_points():
    assert largest_half_width(400) < 0.05 < largest_half_width(256)
    row = rate_with_interval("caught", np.arange(400) < 200)
    assert row["caught"] == 0.5 and row["caught_high"] - row["caught_low"] < 0.1


def test_weighted_metrics_equal_scikit_learn_on_the_resampled_images():
    rng = np.random.default_rng(0)
    real, fake = np.round(rng.random(30), 1), np.round(rng.random(40) * 0.8 + 0.2, 1)  # with ties
    real_weights = rng.integers(0, 3, (4, 30)).astype(float)
    fake_weights = rng.integers(0, 3, (4, 40)).astype(float)
    ap = weighted_average_precision(real, fake, real_weights, fake_weights)
    auc = weighted_roc_auc(real, fake, real_weights, fake_weights)
    for row in range(4):
        # A resample with counts is the same images repeated: scikit-learn on the repeated arrays.
        labels = np.r_[np.zeros(int(real_weights[row].sum())), np.ones(int(fake_weights[row].sum()))]
        scores = np.r_[np.repeat(real, real_weights[row].astype(int)), np.repeat(fake, fake_weights[row].astype(int))]
        assert ap[row] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
        assert auc[row] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_bootstrap_intervals_cover_the_estimate_shrink_with_n_and_repeat_with_the_seed():
    rng = np.random.default_rng(1)

    def intervals(n, seed=0):
        real, fake = rng.normal(0, 1, n), rng.normal(1, 1, n)
        return (
            roc_auc_score(np.r_[np.zeros(n), np.ones(n)], np.r_[real, fake]),
            bootstrap_intervals(real, fake, 0.5, resamples=300, seed=seed),
            (real, fake),
        )

    auc, small, (real, fake) = intervals(40)
    assert small["roc_auc_low"] < auc < small["roc_auc_high"]
    assert bootstrap_intervals(real, fake, 0.5, resamples=300, seed=0) == small
    _, large, _ = intervals(1000)
    assert large["roc_auc_high"] - large["roc_auc_low"] < (small["roc_auc_high"] - small["roc_auc_low"]) / 2
    assert large["average_precision_low"] < large["average_precision_high"]


def test_separated_means_non_overlapping_intervals():
    low = {"rate": 0.1, "rate_low": 0.05, "rate_high": 0.15}
    high = {"rate": 0.3, "rate_low": 0.2, "rate_high": 0.4}
    near = {"rate": 0.16, "rate_low": 0.1, "rate_high": 0.22}
    assert separated(low, high, "rate") and separated(high, low, "rate")
    assert not separated(low, near, "rate") and not separated(low, {}, "rate")

"""Tests behind the stress report's comparisons: two rates, many epochs at once, one set of images scored twice.

Two intervals that overlap do not show that two figures are equal, and two picked from many
epochs differ by chance more often than 5% of the time; so the report tests each difference
and says what the test found, with its p-value:

- two rates from different images (epoch vs epoch, detector vs real faces): the two-sided
  two-proportion z-test on the pooled rate;
- the best against the worst of E epochs: the same test for every pair of epochs, Holm-corrected
  (Holm, 1979) over all E(E-1)/2 pairs, so the chance of calling any pair different under the
  null stays at most 5%;
- the same images scored before and after (a detector and its hardened copy): McNemar's exact
  test on the images whose verdict changed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

ALPHA = 0.05


def _check_count(hits: int, n: int) -> None:
    if not (0 <= hits <= n):
        raise ValueError(f"hits must lie in [0, n]. Received: hits={hits!r}, n={n!r}")


def two_proportion_p(hits_1: int, n_1: int, hits_2: int, n_2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of hits_1/n_1 against hits_2/n_2 (nan without images)."""
    from scipy.stats import norm

    _check_count(hits_1, n_1)
    _check_count(hits_2, n_2)
    if n_1 == 0 or n_2 == 0:
        return float("nan")
    pooled = (hits_1 + hits_2) / (n_1 + n_2)
    spread = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_1 + 1.0 / n_2))
    if spread == 0.0:  # both rates 0, or both 1
        return 1.0
    z = (hits_1 / n_1 - hits_2 / n_2) / spread
    return float(2.0 * norm.sf(abs(z)))


def holm_adjusted(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given (each compared with ALPHA controls the family)."""
    p_values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p_values)
    steps = (len(p_values) - np.arange(len(p_values))) * p_values[order]
    adjusted = np.empty_like(p_values)
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return adjusted


def extremes_p(hits: list[int], ns: list[int]) -> float:
    """Holm-adjusted p-value of the highest rate against the lowest, among every pair of the rates given."""
    if len(hits) < 2:
        return float("nan")
    rates = [hit / n if n else float("nan") for hit, n in zip(hits, ns)]
    high, low = int(np.nanargmax(rates)), int(np.nanargmin(rates))
    pairs = list(itertools.combinations(range(len(hits)), 2))
    p_values = [two_proportion_p(hits[a], ns[a], hits[b], ns[b]) for a, b in pairs]
    adjusted = holm_adjusted(np.nan_to_num(p_values, nan=1.0))
    return float(adjusted[pairs.index((min(high, low), max(high, low)))])


def exact_sign_p(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: verdicts gained and lost between two scorings."""
    from scipy.stats import binomtest

    if gained < 0 or lost < 0:
        raise ValueError(f"gained and lost are counts. Received: gained={gained!r}, lost={lost!r}")
    if gained + lost == 0:
        return 1.0
    return float(binomtest(gained, gained + lost, 0.5).pvalue)


def mcnemar_p(before, after) -> float:
    """Two-sided exact McNemar p-value for paired verdicts (booleans, one per image, same images in both)."""
    before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    if before.shape != after.shape:
        raise ValueError(f"before and after must score the same images. Received: {before.shape} and {after.shape}")
    return exact_sign_p(int(np.sum(~before & after)), int(np.sum(before & ~after)))


def p_text(p: float) -> str:
    """ "p = 0.031", "p < 0.001"; "p = n/a" without a test."""
    if not math.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def verdict(p: float, test: str) -> str:
    """The report's words for a test's outcome: a difference, or no evidence of one at this sample size."""
    if math.isfinite(p) and p < ALPHA:
        return f"a difference ({p_text(p)}, {test})"
    return f"no evidence of a difference at this sample size ({p_text(p)}, {test})"

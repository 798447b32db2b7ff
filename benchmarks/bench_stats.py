"""How often each verdict of the stress report is wrong: its false-positive rate under the null, and its power.

    .venv/bin/python benchmarks/bench_stats.py [--trials 2000] [--n 400] [--epochs 12]

Each verdict is simulated many times on data where nothing differs (the null: the share of
"a difference" calls is its false-positive rate, target at most 5%) and on data with one effect
(its power: the share of calls when there is something to find). The verdicts:

- epoch vs epoch: the two-proportion test on two rates of n fakes each (effect: 50% -> 60%);
- best vs worst of E epochs, Holm-corrected over every pair (effect: one epoch at 38% among 50%),
  beside the uncorrected test of the same two epochs and the older "intervals do not overlap" rule;
- hardening, paired: McNemar's test on the same n fakes before and after (effect: 4% of verdicts
  flip one way); beside the unpaired rule of two intervals;
- KID: "more than twice its spread" between two samples of one distribution (effect: a mean
  shift of 0.3 standard deviations in 64-d features, 256 vectors per set);
- memorisation: the permutation test of fakes nearer a training image than a held-out one, on
  SynthFaces at 32 px (100 fakes, 100 + 100 reals; effect: 10% of the fakes are training images
  with faint noise), under a healthy and a collapsed null (every fake one face), beside a binomial
  test that counts fakes as independent coins.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _rates(rng, trials: int, n: int, p_1: float, p_2: float):
    return rng.binomial(n, p_1, trials), rng.binomial(n, p_2, trials)


def epoch_pair(rng, trials: int, n: int, effect: float) -> float:
    from gan_lab.metrics.significance import two_proportion_p

    first, second = _rates(rng, trials, n, 0.5, 0.5 + effect)
    return float(np.mean([two_proportion_p(a, n, b, n) < 0.05 for a, b in zip(first, second)]))


def best_vs_worst(rng, trials: int, n: int, epochs: int, dip: float) -> dict[str, float]:
    from gan_lab.metrics.intervals import wilson_interval
    from gan_lab.metrics.significance import extremes_p, two_proportion_p

    calls = {"Holm-corrected": 0, "uncorrected": 0, "intervals apart": 0}
    for _ in range(trials):
        hits = list(rng.binomial(n, [0.5] * (epochs - 1) + [0.5 - dip]))
        high, low = int(np.argmax(hits)), int(np.argmin(hits))
        calls["Holm-corrected"] += extremes_p(hits, [n] * epochs) < 0.05
        calls["uncorrected"] += two_proportion_p(hits[high], n, hits[low], n) < 0.05
        calls["intervals apart"] += wilson_interval(hits[low], n)[1] < wilson_interval(hits[high], n)[0]
    return {name: count / trials for name, count in calls.items()}


def hardening(rng, trials: int, n: int, flip: float) -> dict[str, float]:
    from gan_lab.metrics.intervals import wilson_interval
    from gan_lab.metrics.significance import mcnemar_p

    calls = {"McNemar, paired": 0, "intervals apart": 0}
    for _ in range(trials):
        before = rng.random(n) < 0.5
        # Under the null verdicts flip both ways alike (5% each); with the effect, 4% more flip to caught.
        flips = rng.random(n)
        after = before.copy()
        after[flips < 0.05] = ~after[flips < 0.05]
        after[(flips >= 0.05) & (flips < 0.05 + flip)] = True
        calls["McNemar, paired"] += mcnemar_p(before, after) < 0.05
        b, a = wilson_interval(int(before.sum()), n), wilson_interval(int(after.sum()), n)
        calls["intervals apart"] += b[1] < a[0] or a[1] < b[0]
    return {name: count / trials for name, count in calls.items()}


def kid_spread(rng, trials: int, shift: float) -> float:
    from gan_lab.metrics.kid import kernel_inception_distance

    calls = 0
    for trial in range(trials):
        real, fake = rng.normal(size=(256, 64)), rng.normal(size=(256, 64)) + shift
        kid, spread = kernel_inception_distance(real, fake, num_subsets=50, seed=trial)
        calls += kid > 2 * spread
    return calls / trials


def memorisation(rng, trials: int, copies: float, collapsed: bool = False) -> dict[str, float]:
    from scipy.stats import binomtest

    from detector.data.synthfaces import render_faces
    from gan_lab.metrics.memorisation import memorisation_figures, nearest_reals

    calls = {"permutation test": 0, "binomial over fakes": 0}
    for _ in range(trials):
        training, held_out, fakes = (
            render_faces(100, 32, seed=int(seed))[0] / 255.0 for seed in rng.integers(1 << 30, size=3)
        )
        if collapsed:
            fakes = np.repeat(fakes[:1], len(fakes), axis=0)
        copied = int(round(copies * len(fakes)))
        fakes[:copied] = training[:copied]
        fakes = np.clip(fakes + rng.normal(0, 0.02, fakes.shape), 0, 1)
        figures = memorisation_figures(
            nearest_reals(fakes, training, held_out), permutations=199, seed=int(rng.integers(1 << 30))
        )
        nearer = int(round(figures["nearer_training"] * len(fakes)))
        calls["permutation test"] += figures["memorisation_p"] < 0.05
        calls["binomial over fakes"] += binomtest(nearer, len(fakes), 0.5, alternative="greater").pvalue < 0.05
    return {name: count / trials for name, count in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="simulations per verdict and arm")
    parser.add_argument("--n", type=int, default=400, help="fakes per epoch (the stress test's default)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs the best and worst are picked from")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    kid_trials = max(20, args.trials // 20)  # KID is the slow one: 50 subsets per trial

    rows = [
        (
            "epoch vs epoch, two-proportion test",
            epoch_pair(rng, args.trials, args.n, 0.0),
            epoch_pair(rng, args.trials, args.n, 0.1),
            "50% -> 60%",
        )
    ]
    null, power = (
        best_vs_worst(rng, args.trials, args.n, args.epochs, 0.0),
        best_vs_worst(rng, args.trials, args.n, args.epochs, 0.12),
    )
    rows += [
        (f"best vs worst of {args.epochs}, {name}", null[name], power[name], "one epoch 50% -> 38%") for name in null
    ]
    null, power = hardening(rng, args.trials, args.n, 0.0), hardening(rng, args.trials, args.n, 0.04)
    rows += [(f"hardening, {name}", null[name], power[name], "4% of verdicts flip to caught") for name in null]
    rows.append(
        (
            "KID above twice its spread",
            kid_spread(rng, kid_trials, 0.0),
            kid_spread(rng, kid_trials, 0.3),
            "mean shift 0.3 sd, 64-d",
        )
    )
    null, power = memorisation(rng, kid_trials, 0.0), memorisation(rng, kid_trials, 0.1)
    rows += [(f"memorisation, {name}", null[name], power[name], "10% of fakes are training images") for name in null]
    collapsed = memorisation(rng, kid_trials, 0.0, collapsed=True)
    rows += [(f"memorisation, {name}, collapsed GAN", collapsed[name], None, "(null only)") for name in collapsed]

    print(
        f"\nVerdicts under the null and with one effect: {args.trials} trials each ({kid_trials} for KID and memorisation), "
        f"{args.n} fakes per set, seed {args.seed}"
    )
    width = max(len(row[0]) for row in rows)
    print(f"{'verdict':<{width}}  {'false positives':>15}  {'power':>6}  effect")
    for name, false_positive, power_, effect in rows:
        power_text = "-" if power_ is None else f"{power_:.1%}"
        print(f"{name:<{width}}  {false_positive:>15.1%}  {power_text:>6}  {effect}")


if __name__ == "__main__":
    main()

"""A stress run's outputs: results table, matrix, plots, gallery of fooling fakes, and report.md.

Each figure carries its 95% interval; a sentence that compares two rates tests the difference
(`gan_lab.metrics.significance`) and words it "a difference (p = ..., test)" or "no evidence of
a difference at this sample size (p = ..., test)", the best-vs-worst epoch Holm-corrected over
every pair of epochs.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from detector.base.runs import atomic_write_bytes, atomic_write_text, read_json, write_json
from detector.training.lifecycle import is_number
from gan_lab.metrics.intervals import BOOTSTRAP_RESAMPLES, largest_half_width, separated
from gan_lab.metrics.kid import KID_MAX_SUBSET_SIZE, KID_SUBSETS
from gan_lab.metrics.significance import ALPHA, exact_sign_p, extremes_p, p_text, two_proportion_p, verdict
from gan_lab.stress.epoch_metrics import COLUMNS
from gan_lab.stress.matrix import matrix_table, plot_matrix, write_matrix_csv
from gan_lab.stress.plots import (
    DETECTOR_STYLE,
    epoch_rows,
    plot_epochs,
    plot_robustness,
    write_closest_pairs,
    write_gallery,
)


def _percent(value) -> str:
    return f"{value:.1%}" if is_number(value) else "-"


def _figure(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if is_number(value) else "-"


def _significant(value, digits: int = 3) -> str:
    """KID and FID span orders of magnitude across epochs: significant figures, not decimals."""
    return f"{value:.{digits}g}" if is_number(value) else "-"


def _with_interval(row: dict, key: str, percent: bool = True) -> str:
    """ "93.8% [91.0, 95.8]" or "0.912 [0.88, 0.94]"; "-" without a value."""
    value = row.get(key)
    if not is_number(value):
        return "-"
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if not (is_number(low) and is_number(high)):
        return _percent(value) if percent else _figure(value)
    if percent:
        return f"{value:.1%} [{low * 100:.1f}, {high * 100:.1f}]"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _count(row: dict, key: str, n_key: str) -> tuple[int, int]:
    """(hits, n) of a rate column: the rate times its image count, rounded."""
    n = int(row.get(n_key) or 0)
    return int(round(row[key] * n)), n


def _rate_test(first: dict, second: dict, key: str, n_first: str = "n_fake", n_second: str = "n_fake") -> str:
    """The two-proportion test's words for one rate in two rows."""
    return verdict(
        two_proportion_p(*_count(first, key, n_first), *_count(second, key, n_second)), "two-proportion test"
    )


def _compare(first: dict, second: dict, key: str, name: str) -> str:
    """A sentence comparing one rate at two epochs, with the two-proportion test's verdict on the change."""
    a, b = first[key], second[key]
    if not (is_number(a) and is_number(b)):
        return ""
    if a == b:
        return f"From epoch {first['epoch']} to epoch {second['epoch']}, {name} stays at {_with_interval(second, key)}."
    return (
        f"From epoch {first['epoch']} to epoch {second['epoch']}, {name} {'rises' if b > a else 'falls'} from "
        f"{_with_interval(first, key)} to {_with_interval(second, key)}: {_rate_test(first, second, key)}."
    )


def _best_and_worst(epochs: list[dict]) -> str:
    """The best and the worst epoch for the detector, their difference Holm-corrected over every pair of epochs."""
    best = max(epochs, key=lambda row: row["detection_rate"])
    worst = min(epochs, key=lambda row: row["detection_rate"])
    if best is worst or {best["epoch"], worst["epoch"]} == {epochs[0]["epoch"], epochs[-1]["epoch"]}:
        return ""
    counts = [_count(row, "detection_rate", "n_fake") for row in epochs]
    p = extremes_p([hits for hits, _ in counts], [n for _, n in counts])
    pairs = len(epochs) * (len(epochs) - 1) // 2
    return (
        f"Best epoch for the detector: {best['epoch']} ({_with_interval(best, 'detection_rate')} caught); "
        f"worst: {worst['epoch']} ({_with_interval(worst, 'detection_rate')}): "
        f"{verdict(p, f'Holm-corrected over the {pairs} pairs of epochs')}."
    )


def _quality_sentences(epochs: list[dict], reals: dict | None) -> list[str]:
    first, last = epochs[0], epochs[-1]
    sentences = []
    if reals is not None and is_number(reals.get("faces_found")):
        faces = (
            f"MTCNN finds a face in {_with_interval(reals, 'faces_found')} of real test images, and in "
            f"{_with_interval(last, 'faces_found')} of epoch-{last['epoch']} fakes"
        )
        faces += f": {_rate_test(reals, last, 'faces_found', 'n_faces', 'n_faces')}."
        sentences.append(faces)
    if is_number(first.get("fid_inception")) and len(epochs) > 1:
        spread = 2 * math.hypot(first["kid_inception_std"], last["kid_inception_std"])
        real = abs(last["kid_inception"] - first["kid_inception"]) > spread
        sentences.append(
            f"Measured apart from the detector, in InceptionV3 features: FID {first['fid_inception']:.3g} "
            f"(epoch {first['epoch']}) -> {last['fid_inception']:.3g} (epoch {last['epoch']}); KID "
            f"{first['kid_inception']:.3g} -> {last['kid_inception']:.3g} "
            + (
                "(more than twice its spread: the fakes changed)."
                if real
                else "(within twice its spread: no evidence of a change at this sample size)."
            )
        )
    if is_number(last.get("knn_precision")):
        sentences.append(
            f"In the same features, epoch-{last['epoch']} fakes have k-NN precision {last['knn_precision']:.3f} (the "
            f"share that falls among real images) and recall {last['knn_recall']:.3f} (the share of real images "
            f"their variety reaches); density {last['density']:.3f} (about 1 when they match the reals) and coverage "
            f"{last['coverage']:.3f}."
        )
    first_kid, last_kid = first.get("kid_detector"), last.get("kid_detector")
    if is_number(first_kid) and is_number(last_kid) and len(epochs) > 1:
        trend = "falls" if last_kid < first_kid else "rises"
        sentences.append(
            f"As the detector sees them (KID in its own features), the fakes' distance to real images {trend} from "
            f"{first_kid:.3g} to {last_kid:.3g}: that mixes the fakes getting better with the detector going blind."
        )
    return sentences


def _operating_sentence(row: dict) -> str:
    """Fakes caught at the validation thresholds for 1% and 5% false positives, and the EER."""
    points = [
        f"{_with_interval(row, f'tpr_at_fpr_{rate}')} at {rate}% (where {_percent(row[f'fpr_at_fpr_{rate}'])} of "
        "these real images are called fake)"
        for rate in (1, 5)
        if is_number(row.get(f"tpr_at_fpr_{rate}"))
    ]
    eer = f"equal error rate {row['eer']:.3f}" if is_number(row.get("eer")) else ""
    if not points:
        return f"Its {eer} on these images." if eer else ""
    return (
        f"At the thresholds that let 1% and 5% of validation reals through, it catches {' and '.join(points)} "
        f"of epoch-{row['epoch']} fakes" + (f"; {eer}." if eer else ".")
    )


def memorised_epochs(epochs: list[dict]) -> list[dict]:
    """The epochs whose fakes sit nearer the GAN's training images than held-out ones (Holm-corrected over epochs)."""
    return [row for row in epochs if is_number(row.get("memorisation_p_holm")) and row["memorisation_p_holm"] < ALPHA]


def _memorisation_sentence(epochs: list[dict]) -> str:
    tested = [row for row in epochs if is_number(row.get("memorisation_p_holm"))]
    if not tested:
        return ""
    flagged = memorised_epochs(tested)
    correction = f"permutation test over which reals count as training images, Holm-corrected over {len(tested)} epochs"
    if flagged:
        listed = "; ".join(
            f"epoch {row['epoch']}: {_with_interval(row, 'nearer_training')} nearer, "
            f"{row.get('near_copies', '-')} near copies ({p_text(row['memorisation_p_holm'])})"
            for row in flagged
        )
        return (
            f"**Memorisation: fakes sit nearer the GAN's training images than real images it never saw ({listed}; "
            f"{correction}): the GAN may be copying its training set. See Memorisation.**"
        )
    top = min(tested, key=lambda row: (row["memorisation_p_holm"], -row["epoch"]))
    return (
        "Memorisation check: no epoch's fakes sit nearer the GAN's training images than held-out real images "
        f"(nearest: epoch {top['epoch']}, {_with_interval(top, 'nearer_training')} nearer, 50% expected; "
        f"{p_text(top['memorisation_p_holm'])}, {correction})."
    )


def _seed_spread(row: dict, runs: list[dict], key: str = "detection_rate") -> str:
    """ "61.2% ± 4.1 (55.0-66.3)": the mean and standard deviation over the runs, and their range."""
    values = [run[key] for run in runs]
    return f"{row[key + '_seed_mean']:.1%} ± {row[key + '_seed_sd'] * 100:.1f} ({min(values):.1%}-{max(values):.1%})"


def _runs_of_epoch(rows: list[dict], row: dict) -> list[dict]:
    return [row, *(other for other in rows if other["kind"] == "seed" and other["epoch"] == row["epoch"])]


def _seed_sentence(rows: list[dict], last: dict) -> str:
    if not is_number(last.get("detection_rate_seed_sd")):
        return ""
    runs = _runs_of_epoch(rows, last)
    half_width = (last["detection_rate_high"] - last["detection_rate_low"]) / 2
    reading = (
        "wider than one run's interval says: read this verdict as the mean and spread over seeds"
        if 2 * last["detection_rate_seed_sd"] > half_width
        else "within one run's interval"
    )
    return (
        f"Across {len(runs)} detectors trained with seeds {', '.join(str(run.get('seed', '-')) for run in runs)}: "
        f"{_seed_spread(last, runs)} of epoch-{last['epoch']} fakes caught (mean ± standard deviation, range); "
        f"the training seed moves it by 2 sd = {2 * last['detection_rate_seed_sd']:.1%}, {reading} "
        f"(±{half_width:.1%})."
    )


def plain_reading(rows: list[dict], detector: str = "original") -> list[str]:
    """Sentences a reader can take away, each comparison of two rates with its test and p-value."""
    epochs = epoch_rows(rows, detector)
    if not epochs:
        return []
    last = epochs[-1]
    sentences = [
        f"At its validation-chosen threshold ({last['threshold']:.3f}) the detector catches "
        f"{_with_interval(last, 'detection_rate')} of epoch-{last['epoch']} fakes and calls "
        f"{_with_interval(last, 'reals_called_fake')} of real test images fake; AP "
        f"{_with_interval(last, 'average_precision', percent=False)} against real test images"
        + (f" (chance level {last['ap_chance']:.3f}, the fakes' share)." if is_number(last.get("ap_chance")) else "."),
        _operating_sentence(last),
        _seed_sentence(rows, last) if detector == "original" else "",
    ]
    if len(epochs) > 1:
        sentences.append(_compare(epochs[0], last, "detection_rate", "the share of fakes caught"))
        sentences.append(_best_and_worst(epochs))
    reals = next((row for row in rows if row["kind"] == "real" and row["detector"] == detector), None)
    sentences += _quality_sentences(epochs, reals) if detector == "original" else []
    sentences.append(_memorisation_sentence(epochs) if detector == "original" else "")
    if reals is not None and is_number(reals.get("format_check_p")):
        sentences.append(
            "Format check: real test images stored again as the fakes are, are called fake "
            f"{_with_interval(reals, 'reencoded_reals_called_fake')} of the time, against "
            f"{_percent(reals['reals_called_fake'])} as read: {verdict(reals['format_check_p'], 'two-proportion test')}"
            " (a detector that keyed on the storage format would call more of them fake)."
        )
    if is_number(last.get("disc_detection_rate")):
        sentences.append(
            f"The epoch-{last['epoch']} discriminator, used as a detector, calls "
            f"{_with_interval(last, 'disc_detection_rate')} of the same fakes fake "
            f"(AP {_with_interval(last, 'disc_average_precision', percent=False)})."
        )
    sentences += _robustness_sentences(rows, detector)
    return [sentence for sentence in sentences if sentence]


def _robustness_sentences(rows: list[dict], detector: str) -> list[str]:
    sweeps = [row for row in rows if row["kind"] == "sweep" and row["detector"] == detector]
    if not sweeps:
        return []
    last_epoch = max(row["epoch"] for row in sweeps)
    own = [row for row in sweeps if row["epoch"] == last_epoch]
    clean = next((row for row in own if (row["perturbation"], row["level"]) in (("blur", 0), ("noise", 0))), own[0])
    worst = min(own, key=lambda row: (row["average_precision"], row["detection_rate"], -row["reals_called_fake"]))
    text = (
        f"The perturbation that hurts most at epoch {last_epoch}: {worst['perturbation']} at {worst['level']:g} "
        f"(AP {_figure(clean['average_precision'])} -> {_figure(worst['average_precision'])}, fakes caught "
        f"{_percent(clean['detection_rate'])} -> {_percent(worst['detection_rate'])}, reals called fake "
        f"{_percent(clean['reals_called_fake'])} -> {_percent(worst['reals_called_fake'])})"
    )
    if is_number(worst.get("sweep_fakes_p")):
        return [
            f"{text}: fakes caught, {verdict(worst['sweep_fakes_p'], 'McNemar on the same fakes')}; reals called "
            f"fake, {verdict(worst['sweep_reals_p'], 'McNemar on the same reals')}."
        ]
    # Runs made before the paired columns: the older interval rule.
    changed = [
        key for key in ("average_precision", "detection_rate", "reals_called_fake") if separated(clean, worst, key)
    ]
    if changed:
        return [text + f"; beyond the intervals for {', '.join(name.replace('_', ' ') for name in changed)}."]
    return [text + "; every change is within the intervals."]


def interval_note(rows: list[dict], n: int, resamples: int = BOOTSTRAP_RESAMPLES) -> str:
    """The achieved interval widths, in one paragraph."""
    epochs = epoch_rows(rows)

    def widest(key: str) -> float:
        widths = [
            (row[f"{key}_high"] - row[f"{key}_low"]) / 2
            for row in epochs
            if is_number(row.get(f"{key}_low")) and is_number(row.get(f"{key}_high"))
        ]
        return max(widths) if widths else float("nan")

    n_fake = epochs[0]["n_fake"] if epochs else n
    n_real = epochs[0]["n_real"] if epochs else 0
    return (
        f"Intervals are 95%: Wilson score intervals for rates, and for AP, ROC-AUC and balanced accuracy the 2.5th and "
        f"97.5th percentiles of {resamples} bootstrap resamples over images (reals and fakes resampled apart, seeded). "
        f"With {n_fake} fakes per epoch a rate's interval is at most ±{largest_half_width(n_fake) * 100:.1f} points "
        f"(at 50%), and with {n_real} real images ±{largest_half_width(n_real) * 100:.1f} points; achieved here: "
        f"fakes caught ±{widest('detection_rate') * 100:.1f} points at most, reals called fake "
        f"±{widest('reals_called_fake') * 100:.1f}, AP ±{widest('average_precision'):.3f}, "
        f"ROC-AUC ±{widest('roc_auc'):.3f} (half the widest interval over the epochs)."
    )


def _epoch_table(rows: list[dict], detector: str) -> list[str]:
    lines = [
        "| GAN epoch | fakes caught | reals called fake | AP | ROC-AUC | oracle acc. | disc. caught | disc. AP "
        "| FID (Inception) | KID (Inception) | faces found | KID (as the detector sees them) | diversity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    reals = next((row for row in rows if row["kind"] == "real" and row["detector"] == detector), None)
    if reals is not None:
        lines.append(
            "| real test images | | | | | | | | | | "
            f"{_with_interval(reals, 'faces_found')} | | {_figure(reals.get('diversity'))} |"
        )
    for row in epoch_rows(rows, detector):
        lines.append(
            f"| {row['epoch']} | {_with_interval(row, 'detection_rate')} | {_with_interval(row, 'reals_called_fake')} "
            f"| {_with_interval(row, 'average_precision', False)} | {_with_interval(row, 'roc_auc', False)} "
            f"| {_percent(row['oracle_accuracy'])} | {_percent(row.get('disc_detection_rate'))} "
            f"| {_figure(row.get('disc_average_precision'))} | {_significant(row.get('fid_inception'))} "
            f"| {_significant(row.get('kid_inception'))} | {_with_interval(row, 'faces_found')} "
            f"| {_significant(row.get('kid_detector'))} | {_figure(row.get('diversity'))} |"
        )
    return lines


def _sweep_table(rows: list[dict], epoch: int) -> list[str]:
    sweeps = [row for row in rows if row["kind"] == "sweep" and row["epoch"] == epoch]
    detectors = [name for name in DETECTOR_STYLE if any(row["detector"] == name for row in sweeps)]
    header = "| perturbation | level | " + " | ".join(
        f"{name}: fakes caught | {name}: reals called fake | {name}: AP" for name in detectors
    )
    lines = [header + " |", "| --- | --- |" + " --- | --- | --- |" * len(detectors)]
    points = [(row["perturbation"], row["level"]) for row in sweeps if row["detector"] == detectors[0]]
    for name, level in points:
        cells = []
        for detector in detectors:
            match = next(
                (
                    row
                    for row in sweeps
                    if row["detector"] == detector and row["perturbation"] == name and row["level"] == level
                ),
                None,
            )
            if match is None:
                cells.append("- | - | -")
                continue
            cells.append(
                f"{_with_interval(match, 'detection_rate')} | {_with_interval(match, 'reals_called_fake')} "
                f"| {_figure(match['average_precision'])}"
            )
        lines.append(f"| {name} | {level:g} | " + " | ".join(cells) + " |")
    return lines


def _before_after(rows: list[dict], hardened_epochs) -> list[str]:
    """The same fakes before and after hardening, epoch by epoch, McNemar's test on the verdicts that changed."""
    lines = [
        "| GAN epoch | trained on | caught before | caught after | newly caught / missed | paired test | AP before "
        "| AP after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    before = {row["epoch"]: row for row in epoch_rows(rows, "original")}
    after = {row["epoch"]: row for row in epoch_rows(rows, "hardened")}
    for epoch in sorted(set(before) & set(after)):
        b, a = before[epoch], after[epoch]
        test = verdict(a["paired_p"], "McNemar") if is_number(a.get("paired_p")) else "-"
        changed = f"{a['newly_caught']} / {a['newly_missed']}" if is_number(a.get("newly_caught")) else "-"
        lines.append(
            f"| {epoch} | {'yes' if epoch in hardened_epochs else 'no'} | {_with_interval(b, 'detection_rate')} "
            f"| {_with_interval(a, 'detection_rate')} | {changed} | {test} | {_figure(b['average_precision'])} "
            f"| {_figure(a['average_precision'])} |"
        )
    return lines


def _held_out_sentences(rows: list[dict], hardened_epochs) -> list[str]:
    """Hardening's gain on the epochs it trained on and, apart, on those it never saw, pooled over the epochs."""
    before = {row["epoch"]: row for row in epoch_rows(rows, "original")}
    after = [
        row for row in epoch_rows(rows, "hardened") if row["epoch"] in before and is_number(row.get("newly_caught"))
    ]
    sentences = []
    for trained, name in ((True, "the epochs it trained on"), (False, "epochs it never trained on")):
        chosen = [row for row in after if (row["epoch"] in hardened_epochs) == trained]
        if not chosen:
            if not trained:
                sentences.append(
                    "Every scored epoch was one hardening trained on (with fakes from another latent stream), so "
                    "nothing here shows it generalises to new epochs: pass --harden-epochs to hold some out."
                )
            continue
        gained = sum(row["newly_caught"] for row in chosen)
        lost = sum(row["newly_missed"] for row in chosen)
        n = sum(int(row["n_fake"]) for row in chosen)
        sentences.append(
            f"On {name} ({', '.join(str(row['epoch']) for row in chosen)}; {n} fakes scored before and after): "
            f"{gained} newly caught, {lost} newly missed: {verdict(exact_sign_p(gained, lost), 'McNemar, paired')}."
        )
    return sentences


# --------------------------------------------------------------------------- results


def result_rows(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of a stress run's results.json."""
    return read_json(Path(run_dir) / "results.json")


def write_results(run_dir: Path, rows: list[dict]) -> None:
    """results.json (a list of rows) and results.csv (COLUMNS, blank where a figure does not apply)."""
    full = [{column: row.get(column) for column in COLUMNS} for row in rows]
    write_json(run_dir / "results.json", full)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in full:
        writer.writerow(
            [
                "" if row[column] is None else (f"{row[column]:.6g}" if isinstance(row[column], float) else row[column])
                for column in COLUMNS
            ]
        )
    atomic_write_text(run_dir / "results.csv", buffer.getvalue())


def _copy_sample_grids(run_dir: Path, gan_dir: Path, epochs) -> list[Path]:
    samples = []
    for epoch in epochs:
        source = gan_dir / "samples" / f"epoch-{epoch:04d}.png"
        if source.is_file():
            samples.append(atomic_write_bytes(run_dir / "samples" / source.name, source.read_bytes()))
    return samples


def _leakage_section(context: dict) -> list[str]:
    from gan_lab.stress.leakage import LeakageCheck, describe

    check = LeakageCheck(**context["leakage"])
    return ["", "## Leakage", "", describe(check)]


def _summary_section(run_dir: Path, config, rows: list[dict], context: dict, epochs_plot: Path) -> list[str]:
    warning = []
    leakage = context["leakage"]
    if leakage["overlapping"] and leakage["allowed"]:
        warning = [
            "",
            f"> **WARNING: {leakage['overlapping']} real test images compared with the fakes were in the GAN's training "
            "set (--allow-overlap). See Leakage below.**",
        ]
    return [
        f"# Stress test: `{Path(config.detector).name}` against `{Path(config.gan).name}`",
        *warning,
        "",
        f"Detector `{config.detector}` (threshold {context['detector_threshold']:.3f}, chosen on its validation split); "
        f"GAN `{config.gan}`, epochs {', '.join(map(str, config.epochs))}. Per epoch, {config.n} fresh fakes from latents "
        f"{context['latent_streams']['scoring']} with seed {config.seed} (never the training grid), against "
        f"{context['n_real_test']} real images drawn at random (seed {config.seed}) from the detector's test split "
        f"({context['data']}).",
        "",
        "## Reading",
        "",
        *[f"- {sentence}" for sentence in plain_reading(rows)],
        "",
        interval_note(rows, config.n, config.bootstrap),
        "",
        "## Per GAN epoch",
        "",
        *_epoch_table(rows, "original"),
        "",
        *_measures_note(config, context),
        "",
        f"![detection against GAN epoch]({_relative(epochs_plot, run_dir)})",
    ]


def _measures_note(config, context: dict) -> list[str]:
    quality = context.get("quality", {})
    return [
        'Fakes caught and reals called fake are at the detector\'s validation-chosen threshold. "Oracle acc." uses '
        "the threshold that is best on these very images (fitted on the test data: an upper bound, not an operating "
        'point). "disc." is that epoch\'s own discriminator used as a detector (sigmoid of its logit, threshold 0.5).',
        "",
        f"FID and KID (Inception): InceptionV3 pool features at 299 px, on up to {config.inception_n} fakes per epoch "
        f"and as many real images; FID from so few images is biased upwards and comparable only at the same count. "
        f"{quality.get('inception', '')}.",
        "",
        f"Faces found: {quality.get('faces', '')}.",
        "",
        f"Fakes are scored {context.get('fake_format', 'as the generator made them')} "
        f"({context.get('fake_format_source', 'runs made before the option')}); every measure sees them so.",
        "",
        _detector_features_note(context),
    ]


def _detector_features_note(context: dict) -> str:
    if context.get("feature_layer") is None:
        return (
            "KID (as the detector sees them) and diversity: not available, the detector was imported and the lab "
            "cannot reach its layers. Per-image scores: `scores/epoch-NNNN.csv`."
        )
    return (
        f"KID (as the detector sees them): unbiased, cubic polynomial kernel (Binkowski et al., 2018), {KID_SUBSETS} "
        f"subsets of up to {KID_MAX_SUBSET_SIZE}, in the detector's penultimate-layer features (layer "
        f"`{context['feature_layer']}`, {context['feature_width']} values, each standardised by the real test images' "
        "mean and standard deviation): it falls when the fakes get better and also when the detector stops seeing "
        "what tells them apart. Diversity: mean pairwise distance in the same features (the real images' own on the "
        "first line). Per-image scores: `scores/epoch-NNNN.csv`."
    )


def _samples_section(run_dir: Path, samples: list[Path]) -> list[str]:
    if not samples:
        return []
    return [
        "",
        "## Sample grids (training grid latents, from the GAN run)",
        "",
        *[f"Epoch {int(path.stem.split('-')[-1])}: ![{path.stem}]({_relative(path, run_dir)})" for path in samples],
    ]


def _gallery_section(run_dir: Path, gallery: Path | None, fooled: dict) -> list[str]:
    if gallery is None:
        return []
    return [
        "",
        "## Fakes that fooled the detector most",
        "",
        f"One row per epoch ({', '.join(map(str, sorted(fooled)))}, top to bottom), lowest P(fake) first.",
        "",
        f"![fooled]({_relative(gallery, run_dir)})",
        "",
        "| GAN epoch | P(fake) of the shown fakes |",
        "| --- | --- |",
        *[f"| {epoch} | {', '.join(f'{value:.3f}' for value in fooled[epoch][1])} |" for epoch in sorted(fooled)],
    ]


def _robustness_section(run_dir: Path, rows: list[dict], plot: Path | None) -> list[str]:
    if plot is None:
        return []
    sweep_epochs = sorted({row["epoch"] for row in rows if row["kind"] == "sweep"})
    strongest = sweep_epochs[0]
    lines = [
        "",
        "## Robustness",
        "",
        "Real test images and fakes, both perturbed the same way, scored at the detector's chosen threshold: a "
        "perturbation that makes the detector call everything fake raises both columns, which is not robustness. "
        f"Epochs: {', '.join(map(str, sweep_epochs))} (the epoch whose fakes the detector separated best, by AP, and "
        "the last). JPEG quality 100 is not lossless.",
    ]
    for epoch in sweep_epochs:
        title = (
            "strongest and last epoch"
            if len(sweep_epochs) == 1
            else ("where the detector was strongest" if epoch == strongest else "the last epoch")
        )
        lines += ["", f"### Epoch {epoch} ({title})", "", *_sweep_table(rows, epoch)]
    return [*lines, "", f"![robustness]({_relative(plot, run_dir)})"]


def _seed_section(rows: list[dict]) -> list[str]:
    epochs = [row for row in epoch_rows(rows) if is_number(row.get("seed_runs"))]
    if not epochs:
        return []
    seeds = ", ".join(str(run.get("seed", "-")) for run in _runs_of_epoch(rows, epochs[0]))
    return [
        "",
        "## Across training seeds",
        "",
        f"The detector and its retrainings with other seeds (seeds {seeds}; `seed` rows of results.csv), each against "
        "the same fakes and its own real test images: mean ± standard deviation over the runs, and their range, "
        "beside the first run's own 95% interval.",
        "",
        "| GAN epoch | runs | fakes caught | first run's interval | reals called fake | AP |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {row['epoch']} | {row['seed_runs']} | {_seed_spread(row, _runs_of_epoch(rows, row))} | "
            f"{_with_interval(row, 'detection_rate')} | "
            f"{_seed_spread(row, _runs_of_epoch(rows, row), 'reals_called_fake')} | "
            f"{row['average_precision_seed_mean']:.3f} ± {row['average_precision_seed_sd']:.3f} |"
            for row in epochs
        ],
    ]


def _memorisation_section(run_dir: Path, rows: list[dict], context: dict, closest: dict) -> list[str]:
    epochs = [row for row in epoch_rows(rows) if is_number(row.get("nearer_training"))]
    lines = ["", "## Memorisation", "", f"Compared: {context.get('memorisation', 'not checked')}.", ""]
    if not epochs:
        return lines
    shown = [row["epoch"] for row in memorised_epochs(epochs)][:3] or [
        min(epochs, key=lambda row: (row["memorisation_p_holm"], -row["epoch"]))["epoch"]
    ]
    pairs = {epoch: closest[epoch] for epoch in shown if epoch in closest}
    picture = []
    if pairs:
        picture = [
            "",
            f"Closest pairs, epoch {', '.join(map(str, pairs))} (per epoch: the fakes nearest a training image, "
            "above that image):",
            "",
            f"![closest pairs]({_relative(write_closest_pairs(pairs, run_dir / 'closest_pairs.png'), run_dir)})",
        ]
    return [
        *lines,
        "Each fake's nearest real image among the GAN's training images and among as many held-out ones (Euclidean, "
        "pixels averaged to 32 px): without memorisation a fake is nearer a training image half of the time. Ratio: "
        "distance to the nearest training image over that to the nearest held-out one (median; well under 1 means "
        "copies); near copies: fakes whose ratio is under 1/3. p: the mean log ratio against 999 random relabellings "
        "of the reals (which half counts as training images), Holm-corrected over the epochs.",
        "",
        "| GAN epoch | nearer a training image | median ratio | near copies | p (Holm) |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {row['epoch']} | {_with_interval(row, 'nearer_training')} | {_figure(row['nearest_ratio'])} | "
            f"{row.get('near_copies', '-')} of {row['n_memorisation']} | {p_text(row['memorisation_p_holm'])} |"
            for row in epochs
        ],
        *picture,
    ]


def _spectra_section(run_dir: Path, plot: Path) -> list[str]:
    return [
        "",
        "## Spectra",
        "",
        "Azimuthally averaged power spectra (grayscale, FFT, radial bins, log10) of real test images, of the detector's "
        "training fakes, and of the GAN's fakes per epoch. Upsampling artefacts show as a rise near 0.5 cycles/pixel.",
        "",
        f"![spectra]({_relative(plot, run_dir)})",
    ]


def _hardening_section(run_dir: Path, rows: list[dict], context: dict, hardening: dict | None) -> list[str]:
    if hardening is None:
        return []
    metrics = hardening["metrics"]
    return [
        "",
        "## Hardened detector: before and after",
        "",
        f"A copy fine-tuned for {metrics['hardening']['fine_tune_epochs']} epoch(s) (Adam, learning rate "
        f"{metrics['hardening']['learning_rate']:g}) on the detector's training split plus "
        f"{metrics['hardening']['extra_fakes']} fakes from epochs {', '.join(map(str, hardening['epochs']))}, drawn from "
        f"{context['latent_streams']['hardening']}: a stream disjoint from the scored fakes, which are held out. Its "
        "BatchNorm statistics were then re-estimated on the fine-tuning mix, as training does before validation. Saved "
        f"as a detector run in `{_relative(Path(hardening['run_dir']), run_dir)}/` (threshold "
        f"{metrics['threshold']:.3f} on the validation split).",
        "",
        *_before_after(rows, hardening["epochs"]),
        "",
        *[f"- {sentence}" for sentence in _held_out_sentences(rows, hardening["epochs"])],
        *[
            f"- After hardening: {sentence[0].lower()}{sentence[1:]}"
            for sentence in plain_reading(rows, "hardened")[:2]
        ],
    ]


def _matrix_section(run_dir: Path, matrix: list[dict] | None, plot: Path | None) -> list[str]:
    if not matrix:
        return []
    return [
        "",
        "## Generalisation matrix",
        "",
        "Each detector (rows) against each fake source (columns): a GAN run at an epoch, the fakes of a detector's own "
        "data set (test split: the kind of fakes it trained on, not the images), or a folder of fakes. Each cell: "
        "balanced accuracy (mean of fakes caught and reals passed, at the detector's validation threshold) and AP "
        "against the detector's own real test images, with 95% intervals; the last column is the mean over sources. "
        "Also in `matrix.csv`.",
        "",
        *matrix_table(matrix),
        "",
        f"![generalisation matrix]({_relative(plot, run_dir)})",
    ]


def summary_lines(stress_run: str | os.PathLike) -> list[str]:
    """A finished stress run's headline for another report: reading, intervals, epoch table, leakage, robustness."""
    from gan_lab.stress.leakage import LeakageCheck, describe

    stress_run = Path(stress_run)
    rows = result_rows(stress_run)
    record = read_json(stress_run / "config.json")
    context = record["resolved"]
    sweep_epochs = sorted({row["epoch"] for row in rows if row["kind"] == "sweep"})
    lines = [
        *[f"- {sentence}" for sentence in plain_reading(rows)],
        f"- {describe(LeakageCheck(**context['leakage']))}",
        "",
        interval_note(rows, record["n"], record.get("bootstrap", BOOTSTRAP_RESAMPLES)),
        "",
        *_epoch_table(rows, "original"),
        "",
        f"Inception: {context.get('quality', {}).get('inception', '-')}. Faces: {context.get('quality', {}).get('faces', '-')}.",
    ]
    for epoch in sweep_epochs:
        lines += [
            "",
            f"Robustness at epoch {epoch} (fakes caught and reals called fake):",
            "",
            *_sweep_table(rows, epoch),
        ]
    return lines


def write_outputs(
    run_dir: Path,
    config,
    rows: list[dict],
    context: dict,
    gan_dir: Path,
    spectra: dict[str, np.ndarray],
    size: int,
    fooled: dict,
    hardening: dict | None = None,
    matrix: list[dict] | None = None,
    closest: dict | None = None,
) -> Path:
    """results.csv/json, matrix.csv, plots, gallery, copied sample grids and report.md; returns the report's path."""
    from gan_lab.metrics.spectra import plot_spectra

    write_results(run_dir, rows)
    epochs_plot = plot_epochs(rows, run_dir / "plots" / "epochs.png")
    robustness_plot = None
    if any(row["kind"] == "sweep" for row in rows):
        robustness_plot = plot_robustness(rows, run_dir / "plots" / "robustness.png")
    matrix_plot = None
    if matrix:
        write_matrix_csv(run_dir / "matrix.csv", matrix)
        matrix_plot = plot_matrix(matrix, run_dir / "plots" / "matrix.png")
    spectra_plot = plot_spectra(spectra, size, run_dir / "plots" / "spectra.png")
    gallery = write_gallery(fooled, run_dir / "gallery.png") if fooled else None
    samples = _copy_sample_grids(run_dir, gan_dir, config.epochs)
    lines = [
        *_summary_section(run_dir, config, rows, context, epochs_plot),
        *_leakage_section(context),
        *_matrix_section(run_dir, matrix, matrix_plot),
        *_samples_section(run_dir, samples),
        *_gallery_section(run_dir, gallery, fooled),
        *_robustness_section(run_dir, rows, robustness_plot),
        *_seed_section(rows),
        *_memorisation_section(run_dir, rows, context, closest or {}),
        *_spectra_section(run_dir, spectra_plot),
        *_hardening_section(run_dir, rows, context, hardening),
        "",
        "Files: `results.csv`, `results.json` (one row for the real images, one per epoch and per sweep point), "
        "`matrix.csv`, `config.json`, `plots/`.",
    ]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")

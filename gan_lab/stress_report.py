"""A stress run's outputs: results table, plots, gallery of fooling fakes, and report.md."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from detector.runs import atomic_write_bytes, atomic_write_text, read_json, write_json
from gan_lab.kid import KID_MAX_SUBSET_SIZE, KID_SUBSETS
from gan_lab.stress_metrics import COLUMNS

_DETECTOR_STYLE = {"original": "-", "hardened": "--"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def _series(rows: list[dict], detector: str, key: str) -> tuple[list[int], list[float]]:
    chosen = [row for row in rows if row["kind"] == "epoch" and row["detector"] == detector]
    return [row["epoch"] for row in chosen], [_number(row.get(key)) for row in chosen]


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def plot_epochs(rows: list[dict], path: Path) -> Path:
    """Detection rate, AP and KID against GAN epoch; the discriminator's lines beside the detector's."""
    plt = _pyplot()
    detectors = [name for name in _DETECTOR_STYLE if any(row["detector"] == name for row in rows)]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    for detector in detectors:
        style = _DETECTOR_STYLE[detector]
        suffix = "" if detector == "original" else " (hardened)"
        epochs, rate = _series(rows, detector, "detection_rate")
        axes[0].plot(epochs, rate, style, marker="o", color="tab:blue", label=f"detector, chosen threshold{suffix}")
        axes[0].plot(
            epochs,
            _series(rows, detector, "detection_rate_05")[1],
            style,
            marker=".",
            color="tab:cyan",
            label=f"detector, 0.5{suffix}",
        )
        axes[1].plot(
            epochs,
            _series(rows, detector, "average_precision")[1],
            style,
            marker="o",
            color="tab:blue",
            label=f"detector AP{suffix}",
        )
        axes[1].plot(
            epochs,
            _series(rows, detector, "roc_auc")[1],
            style,
            marker=".",
            color="tab:cyan",
            label=f"detector ROC-AUC{suffix}",
        )
        if detector == "original":
            axes[0].plot(
                epochs,
                _series(rows, detector, "disc_detection_rate")[1],
                marker="s",
                color="tab:red",
                label="epoch's discriminator, 0.5",
            )
            axes[1].plot(
                epochs,
                _series(rows, detector, "disc_average_precision")[1],
                marker="s",
                color="tab:red",
                label="discriminator AP",
            )
            axes[2].plot(
                epochs,
                _series(rows, detector, "kid")[1],
                marker="o",
                color="tab:green",
                label="KID (detector features)",
            )
    axes[0].set_title("Fakes detected")
    axes[0].set_ylabel("detection rate")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].set_title("Fakes vs real test images")
    axes[1].set_ylim(-0.02, 1.02)
    axes[2].set_title("KID between fakes and real test images")
    kids = [value for value in _series(rows, "original", "kid")[1] if math.isfinite(value)]
    if kids and max(kids) > 100 * max(min(abs(value) for value in kids), 1e-6):
        # Orders of magnitude between the first epochs and the last: a log scale (linear near 0,
        # where the unbiased estimate can dip below it).
        axes[2].set_yscale("symlog", linthresh=max(min(abs(value) for value in kids), 1e-3))
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("GAN epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return _save(figure, path)


def plot_robustness(rows: list[dict], path: Path) -> Path:
    """Detection rate and AP against each perturbation's level, one panel per perturbation."""
    from gan_lab.perturb import PERTURBATIONS

    plt = _pyplot()
    sweeps = [row for row in rows if row["kind"] == "sweep"]
    names = [name for name in PERTURBATIONS if any(row["perturbation"] == name for row in sweeps)]
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        for detector, style in _DETECTOR_STYLE.items():
            points = [row for row in sweeps if row["perturbation"] == name and row["detector"] == detector]
            if not points:
                continue
            levels = [row["level"] for row in points]
            suffix = "" if detector == "original" else " (hardened)"
            axis.plot(
                levels,
                [row["detection_rate"] for row in points],
                style,
                marker="o",
                color="tab:blue",
                label=f"detection rate{suffix}",
            )
            axis.plot(
                levels,
                [row["average_precision"] for row in points],
                style,
                marker="s",
                color="tab:orange",
                label=f"AP{suffix}",
            )
        axis.set_title(name)
        axis.set_xlabel(PERTURBATIONS[name][1])
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        if name in ("jpeg", "rescale"):
            axis.invert_xaxis()  # stronger perturbation to the right, as in the other panels
        axis.legend(fontsize=7)
    return _save(figure, path)


def write_gallery(fooled: dict[int, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """One row per epoch: the fakes with the lowest P(fake), left to right."""
    from detector.images import image_grid, save_png

    epochs = sorted(fooled)
    columns = max(len(fooled[epoch][0]) for epoch in epochs)
    size = fooled[epochs[0]][0].shape[1:]
    tiles = []
    for epoch in epochs:
        pixels = fooled[epoch][0]
        blank = np.ones((columns - len(pixels), *size), dtype=np.float32)
        tiles.append(np.concatenate([pixels, blank]) if len(blank) else pixels)
    return save_png(path, image_grid(np.concatenate(tiles), columns=columns))


def _percent(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1%}"


def _figure(value, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _significant(value, digits: int = 3) -> str:
    """KID spans orders of magnitude across epochs: significant figures, not decimals."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def plain_reading(rows: list[dict], detector: str = "original") -> list[str]:
    """A few sentences a reader can take away: misses, best and worst epoch, KID trend, worst perturbation."""
    epochs = [row for row in rows if row["kind"] == "epoch" and row["detector"] == detector]
    if not epochs:
        return []
    last = epochs[-1]
    sentences = [
        f"The detector misses {1 - last['detection_rate']:.0%} of epoch-{last['epoch']} fakes at its chosen "
        f"threshold ({last['threshold']:.3f}) and {1 - last['detection_rate_05']:.0%} at 0.5; "
        f"mean P(fake) {last['mean_p_fake']:.3f}, AP {_figure(last['average_precision'])} against real test images."
    ]
    if len(epochs) > 1:
        best = max(epochs, key=lambda row: row["detection_rate"])
        worst = min(epochs, key=lambda row: row["detection_rate"])
        if best["detection_rate"] == worst["detection_rate"]:
            sentences.append(f"The detection rate is {best['detection_rate']:.0%} for every epoch.")
        else:
            sentences.append(
                f"Best epoch for the detector: {best['epoch']} ({best['detection_rate']:.0%} detected); "
                f"worst: {worst['epoch']} ({worst['detection_rate']:.0%} detected)."
            )
        first_kid, last_kid = epochs[0].get("kid"), last.get("kid")
        if first_kid is not None and last_kid is not None:
            trend = "falls" if last_kid < first_kid else "rises"
            meaning = (
                "the fakes move closer to real test images"
                if trend == "falls"
                else "the fakes drift away from real test images"
            )
            sentences.append(
                f"KID {trend} from {first_kid:.3g} (epoch {epochs[0]['epoch']}) to {last_kid:.3g} (epoch {last['epoch']}): "
                f"{meaning} in the detector's feature space."
            )
    if last.get("disc_detection_rate") is not None:
        sentences.append(
            f"The epoch-{last['epoch']} discriminator, used as a detector, calls {last['disc_detection_rate']:.0%} of "
            f"the same fakes fake (AP {_figure(last.get('disc_average_precision'))})."
        )
    sweeps = [row for row in rows if row["kind"] == "sweep" and row["detector"] == detector]
    if sweeps:
        worst = min(sweeps, key=lambda row: (row["average_precision"], row["detection_rate"]))
        sentences.append(
            f"The perturbation that hurts most: {worst['perturbation']} at {worst['level']:g} "
            f"(AP {_figure(last['average_precision'])} -> {_figure(worst['average_precision'])}, "
            f"detection rate {_percent(last['detection_rate'])} -> {_percent(worst['detection_rate'])})."
        )
    return sentences


def _epoch_table(rows: list[dict], detector: str) -> list[str]:
    lines = [
        "| GAN epoch | detected (threshold) | detected (0.5) | mean P(fake) | median P(fake) | ROC-AUC | AP | best acc. "
        "| disc. detected | disc. AP | KID | diversity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row["kind"] != "epoch" or row["detector"] != detector:
            continue
        lines.append(
            f"| {row['epoch']} | {_percent(row['detection_rate'])} | {_percent(row['detection_rate_05'])} "
            f"| {_figure(row['mean_p_fake'])} | {_figure(row['median_p_fake'])} | {_figure(row['roc_auc'])} "
            f"| {_figure(row['average_precision'])} | {_percent(row['best_accuracy'])} "
            f"| {_percent(row.get('disc_detection_rate'))} | {_figure(row.get('disc_average_precision'))} "
            f"| {_significant(row.get('kid'))} | {_figure(row.get('diversity'))} |"
        )
    return lines


def _sweep_table(rows: list[dict]) -> list[str]:
    detectors = [
        name for name in _DETECTOR_STYLE if any(row["kind"] == "sweep" and row["detector"] == name for row in rows)
    ]
    header = "| perturbation | level | " + " | ".join(f"{name}: detected | {name}: AP" for name in detectors) + " |"
    lines = [header, "| --- | --- |" + " --- | --- |" * len(detectors)]
    points = [
        (row["perturbation"], row["level"])
        for row in rows
        if row["kind"] == "sweep" and row["detector"] == detectors[0]
    ]
    for name, level in points:
        cells = []
        for detector in detectors:
            match = next(
                row
                for row in rows
                if row["kind"] == "sweep"
                and row["detector"] == detector
                and row["perturbation"] == name
                and row["level"] == level
            )
            cells.append(f"{_percent(match['detection_rate'])} | {_figure(match['average_precision'])}")
        lines.append(f"| {name} | {level:g} | " + " | ".join(cells) + " |")
    return lines


def _before_after(rows: list[dict]) -> list[str]:
    lines = [
        "| GAN epoch | detected before | detected after | AP before | AP after | ROC-AUC before | ROC-AUC after |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    before = {row["epoch"]: row for row in rows if row["kind"] == "epoch" and row["detector"] == "original"}
    after = {row["epoch"]: row for row in rows if row["kind"] == "epoch" and row["detector"] == "hardened"}
    for epoch in sorted(before):
        if epoch not in after:
            continue
        b, a = before[epoch], after[epoch]
        lines.append(
            f"| {epoch} | {_percent(b['detection_rate'])} | {_percent(a['detection_rate'])} | {_figure(b['average_precision'])} "
            f"| {_figure(a['average_precision'])} | {_figure(b['roc_auc'])} | {_figure(a['roc_auc'])} |"
        )
    return lines


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


def _summary_section(run_dir: Path, config, rows: list[dict], context: dict, epochs_plot: Path) -> list[str]:
    return [
        f"# Stress test: `{Path(config.detector).name}` against `{Path(config.gan).name}`",
        "",
        f"Detector `{config.detector}` (threshold {context['detector_threshold']:.3f}, chosen on its validation split); "
        f"GAN `{config.gan}`, epochs {', '.join(map(str, config.epochs))}. Per epoch, {config.n} fresh fakes from latents "
        f"{context['latent_streams']['scoring']} with seed {config.seed} (never the training grid), against "
        f"{context['n_real_test']} real images from the detector's test split ({context['data']}).",
        "",
        "## Reading",
        "",
        *[f"- {sentence}" for sentence in plain_reading(rows)],
        "",
        "## Per GAN epoch",
        "",
        *_epoch_table(rows, "original"),
        "",
        f"KID: unbiased, cubic polynomial kernel (Binkowski et al., 2018), {KID_SUBSETS} subsets of up to {KID_MAX_SUBSET_SIZE}, "
        f"in the detector's penultimate-layer features (layer `{context['feature_layer']}`, {context['feature_width']} values, "
        "each standardised by the real test images' mean and standard deviation), not Inception's; "
        "comparable within this detector only. Diversity: mean pairwise distance of the fakes in the same features. "
        '"disc." is that epoch\'s own discriminator used as a detector (sigmoid of its logit, threshold 0.5). '
        "Per-image scores: `scores/epoch-NNNN.csv`.",
        "",
        f"![detection against GAN epoch]({_relative(epochs_plot, run_dir)})",
    ]


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
    sweep_epoch = next(row["epoch"] for row in rows if row["kind"] == "sweep")
    return [
        "",
        "## Robustness",
        "",
        f"Real test images and the epoch-{sweep_epoch} fakes, both perturbed the same way. JPEG quality 100 is not lossless.",
        "",
        *_sweep_table(rows),
        "",
        f"![robustness]({_relative(plot, run_dir)})",
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
        f"{context['latent_streams']['hardening']}: a stream disjoint from the scored fakes. Saved as a detector run in "
        f"`{_relative(Path(hardening['run_dir']), run_dir)}/` (threshold {metrics['threshold']:.3f} on the validation split).",
        "",
        *_before_after(rows),
        "",
        *[f"- After hardening: {sentence}" for sentence in plain_reading(rows, "hardened")[:1]],
    ]


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
) -> Path:
    """results.csv/json, plots, gallery, copied sample grids and report.md; returns the report's path."""
    from gan_lab.spectra import plot_spectra

    write_results(run_dir, rows)
    epochs_plot = plot_epochs(rows, run_dir / "plots" / "epochs.png")
    robustness_plot = None
    if any(row["kind"] == "sweep" for row in rows):
        robustness_plot = plot_robustness(rows, run_dir / "plots" / "robustness.png")
    spectra_plot = plot_spectra(spectra, size, run_dir / "plots" / "spectra.png")
    gallery = write_gallery(fooled, run_dir / "gallery.png") if fooled else None
    samples = _copy_sample_grids(run_dir, gan_dir, config.epochs)
    lines = [
        *_summary_section(run_dir, config, rows, context, epochs_plot),
        *_samples_section(run_dir, samples),
        *_gallery_section(run_dir, gallery, fooled),
        *_robustness_section(run_dir, rows, robustness_plot),
        *_spectra_section(run_dir, spectra_plot),
        *_hardening_section(run_dir, rows, context, hardening),
        "",
        "Files: `results.csv`, `results.json` (one row per epoch and per sweep point), `config.json`, `plots/`.",
    ]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")

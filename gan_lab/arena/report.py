"""An arena run's outputs: results.csv/json, evasion.json, the evasion plot, the evasive grid and report.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from detector.base.runs import atomic_write_text, write_json
from gan_lab.arena.evasion import describe_evasion
from gan_lab.stress.plotting import pyplot, save_figure

COLUMNS = (
    "arm",
    "epoch",
    "kimg",
    "weight",
    "detection_rate",
    "detection_rate_low",
    "detection_rate_high",
    "tpr_at_fpr_1",
    "tpr_at_fpr_1_low",
    "tpr_at_fpr_1_high",
    "faces_found",
    "faces_found_low",
    "faces_found_high",
    "mean_p_fake",
)
GRID_SIZE = 8
STYLE = {"arena": ("tab:red", "-"), "plain": ("tab:blue", "--")}


def _write_results(run_dir: Path, rows: list[dict]) -> None:
    write_json(run_dir / "results.json", rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else row[column] for column in COLUMNS])
    atomic_write_text(run_dir / "results.csv", buffer.getvalue())


def plot_evasion(rows: list[dict], target: float, path: Path) -> Path:
    """Detection rate (and faces found, where measured) against kimg, the arena arm beside the plain one."""
    keys = ["detection_rate"] + (["faces_found"] if any("faces_found" in row for row in rows) else [])
    figure, axes = pyplot().subplots(1, len(keys), figsize=(5 * len(keys), 3.4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for arm, (color, style) in STYLE.items():
            points = [row for row in rows if row["arm"] == arm and key in row]
            kimg = [row["kimg"] for row in points]
            axis.plot(kimg, [row[key] for row in points], style, color=color, marker="o", label=arm)
            axis.fill_between(
                kimg,
                [row[f"{key}_low"] for row in points],
                [row[f"{key}_high"] for row in points],
                color=color,
                alpha=0.15,
            )
        if key == "detection_rate":
            axis.axhline(target, color="grey", linewidth=0.8, linestyle=":", label=f"target {target:.0%}")
        axis.set(xlabel="kimg of arena training", ylabel=key.replace("_", " "), ylim=(-0.02, 1.02))
        axis.legend(fontsize=7)
    return save_figure(figure, path)


def evasive_grid(fakes: np.ndarray, p_fake: np.ndarray, faces, path: Path) -> tuple[Path, np.ndarray]:
    """The arena arm's last fakes the detector scores lowest, among those in which a face was found (if measured):
    (the grid's path, their P(fake))."""
    from detector.data.images import image_grid, save_png

    candidates = np.arange(len(fakes)) if faces is None or not np.any(faces) else np.flatnonzero(faces)
    chosen = candidates[np.argsort(p_fake[candidates], kind="mergesort")[:GRID_SIZE]]
    return save_png(path, image_grid(fakes[chosen], columns=len(chosen))), p_fake[chosen]


def _table(rows: list[dict]) -> list[str]:
    def rate(row, key):
        if key not in row:
            return "-"
        return f"{row[key]:.1%} [{row[key + '_low'] * 100:.1f}, {row[key + '_high'] * 100:.1f}]"

    lines = ["| arm | epoch | kimg | caught | TPR at 1% FPR | faces found |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(
            f"| {row['arm']} | {row['epoch']} | {row['kimg']:.2f} | {rate(row, 'detection_rate')} | "
            f"{rate(row, 'tpr_at_fpr_1')} | {rate(row, 'faces_found')} |"
        )
    return lines


def write_report(run_dir: Path, config, rows: list[dict], evasion: dict, last: dict) -> Path:
    """Every output file of an arena run; returns report.md's path."""
    _write_results(run_dir, rows)
    write_json(run_dir / "evasion.json", evasion)
    plot = plot_evasion(rows, config.target, run_dir / "plots" / "evasion.png")
    fakes, p_fake, faces = last["arena"]
    grid, shown = evasive_grid(fakes, p_fake, faces, run_dir / "evasive.png")
    lines = [
        f"# Arena: `{Path(config.gan).name}` against `{Path(config.detector).name}`",
        "",
        f"Both arms continue the GAN run's last checkpoint (epoch 0) for {config.epochs} epochs of {config.steps_per_epoch} "
        f"steps; the arena arm's generator loss adds {config.weight:g} x the frozen detector's cross-entropy on its "
        "fakes labelled real, the plain arm's does not (the same checkpoint, random state and real batches). Each "
        f"epoch, {config.n} fresh fakes per arm (the same latents, seed {config.seed}, never trained on; stored as "
        "8-bit images) are scored at the detector's validation threshold; rates carry 95% Wilson intervals.",
        "",
        f"- Arena (W = {config.weight:g}): {describe_evasion(evasion['arena'])}.",
        f"- Plain continuation (W = 0): {describe_evasion(evasion['plain'])}.",
        "",
        *_table(rows),
        "",
        f"![detection rate against kimg]({plot.relative_to(run_dir)})",
        "",
        "The arena arm's last fakes the detector scores lowest"
        + (" among those in which MTCNN finds a face" if faces is not None and np.any(faces) else "")
        + f" (P(fake) {', '.join(f'{value:.3f}' for value in shown)}):",
        "",
        f"![most evasive fakes]({grid.relative_to(run_dir)})",
        "",
        "Files: `results.csv`, `results.json`, `evasion.json`, `config.json`, `plots/`.",
    ]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")

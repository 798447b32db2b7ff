"""An arena run's outputs: results.csv/json, evasion.json, the evasion plot, the evasive grid and report.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from detector.base.runs import atomic_write_text, read_json, write_json
from gan_lab.arena.evasion import describe_evasion, evasion_cell, hardening_verdict
from gan_lab.stress.plotting import pyplot, save_figure

COLUMNS = (
    "round",
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
    "kid_inception",
    "kid_inception_std",
    "mean_p_fake",
)
GRID_SIZE = 8
STYLE = {"arena": ("tab:red", "-"), "plain": ("tab:blue", "--")}
ROUND_COLOURS = ("tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
PANELS = {"detection_rate": "detection rate", "faces_found": "faces found", "kid_inception": "KID vs held-out reals"}


def _write_results(run_dir: Path, rows: list[dict]) -> None:
    write_json(run_dir / "results.json", rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else row[column] for column in COLUMNS])
    atomic_write_text(run_dir / "results.csv", buffer.getvalue())


def _lines(rows: list[dict], key: str):
    """(label, colour, style, points) per line of one panel. With several rounds, each round has a colour: its
    arena arm solid, its plain arm dashed; what does not depend on the detector (faces, KID) has one plain line,
    since the plain arm's fakes are the same in every round."""
    rounds = sorted({row["round"] for row in rows})
    several = len(rounds) > 1
    for round_ in rounds:
        colour = ROUND_COLOURS[(round_ - 1) % len(ROUND_COLOURS)]
        for arm in ("arena", "plain"):
            detector_free = arm == "plain" and key != "detection_rate"
            if detector_free and round_ != rounds[0]:
                continue
            points = [row for row in rows if row["arm"] == arm and row["round"] == round_ and row.get(key) is not None]
            if not several or detector_free:
                yield arm, STYLE[arm][0], STYLE[arm][1], points
            else:
                yield f"{arm}, round {round_}", colour, STYLE[arm][1], points


def plot_evasion(rows: list[dict], target: float, path: Path) -> Path:
    """Detection rate (and faces found and KID, where measured) against kimg, arena arms beside the plain one."""
    keys = [key for key in PANELS if any(row.get(key) is not None for row in rows)]
    figure, axes = pyplot().subplots(1, len(keys), figsize=(5 * len(keys), 3.4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for label, colour, style, points in _lines(rows, key):
            kimg = [row["kimg"] for row in points]
            axis.plot(kimg, [row[key] for row in points], style, color=colour, marker="o", label=label)
            if key == "kid_inception":
                low = [row[key] - row["kid_inception_std"] for row in points]
                high = [row[key] + row["kid_inception_std"] for row in points]
            else:
                low, high = [row[f"{key}_low"] for row in points], [row[f"{key}_high"] for row in points]
            axis.fill_between(kimg, low, high, color=colour, alpha=0.15)
        if key == "detection_rate":
            axis.axhline(target, color="grey", linewidth=0.8, linestyle=":", label=f"target {target:.0%}")
        limits = {} if key == "kid_inception" else {"ylim": (-0.02, 1.02)}
        axis.set(xlabel="kimg of arena training", ylabel=PANELS[key], **limits)
        axis.legend(fontsize=7)
    return save_figure(figure, path)


def evasive_grid(fakes: np.ndarray, p_fake: np.ndarray, faces, path: Path) -> tuple[Path, np.ndarray]:
    """The arena arm's last fakes the detector scores lowest, among those in which a face was found (if measured):
    (the grid's path, their P(fake))."""
    from detector.data.images import image_grid, save_png

    candidates = np.arange(len(fakes)) if faces is None or not np.any(faces) else np.flatnonzero(faces)
    chosen = candidates[np.argsort(p_fake[candidates], kind="mergesort")[:GRID_SIZE]]
    return save_png(path, image_grid(fakes[chosen], columns=len(chosen))), p_fake[chosen]


def _rate(row: dict, key: str) -> str:
    if row.get(key) is None:
        return "-"
    return f"{row[key]:.1%} [{row[key + '_low'] * 100:.1f}, {row[key + '_high'] * 100:.1f}]"


def _table(rows: list[dict]) -> list[str]:
    rounds = len({row["round"] for row in rows}) > 1
    kid = any(row.get("kid_inception") is not None for row in rows)
    header = ["round"] * rounds + ["arm", "epoch", "kimg", "caught", "TPR at 1% FPR", "faces found"] + ["KID"] * kid
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [str(row["round"])] * rounds + [row["arm"], str(row["epoch"]), f"{row['kimg']:.2f}"]
        cells += [_rate(row, "detection_rate"), _rate(row, "tpr_at_fpr_1"), _rate(row, "faces_found")]
        if kid:
            value = row.get("kid_inception")
            cells.append("-" if value is None else f"{value:.3g} ± {row['kid_inception_std']:.2g}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _epoch(row: dict) -> int:
    return row["epoch"]


def _rounds_section(evasion: dict, rows: list[dict]) -> list[str]:
    """Time to evasion per round, the round's evasive fakes before and after hardening, and the verdict."""
    rounds = evasion["rounds"]
    if len(rounds) < 2:
        return []
    lines = [
        "## Rounds",
        "",
        "After each round the round's detector is fine-tuned (the stress test's hardening: its training split plus "
        "fakes of each round's last evader so far, drawn from the hardening latent stream) and the next round "
        'evades the hardened copy from the same checkpoint. "Caught after hardening" scores the round\'s last '
        'scored fakes, which no hardening trained on; "reals called fake" is the round\'s detector on its own test '
        "reals. Times to evasion: the interpolated crossing [the last epoch surely held, the first surely evaded].",
        "",
        "| round | detector | arena: time to evasion | plain: time to evasion | evader's faces found (last epoch) "
        "| caught after hardening | reals called fake |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for record in rounds:
        last = max((row for row in rows if row["arm"] == "arena" and row["round"] == record["round"]), key=_epoch)
        lines.append(
            f"| {record['round']} | `{Path(record['detector']).name}` | {evasion_cell(record['arena'])} | "
            f"{evasion_cell(record['plain'])} | {_rate(last, 'faces_found')} | "
            f"{_rate(record.get('hardened', {}), 'detection_rate')} | {_rate(record, 'reals_called_fake')} |"
        )
    lines.append("")
    for record in rounds[1:]:
        lines.append(
            f"- Did hardening buy time by round {record['round']}? "
            f"{hardening_verdict(rounds[0]['arena'], record['arena'], record['round'])}."
        )
    return [*lines, ""]


def _grids(run_dir: Path, lasts: list) -> list[str]:
    """A grid of the most evasive fakes per round (evasive.png for round 1)."""
    lines = []
    for round_, (fakes, p_fake, faces) in enumerate(lasts, start=1):
        name = "evasive.png" if round_ == 1 else f"evasive-round-{round_}.png"
        grid, shown = evasive_grid(fakes, p_fake, faces, run_dir / name)
        lines += [
            ("The arena arm's" if len(lasts) == 1 else f"Round {round_}: the arena arm's")
            + " last fakes the detector scores lowest"
            + (" among those in which MTCNN finds a face" if faces is not None and np.any(faces) else "")
            + f" (P(fake) {', '.join(f'{value:.3f}' for value in shown)}):",
            "",
            f"![most evasive fakes]({grid.relative_to(run_dir)})",
            "",
        ]
    return lines


def write_report(run_dir: Path, config, rows: list[dict], evasion: dict, lasts: list) -> Path:
    """Every output file of an arena run; returns report.md's path."""
    _write_results(run_dir, rows)
    write_json(run_dir / "evasion.json", evasion)
    plot = plot_evasion(rows, config.target, run_dir / "plots" / "evasion.png")
    notes = read_json(run_dir / "config.json").get("resolved", {})
    first = ", round 1 (the rounds are below)" if len(lasts) > 1 else ""
    start = (
        f"train a new GAN on `{config.data}` (the lab's default recipe, run `{Path(config.gan).name}`; epoch 0 is its "
        "initialisation)"
        if config.data
        else "continue the GAN run's last checkpoint (epoch 0)"
    )
    lines = [
        f"# Arena: `{Path(config.gan).name}` against `{Path(config.detector).name}`",
        "",
        f"Both arms {start} for {config.epochs} epochs of {config.steps_per_epoch} steps; the arena arm's generator loss adds {config.weight:g} x the frozen detector's cross-entropy on its "
        "fakes labelled real, the plain arm's does not (the same checkpoint, random state and real batches). Each "
        f"epoch, {config.n} fresh fakes per arm (the same latents, seed {config.seed}, never trained on; stored as "
        "8-bit images) are scored at the detector's validation threshold; rates carry 95% Wilson intervals. The fakes "
        "come from the generator being trained, not from the run's EMA copy the stress test scores (an EMA lags "
        "what the generator has learnt).",
        "",
        f"- Arena (W = {config.weight:g}){first}: {describe_evasion(evasion['arena'])}.",
        f"- Plain continuation (W = 0){first}: {describe_evasion(evasion['plain'])}.",
        *[f"- {note[0].upper()}{note[1:]}." for key, note in notes.items() if key in ("faces", "kid") and note],
        "",
        *_table(rows),
        "",
        f"![detection rate against kimg]({plot.relative_to(run_dir)})",
        "",
        *_rounds_section(evasion, rows),
        *_grids(run_dir, lasts),
        "Files: `results.csv`, `results.json`, `evasion.json`, `config.json`, `plots/`, `arms/` (each arm's scored fakes)"
        + (", `detectors/` (the hardened detectors, each a detector run)" if len(lasts) > 1 else "")
        + ".",
    ]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")

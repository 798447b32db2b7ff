"""A GAN run's record: history.csv, the losses plot and report.md."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

from detector.base.runs import atomic_write_text
from detector.base.runs import read_history as read_history_file

HISTORY_COLUMNS = (
    "epoch",
    "kimg",
    "d_loss",
    "g_loss",
    "d_p_fake_real",
    "d_p_fake_fake",
    "diversity",
    "faces_found",
    "seconds",
)


@dataclasses.dataclass(frozen=True)
class RealReference:
    """The real training images' own figures, which the generated images' are read against."""

    diversity: float | None = None  # mean pairwise feature distance (None: fewer than two images)
    faces_found: float | None = None  # share in which MTCNN finds a face (None: not measured)
    n_faces: int = 0  # images the share is of


def best_faces_epoch(rows: list[dict]) -> dict | None:
    """The row with the highest face-found share (the latest of equals), or None if none was measured."""
    measured = [row for row in rows if math.isfinite(row.get("faces_found", math.nan))]
    return max(reversed(measured), key=lambda row: row["faces_found"]) if measured else None


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of run_dir/history.csv: "epoch" an int (from 1), every other column a float."""
    return read_history_file(Path(run_dir) / "history.csv")


def plot_history(rows: list[dict], path: str | os.PathLike, reals: RealReference | None = None) -> Path | None:
    """plots/losses.png: both losses, the discriminator's mean P(fake), diversity and faces found, per epoch."""
    from matplotlib.figure import Figure

    from detector.inference.evaluate import save_figure

    if not rows:
        return None
    epochs = [row["epoch"] for row in rows]
    reals = reals or RealReference()
    figure = Figure(figsize=(17.0, 3.8))
    losses, p_fake, diversity, faces = figure.subplots(1, 4)
    style = dict(marker="o", markersize=3)
    losses.plot(epochs, [row["d_loss"] for row in rows], label="discriminator", **style)
    losses.plot(epochs, [row["g_loss"] for row in rows], label="generator", **style)
    losses.set(xlabel="Epoch", ylabel="binary cross-entropy", title="Losses")
    p_fake.plot(epochs, [row["d_p_fake_fake"] for row in rows], label="on generated images", color="C3", **style)
    p_fake.plot(epochs, [row["d_p_fake_real"] for row in rows], label="on real images", color="C2", **style)
    p_fake.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    p_fake.set(xlabel="Epoch", ylabel="mean P(fake)", title="Discriminator's P(fake)", ylim=(-0.02, 1.02))
    diversity.plot(epochs, [row.get("diversity", math.nan) for row in rows], label="generated", color="C4", **style)
    if reals.diversity is not None:
        diversity.axhline(reals.diversity, color="grey", linestyle="--", label="real training images")
    diversity.set(xlabel="Epoch", ylabel="mean pairwise feature distance", title="Sample diversity")
    faces.plot(epochs, [100 * row.get("faces_found", math.nan) for row in rows], label="generated", color="C5", **style)
    if reals.faces_found is not None:
        faces.axhline(100 * reals.faces_found, color="grey", linestyle="--", label="real training images")
    faces.set(xlabel="Epoch", ylabel="% with a face", title="Faces found (MTCNN)", ylim=(-2, 102))
    for axes in (losses, p_fake, diversity, faces):
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def write_report(run_dir: Path, config, rows: list[dict], metrics: dict) -> Path:
    """report.md: what was trained on what, the per-epoch table and the pictures."""
    lines = [
        f"# DCGAN run `{run_dir.name}`",
        "",
        f"{config.size} px generator ({config.preset or 'default widths ' + ', '.join(map(str, config.generator_filters))}, "
        f"latent {config.latent_dim}) against a {config.discriminator} discriminator, on {metrics['real_images']} real "
        f"images of `{config.data}`. Batch {config.batch_size}, {metrics['steps_per_epoch']} steps per epoch, "
        f"{metrics['epochs_trained']} epochs in {metrics['train_seconds'] / 60:.1f} min, seed {config.seed}.",
        "",
        "| epoch | D loss | G loss | D P(fake) real | D P(fake) generated | diversity | faces found |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['epoch']} | {row['d_loss']:.3f} | {row['g_loss']:.3f} | {row['d_p_fake_real']:.3f} "
            f"| {row['d_p_fake_fake']:.3f} | {row['diversity']:.3g} | {_percent(row.get('faces_found', math.nan))} |"
        )
    if metrics.get("real_diversity") is not None:
        lines += ["", f"Real training images' diversity: {metrics['real_diversity']:.3g}."]
    lines += _faces_lines(run_dir, config, rows, metrics)
    if metrics.get("stopped"):
        lines += ["", f"Training stopped early: {metrics['stopped']}."]
    if rows:
        last = rows[-1]["epoch"]
        lines += [
            "",
            f"![sample grid, epoch {last}](samples/epoch-{last:04d}.png)",
            "",
            "![every epoch's grid](progress.gif)",
            "",
            "![losses](plots/losses.png)",
        ]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%" if math.isfinite(share) else "–"


def _faces_lines(run_dir: Path, config, rows: list[dict], metrics: dict) -> list[str]:
    """What the face-found column says: the reals' share and the epoch to draw samples from."""
    best = best_faces_epoch(rows)
    if best is None:
        return []
    lines = [
        "",
        f"Faces found: the share of {config.faces_n} fresh samples of each epoch's generator (the same latents "
        "every epoch) in which MTCNN finds a face",
    ]
    if metrics.get("real_faces_found") is not None:
        lines[-1] += (
            f", against {_percent(metrics['real_faces_found'])} of {metrics['n_real_faces']} real training images"
        )
    if best["faces_found"] > 0:
        lines[-1] += (
            f". Most at epoch {best['epoch']} ({_percent(best['faces_found'])}): "
            f"`gan-lab gan sample {run_dir} --epoch {best['epoch']}` draws from it."
        )
    else:
        lines[-1] += ". No epoch's samples hold a face yet."
    return lines


def write_stats(run_dir: Path, rows: list[dict]) -> Path:
    """stats.jsonl: one JSON object per epoch (the history rows), for tools that read JSON lines."""
    return atomic_write_text(Path(run_dir) / "stats.jsonl", "".join(json.dumps(row) + "\n" for row in rows))

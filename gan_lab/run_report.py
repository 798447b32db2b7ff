"""A GAN run's record: history.csv, the losses plot and report.md."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from detector.runs import atomic_write_text
from detector.runs import read_history as read_history_file

HISTORY_COLUMNS = ("epoch", "kimg", "d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake", "diversity", "seconds")


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of run_dir/history.csv: "epoch" an int (from 1), every other column a float."""
    return read_history_file(Path(run_dir) / "history.csv")


def plot_history(rows: list[dict], path: str | os.PathLike, real_diversity: float | None = None) -> Path | None:
    """plots/losses.png: both losses, the discriminator's mean P(fake) on reals and fakes, and diversity, per epoch."""
    from matplotlib.figure import Figure

    from detector.evaluate import save_figure

    if not rows:
        return None
    epochs = [row["epoch"] for row in rows]
    figure = Figure(figsize=(13.0, 3.8))
    losses, p_fake, diversity = figure.subplots(1, 3)
    style = dict(marker="o", markersize=3)
    losses.plot(epochs, [row["d_loss"] for row in rows], label="discriminator", **style)
    losses.plot(epochs, [row["g_loss"] for row in rows], label="generator", **style)
    losses.set(xlabel="Epoch", ylabel="binary cross-entropy", title="Losses")
    p_fake.plot(epochs, [row["d_p_fake_fake"] for row in rows], label="on generated images", color="C3", **style)
    p_fake.plot(epochs, [row["d_p_fake_real"] for row in rows], label="on real images", color="C2", **style)
    p_fake.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    p_fake.set(xlabel="Epoch", ylabel="mean P(fake)", title="Discriminator's P(fake)", ylim=(-0.02, 1.02))
    diversity.plot(epochs, [row.get("diversity", math.nan) for row in rows], label="generated", color="C4", **style)
    if real_diversity is not None:
        diversity.axhline(real_diversity, color="grey", linestyle="--", label="real training images")
    diversity.set(xlabel="Epoch", ylabel="mean pairwise feature distance", title="Sample diversity")
    for axes in (losses, p_fake, diversity):
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
        "| epoch | D loss | G loss | D P(fake) real | D P(fake) generated | diversity |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['epoch']} | {row['d_loss']:.3f} | {row['g_loss']:.3f} | {row['d_p_fake_real']:.3f} "
            f"| {row['d_p_fake_fake']:.3f} | {row['diversity']:.3g} |"
        )
    if metrics.get("real_diversity") is not None:
        lines += ["", f"Real training images' diversity: {metrics['real_diversity']:.3g}."]
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


def write_stats(run_dir: Path, rows: list[dict]) -> Path:
    """stats.jsonl: one JSON object per epoch (the history rows), for tools that read JSON lines."""
    return atomic_write_text(Path(run_dir) / "stats.jsonl", "".join(json.dumps(row) + "\n" for row in rows))

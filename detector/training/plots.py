"""Training curves of a detector run: loss and accuracy against epoch, read from history.csv."""

from __future__ import annotations

import math
import os
from pathlib import Path

from detector.base.runs import read_history

# (file name, metric, title) of every training plot; evaluation plots have other names.
CURVES = (
    ("loss.png", "loss", "Loss (binary cross-entropy)"),
    ("accuracy.png", "accuracy", "Accuracy (threshold 0.5)"),
)


def _best_epoch(rows: list[dict]) -> int | None:
    losses = [(row.get("val_loss", math.nan), row["epoch"]) for row in rows]
    finite = [(loss, epoch) for loss, epoch in losses if math.isfinite(loss)]
    return min(finite)[1] if finite else None


def plot_history(rows: list[dict], plot_dir: str | os.PathLike) -> list[Path]:
    """Write loss.png and accuracy.png (train and validation against epoch) into `plot_dir`.

    The epoch with the lowest validation loss, the one model.keras holds, is marked.
    Epochs count from 1, as in history.csv and the progress bar.
    """
    from matplotlib.figure import Figure

    from detector.inference.evaluate import save_figure

    plot_dir = Path(plot_dir)
    if not rows:
        return []
    epochs = [row["epoch"] for row in rows]
    best = _best_epoch(rows)
    written = []
    for file_name, metric, title in CURVES:
        if not any(metric in row or f"val_{metric}" in row for row in rows):
            continue
        figure = Figure(figsize=(5.5, 4.0))
        axes = figure.subplots()
        for key, label, style in ((metric, "train", "o-"), (f"val_{metric}", "validation", "s-")):
            values = [row.get(key, math.nan) for row in rows]
            if any(math.isfinite(value) for value in values):
                axes.plot(epochs, values, style, label=label, markersize=4)
        if best is not None:
            axes.axvline(best, color="grey", linestyle="--", label=f"best validation loss (epoch {best})")
        axes.set(xlabel="Epoch", ylabel=metric, title=title)
        if metric == "accuracy":
            axes.set_ylim(min(0.45, axes.get_ylim()[0]), 1.01)
        # Whole epochs only: a two-epoch run should not get ticks at 1.25, 1.5, ...
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend()
        written.append(save_figure(figure, plot_dir / file_name))
    return written


def plot_run_history(run_dir: str | os.PathLike) -> list[Path]:
    """Training curves of a run from run_dir/history.csv into run_dir/plots/."""
    run_dir = Path(run_dir)
    return plot_history(read_history(run_dir / "history.csv"), run_dir / "plots")

"""A stress run's pictures: figures against GAN epoch with their 95% bands, robustness sweeps, the gallery."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gan_lab.stress.plotting import pyplot, save_figure

DETECTOR_STYLE = {"original": "-", "hardened": "--"}


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def epoch_rows(rows: list[dict], detector: str = "original") -> list[dict]:
    return [row for row in rows if row["kind"] == "epoch" and row["detector"] == detector]


def _line(axis, chosen: list[dict], key: str, style: str, color: str, label: str, marker: str = "o") -> None:
    """A figure against GAN epoch, with its 95% interval as a band when the rows have one."""
    epochs = [row["epoch"] for row in chosen]
    values = [_number(row.get(key)) for row in chosen]
    if not any(math.isfinite(value) for value in values):
        return
    axis.plot(epochs, values, style, marker=marker, color=color, label=label)
    if all(row.get(f"{key}_low") is not None for row in chosen):
        low = [_number(row[f"{key}_low"]) for row in chosen]
        high = [_number(row[f"{key}_high"]) for row in chosen]
        axis.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)


def _finish(axes) -> None:
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)


def _detection_panels(axes, rows: list[dict]) -> None:
    for detector, style in DETECTOR_STYLE.items():
        chosen = epoch_rows(rows, detector)
        if not chosen:
            continue
        suffix = "" if detector == "original" else " (hardened)"
        _line(axes[0], chosen, "detection_rate", style, "tab:blue", f"fakes caught, chosen threshold{suffix}")
        _line(axes[0], chosen, "reals_called_fake", style, "tab:purple", f"reals called fake{suffix}", "v")
        _line(axes[1], chosen, "average_precision", style, "tab:blue", f"detector AP{suffix}")
        _line(axes[1], chosen, "roc_auc", style, "tab:cyan", f"detector ROC-AUC{suffix}", ".")
        if detector == "original":
            _line(axes[0], chosen, "disc_detection_rate", "-", "tab:red", "epoch's discriminator, 0.5", "s")
            _line(axes[1], chosen, "disc_average_precision", "-", "tab:red", "discriminator AP", "s")
    axes[0].set_title("Detection (95% intervals as bands)")
    axes[0].set_ylabel("share of images")
    axes[1].set_title("Fakes vs real test images")
    for axis in axes[:2]:
        axis.set_ylim(-0.02, 1.02)


def _quality_panels(axes, rows: list[dict]) -> None:
    chosen = epoch_rows(rows)
    reals = next((row for row in rows if row["kind"] == "real" and row.get("faces_found") is not None), None)
    _line(axes[0], chosen, "faces_found", "-", "tab:green", "fakes with a face (MTCNN)")
    if reals is not None:
        axes[0].axhline(reals["faces_found"], color="black", linestyle=":", label="real test images")
        axes[0].axhspan(reals["faces_found_low"], reals["faces_found_high"], color="black", alpha=0.08)
    axes[0].set_title("Face found")
    axes[0].set_ylim(-0.02, 1.02)
    _line(axes[1], chosen, "kid_inception", "-", "tab:orange", "KID, InceptionV3 features")
    _line(axes[1], chosen, "kid_detector", "--", "tab:gray", "KID, as the detector sees them")
    values = [abs(_number(row.get(key))) for row in chosen for key in ("kid_inception", "kid_detector")]
    values = [value for value in values if math.isfinite(value) and value > 0]
    if values and max(values) > 100 * min(values):
        # Orders of magnitude apart: a log scale, linear near 0 where the unbiased estimate can dip below it.
        axes[1].set_yscale("symlog", linthresh=max(min(values), 1e-3))
    axes[1].set_title("KID between fakes and real test images")


def plot_epochs(rows: list[dict], path: Path) -> Path:
    """Detection, AP/ROC-AUC, face-found rate and KID against GAN epoch, with 95% bands."""
    plt = pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    _detection_panels(axes[0], rows)
    _quality_panels(axes[1], rows)
    for axis in axes[1]:
        axis.set_xlabel("GAN epoch")
    _finish(axes.ravel())
    return save_figure(figure, path)


def plot_robustness(rows: list[dict], path: Path) -> Path:
    """Fakes caught and reals called fake against each perturbation's level: one panel per perturbation."""
    from gan_lab.stress.perturb import PERTURBATIONS

    plt = pyplot()
    sweeps = [row for row in rows if row["kind"] == "sweep"]
    names = [name for name in PERTURBATIONS if any(row["perturbation"] == name for row in sweeps)]
    epochs = sorted({row["epoch"] for row in sweeps})
    colours = dict(zip(epochs, ("tab:blue", "tab:orange", "tab:green")))
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3.8), squeeze=False)
    for axis, name in zip(axes[0], names):
        for detector, style in DETECTOR_STYLE.items():
            for epoch in epochs:
                points = [
                    row
                    for row in sweeps
                    if row["perturbation"] == name and row["detector"] == detector and row["epoch"] == epoch
                ]
                if not points:
                    continue
                levels = [row["level"] for row in points]
                suffix = f"epoch {epoch}" + ("" if detector == "original" else ", hardened")
                for key, marker, label in (("detection_rate", "o", "caught"), ("reals_called_fake", "v", "reals→fake")):
                    axis.plot(
                        levels,
                        [row[key] for row in points],
                        style,
                        marker=marker,
                        color=colours[epoch],
                        label=f"{label}, {suffix}",
                    )
                    axis.fill_between(
                        levels,
                        [row[f"{key}_low"] for row in points],
                        [row[f"{key}_high"] for row in points],
                        color=colours[epoch],
                        alpha=0.12,
                        linewidth=0,
                    )
        axis.set_title(name)
        axis.set_xlabel(PERTURBATIONS[name][1])
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        if name in ("jpeg", "rescale"):
            axis.invert_xaxis()  # stronger perturbation to the right, as in the other panels
        axis.legend(fontsize=6)
    return save_figure(figure, path)


def write_gallery(fooled: dict[int, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """One row per epoch: the fakes with the lowest P(fake), left to right."""
    from detector.data.images import image_grid, save_png

    epochs = sorted(fooled)
    columns = max(len(fooled[epoch][0]) for epoch in epochs)
    size = fooled[epochs[0]][0].shape[1:]
    tiles = []
    for epoch in epochs:
        pixels = fooled[epoch][0]
        blank = np.ones((columns - len(pixels), *size), dtype=np.float32)
        tiles.append(np.concatenate([pixels, blank]) if len(blank) else pixels)
    return save_png(path, image_grid(np.concatenate(tiles), columns=columns))


def write_closest_pairs(closest: dict[int, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Per epoch two rows: the fakes nearest a training image, and below each, that training image."""
    from detector.data.images import image_grid, save_png

    tiles = [images for epoch in sorted(closest) for images in closest[epoch]]
    return save_png(path, image_grid(np.concatenate(tiles), columns=len(tiles[0])))

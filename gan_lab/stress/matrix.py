"""The generalisation matrix: every detector against every fake source, accuracy and AP with 95% intervals.

Rows are detectors, columns are fake sources: a GAN run at an epoch (fresh latents from the
scoring stream), the fakes of a detector's own data set (its test split: the kind of fakes
it trained on, images it did not), or a folder of fake images (a StyleGAN's, a diffusion
model's). Each detector is scored against its own real test images (leakage-checked). A
cell holds balanced accuracy (the mean of fakes caught and reals passed, at the detector's
validation threshold) and AP, each with its interval; the last column is each row's mean.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path

import numpy as np

from detector import FAKE
from detector.base.errors import LabError
from detector.base.runs import atomic_write_text
from detector.data.images import is_image_file
from gan_lab.gan.latents import SCORING_STREAM, check_not_grid, seeded_latents
from gan_lab.stress.epoch_metrics import detection_figures

CELL_FIGURES = ("balanced_accuracy", "average_precision", "detection_rate", "reals_called_fake", "roc_auc")
MATRIX_COLUMNS = (
    "detector",
    "source",
    "source_kind",
    "epoch",
    "n_fake",
    "n_real",
    *(column for name in CELL_FIGURES for column in (name, f"{name}_low", f"{name}_high")),
)
MEAN = "mean"


@dataclasses.dataclass(frozen=True)
class Source:
    """One column of the matrix."""

    label: str
    kind: str  # "gan", "data" (a data set's test-split fakes) or "folder"
    path: Path
    epoch: int | None = None


def gan_sources(gan_dir: Path, epochs: list[int]) -> list[Source]:
    """One column per chosen epoch of a GAN run."""
    return [Source(f"{gan_dir.name} @ {epoch}", "gan", gan_dir, epoch) for epoch in epochs]


def data_source(index) -> Source:
    return Source(f"{Path(index.root).name} fakes (test split)", "data", Path(index.root))


def folder_source(folder: str | os.PathLike) -> Source:
    """A folder of fake images as a column; LabError when it holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabError(f"--fakes {folder}: folder not found")
    if not folder_images(folder):
        raise LabError(f"--fakes {folder} has no images (.jpg .jpeg .png .bmp .webp)")
    return Source(f"{folder.name} (folder)", "folder", folder)


def folder_images(folder: Path) -> list[str]:
    """Every image file under a folder, sorted."""
    found = []
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        found.extend(os.path.join(directory, name) for name in files if is_image_file(name))
    return sorted(found)


class SourceFakes:
    """Fakes of each source, made once and fitted to each detector's input as its training fitted images."""

    def __init__(self, n: int, seed: int, batch_size: int, indexes: dict[Path, object], encoding=None):
        self.n, self.seed, self.batch_size, self.indexes = n, seed, batch_size, indexes
        self.encoding = encoding  # gan_lab.stress.formats.Encoding for GAN fakes, None: as generated
        self._generated: dict[Source, np.ndarray] = {}

    def _generate(self, source: Source) -> np.ndarray:
        from gan_lab.gan.checkpoints import load_generator
        from gan_lab.gan.sample import generate

        if source not in self._generated:
            generator = load_generator(source.path, source.epoch)
            latents = seeded_latents(self.seed, source.epoch, self.n, int(generator.input_shape[-1]), SCORING_STREAM)
            check_not_grid(latents, source.path)
            pixels = generate(generator, latents, self.batch_size)
            self._generated[source] = pixels if self.encoding is None else np.asarray(self.encoding(pixels))
        return self._generated[source]

    def for_detector(self, source: Source, detector) -> np.ndarray:
        """float32 pixels of up to n fakes of `source`, at the detector's size."""
        from detector.data.datasets import class_images, load_images

        if source.kind == "gan":
            pixels = self._generate(source)
            if pixels.shape[1:3] == (detector.size, detector.size):
                return pixels
            images = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
            return np.stack([detector.prepare(image, upscale=True) for image in images]).astype(np.float32)
        if source.kind == "data":
            index = self.indexes[source.path]
            return class_images(index, "test", FAKE, detector.size, detector.crop, self.n, seed=self.seed)
        paths = folder_images(source.path)
        order = np.random.default_rng(self.seed).permutation(len(paths))
        pixels, _, _ = load_images([paths[i] for i in order], detector.size, crop=detector.crop, limit=self.n)
        return np.asarray(pixels, dtype=np.float32)


def matrix_cell(detector_label: str, source: Source, fake_p_fake, real_p_fake, threshold, seed, resamples) -> dict:
    """One cell: the source's fakes against the detector's reals."""
    figures = detection_figures(fake_p_fake, real_p_fake, threshold, seed, resamples)
    return {
        "detector": detector_label,
        "source": source.label,
        "source_kind": source.kind,
        "epoch": source.epoch,
        "n_fake": int(len(fake_p_fake)),
        "n_real": int(len(real_p_fake)),
        **{column: figures[column] for column in MATRIX_COLUMNS if column in figures},
    }


def with_means(rows: list[dict]) -> list[dict]:
    """The rows plus one per detector whose figures are the mean over its sources (no interval)."""
    means = []
    for detector in dict.fromkeys(row["detector"] for row in rows):
        own = [row for row in rows if row["detector"] == detector]
        mean = {"detector": detector, "source": MEAN, "source_kind": MEAN}
        for name in CELL_FIGURES:
            values = [row[name] for row in own if row.get(name) is not None and math.isfinite(row[name])]
            mean[name] = float(np.mean(values)) if values else None
        means.append(mean)
    return rows + means


def write_matrix_csv(path: Path, rows: list[dict]) -> Path:
    """matrix.csv: one row per (detector, source), the means last."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MATRIX_COLUMNS)
    for row in rows:
        cells = []
        for column in MATRIX_COLUMNS:
            value = row.get(column)
            cells.append("" if value is None else (f"{value:.6g}" if isinstance(value, float) else value))
        writer.writerow(cells)
    return atomic_write_text(path, buffer.getvalue())


def read_matrix_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of matrix.csv, numbers as floats (None where blank)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    text = {"detector", "source", "source_kind"}
    return [
        {key: (value if key in text else (float(value) if value != "" else None)) for key, value in row.items()}
        for row in rows
    ]


def _grid(rows: list[dict], key: str) -> tuple[list[str], list[str], np.ndarray]:
    detectors = list(dict.fromkeys(row["detector"] for row in rows))
    sources = list(dict.fromkeys(row["source"] for row in rows))
    values = np.full((len(detectors), len(sources)), np.nan)
    for row in rows:
        if row.get(key) is not None:
            values[detectors.index(row["detector"]), sources.index(row["source"])] = row[key]
    return detectors, sources, values


def _half_width(row: dict | None, key: str) -> float | None:
    if row is None or row.get(f"{key}_low") is None or row.get(f"{key}_high") is None:
        return None
    return (row[f"{key}_high"] - row[f"{key}_low"]) / 2.0


def plot_matrix(rows: list[dict], path: Path) -> Path:
    """A heatmap per figure (balanced accuracy, AP): detectors down, sources across, value ± half interval."""
    from gan_lab.stress.plotting import pyplot, save_figure

    plt = pyplot()
    detectors, sources, _ = _grid(rows, "balanced_accuracy")
    figure, axes = plt.subplots(
        1, 2, figsize=(max(7.0, 2.6 * len(sources) + 2.5), 1.1 * len(detectors) + 2.2), squeeze=False
    )
    by_cell = {(row["detector"], row["source"]): row for row in rows}
    for axis, (key, title) in zip(axes[0], (("balanced_accuracy", "accuracy (balanced)"), ("average_precision", "AP"))):
        _, _, values = _grid(rows, key)
        image = axis.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
        for i, detector in enumerate(detectors):
            for j, source in enumerate(sources):
                if not math.isfinite(values[i, j]):
                    continue
                half = _half_width(by_cell.get((detector, source)), key)
                text = f"{values[i, j]:.2f}" + (f"\n±{half:.2f}" if half is not None else "")
                axis.text(j, i, text, ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(sources)), [source.replace(" @ ", "\n@ ") for source in sources], fontsize=7)
        axis.set_yticks(range(len(detectors)), detectors, fontsize=7)
        axis.set_title(title)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return save_figure(figure, path)


def _cell_text(row: dict | None, key: str) -> str:
    if row is None or row.get(key) is None or not math.isfinite(row[key]):
        return "-"
    if row.get(f"{key}_low") is None:
        return f"{row[key]:.3f}"
    return f"{row[key]:.3f} [{row[f'{key}_low']:.3f}, {row[f'{key}_high']:.3f}]"


def matrix_table(rows: list[dict]) -> list[str]:
    """Markdown: detectors down, sources across, "balanced accuracy / AP" with intervals per cell."""
    detectors, sources, _ = _grid(rows, "balanced_accuracy")
    by_cell = {(row["detector"], row["source"]): row for row in rows}
    lines = ["| detector | " + " | ".join(sources) + " |", "| --- |" + " --- |" * len(sources)]
    for detector in detectors:
        cells = [
            f"{_cell_text(by_cell.get((detector, source)), 'balanced_accuracy')}<br>"
            f"AP {_cell_text(by_cell.get((detector, source)), 'average_precision')}"
            for source in sources
        ]
        lines.append(f"| `{detector}` | " + " | ".join(cells) + " |")
    return lines

"""Honest evaluation of a detector run: threshold from the validation split, metrics on the test split.

The test split is only ever scored, never used to choose anything. `evaluate_run` writes
metrics.json, test_scores.csv, plots/ (ROC, precision-recall, confusion matrix,
reliability diagram, score histogram, most confident mistakes) and report.md.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from detector import CLASS_NAMES
from detector.base.errors import LabError
from detector.base.runs import (
    atomic_write_bytes,
    atomic_write_text,
    read_json,
    require_run_dir,
    write_json,
)
from detector.inference.metrics import (
    average_precision,
    best_threshold,
    binary_metrics,
    calibration_bins,
    equal_error_rate,
    expected_calibration_error,
    operating_thresholds,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)

THRESHOLD_CRITERION = "accuracy"
CALIBRATION_BINS = 10
EVALUATION_BATCH_SIZE = 128
GALLERY_SIZE = 8  # most confident mistakes of each kind
# (file name, title) of every plot evaluate_run writes, in report order.
PLOTS = (
    ("roc.png", "ROC curve"),
    ("precision_recall.png", "Precision-recall curve"),
    ("confusion_matrix.png", "Confusion matrix"),
    ("reliability.png", "Reliability diagram"),
    ("score_histogram.png", "P(fake) by true class"),
    ("mistakes.png", "Most confident mistakes"),
)
# Shown in the report's table and printed by the CLI, in this order.
TABLE_KEYS = (
    ("accuracy", "Accuracy (threshold 0.5)"),
    ("accuracy_at_threshold", "Accuracy (chosen threshold)"),
    ("threshold", "Chosen threshold (from validation)"),
    ("precision", "Precision (fake)"),
    ("recall", "Recall (fake)"),
    ("f1", "F1 (fake)"),
    ("roc_auc", "ROC-AUC"),
    ("average_precision", "Average precision"),
    ("accuracy_real", "Accuracy on real"),
    ("accuracy_fake", "Accuracy on fake"),
    ("ece", "Expected calibration error"),
    ("n_test", "Test images"),
)


def score_split(detector, split, progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """P(fake), labels and paths for every readable image of a data split, in batches.

    Images are fitted the way the run was trained (its `crop` setting).
    """
    from detector.data.datasets import load_images, make_dataset

    paths = [str(path) for path in split.paths]
    if not paths:
        return np.zeros(0), np.zeros(0, dtype=np.int64), []
    dataset = make_dataset(
        split, size=detector.size, batch_size=EVALUATION_BATCH_SIZE, crop=detector.crop, shuffle=False
    )
    batches = dataset
    if progress:
        from detector.base.console import progress_bar

        batches = progress_bar(
            dataset, total=math.ceil(len(paths) / EVALUATION_BATCH_SIZE), unit="batch", desc="Scoring"
        )
    outputs, labels = [], []
    for images, batch_labels in batches:
        outputs.append(detector.predict_batch(images))
        labels.append(np.asarray(batch_labels))
    from detector.models.zoo import outputs_to_p_fake

    scores = outputs_to_p_fake(np.concatenate(outputs), detector.head) if outputs else np.zeros(0)
    labels = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, dtype=np.int64)
    if len(scores) == len(paths):
        return scores, labels, paths
    # Unreadable files were skipped, so scores no longer line up with paths: score again
    # in chunks that report which files they kept (rare, and only costs time).
    scores, labels, kept_paths = [], [], []
    for start in range(0, len(paths), EVALUATION_BATCH_SIZE):
        chunk = paths[start : start + EVALUATION_BATCH_SIZE]
        chunk_labels = dict(zip(chunk, np.asarray(split.labels)[start : start + EVALUATION_BATCH_SIZE]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # make_dataset already warned about each file
            images, _, kept = load_images(chunk, detector.size, crop=detector.crop)
        if len(kept):
            scores.append(detector.score(images))
            labels.extend(int(chunk_labels[str(path)]) for path in kept)
            kept_paths.extend(str(path) for path in kept)
    return np.concatenate(scores) if scores else np.zeros(0), np.asarray(labels, dtype=np.int64), kept_paths


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "data"


def _index(root: Path, config: dict):
    """The run's splits of `root`: its own data folder, or another one split the same way."""
    from detector.data.datasets import run_index

    return run_index({**config, "data": os.fspath(root)}, root)


def _choose_threshold(detector, index, progress: bool) -> tuple[float, dict]:
    """Threshold maximising validation accuracy, and what it was chosen on."""
    valid = index.splits.get("valid")
    if valid is None or len(valid.paths) == 0:
        warnings.warn(f"{index.root} has no validation images; using threshold 0.5", stacklevel=3)
        return 0.5, {"threshold_source": "default (no validation images)", "n_valid": 0}
    scores, labels, _ = score_split(detector, valid, progress)
    if len(scores) == 0:
        return 0.5, {"threshold_source": "default (no readable validation images)", "n_valid": 0}
    threshold = best_threshold(labels, scores, THRESHOLD_CRITERION)
    info = {
        "threshold_source": f"validation split of {index.root}",
        "threshold_criterion": THRESHOLD_CRITERION,
        "n_valid": int(len(scores)),
        "valid_accuracy": binary_metrics(labels, scores, 0.5)["accuracy"],
        "valid_accuracy_at_threshold": binary_metrics(labels, scores, threshold)["accuracy"],
        **operating_thresholds(labels, scores),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one-class validation: nan is the answer
        info["valid_roc_auc"] = roc_auc(labels, scores)
    return threshold, info


def split_metrics(labels, scores, threshold: float) -> dict:
    """Every test-split number evaluate_run reports, as plain keys."""
    at_half = binary_metrics(labels, scores, 0.5)
    at_threshold = binary_metrics(labels, scores, threshold)
    metrics = {
        key: at_half[key]
        for key in ("accuracy", "precision", "recall", "f1", "accuracy_real", "accuracy_fake", "confusion_matrix")
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        metrics["roc_auc"] = roc_auc(labels, scores)
        metrics["average_precision"] = average_precision(labels, scores)
        metrics["eer"] = equal_error_rate(labels, scores)
    for warning in caught:
        warnings.warn(f"test split: {warning.message}", RuntimeWarning, stacklevel=2)
    metrics["ece"] = expected_calibration_error(labels, scores, CALIBRATION_BINS)
    metrics["ece_bins"] = CALIBRATION_BINS
    metrics["threshold"] = float(threshold)
    for key in ("accuracy", "precision", "recall", "f1", "accuracy_real", "accuracy_fake", "confusion_matrix"):
        metrics[f"{key}_at_threshold"] = at_threshold[key]
    metrics["n_test"] = at_half["n"]
    metrics["n_test_real"] = at_half["n_real"]
    metrics["n_test_fake"] = at_half["n_fake"]
    return metrics


@dataclasses.dataclass(frozen=True)
class _Target:
    """What an evaluation scores and where it writes: the run's own test split, or another folder's."""

    data_root: Path
    out_dir: Path
    other: bool  # another folder than the run's own data
    run_root: Path | None  # the run's own data folder, when it is still on this machine


def _target(run_dir: Path, config: dict, data) -> _Target:
    run_data = config.get("data")
    if not run_data or run_data == "synth" or not Path(run_data).is_dir():
        if data is None:
            raise LabError(
                f"{run_dir}/config.json names data={run_data!r}, which is not a folder on this machine; "
                "pass the data folder to evaluate on (--data DIR)"
            )
    run_root = Path(run_data) if run_data and Path(run_data).is_dir() else None
    other = data is not None and (run_root is None or Path(data).resolve() != run_root.resolve())
    if not other:
        return _Target(run_root, run_dir, False, run_root)
    data_root = Path(data)
    if not data_root.is_dir():
        raise LabError(f"Data folder not found: {data_root}")
    return _Target(data_root, run_dir / "evaluations" / _slug(data_root.resolve().name), True, run_root)


def _threshold(detector, target: _Target, index, config: dict, progress: bool) -> tuple[float, dict]:
    """The threshold and where it came from: always the run's own validation split, never the test split."""
    if not target.other:
        return _choose_threshold(detector, index, progress)
    if target.run_root is not None:
        return _choose_threshold(detector, _index(target.run_root, config), progress)
    # The run's own data is gone: fall back to its recorded threshold, never the new test split.
    return detector.threshold, {"threshold_source": f"{detector.run_dir / 'metrics.json'} (run data not found)"}


def _score_test_split(detector, index, data_root: Path, progress: bool):
    test = index.splits.get("test")
    if test is None or len(test.paths) == 0:
        raise LabError(f"{data_root} has no test images to evaluate on (layout {index.layout!r})")
    scores, labels, paths = score_split(detector, test, progress)
    if len(scores) == 0:
        raise LabError(f"None of the {len(test.paths)} test images in {data_root} could be read")
    return scores, labels, paths


def _write_metrics(target: _Target, metrics: dict) -> None:
    metrics_path = target.out_dir / "metrics.json"
    previous = {}
    if not target.other and metrics_path.is_file():
        # Keep what training recorded there (best epoch, ...); every evaluation key is replaced.
        try:
            previous = read_json(metrics_path)
        except LabError:
            previous = {}
    write_json(metrics_path, {**previous, **metrics})


def evaluate_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate a detector run on its test split and write metrics.json, test_scores.csv, plots/ and report.md.

    data: another image folder to evaluate on. Its results go to
    run_dir/evaluations/<folder name>/ and the threshold stays the one chosen on the
    run's own validation split.
    Returns the metrics dict (also in metrics.json) plus "out_dir".
    """
    from detector.inference.predict import load_detector

    run_dir = require_run_dir(run_dir, "detector")
    detector = load_detector(run_dir)
    config = detector.config
    target = _target(run_dir, config, data)
    index = _index(target.data_root, config)
    threshold, threshold_info = _threshold(detector, target, index, config, progress)
    scores, labels, paths = _score_test_split(detector, index, target.data_root, progress)
    metrics = {
        **split_metrics(labels, scores, threshold),
        **threshold_info,
        "data": str(target.data_root),
        "layout": index.layout,
        "split": "test",
        "model": config.get("model"),
        "size": detector.size,
        "head": detector.head,
        "crop": detector.crop,
    }
    target.out_dir.mkdir(parents=True, exist_ok=True)
    _write_metrics(target, metrics)
    _write_scores(target.out_dir / "test_scores.csv", paths, labels, scores)
    write_plots(target.out_dir / "plots", labels, scores, threshold, paths, detector)
    training_plots = [] if target.other else _training_plots(run_dir)
    _write_report(target.out_dir, run_dir, metrics, training_plots=training_plots)
    return {**metrics, "out_dir": str(target.out_dir)}


def _write_scores(path: Path, paths, labels, scores) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "label", "p_fake"])
    for file, label, score in zip(paths, labels, scores):
        writer.writerow([file, int(label), f"{float(score):.6f}"])
    atomic_write_text(path, buffer.getvalue())


def save_figure(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _figure(width: float = 5.0, height: float = 4.0, rows: int = 1, columns: int = 1):
    """A figure drawn with the Agg canvas, outside pyplot: no window, no global backend change."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(rows, columns, squeeze=rows == columns == 1)
    return figure, axes


def _roc_figure(labels, scores, threshold: float):
    figure, axes = _figure()
    if labels.min() != labels.max():  # both classes
        fpr, tpr, _ = roc_curve(labels, scores)
        axes.plot(fpr, tpr, label=f"AUC = {roc_auc(labels, scores):.3f}")
        axes.legend(loc="lower right")
    else:
        axes.text(0.5, 0.5, "ROC undefined: one class only", ha="center")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set(
        xlabel="False positive rate (real called fake)", ylabel="True positive rate (fake caught)", title="ROC curve"
    )
    return figure


def _precision_recall_figure(labels, scores, threshold: float):
    figure, axes = _figure()
    if labels.any():
        precision, recall, _ = precision_recall_curve(labels, scores)
        axes.step(recall, precision, where="post", label=f"AP = {average_precision(labels, scores):.3f}")
        axes.axhline(labels.mean(), linestyle="--", color="grey", label="chance")
        axes.legend(loc="lower left")
    else:
        axes.text(0.5, 0.5, "No fake images", ha="center")
    axes.set(xlabel="Recall (fake)", ylabel="Precision (fake)", title="Precision-recall curve", ylim=(0, 1.02))
    return figure


def _confusion_figure(labels, scores, threshold: float):
    figure, axes_grid = _figure(9.0, 4.0, 1, 2)
    for axes, cut, title in (
        (axes_grid[0][0], 0.5, "threshold 0.5"),
        (axes_grid[0][1], threshold, f"chosen threshold {threshold:.3f}"),
    ):
        matrix = np.asarray(binary_metrics(labels, scores, cut)["confusion_matrix"])
        axes.imshow(matrix, cmap="Blues")
        for (row, column), count in np.ndenumerate(matrix):
            color = "white" if count > matrix.max() / 2 else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=14)
        axes.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=CLASS_NAMES,
            yticklabels=CLASS_NAMES,
            xlabel="Predicted",
            ylabel="True",
            title=title,
        )
    return figure


def _reliability_figure(labels, scores, threshold: float):
    figure, axes = _figure()
    table = calibration_bins(labels, scores, CALIBRATION_BINS)
    centres = (table["edges"][:-1] + table["edges"][1:]) / 2
    filled = table["counts"] > 0
    axes.bar(
        centres[filled],
        table["fraction_fake"][filled],
        width=1.0 / CALIBRATION_BINS,
        edgecolor="black",
        alpha=0.7,
        label="fraction fake",
    )
    axes.plot(table["mean_score"][filled], table["fraction_fake"][filled], "o-", color="tab:red", label="mean P(fake)")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ece = expected_calibration_error(labels, scores, CALIBRATION_BINS)
    axes.set(xlabel="P(fake)", ylabel="Fraction fake", title=f"Reliability (ECE = {ece:.3f})", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left")
    return figure


def _histogram_figure(labels, scores, threshold: float):
    figure, axes = _figure()
    bins = np.linspace(0, 1, 21)
    for label, name in enumerate(CLASS_NAMES):
        axes.hist(scores[labels == label], bins=bins, alpha=0.6, label=f"{name} ({int((labels == label).sum())})")
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    axes.set(xlabel="P(fake)", ylabel="Images", title="P(fake) by true class")
    axes.legend()
    return figure


# Each plot's file name and the function that draws it, in the order write_plots writes them.
_FIGURES = (
    ("roc.png", _roc_figure),
    ("precision_recall.png", _precision_recall_figure),
    ("confusion_matrix.png", _confusion_figure),
    ("reliability.png", _reliability_figure),
    ("score_histogram.png", _histogram_figure),
)


def write_plots(plot_dir: Path, labels, scores, threshold: float, paths, detector=None) -> list[Path]:
    """Write every evaluation plot (see PLOTS) into plot_dir and return their paths."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    written = [save_figure(draw(labels, scores, threshold), plot_dir / name) for name, draw in _FIGURES]
    written.append(_mistakes_gallery(plot_dir / "mistakes.png", labels, scores, threshold, paths, detector))
    return written


def _mistakes_gallery(path: Path, labels, scores, threshold: float, paths, detector) -> Path:
    """Real images scored most fake and fakes scored most real, with their P(fake)."""
    from detector.data.images import fit_image, load_rgb

    predicted = scores >= threshold
    false_positives = np.flatnonzero((labels == 0) & predicted)
    false_negatives = np.flatnonzero((labels == 1) & ~predicted)
    rows = (
        ("real called fake", false_positives[np.argsort(-scores[false_positives], kind="stable")][:GALLERY_SIZE]),
        ("fake called real", false_negatives[np.argsort(scores[false_negatives], kind="stable")][:GALLERY_SIZE]),
    )
    columns = max(1, max(len(indices) for _, indices in rows))
    figure, grid = _figure(1.6 * columns + 0.6, 4.2, 2, columns)
    size = detector.size if detector is not None else 64
    crop = detector.crop if detector is not None else "resize"
    for row, (title, indices) in enumerate(rows):
        for column in range(columns):
            axes = grid[row][column]
            axes.axis("off")
            if column >= len(indices):
                if not len(indices) and column == columns // 2:
                    axes.text(0.5, 0.5, f"no {title}", ha="center", va="center", transform=axes.transAxes)
                continue
            index = indices[column]
            try:
                pixels = fit_image(load_rgb(paths[index]), size, mode=crop)
                axes.imshow(pixels)
            except LabError:
                axes.text(0.5, 0.5, "unreadable", ha="center", transform=axes.transAxes)
            axes.set_title(f"P(fake)={scores[index]:.2f}\n{Path(paths[index]).name[:18]}", fontsize=7)
        grid[row][0].text(
            -0.1, 0.5, title, rotation=90, ha="right", va="center", transform=grid[row][0].transAxes, fontsize=9
        )
    figure.suptitle(f"Most confident mistakes at threshold {threshold:.3f}")
    return save_figure(figure, path)


def _training_plots(run_dir: Path) -> list[Path]:
    plot_dir = run_dir / "plots"
    ours = {name for name, _ in PLOTS}
    return sorted(p for p in plot_dir.glob("*.png") if p.name not in ours) if plot_dir.is_dir() else []


def _format(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_table(metrics: dict) -> str:
    """The headline metrics as aligned text lines, for the terminal."""
    width = max(len(title) for _, title in TABLE_KEYS)
    return "\n".join(f"{title:<{width}}  {_format(metrics.get(key))}" for key, title in TABLE_KEYS if key in metrics)


def _write_report(out_dir: Path, run_dir: Path, metrics: dict, training_plots: list[Path]) -> Path:
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines = [
        f"# Evaluation of {run_dir.name}",
        "",
        f"Model `{metrics['model']}` ({metrics['size']} px, {metrics['head']} head) on the test split of "
        f"`{metrics['data']}` ({metrics['n_test']} images: {metrics['n_test_real']} real, {metrics['n_test_fake']} fake).",
        f"The threshold {metrics['threshold']:.4f} was chosen on the {metrics['threshold_source']}"
        + (f" (maximum {metrics['threshold_criterion']})" if "threshold_criterion" in metrics else "")
        + "; the test split was not used to choose anything.",
        "",
        "| Metric | Value |",
        "| --- | --- |",
        *(f"| {title} | {_format(metrics.get(key))} |" for key, title in TABLE_KEYS if key in metrics),
        "",
        "Confusion matrix at threshold 0.5 (rows: true class, columns: predicted):",
        "",
        "| | predicted real | predicted fake |",
        "| --- | --- | --- |",
        f"| real | {tn} | {fp} |",
        f"| fake | {fn} | {tp} |",
        "",
        "## Plots",
        "",
        *(f"- [{title}](plots/{name})" for name, title in PLOTS),
        "",
        "Per-image scores: [test_scores.csv](test_scores.csv).",
    ]
    if training_plots:
        lines += ["", "## Training", "", *(f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in training_plots)]
    lines.append("")
    return atomic_write_text(out_dir / "report.md", "\n".join(lines))

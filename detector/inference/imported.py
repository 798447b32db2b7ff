"""Detectors in and out of the lab: an outside model made into a detector run, a lab run exported.

    import_detector(ImportConfig(model="cnndetection.onnx", size=224, layout="nchw",
                                 normalize="imagenet", output="logit", calibrate="data/140k"))
    export_detector("runs/00001-detector-cnn3", "onnx", "cnn3.onnx")

An imported run is a detector run like any other (`runs/NNNNN-detector-NAME/`): config.json
holds the adaptor and where the model came from, the model is copied in, and report.md is a
short card saying what the lab knows of it. Every scoring path takes it as a lab run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from detector.base.errors import LabError
from detector.base.runs import atomic_write_text, create_run_dir, read_json, write_json
from detector.models.interchange import Adaptor, OutsideModel, export_model, model_format

_MODEL_FILES = {"onnx": "model.onnx", "savedmodel": "saved_model", "keras": "imported.keras"}


@dataclasses.dataclass
class ImportConfig:
    """Every option of an import; the run's config.json holds them, resolved."""

    model: str = ""  # an ONNX file, a TF SavedModel folder or a .keras file; the format is read from the path
    size: int = 224  # the model's input side in pixels
    layout: str = "nhwc"  # "nhwc" or "nchw" (PyTorch's)
    normalize: str = "unit"  # "unit" [0, 1], "byte" [0, 255], "symmetric" [-1, 1], "imagenet" (x - mean) / std
    output: str = "probability"  # "logit" or "probability" of fake, or "softmax" (several outputs per image)
    fake_index: int | None = None  # with output "softmax": which output is the fake class
    threshold: float = 0.5  # the decision threshold, when not calibrated
    calibrate: str | None = None  # a real/fake folder: pick the threshold on its validation split, as lab runs do
    crop: str = "resize"  # how images of another shape are fitted: "resize" or "crop" (centre square)
    seed: int = 0  # the calibration folder's split, as a lab run's
    name: str = ""  # run directory suffix (default: the model file's name)

    def adaptor(self) -> Adaptor:
        return Adaptor(self.size, self.layout, self.normalize, self.output, self.fake_index)


def import_detector(config: ImportConfig, runs_dir: str | os.PathLike = "runs", progress: bool = False) -> Path:
    """Make a detector run from an outside model; LabError naming the file when the model cannot serve."""
    source = Path(config.model)
    if not config.model:
        raise LabError("No model given: pass an ONNX file, a SavedModel folder or a .keras file")
    model_format_ = model_format(source)
    adaptor = config.adaptor()
    if not 0.0 <= config.threshold <= 1.0:
        raise LabError(f"--threshold is a P(fake) in [0, 1]. Received: {config.threshold!r}")
    if config.calibrate is not None and not Path(config.calibrate).is_dir():
        raise LabError(f"--calibrate {config.calibrate}: data folder not found")
    OutsideModel(source, adaptor, model_format_).check()  # refused before a run directory exists
    run_dir = create_run_dir("detector", config.name or source.stem or source.name, runs_dir)
    try:
        _fill_run(run_dir, config, source, model_format_, adaptor, progress)
    except BaseException:  # an import that stops halfway leaves no half-made run behind
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def _fill_run(run_dir: Path, config: ImportConfig, source: Path, model_format_: str, adaptor, progress: bool) -> None:
    """The model copied in, config.json (the adaptor with it), metrics.json and the report.md card."""
    model_file = _copy_model(source, run_dir, model_format_)
    resolved = {
        **dataclasses.asdict(config),
        "model": os.fspath(source.resolve()),
        "calibrate": os.fspath(Path(config.calibrate).resolve()) if config.calibrate else None,
        # What every scoring path reads: the folder its threshold and real images come from.
        "data": os.fspath(Path(config.calibrate).resolve()) if config.calibrate else None,
        "imported": {"format": model_format_, "model_file": model_file, "adaptor": adaptor.to_dict()},
    }
    write_json(run_dir / "config.json", resolved)
    metrics = {"threshold": float(config.threshold), "threshold_source": "--threshold (not calibrated)"}
    if config.calibrate:
        metrics = _calibrated(run_dir, progress)
    write_json(run_dir / "metrics.json", metrics)
    _write_card(run_dir, resolved, metrics)


def _copy_model(source: Path, run_dir: Path, model_format_: str) -> str:
    """The model copied into the run (a folder as a whole), under a hidden name until it is whole."""
    name = _MODEL_FILES[model_format_]
    partial = run_dir / f".{name}.tmp"
    try:
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copyfile(source, partial)
    except OSError as error:
        raise LabError(f"Could not copy {source} into {run_dir}: {error}") from None
    partial.rename(run_dir / name)
    return name


def _calibrated(run_dir: Path, progress: bool) -> dict:
    """The threshold picked on the calibration folder's validation split, and the test split's figures."""
    from detector.inference.evaluate import evaluate_run

    metrics = evaluate_run(run_dir, progress=progress)
    metrics.pop("out_dir", None)
    return metrics


def _write_card(run_dir: Path, config: dict, metrics: dict) -> Path:
    adaptor = config["imported"]["adaptor"]
    output = adaptor["output"] + (f" (fake = output {adaptor['fake_index']})" if adaptor["output"] == "softmax" else "")
    if config["calibrate"]:
        threshold = f"{metrics['threshold']:.3f}, chosen on the validation split of `{config['calibrate']}`"
        tested = (
            f"On its test split: accuracy {metrics.get('accuracy', float('nan')):.3f}, "
            f"ROC-AUC {metrics.get('roc_auc', float('nan')):.3f} ({metrics.get('n_test', '?')} images); the evaluation follows."
        )
    else:
        threshold = f"{metrics['threshold']:.3f}, **not calibrated** (given with --threshold, or the default)"
        tested = "Not evaluated here: run `gan-lab detector evaluate RUN --data DIR` on a real/fake folder."
    lines = [
        f"# Imported detector `{run_dir.name}`",
        "",
        f"- model: `{config['model']}` ({config['imported']['format']}), copied to `{config['imported']['model_file']}`",
        f"- input: {adaptor['size']} px, {adaptor['layout'].upper()}, normalisation `{adaptor['normalize']}`; "
        f"images fitted by `{config['crop']}`",
        f"- output: {output}, turned into P(fake)",
        f"- threshold: {threshold}",
        "",
        tested,
        "",
        "The lab cannot reach this model's layers: Grad-CAM and the detector-feature measures",
        "(detector-feature KID, diversity) are not available for it.",
    ]
    evaluation = run_dir / "report.md"  # written by the calibration's evaluation
    if config["calibrate"] and evaluation.is_file():
        lines += ["", "#" + evaluation.read_text(encoding="utf-8")]  # its title one level down
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")


def export_detector(run_dir: str | os.PathLike, export_format: str, out: str | os.PathLike) -> Path:
    """Write a lab detector run as ONNX or a SavedModel that runs with no lab code: [0, 1] NHWC in, P(fake) out."""
    from detector.inference.predict import load_detector

    detector = load_detector(run_dir)
    if detector.imported:
        source = read_json(detector.run_dir / "config.json")["model"]
        raise LabError(f"{detector.run_dir} was imported from {source}: export lab-trained detectors")
    out = Path(out)
    if out.exists():
        raise LabError(f"{out} exists; choose a new --out path")
    return export_model(detector.model, detector.head, out, export_format)

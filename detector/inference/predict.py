"""Load a trained detector run and score images with it: arrays, files, folders or globs."""

from __future__ import annotations

import dataclasses
import functools
import glob
import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from detector.base.errors import LabError
from detector.base.runs import is_number, read_json, require_run_dir
from detector.data.faces import DEFAULT_MARGIN, crop_face, square_around
from detector.data.images import FIT_MODES, fit_image, is_image_file, open_rgb

# Large batches amortise the per-call overhead; 256 images of 224 px are ~150 MB of float32.
SCORE_BATCH_SIZE = 256
_GLOB_CHARACTERS = set("*?[")
# What the page, the API, `detector predict` and the video say of a run trained on SynthFaces.
SYNTHFACES_WARNING = (
    "This detector learned from SynthFaces, the lab's drawn toy faces: its verdicts on real photos mean nothing."
)
NO_FACE_NOTE = "No face found: the whole photo was classified."


def _run_model(model, pixels):
    return model(pixels, training=False)


def compiled_forward(model, size: int):
    """`model(pixels, training=False)` as one traced graph for every batch of (N, size, size, 3) float32 pixels.

    A partial (not a lambda) gives each model its own retracing statistics, so loading several
    models one after another does not trigger TensorFlow's "frequent retracing" warning
    (as `model.predict` on each new model does).
    """
    import tensorflow as tf

    signature = [tf.TensorSpec((None, size, size, 3), tf.float32)]
    return tf.function(functools.partial(_run_model, model), input_signature=signature)


def in_batches(forward, images: np.ndarray, batch_size: int) -> np.ndarray:
    """`forward` on `images` (at least one) a batch at a time, its outputs joined as one array."""
    return np.concatenate(
        [np.asarray(forward(images[start : start + batch_size])) for start in range(0, len(images), batch_size)]
    )


@dataclasses.dataclass
class Detector:
    """A trained detector and what it needs to score images: input size, head, crop and threshold."""

    model: Any
    size: int
    head: str
    crop: str = "resize"
    threshold: float = 0.5
    # Thresholds for fixed false-positive rates on the validation reals ({"threshold_fpr_1": t, ...}), where recorded.
    operating_thresholds: dict = dataclasses.field(default_factory=dict)
    run_dir: Path | None = None
    config: dict = dataclasses.field(default_factory=dict)
    batch_size: int = SCORE_BATCH_SIZE
    outside: Any = None  # an imported model (detector.models.interchange.OutsideModel); `model` is then None
    _forward: Any = dataclasses.field(default=None, init=False, repr=False)
    _feature_forward: Any = dataclasses.field(default=None, init=False, repr=False)

    def _check_images(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1:] != (self.size, self.size, 3):
            raise ValueError(
                f"images must be RGB arrays of shape (N, {self.size}, {self.size}, 3). "
                f"Received: images.shape={images.shape}"
            )
        if images.dtype == np.uint8:
            return images.astype(np.float32) / 255.0
        return images.astype(np.float32, copy=False)

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs for one batch of float32 pixels (one graph call); P(fake) (N, 1) for an imported model."""
        if self.outside is not None:
            return self.outside(batch)[:, None]
        if self._forward is None:
            self._forward = compiled_forward(self.model, self.size)
        return np.asarray(self._forward(batch))

    def score(self, images) -> np.ndarray:
        """P(fake) for a batch of pixels (N, S, S, 3), float32 in [0, 1] (uint8 is scaled)."""
        from detector.models.zoo import outputs_to_p_fake

        images = self._check_images(images)
        if len(images) == 0:
            return np.zeros((0,), dtype=np.float64)
        outputs = in_batches(self.predict_batch, images, self.batch_size)
        return outputs_to_p_fake(outputs, self.head)

    @property
    def imported(self) -> bool:
        """Whether the model came from outside the lab (`gan-lab detector import`): no layers, no gradients here."""
        return self.outside is not None

    def feature_layer(self):
        """The layer just before the head, whose output `features` returns (None for an imported model)."""
        return None if self.imported else self.model.layers[-2]

    def features(self, images) -> np.ndarray | None:
        """Penultimate-layer outputs (N, D), flattened, for a batch of pixels (None for an imported model)."""
        import keras

        if self.imported:
            return None
        images = self._check_images(images)
        if self._feature_forward is None:
            extractor = keras.Model(self.model.inputs, self.feature_layer().output, name="features")
            self._feature_forward = compiled_forward(extractor, self.size)
        if len(images) == 0:
            width = int(np.prod(self.feature_layer().output.shape[1:]))
            return np.zeros((0, width), dtype=np.float32)
        outputs = in_batches(self._feature_forward, images, self.batch_size)
        return outputs.reshape(len(outputs), -1).astype(np.float32)  # float32 from a mixed-precision model too

    def verdict(self, p_fake: float) -> str:
        return "Fake" if p_fake >= self.threshold else "Real"

    def fit_mode(self, crop: str | None = None) -> str:
        """How to fit images of another shape: `crop` when the caller overrides it, else the run's own setting."""
        if crop is not None and crop not in FIT_MODES:
            raise ValueError(f"crop must be None (the run's own) or one of {FIT_MODES}. Received: crop={crop!r}")
        return self.crop if crop is None else crop

    def prepare(self, image, crop: str | None = None, name: str = "image", upscale: bool = False) -> np.ndarray:
        """Fit one RGB image (PIL image or uint8 array, any shape) to the model's input, as the run's training did.

        Every scoring path (predict, explain, the web page, video) comes through here, so
        none of them sees another view of an image than the one the model learned from.
        crop: "resize" or "crop" overrides the run's own setting (None).
        upscale: accept an image smaller than the input (video faces are often small);
        otherwise it is refused with a LabError naming `name`.
        """
        mode = self.fit_mode(crop)
        return fit_image(image, self.size, mode=mode, min_size=None if upscale else self.size, name=name)

    def prepare_photo(
        self, image, finder=None, margin: float = DEFAULT_MARGIN, crop: str | None = None, name: str = "image"
    ) -> tuple[np.ndarray, dict]:
        """Fit a photo to the model's input: its largest face, when `finder` finds one, else the whole photo.

        finder: a face finder from `detector.data.faces.face_finder` ("haar", "mtcnn"), or None to
        classify the whole photo. The face is cut as the video tool cuts it (`crop_face`, with
        `margin`) and fitted by `prepare`; a face smaller than the input is scaled up.
        Returns the pixels and what was found: {"faces": finder name, "face": {"box": [x, y, w, h],
        "crop": [left, top, side, side]} or None, "faces_found": count, "note": ...} ({} without a finder).
        """
        if finder is None:
            return self.prepare(image, crop=crop, name=name), {}
        pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        boxes = finder.find(pixels)
        if not boxes:
            found = {"faces": finder.name, "face": None, "faces_found": 0, "note": NO_FACE_NOTE}
            return self.prepare(image, crop=crop, name=name), found
        box = boxes[0]
        left, top, side = square_around(box, pixels.shape, margin)
        face = {"box": [int(value) for value in box], "crop": [left, top, side, side]}
        found = {"faces": finder.name, "face": face, "faces_found": len(boxes), "note": None}
        return self.prepare(crop_face(pixels, box, margin), crop=crop, name=name, upscale=True), found

    @property
    def trained_on_synthfaces(self) -> bool:
        """Whether the run learned from SynthFaces ("synth", or a folder SynthFaces wrote): see SYNTHFACES_WARNING."""
        if self.config.get("data_source") == "synth":
            return True
        data = self.config.get("data")
        return bool(data) and is_synthfaces_folder(data)

    def score_images(self, images, crop: str | None = None, upscale: bool = False) -> np.ndarray:
        """P(fake) for RGB images of any shapes, each fitted by `prepare`."""
        if len(images) == 0:
            return np.zeros((0,), dtype=np.float64)
        return self.score(np.stack([self.prepare(image, crop=crop, upscale=upscale) for image in images]))


def is_synthfaces_folder(root: str | os.PathLike) -> bool:
    """Whether `root` was written by SynthFaces: its metadata.csv names the artifacts SynthFaces draws."""
    from detector.data.synthfaces import ARTIFACTS

    path = Path(root) / "metadata.csv"
    try:
        with open(path, encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
    except OSError:
        return False
    return set(ARTIFACTS) <= set(header)


def load_detector(run_dir: str | os.PathLike) -> Detector:
    """Load a detector run's model.keras, its config and its validation-chosen threshold (else 0.5)."""
    import keras

    from detector.models.zoo import (
        model_head,  # also registers the custom layers for loading
    )

    run_dir = require_run_dir(run_dir, "detector")
    config = read_json(run_dir / "config.json")
    if "imported" in config:
        return _load_imported(run_dir, config)
    model_path = run_dir / "model.keras"
    if not model_path.is_file():
        raise LabError(f"{run_dir} has no model.keras: has training finished at least one epoch?")
    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        raise LabError(f"{model_path} could not be loaded as a Keras model: {error}") from None
    input_shape = model.input_shape
    size = int(input_shape[1]) if input_shape[1] is not None else int(config.get("size", 64))
    if config.get("size") not in (None, size):
        raise LabError(f"{run_dir}: config.json says size={config['size']} but model.keras takes {size} px")
    head = config.get("head") or model_head(model)
    crop = config.get("crop", "resize")
    if crop not in FIT_MODES:
        raise LabError(f"{run_dir}/config.json says crop={crop!r}; expected one of {FIT_MODES}")
    return Detector(
        model=model,
        size=size,
        head=head,
        crop=crop,
        threshold=_recorded_threshold(run_dir),
        operating_thresholds=_recorded_operating_thresholds(run_dir),
        run_dir=run_dir,
        config=config,
    )


def _recorded_threshold(run_dir: Path) -> float:
    """The threshold in the run's metrics.json (chosen on its validation split), else 0.5."""
    threshold = 0.5
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        threshold = read_json(metrics_path).get("threshold", 0.5)
        if threshold is None or not math.isfinite(threshold):
            threshold = 0.5
    return float(threshold)


def _recorded_operating_thresholds(run_dir: Path) -> dict:
    """The run's validation thresholds for fixed false-positive rates (none in runs made before they were recorded)."""
    from detector.inference.metrics import OPERATING_FPRS, fpr_key

    metrics_path = run_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else {}
    keys = [fpr_key(fpr) for fpr in OPERATING_FPRS]
    return {key: float(metrics[key]) for key in keys if is_number(metrics.get(key))}


def _load_imported(run_dir: Path, config: dict) -> Detector:
    """A run made by `gan-lab detector import`: the outside model behind its recorded adaptor."""
    from detector.models.interchange import Adaptor, OutsideModel

    imported = config["imported"]
    adaptor = Adaptor(**imported["adaptor"])
    outside = OutsideModel(run_dir / imported["model_file"], adaptor, imported["format"])
    crop = config.get("crop", "resize")
    if crop not in FIT_MODES:
        raise LabError(f"{run_dir}/config.json says crop={crop!r}; expected one of {FIT_MODES}")
    return Detector(
        model=None,
        size=adaptor.size,
        head="probability",
        crop=crop,
        threshold=_recorded_threshold(run_dir),
        operating_thresholds=_recorded_operating_thresholds(run_dir),
        run_dir=run_dir,
        config=config,
        outside=outside,
    )


def expand_paths(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[dict]]:
    """Image files named by `paths` (files, folders searched recursively, globs), and error rows.

    A path that is missing, matches nothing or holds no images becomes an error row
    rather than stopping the others.
    """
    files: list[Path] = []
    problems: list[dict] = []
    for entry in paths:
        text = os.fspath(entry)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
            if not found:
                problems.append(_error_row(text, "no image files in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif _GLOB_CHARACTERS & set(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file() and is_image_file(p))
            if not found:
                problems.append(_error_row(text, "no image files match this pattern"))
            files.extend(found)
        else:
            problems.append(_error_row(text, "file not found"))
    # The same file named twice (say, a folder and a glob inside it) is scored once.
    unique = list(dict.fromkeys(files))
    return unique, problems


def _face_text(found: dict) -> str:
    """A row's face: "x y w h" of the box classified, or "none found"."""
    return "none found" if found["face"] is None else " ".join(str(value) for value in found["face"]["box"])


def _error_row(file: str, message: str) -> dict:
    return {"file": file, "p_fake": None, "verdict": f"error: {message}"}


def predict_paths(
    detector: Detector,
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    batch_size: int = 64,
    crop: str | None = None,
    progress: bool = False,
    faces: str | None = None,
    margin: float = DEFAULT_MARGIN,
) -> list[dict]:
    """Score image files, folders and globs: one row {file, p_fake, verdict} per file.

    Images smaller than the model input, unreadable files and missing paths get a row
    whose verdict starts with "error:" naming the problem; the other files are still scored.
    crop: None fits images as the run's training did (its config's crop); "crop" takes the
    centred square before resizing, "resize" stretches.
    faces: "haar" or "mtcnn" classifies each photo's largest face (cut with `margin`), as the
    web page does, and adds a row field "face" ("x y w h", or "none found": the whole photo
    was classified); None classifies whole images.
    """
    from detector.data.faces import check_face_finder, face_finder

    crop = detector.fit_mode(crop)
    finder = face_finder(faces) if check_face_finder(faces) else None
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files, problems = expand_paths(paths)
    if not files and not problems:
        raise LabError("No image paths given")
    scorer = _BatchScorer(detector, batch_size, with_faces=finder is not None)
    for path in _progress(files, progress):
        try:
            pixels, face = detector.prepare_photo(open_rgb(path), finder, margin, crop=crop, name=str(path))
        except LabError as error:
            scorer.rows[path] = _error_row(str(path), str(error))
            continue
        scorer.add(path, pixels, face)
    scorer.flush()
    rows = scorer.rows
    failed = sum(1 for row in rows.values() if row["p_fake"] is None) + len(problems)
    if failed:
        warnings.warn(
            f"{failed} of {len(files) + len(problems)} paths could not be scored; see their rows", stacklevel=2
        )
    return [rows[path] for path in files] + problems


class _BatchScorer:
    """Prepared images gathered into full batches (but the last), so failed files do not shrink model calls."""

    def __init__(self, detector: Detector, batch_size: int, with_faces: bool):
        self.detector, self.batch_size, self.with_faces = detector, batch_size, with_faces
        self.rows: dict[Path, dict] = {}
        self._pending: dict[Path, tuple[np.ndarray, dict]] = {}

    def add(self, path: Path, pixels: np.ndarray, face: dict) -> None:
        self._pending[path] = (pixels, face)
        if len(self._pending) == self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        scores = self.detector.score(np.stack([pixels for pixels, _ in self._pending.values()]))
        for (path, (_, face)), p_fake in zip(self._pending.items(), scores):
            self.rows[path] = {"file": str(path), "p_fake": float(p_fake), "verdict": self.detector.verdict(p_fake)}
            if self.with_faces:
                self.rows[path]["face"] = _face_text(face)
        self._pending.clear()


def _progress(files: list[Path], show: bool) -> Iterable[Path]:
    if not show:
        return files
    from detector.base.console import progress_bar

    return progress_bar(files, unit="image", desc="Scoring")


def write_predictions_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write prediction rows as CSV (file, p_fake, verdict, and face when faces were looked for), atomically."""
    import csv
    import io

    from detector.base.runs import atomic_write_text

    with_faces = any("face" in row for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "p_fake", "verdict", *(["face"] if with_faces else [])])
    for row in rows:
        p_fake = "" if row["p_fake"] is None else f"{row['p_fake']:.6f}"
        writer.writerow([row["file"], p_fake, row["verdict"], *([row.get("face", "")] if with_faces else [])])
    return atomic_write_text(path, buffer.getvalue())

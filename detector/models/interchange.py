"""Detectors made elsewhere and detectors sent elsewhere: ONNX files, TF SavedModels and `.keras` files.

An outside model becomes a detector with the lab's one interface (pixels in [0, 1], NHWC, at
its size in; P(fake) out) through an `Adaptor`: how the model wants its pixels (size, layout,
normalisation) and what it gives back (a logit, a probability, or several outputs of which
one is the fake class). A lab detector leaves as a file that needs no lab code: NHWC float32
pixels in [0, 1] in, P(fake) of shape [N, 1] out.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from detector.base.errors import LabError

LAYOUTS = ("nhwc", "nchw")
NORMALIZATIONS = ("unit", "byte", "symmetric", "imagenet")
OUTPUTS = ("logit", "probability", "softmax")
FORMATS = ("onnx", "savedmodel", "keras")
EXPORT_FORMATS = ("onnx", "savedmodel")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# A row of softmax outputs sums to 1 within this; other rows are taken as logits and softmaxed.
_SUMS_TO_ONE = 1e-3
# Probabilities are clipped this far from 0 and 1 before they become logits.
_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class Adaptor:
    """How an outside model takes pixels and what it returns; recorded in the imported run's config.json.

    normalize: "unit" pixels in [0, 1]; "byte" in [0, 255]; "symmetric" in [-1, 1];
    "imagenet" (x - mean) / std on [0, 1] with ImageNet's RGB mean and std.
    output: "logit" or "probability" of fake, one per image; "softmax" several per image,
    `fake_index` naming the fake one (rows that do not sum to 1 are softmaxed first).
    """

    size: int
    layout: str = "nhwc"
    normalize: str = "unit"
    output: str = "probability"
    fake_index: int | None = None

    def __post_init__(self):
        for option, value, choices in (
            ("layout", self.layout, LAYOUTS),
            ("normalize", self.normalize, NORMALIZATIONS),
            ("output", self.output, OUTPUTS),
        ):
            if value not in choices:
                raise LabError(f"--{option} takes one of {', '.join(choices)}. Received: {value!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8:
            raise LabError(f"--size takes the model's input side in pixels (at least 8). Received: {self.size!r}")
        if self.output == "softmax" and (not isinstance(self.fake_index, int) or self.fake_index < 0):
            raise LabError(
                f"--output softmax needs --fake-index K, the fake class's output. Received: {self.fake_index!r}"
            )
        if self.output != "softmax" and self.fake_index is not None:
            raise LabError(f"--fake-index is for --output softmax only. Received: --output {self.output}")

    @property
    def input_shape(self) -> tuple:
        """The batch shape the model takes, None for the batch."""
        side = self.size
        return (None, side, side, 3) if self.layout == "nhwc" else (None, 3, side, side)

    def _normalised(self, x):
        """Pixels in [0, 1] (a numpy array or a tensor) in the model's value range."""
        if self.normalize == "byte":
            return x * 255.0
        if self.normalize == "symmetric":
            return x * 2.0 - 1.0
        if self.normalize == "imagenet":
            return (x - IMAGENET_MEAN) / IMAGENET_STD
        return x

    def inputs(self, pixels: np.ndarray) -> np.ndarray:
        """The model's input for float32 pixels in [0, 1], NHWC."""
        x = self._normalised(np.asarray(pixels, dtype=np.float32))
        if self.layout == "nchw":
            x = np.transpose(x, (0, 3, 1, 2))
        return np.ascontiguousarray(x, dtype=np.float32)

    def graph_inputs(self, pixels):
        """`inputs` in TensorFlow ops, for a float32 NHWC tensor: differentiable in the pixels."""
        import tensorflow as tf

        x = self._normalised(pixels)
        return tf.transpose(x, (0, 3, 1, 2)) if self.layout == "nchw" else x

    def graph_logit(self, outputs):
        """The logit of P(fake), (N, 1) float32, from the model's output tensor: as `p_fake`, in TensorFlow ops."""
        import tensorflow as tf

        rows = tf.reshape(tf.cast(outputs, tf.float32), (tf.shape(outputs)[0], -1))
        if self.output == "logit":
            return rows[:, :1]
        if self.output == "softmax":
            sums_to_one = tf.reduce_all(rows >= 0.0) & tf.reduce_all(
                tf.abs(tf.reduce_sum(rows, axis=1) - 1.0) <= _SUMS_TO_ONE
            )
            rows = tf.where(sums_to_one, rows, tf.nn.softmax(rows, axis=1))
        index = self.fake_index if self.output == "softmax" else 0
        p_fake = tf.clip_by_value(rows[:, index : index + 1], _EPSILON, 1.0 - _EPSILON)
        return tf.math.log(p_fake) - tf.math.log1p(-p_fake)

    def p_fake(self, outputs, source: str = "the model") -> np.ndarray:
        """P(fake) (N,) from the model's outputs for N images; LabError when they contradict `output` or are NaN."""
        outputs = np.asarray(outputs, dtype=np.float64)
        count = len(outputs) if outputs.ndim else 0
        per_image = outputs.reshape(count, -1) if count else outputs.reshape(0, 0)
        width = per_image.shape[1] if count else 0
        if self.output == "softmax":
            if width < 2 or self.fake_index >= width:
                raise LabError(
                    f"{source} gives {width} output(s) per image, but --output softmax --fake-index "
                    f"{self.fake_index} needs at least {self.fake_index + 1}, and 2"
                )
        elif width != 1:
            raise LabError(
                f"{source} gives {width} outputs per image (shape {outputs.shape}), but --output {self.output} "
                "means one; use --output softmax --fake-index K for several"
            )
        if not np.all(np.isfinite(per_image)):
            raise LabError(f"{source} gave NaN or infinite outputs")
        if self.output == "logit":
            return 1.0 / (1.0 + np.exp(-per_image[:, 0]))
        if self.output == "probability":
            if per_image.min() < 0.0 or per_image.max() > 1.0:
                raise LabError(
                    f"{source} gives outputs outside [0, 1] ({per_image.min():.3g} to {per_image.max():.3g}), "
                    "which are not probabilities; is it --output logit?"
                )
            return per_image[:, 0]
        return _softmax_rows(per_image)[:, self.fake_index]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _softmax_rows(rows: np.ndarray) -> np.ndarray:
    sums_to_one = np.all(rows >= 0.0) and np.allclose(rows.sum(axis=1), 1.0, atol=_SUMS_TO_ONE)
    if sums_to_one:
        return rows
    shifted = np.exp(rows - rows.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def model_format(path: str | os.PathLike) -> str:
    """ "onnx", "savedmodel" or "keras", read from the path; LabError for anything else."""
    path = Path(path)
    if not path.exists():
        raise LabError(f"Model not found: {path}")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise LabError(f"{path} is a folder without saved_model.pb: not a TF SavedModel")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".keras":
        return "keras"
    raise LabError(f"{path}: the format is read from the path: a .onnx file, a .keras file or a SavedModel folder")


class _Onnx:
    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the lab says what went wrong
        try:
            self.session = onnxruntime.InferenceSession(
                os.fspath(path), options, providers=onnxruntime.get_available_providers()
            )
        except Exception as error:  # onnxruntime raises its own types for junk or unsupported files
            raise LabError(f"{path} could not be loaded as an ONNX model: {_first_line(error)}") from None
        declared = self.session.get_inputs()
        if len(declared) != 1:
            raise LabError(f"{path} takes {len(declared)} inputs; a detector takes one batch of images")
        self.input_name = declared[0].name
        self.input_shape = tuple(dim if isinstance(dim, int) else None for dim in declared[0].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class _SavedModel:
    def __init__(self, path: Path):
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(os.fspath(path))
            self.function = loaded.signatures["serving_default"]
        except KeyError:
            raise LabError(f"{path} has no 'serving_default' signature to call") from None
        except Exception as error:
            raise LabError(f"{path} could not be loaded as a TF SavedModel: {_first_line(error)}") from None
        self._loaded = loaded  # the signature's variables live as long as the loaded object
        _, specs = self.function.structured_input_signature
        if len(specs) != 1:
            raise LabError(f"{path}'s serving signature takes {len(specs)} inputs; a detector takes one")
        ((self.input_name, spec),) = specs.items()
        self.input_shape = tuple(spec.shape.as_list())
        self.output_name = sorted(self.function.structured_outputs)[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.graph(x))

    def graph(self, x):
        """The serving signature on a tensor (differentiable: a restored function keeps its gradients)."""
        return self.function(**{self.input_name: x})[self.output_name]


class _Keras:
    def __init__(self, path: Path):
        import keras

        import detector.models.zoo  # noqa: F401  (registers the lab's own layers, for lab files)

        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as error:  # Keras raises many types for a corrupt or foreign file
            raise LabError(f"{path} could not be loaded as a Keras model: {_first_line(error)}") from None
        if len(self.model.inputs) != 1:
            raise LabError(f"{path} takes {len(self.model.inputs)} inputs; a detector takes one batch of images")
        self.input_shape = tuple(self.model.inputs[0].shape)
        self._forward = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self._forward is None:
            import tensorflow as tf

            self._forward = tf.function(self.graph)
        return np.asarray(self._forward(x))

    def graph(self, x):
        """The model in inference mode on a tensor."""
        return self.model(x, training=False)


_LOADERS = {"onnx": _Onnx, "savedmodel": _SavedModel, "keras": _Keras}


def _shape_text(shape) -> str:
    return "(" + ", ".join("N" if dim is None else str(dim) for dim in shape) + ")"


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


class OutsideModel:
    """An ONNX, SavedModel or Keras model behind an `Adaptor`: float32 NHWC pixels in [0, 1] in, P(fake) out."""

    def __init__(self, path: str | os.PathLike, adaptor: Adaptor, model_format_: str | None = None):
        self.path = Path(path)
        self.format = model_format_ or model_format(self.path)
        self.adaptor = adaptor
        self.backend = _LOADERS[self.format](self.path)
        self._check_input_shape()

    def _check_input_shape(self) -> None:
        declared, wanted = self.backend.input_shape, self.adaptor.input_shape
        if len(declared) != 4:
            raise LabError(f"{self.path} takes inputs of shape {declared}; a detector takes a batch of images (rank 4)")
        clashes = [i for i in range(1, 4) if declared[i] is not None and declared[i] != wanted[i]]
        if clashes:
            layout = "NHWC" if self.adaptor.layout == "nhwc" else "NCHW"
            raise LabError(
                f"{self.path} takes inputs of shape {_shape_text(declared)}, but --size "
                f"{self.adaptor.size} --layout {self.adaptor.layout} means {_shape_text(wanted)} "
                f"({layout}); check --size and --layout"
            )

    def raw(self, pixels: np.ndarray) -> np.ndarray:
        """The model's own outputs for float32 NHWC pixels in [0, 1]."""
        try:
            return self.backend(self.adaptor.inputs(pixels))
        except LabError:
            raise
        except Exception as error:
            raise LabError(f"{self.path} failed on a batch of shape {pixels.shape}: {_first_line(error)}") from None

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.adaptor.p_fake(self.raw(pixels), source=os.fspath(self.path))

    def logit_graph(self):
        """A function of float32 NHWC pixel tensors in [0, 1] giving the logit of P(fake), (N, 1), differentiable in
        the pixels: the adaptor's steps as TensorFlow ops around the model. LabError for ONNX, which gives no gradients."""
        graph = getattr(self.backend, "graph", None)
        if graph is None:
            raise LabError(
                f"{self.path} is an {self.format.upper()} model: the lab runs it for scores but reaches no gradients "
                "through it; import the model as a SavedModel or a .keras file for that"
            )
        return lambda pixels: self.adaptor.graph_logit(graph(self.adaptor.graph_inputs(pixels)))

    def check(self) -> None:
        """Run the model on two seeded random images: LabError naming the file when its outputs are unusable."""
        probe = np.random.default_rng(0).random((2, self.adaptor.size, self.adaptor.size, 3), dtype=np.float32)
        self(probe)


def export_model(model, head: str, path: str | os.PathLike, export_format: str) -> Path:
    """Write a lab Keras detector as ONNX or a SavedModel: NHWC float32 pixels in [0, 1] in, P(fake) [N, 1] out."""
    import keras

    if export_format not in EXPORT_FORMATS:
        raise LabError(f"--format takes one of {', '.join(EXPORT_FORMATS)}. Received: {export_format!r}")
    path = Path(path)
    inputs = keras.Input(shape=tuple(model.input_shape[1:]), dtype="float32", name="pixels")
    outputs = model(inputs, training=False)
    if head == "logit":
        outputs = keras.layers.Activation("sigmoid", dtype="float32", name="p_fake")(outputs)
    elif head == "softmax2":
        outputs = keras.layers.Lambda(lambda two: two[:, 1:2], name="p_fake")(outputs)
    exported = keras.Model(inputs, keras.ops.cast(outputs, "float32"), name="detector_p_fake")
    exported(np.zeros((1, *exported.input_shape[1:]), dtype=np.float32))  # traced once before export
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras's ONNX bridge probes np.object
            exported.export(
                os.fspath(path), format="onnx" if export_format == "onnx" else "tf_saved_model", verbose=False
            )
    except ImportError as error:
        raise LabError(f"Exporting to {export_format} needs a package this machine lacks: {error}") from None
    return path

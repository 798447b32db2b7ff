"""Detector architectures behind one registry: `build_model("cnn3", size=64, head="logit")`.

Every model takes float32 RGB pixels in [0, 1] and ends in one of three heads:
"probability" (one sigmoid unit, P(fake)), "logit" (one linear unit, the DCGAN
discriminator's), or "softmax2" (two softmax units [P(real), P(fake)], as earlier work).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import layers

from detector.base.errors import LabError
from detector.models.forensic import build_highpass, build_npr
from detector.models.layers import batch_norm_layer, check_head, dropout_layer, image_input, output_head, replicas


def build_cnn3(size: int = 64, head: str = "probability") -> keras.Model:
    """The 3-conv BatchNorm/Dropout CNN of the published detector (valid padding)."""
    inputs = image_input(size)
    x = inputs
    for index, (filters, kernel, dropout) in enumerate([(64, 3, 0.0), (128, 5, 0.2), (64, 3, 0.3)]):
        x = layers.Conv2D(filters, kernel, activation="relu", name=f"conv{index + 1}")(x)
        x = batch_norm_layer(f"bn{index + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
        if dropout:
            x = dropout_layer(dropout, name=f"dropout{index + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = batch_norm_layer("bn_dense")(x)
    x = dropout_layer(0.2, name="dropout_dense")(x)
    return keras.Model(inputs, output_head(x, head), name="cnn3")


def build_alexnet(size: int = 128, head: str = "probability") -> keras.Model:
    """The AlexNet-inspired 18-layer CNN of earlier work, meant for inputs of 128 px and up."""
    inputs = image_input(size)
    x = layers.Conv2D(16, 2, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(32, 10, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, strides=2, name="pool1")(x)
    x = layers.Conv2D(64, 6, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(2, strides=2, name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="dense1")(x)
    x = dropout_layer(0.5, name="dropout1")(x)
    x = layers.Dense(512, activation="relu", name="dense2")(x)
    x = dropout_layer(0.5, name="dropout2")(x)
    return keras.Model(inputs, output_head(x, head), name="alexnet")


def build_small_cnn(size: int = 64, head: str = "probability", dense_units: int = 256) -> keras.Model:
    """Three 3x3 conv blocks (32, 64, 128 filters), each max-pooled, then one dense layer."""
    inputs = image_input(size)
    x = inputs
    for index, filters in enumerate((32, 64, 128)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{index + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = dropout_layer(0.5, name="dropout")(x)
    return keras.Model(inputs, output_head(x, head), name="small_cnn")


@keras.saving.register_keras_serializable(package="detector")
class ImageNetPreprocessing(layers.Layer):
    """A backbone's `preprocess_input`, as a saveable layer taking pixels in [0, 1].

    mode="caffe": RGB->BGR and ImageNet mean subtraction on 0-255 (VGG16, ResNet50);
    mode="tf": scale to [-1, 1] (Xception, MobileNetV2).
    """

    _BGR_MEAN = (103.939, 116.779, 123.68)

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf"):
            raise ValueError(f"mode must be 'caffe' or 'tf'. Received: mode={mode!r}")
        self.mode = mode

    def call(self, pixels):
        if self.mode == "tf":
            return pixels * 2.0 - 1.0
        bgr = keras.ops.flip(pixels * 255.0, axis=-1)
        return bgr - keras.ops.convert_to_tensor(np.array(self._BGR_MEAN, dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


# name: (application constructor, preprocessing mode, the no-top ImageNet weights file Keras caches)
_BACKBONES: dict[str, tuple[Callable, str, str]] = {
    "vgg16": (keras.applications.VGG16, "caffe", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "xception": (keras.applications.Xception, "tf", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50": (keras.applications.ResNet50, "caffe", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenetv2": (
        keras.applications.MobileNetV2,
        "tf",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
    ),
}
_MIN_BACKBONE_SIZE = {"vgg16": 32, "xception": 71, "resnet50": 32, "mobilenetv2": 32}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models or ~/.keras/models."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def imagenet_weights_file(backbone: str, size: int) -> str:
    """The file name Keras Applications caches `backbone`'s ImageNet (no-top) weights under."""
    _, _, file_name = _BACKBONES[backbone]
    # MobileNetV2 has weights for five input sizes; for any other size Keras loads the 224 px file.
    return file_name.format(size=size if size in (96, 128, 160, 192, 224) else 224)


def _download_failure(error: Exception) -> str | None:
    """What went wrong, when `error` is Keras failing to fetch (or verify) a weights file; else None."""
    text = str(error)
    if text.startswith("URL fetch failure on "):
        # "URL fetch failure on <url>: <errno> -- <reason>"
        return text.rsplit(" -- ", 1)[-1]
    if "file hash does not match" in text:
        return "the downloaded file was incomplete or corrupted"
    return None


def _imagenet_backbone(application: Callable, backbone: str, size: int) -> keras.Model:
    """`application(weights="imagenet")`, as Keras does it: downloaded once into the Keras cache, then reused.

    Offline, a one-line LabError names the file, where it goes, and --weights none.
    """
    file_name = imagenet_weights_file(backbone, size)
    cached = keras_cache_dir() / file_name
    with warnings.catch_warnings():
        # MobileNetV2 warns that it loads the 224 px weights for other sizes: expected here.
        warnings.filterwarnings("ignore", message=".*will be loaded as the default", category=UserWarning)
        try:
            return application(include_top=False, weights="imagenet", input_shape=(size, size, 3))
        except Exception as error:  # Keras raises a bare Exception for a failed download
            reason = _download_failure(error)
            if reason is None and not cached.is_file():
                raise
            if reason is None:
                reason = f"{cached} could not be loaded ({error}); delete it to download it again"
    raise LabError(
        f"ImageNet weights for {backbone} could not be downloaded ({reason}): put {file_name} in "
        f"{cached.parent}/ (the Keras cache), or pass --weights none to train {backbone} from scratch."
    )


def build_transfer(
    backbone: str,
    size: int = 224,
    head: str = "probability",
    weights: str | None = "imagenet",
    trainable_layers: int = 0,
    dense_units: int = 256,
) -> keras.Model:
    """A Keras Applications backbone, frozen but for its top `trainable_layers`, with a new head.

    weights: "imagenet" (from the Keras cache, downloaded once), a path to a .h5/.weights.h5
    file, or None for random initialisation.
    """
    if backbone not in _BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(_BACKBONES)}. Received: backbone={backbone!r}")
    if size < _MIN_BACKBONE_SIZE[backbone]:
        raise ValueError(
            f"{backbone} needs inputs of at least {_MIN_BACKBONE_SIZE[backbone]} px. Received: size={size}"
        )
    application, mode, _ = _BACKBONES[backbone]
    weights_file = None
    if weights not in (None, "imagenet"):
        weights_file = Path(weights)
        if not weights_file.is_file():
            raise LabError(f"Weights file not found: {weights_file}")
    inputs = image_input(size)
    x = ImageNetPreprocessing(mode, name="preprocess")(inputs)
    if weights == "imagenet":
        base = _imagenet_backbone(application, backbone, size)
    else:
        base = application(include_top=False, weights=None, input_shape=(size, size, 3))
    if weights_file is not None:
        base.load_weights(weights_file)
    for layer in base.layers:  # unfrozen ones see the global batch under a strategy of several replicas
        if isinstance(layer, layers.BatchNormalization):
            layer.synchronized = replicas() > 1
    base.trainable = trainable_layers > 0
    if trainable_layers > 0:
        for layer in base.layers[:-trainable_layers]:
            layer.trainable = False
    # training=False keeps frozen BatchNorm statistics fixed during fine-tuning.
    x = base(x, training=False) if trainable_layers == 0 else base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = dropout_layer(0.5, name="dropout")(x)
    return keras.Model(inputs, output_head(x, head), name=backbone)


def _transfer_builder(backbone: str) -> Callable[..., keras.Model]:
    def build(size: int = 224, head: str = "probability", **options) -> keras.Model:
        return build_transfer(backbone, size=size, head=head, **options)

    build.__name__ = f"build_{backbone}"
    build.__doc__ = f"{backbone} backbone (Keras Applications) with a new head; see build_transfer."
    return build


MODELS: dict[str, Callable[..., keras.Model]] = {
    "cnn3": build_cnn3,
    "alexnet": build_alexnet,
    "small_cnn": build_small_cnn,
    "npr": build_npr,
    "highpass": build_highpass,
    "npr_spectrum": functools.partial(build_npr, spectrum=True),
    "highpass_spectrum": functools.partial(build_highpass, spectrum=True),
    **{name: _transfer_builder(name) for name in _BACKBONES},
}
TRANSFER_MODELS = tuple(_BACKBONES)


def build_model(name: str = "cnn3", size: int = 64, head: str = "probability", **options) -> keras.Model:
    """Build the registered architecture `name` for square inputs of `size` pixels."""
    if name not in MODELS:
        raise ValueError(f"Unknown model. Expected one of {sorted(MODELS)}. Received: name={name!r}")
    check_head(head)
    return MODELS[name](size=size, head=head, **options)


def model_head(model: keras.Model) -> str:
    """Which of the three heads a built model ends in, read from its output layer."""
    last = model.layers[-1]
    if last.name in ("p_fake", "fake_logit", "softmax2"):
        return {"p_fake": "probability", "fake_logit": "logit", "softmax2": "softmax2"}[last.name]
    units = model.output_shape[-1]
    if units == 2:
        return "softmax2"
    activation = getattr(getattr(last, "activation", None), "__name__", "linear")
    return "probability" if activation == "sigmoid" else "logit"


def outputs_to_p_fake(outputs, head: str) -> np.ndarray:
    """Turn a model's raw outputs for a batch into a 1-D array of P(fake)."""
    check_head(head)
    outputs = np.asarray(outputs, dtype=np.float64)
    if head == "softmax2":
        return outputs[:, 1]
    outputs = outputs.reshape(len(outputs), -1)[:, 0]
    if head == "logit":
        return 1.0 / (1.0 + np.exp(-outputs))
    return outputs

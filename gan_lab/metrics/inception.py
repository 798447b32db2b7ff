"""InceptionV3 pool features at 299 px, the features FID and KID are published in.

The ImageNet weights are loaded the Keras way: `keras.applications.InceptionV3(weights="imagenet",
include_top=False, pooling="avg")` downloads them once into the Keras cache
(`$KERAS_HOME/models/`, by default `~/.keras/models/`). A file already in the cache is
loaded as it is, with a note when it is not the file Keras publishes (figures from other
weights cannot be set beside published ones). Offline and without the file there is no
model, and a message saying so; nothing here raises for that.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np

# The file name and MD5 keras.applications.inception_v3 uses for the weights without the top.
WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
INPUT_SIZE = 299
FEATURE_WIDTH = 2048
# A download that cannot connect fails at once; one that stalls gives up after this long.
DOWNLOAD_TIMEOUT_SECONDS = 60


def weights_path() -> Path:
    """Where Keras keeps (or would download) the InceptionV3 weights: $KERAS_HOME/models/, else ~/.keras/models/."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / WEIGHTS_FILE


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _features(model, pixels):
    import tensorflow as tf

    # Pixels in [0, 1] -> 299 px (bilinear, as the reference FID code resizes) -> [-1, 1], Inception's input.
    resized = tf.image.resize(pixels, (INPUT_SIZE, INPUT_SIZE), method="bilinear", antialias=True)
    return model(resized * 2.0 - 1.0, training=False)


@dataclasses.dataclass
class InceptionFeatures:
    """A loaded InceptionV3 (no top, average pooling) and where its weights came from."""

    model: Any
    weights: Path
    published: bool  # the weights file is the one Keras publishes (its MD5 matches)
    _forward: Any = dataclasses.field(default=None, init=False, repr=False)

    def __call__(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Pool features (N, 2048), float64, of float32 RGB pixels in [0, 1] of any size."""
        import tensorflow as tf

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"pixels must be RGB images of shape (N, H, W, 3). Received: pixels.shape={pixels.shape}")
        if self._forward is None:
            signature = [tf.TensorSpec((None, *pixels.shape[1:]), tf.float32)]
            self._forward = tf.function(functools.partial(_features, self.model), input_signature=signature)
        parts = [
            np.asarray(self._forward(pixels[start : start + batch_size])) for start in range(0, len(pixels), batch_size)
        ]
        if not parts:
            return np.zeros((0, FEATURE_WIDTH))
        return np.concatenate(parts).astype(np.float64)


def _build(weights):
    import keras

    return keras.applications.InceptionV3(weights=weights, include_top=False, pooling="avg")


COMPARABILITY = (
    "its FID and KID are comparable only with figures made with the same weights (published FIDs mostly use the "
    "2015-12-05 TensorFlow Inception graph, whose weights differ from Keras' ImageNet ones)"
)


def load_inception(
    download: bool = True, weights: str | os.PathLike | None = None
) -> tuple[InceptionFeatures | None, str]:
    """(InceptionV3 pool-feature extractor or None, a sentence saying which weights, or why there are none).

    weights: a weights file for Keras' InceptionV3 without its top (for instance the 2015-12-05 graph's
    weights converted to that layout) instead of the Keras cache's; it must exist.
    """
    if weights is not None and not Path(weights).is_file():
        return None, f"the InceptionV3 weights file {weights} (--inception-weights) does not exist"
    path = Path(weights) if weights is not None else weights_path()
    if path.is_file():
        try:
            model = _build(None)
            model.load_weights(path)
        except Exception as error:  # a truncated or foreign file: say so, never fail the run
            return None, f"the InceptionV3 weights file {path} could not be loaded ({type(error).__name__}: {error})"
        digest = _md5(path)
        published = digest == WEIGHTS_MD5
        note = "Keras' published ImageNet weights" if published else "not Keras' published ImageNet weights"
        return InceptionFeatures(model, path, published), (
            f"InceptionV3 weights from {path} ({note}, MD5 {digest}); {COMPARABILITY}"
        )
    if not download:
        return None, f"no InceptionV3 weights in the Keras cache ({path})"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
    try:
        model = _build("imagenet")
    except Exception as error:  # offline: no file and no network
        reason = str(error).splitlines()[0][:200]
        return None, (
            f"no InceptionV3 weights: {path} is not in the Keras cache and the download failed ({reason}); "
            "run once on a connected machine, or copy the file there"
        )
    finally:
        socket.setdefaulttimeout(previous)
    return InceptionFeatures(model, path, True), (
        f"InceptionV3 weights downloaded into {path} (Keras' published ImageNet weights); {COMPARABILITY}"
    )

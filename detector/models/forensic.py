"""Forensic detectors: networks that look at the traces upsampling and synthesis leave, not at the faces.

- `npr`: Neighbouring Pixel Relationships (Tan et al., CVPR 2024). The input minus its own 2x
  nearest down-then-up-sampled copy keeps only how each pixel differs from its 2x2 block's
  corner, where upsampling layers leave their fingerprint; a small ResNet-style network without
  early pooling reads it, so the one-pixel structure survives into the first blocks.
- `highpass`: a fixed bank of SRM high-pass filters (Fridrich and Kodovsky, 2012), truncated as
  steganalysis does, in front of a small CNN: the image's content is removed before learning.

Both are functional Keras models of built-in layers only (their model.keras needs no lab code).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from detector.models.layers import batch_norm_layer, dropout_layer, image_input, output_head

# The three SRM kernels of the rich-model literature's usual bank (first-order edge, second-order, 5x5 KV).
_SRM_KERNELS = (
    np.array([[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]]) / 4.0,
    np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]])
    / 12.0,
    np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]) / 2.0,
)
# SRM residuals on 0-255 pixels, truncated at +-3 as steganalysis does, then scaled to [-1, 1].
SRM_TRUNCATION = 3.0


def srm_kernel() -> np.ndarray:
    """The (5, 5, 3, 9) kernel: each SRM filter applied to each RGB channel on its own."""
    kernel = np.zeros((5, 5, 3, 3 * len(_SRM_KERNELS)), dtype=np.float32)
    for index, filter_ in enumerate(_SRM_KERNELS):
        for channel in range(3):
            kernel[:, :, channel, 3 * index + channel] = filter_
    return kernel


def _neighbour_residual(inputs, size: int):
    if size % 2:
        raise ValueError(f"npr takes an even input size (it compares 2x2 blocks). Received: size={size}")
    down = layers.Resizing(size // 2, size // 2, interpolation="nearest", name="npr_down")(inputs)
    up = layers.UpSampling2D(2, interpolation="nearest", name="npr_up")(down)
    return layers.Subtract(name="npr")([inputs, up])


def _residual_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = batch_norm_layer(f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = batch_norm_layer(f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_project")(shortcut)
        shortcut = batch_norm_layer(f"{name}_project_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def build_npr(size: int = 64, head: str = "probability", widths: tuple[int, ...] = (32, 64)) -> keras.Model:
    """NPR residual -> a stride-1 stem -> two residual blocks per width (the later ones at stride 2) -> head."""
    inputs = image_input(size)
    # Residuals of [0, 1] pixels are small: scaled up so the stem's initial weights see them.
    x = layers.Rescaling(4.0, name="npr_scale")(_neighbour_residual(inputs, size))
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = batch_norm_layer("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, width in enumerate(widths):
        x = _residual_block(x, width, 1 if stage == 0 else 2, f"stage{stage + 1}a")
        x = _residual_block(x, width, 1, f"stage{stage + 1}b")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = dropout_layer(0.2, name="dropout")(x)
    return keras.Model(inputs, output_head(x, head), name="npr")


def build_highpass(size: int = 64, head: str = "probability") -> keras.Model:
    """Fixed SRM filters (truncated) -> three conv blocks without early pooling of the residual -> head."""
    inputs = image_input(size)
    x = layers.Rescaling(255.0, name="to_bytes")(inputs)
    srm = layers.Conv2D(
        srm_kernel().shape[-1], 5, padding="same", use_bias=False, trainable=False, name="srm", dtype="float32"
    )
    x = srm(x)
    srm.set_weights([srm_kernel()])
    x = layers.Rescaling(1.0 / SRM_TRUNCATION, name="srm_scale")(x)
    x = layers.Activation("hard_tanh", name="srm_truncate")(x)
    for index, filters in enumerate((32, 64, 128)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index + 1}")(x)
        x = batch_norm_layer(f"bn{index + 1}")(x)
        x = layers.ReLU(name=f"relu{index + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = dropout_layer(0.2, name="dropout")(x)
    return keras.Model(inputs, output_head(x, head), name="highpass")

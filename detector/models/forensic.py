"""Forensic detectors: networks that look at the traces upsampling and synthesis leave, not at the faces.

- `npr`: Neighbouring Pixel Relationships (Tan et al., CVPR 2024). The input minus its own 2x
  nearest down-then-up-sampled copy keeps only how each pixel differs from its 2x2 block's
  corner, where upsampling layers leave their fingerprint; a small ResNet-style network without
  early pooling reads it, so the one-pixel structure survives into the first blocks.
- `highpass`: a fixed bank of SRM high-pass filters (Fridrich and Kodovsky, 2012), truncated as
  steganalysis does, in front of a small CNN: the image's content is removed before learning.
- `npr_spectrum`, `highpass_spectrum`: either, with a second branch that reads the log-magnitude
  spectrum (2-D FFT) of the same high-passed image, where a stride-2 upsampler's fingerprint is a
  few bright peaks at fixed frequencies wherever it sits in the image (Frank et al., 2020).

The first two are functional Keras models of built-in layers only (their model.keras needs no lab
code); the spectrum variants need `LogSpectrum`, registered when this module is imported.
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


def dft_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the n-point DFT, rows rolled by n // 2 so the zero frequency lands at the centre."""
    angles = 2.0 * np.pi * np.outer(np.arange(n), np.arange(n)) / n
    return tuple(np.roll(part(angles), n // 2, axis=0).astype(np.float32) for part in (np.cos, np.sin))


@keras.saving.register_keras_serializable(package="detector")
class LogSpectrum(layers.Layer):
    """log(1 + |FFT2|) of each channel, zero frequency at the centre, computed in float32.

    The DFT is written as products with fixed cos/sin matrices (real arithmetic only), so the
    model stays differentiable and exports to ONNX, which has no complex tensors.
    """

    def __init__(self, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})

    def build(self, input_shape):
        (self.cos_h, self.sin_h), (self.cos_w, self.sin_w) = (dft_matrices(int(n)) for n in input_shape[1:3])

    def call(self, inputs):
        ops = keras.ops
        x = ops.cast(inputs, "float32")
        along_w = [ops.einsum("bhwc,kw->bhkc", x, part) for part in (self.cos_w, self.sin_w)]
        real = ops.einsum("bhwc,kh->bkwc", along_w[0], self.cos_h) - ops.einsum("bhwc,kh->bkwc", along_w[1], self.sin_h)
        imag = ops.einsum("bhwc,kh->bkwc", along_w[0], self.sin_h) + ops.einsum("bhwc,kh->bkwc", along_w[1], self.cos_h)
        return ops.log(1.0 + ops.sqrt(real * real + imag * imag))  # not log1p: ONNX has no Log1p

    def compute_output_shape(self, input_shape):
        return input_shape


def _spectrum_branch(residual, widths: tuple[int, int] = (16, 32)):
    """Log-magnitude spectrum of the residual -> two stride-2 conv blocks -> pooled features."""
    x = LogSpectrum(name="spectrum")(residual)
    x = batch_norm_layer("spectrum_bn0")(x)  # the spectrum's scale depends on the residual's: normalised first
    for index, filters in enumerate(widths):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"spectrum_conv{index + 1}")(x)
        x = batch_norm_layer(f"spectrum_bn{index + 1}")(x)
        x = layers.ReLU(name=f"spectrum_relu{index + 1}")(x)
    return layers.GlobalAveragePooling2D(name="spectrum_pool")(x)


def _with_spectrum(features, residual, spectrum: bool):
    """The spatial features, beside the spectrum branch's when `spectrum`."""
    if not spectrum:
        return features
    return layers.Concatenate(name="spatial_and_spectrum")([features, _spectrum_branch(residual)])


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


def build_npr(
    size: int = 64, head: str = "probability", widths: tuple[int, ...] = (32, 64), spectrum: bool = False
) -> keras.Model:
    """NPR residual -> a stride-1 stem -> two residual blocks per width (the later ones at stride 2) -> head.

    spectrum: add a branch reading the residual's log-magnitude spectrum (`npr_spectrum` in the zoo).
    """
    inputs = image_input(size)
    # Residuals of [0, 1] pixels are small: scaled up so the stem's initial weights see them.
    residual = layers.Rescaling(4.0, name="npr_scale")(_neighbour_residual(inputs, size))
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(residual)
    x = batch_norm_layer("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, width in enumerate(widths):
        x = _residual_block(x, width, 1 if stage == 0 else 2, f"stage{stage + 1}a")
        x = _residual_block(x, width, 1, f"stage{stage + 1}b")
    x = _with_spectrum(layers.GlobalAveragePooling2D(name="pool")(x), residual, spectrum)
    x = dropout_layer(0.2, name="dropout")(x)
    return keras.Model(inputs, output_head(x, head), name="npr_spectrum" if spectrum else "npr")


def build_highpass(size: int = 64, head: str = "probability", spectrum: bool = False) -> keras.Model:
    """Fixed SRM filters (truncated) -> three conv blocks without early pooling of the residual -> head.

    spectrum: add a branch reading the truncated residual's log-magnitude spectrum (`highpass_spectrum`).
    """
    inputs = image_input(size)
    x = layers.Rescaling(255.0, name="to_bytes")(inputs)
    srm = layers.Conv2D(
        srm_kernel().shape[-1], 5, padding="same", use_bias=False, trainable=False, name="srm", dtype="float32"
    )
    x = srm(x)
    srm.set_weights([srm_kernel()])
    x = layers.Rescaling(1.0 / SRM_TRUNCATION, name="srm_scale")(x)
    residual = x = layers.Activation("hard_tanh", name="srm_truncate")(x)
    for index, filters in enumerate((32, 64, 128)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index + 1}")(x)
        x = batch_norm_layer(f"bn{index + 1}")(x)
        x = layers.ReLU(name=f"relu{index + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = _with_spectrum(layers.GlobalAveragePooling2D(name="gap")(x), residual, spectrum)
    x = dropout_layer(0.2, name="dropout")(x)
    return keras.Model(inputs, output_head(x, head), name="highpass_spectrum" if spectrum else "highpass")

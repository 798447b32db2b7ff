"""What a detector looks at: per-layer activation maps and Grad-CAM for its decision.

Works for the plain CNNs (cnn3, small_cnn, alexnet) and for the transfer models, whose
convolutional layers sit inside a nested backbone model.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from detector.base.errors import LabError

GRADCAM_TARGETS = ("fake", "real")
DISPLAY_SIZE = 256  # explanations are upscaled to this many pixels so 32 px inputs stay visible


def _keras():
    import keras

    return keras


def _is_conv(layer) -> bool:
    layers = _keras().layers
    return isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D))


def _is_nested(layer) -> bool:
    return isinstance(layer, _keras().Model)


def _chain(model) -> list:
    """The model's layers after its input, checked to form a single chain (each feeds the next)."""
    layers = [layer for layer in model.layers if not isinstance(layer, _keras().layers.InputLayer)]
    previous = model.inputs[0]
    for layer in layers:
        # Each layer must take exactly the previous layer's output, else running them in order is wrong.
        node = layer._inbound_nodes[0] if getattr(layer, "_inbound_nodes", None) else None
        inputs = list(node.input_tensors) if node is not None else []
        if len(inputs) != 1 or inputs[0] is not previous:
            raise LabError(
                f"Explanations need a model whose top-level layers form a chain; "
                f"{model.name!r} branches at layer {layer.name!r}"
            )
        # The node's own output, not layer.output: a nested model's `output` is its inner one.
        previous = node.output_tensors[0]
    return layers


def _target_index(layers: list) -> int:
    """Index of the last convolutional layer, or of the nested backbone holding it."""
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if _is_conv(layer) or (_is_nested(layer) and len(layer.output.shape) == 4):
            return index
    raise LabError("The model has no convolutional layer to explain")


def _feature_map_and_outputs(model, x, tape):
    """(the last conv feature map, the model's outputs) for `x`, the map watched by `tape`.

    A chain of layers (nested backbones included) is run layer by layer; a branching graph (a
    residual network, NPR's input minus its resampled copy) through a two-output view of itself.
    """
    try:
        layers = _chain(model)
    except LabError:
        convs = [layer for layer in model.layers if _is_conv(layer) and len(layer.output.shape) == 4]
        if not convs:
            raise LabError("The model has no convolutional layer to explain") from None
        view = _keras().Model(model.inputs[0], [convs[-1].output, model.outputs[0]])
        feature_map, outputs = view(x, training=False)
        return feature_map, outputs
    split = _target_index(layers)
    for layer in layers[:split]:
        x = layer(x, training=False)
    feature_map = layers[split](x, training=False)
    tape.watch(feature_map)
    y = feature_map
    for layer in layers[split + 1 :]:
        y = layer(y, training=False)
    return feature_map, y


def _as_batch(pixels) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.float32) / 255.0
    if pixels.ndim == 3:
        pixels = pixels[None]
    if pixels.ndim != 4 or pixels.shape[0] != 1 or pixels.shape[-1] != 3:
        raise ValueError(
            f"pixels must be one RGB image (H, W, 3) or (1, H, W, 3). Received: pixels.shape={pixels.shape}"
        )
    return pixels.astype(np.float32)


def _fake_logit(outputs, head: str):
    """The log-odds of fake from any head, so gradients do not vanish when P(fake) saturates."""
    import tensorflow as tf

    if head == "logit":
        return outputs[:, 0]
    epsilon = 1e-7
    if head == "softmax2":
        return tf.math.log(outputs[:, 1] + epsilon) - tf.math.log(outputs[:, 0] + epsilon)
    p_fake = tf.clip_by_value(outputs[:, 0], epsilon, 1.0 - epsilon)
    return tf.math.log(p_fake) - tf.math.log(1.0 - p_fake)


def _normalise(array: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by min and max; a constant map becomes all zeros."""
    array = np.asarray(array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    if not np.isfinite(high - low) or high - low <= 1e-12:
        return np.zeros_like(array)
    return (array - low) / (high - low)


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.asarray(array, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def gradcam(model, pixels, target: str = "fake") -> np.ndarray:
    """Grad-CAM heatmap (S, S) in [0, 1]: where the last conv layer holds evidence for `target`.

    The gradient is taken of the fake log-odds (negated for target="real") with respect to
    the last convolutional feature map; for transfer models that is the backbone's output.
    """
    import tensorflow as tf

    from detector.models.zoo import model_head

    if target not in GRADCAM_TARGETS:
        raise ValueError(f"target must be one of {GRADCAM_TARGETS}. Received: target={target!r}")
    batch = _as_batch(pixels)
    head = model_head(model)
    x = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        feature_map, outputs = _feature_map_and_outputs(model, x, tape)
        score = _fake_logit(outputs, head)
        if target == "real":
            score = -score
    gradients = tape.gradient(score, feature_map)
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # one weight per channel
    cam = tf.nn.relu(tf.reduce_sum(feature_map * weights[:, None, None, :], axis=-1))[0].numpy()
    height, width = batch.shape[1:3]
    cam = _resize(cam, height, width)
    peak = float(cam.max())
    # No positive evidence anywhere: an all-zero map says so honestly.
    return np.clip(cam / peak, 0.0, 1.0) if peak > 1e-12 else np.zeros((height, width), dtype=np.float32)


def activation_maps(model, pixels) -> dict[str, np.ndarray]:
    """Mean channel activation of every conv layer (nested backbones included), each scaled to [0, 1].

    Maps keep their layer's spatial resolution (h, w); keys are layer names in order.
    """
    import tensorflow as tf

    keras = _keras()
    batch = _as_batch(pixels)
    maps: dict[str, np.ndarray] = {}
    x = tf.convert_to_tensor(batch)
    try:
        chain = _chain(model)
    except LabError:  # a branching graph: every top-level conv layer's output through one view of the model
        convs = [layer for layer in model.layers if _is_conv(layer)]
        if not convs:
            raise LabError(f"Model {model.name!r} has no convolutional layers to show") from None
        outputs = keras.Model(model.inputs[0], [layer.output for layer in convs])(x, training=False)
        return {
            layer.name: _normalise(np.mean(np.asarray(output)[0], axis=-1)) for layer, output in zip(convs, outputs)
        }
    for layer in chain:
        if _is_nested(layer):
            convs = [inner for inner in layer.layers if _is_conv(inner)]
            if convs:
                probe = keras.Model(layer.inputs, [inner.output for inner in convs])
                outputs = probe(x, training=False)
                for inner, output in zip(convs, outputs):
                    maps[f"{layer.name}/{inner.name}"] = _normalise(np.mean(np.asarray(output)[0], axis=-1))
        x = layer(x, training=False)
        if _is_conv(layer):
            maps[layer.name] = _normalise(np.mean(np.asarray(x)[0], axis=-1))
    if not maps:
        raise LabError(f"Model {model.name!r} has no convolutional layers to show")
    return maps


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] map as uint8 RGB with the jet colormap (blue low, red high)."""
    from matplotlib import colormaps

    heatmap = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    return (colormaps["jet"](heatmap)[..., :3] * 255.0).round().astype(np.uint8)


def overlay(pixels, heatmap, alpha: float = 0.45) -> np.ndarray:
    """Blend a jet-coloured heatmap over an RGB image; returns uint8 (H, W, 3) at the image's size."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]. Received: alpha={alpha}")
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be an RGB image (H, W, 3). Received: pixels.shape={pixels.shape}")
    image = pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H, W). Received: heatmap.shape={heatmap.shape}")
    if heatmap.shape != image.shape[:2]:
        heatmap = _resize(heatmap, *image.shape[:2])
    colors = colorize(heatmap).astype(np.float32) / 255.0
    blended = (1.0 - alpha) * np.clip(image, 0.0, 1.0) + alpha * colors
    return np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)


def _upscale(pixels: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.clip(np.rint(np.asarray(pixels) * 255.0), 0, 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _activation_figure(maps: dict[str, np.ndarray], path: Path) -> Path:
    from matplotlib.figure import Figure

    from detector.inference.evaluate import save_figure

    columns = min(6, len(maps))
    rows = int(np.ceil(len(maps) / columns))
    figure = Figure(figsize=(2.0 * columns, 2.2 * rows))
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, (name, activation) in zip(grid.flat, maps.items()):
        axes.imshow(activation, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes.set_title(f"{name}\n{activation.shape[0]}x{activation.shape[1]}", fontsize=7)
    figure.suptitle("Mean channel activation per conv layer (each scaled to [0, 1])")
    return save_figure(figure, path)


def _summary_figure(pixels, heatmap, p_fake: float, verdict: str, target: str, path: Path) -> Path:
    from matplotlib.figure import Figure

    from detector.inference.evaluate import save_figure

    figure = Figure(figsize=(9.0, 3.4))
    grid = figure.subplots(1, 3)
    grid[0].imshow(pixels)
    grid[0].set_title("input (as the model sees it)")
    image = grid[1].imshow(heatmap, cmap="jet", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=grid[1], fraction=0.046)
    grid[1].set_title(f"Grad-CAM: evidence for {target}")
    grid[2].imshow(overlay(_upscale(pixels, DISPLAY_SIZE), heatmap))
    grid[2].set_title("overlay")
    for axes in grid:
        axes.axis("off")
    figure.suptitle(f"P(fake) = {p_fake:.3f}: {verdict}")
    return save_figure(figure, path)


@dataclasses.dataclass
class Explanation:
    """What `explain` found for one image: the model's input, its score and where the evidence lies."""

    pixels: np.ndarray  # the image fitted to the model's input, float32 (S, S, 3)
    p_fake: float
    verdict: str  # "Real" or "Fake" at the run's threshold
    target: str  # the class Grad-CAM looked for: the one the detector decided
    heatmap: np.ndarray  # Grad-CAM (S, S) in [0, 1]
    maps: dict[str, np.ndarray]  # mean activation per conv layer


def explain(detector, image, crop: str | None = None, name: str = "image") -> Explanation:
    """Score one RGB image (any shape) with a loaded detector and explain the decision.

    The image is fitted as the run's training fitted its images (`Detector.prepare`),
    unless `crop` ("resize" or "crop") overrides it.
    """
    model, model_input = gradient_model(detector)
    pixels = detector.prepare(image, crop=crop, name=name)
    p_fake = float(detector.score(pixels[None])[0])
    verdict = detector.verdict(p_fake)
    target = "fake" if verdict == "Fake" else "real"
    return Explanation(
        pixels=pixels,
        p_fake=p_fake,
        verdict=verdict,
        target=target,
        heatmap=gradcam(model, model_input(pixels), target=target),
        maps=activation_maps(model, model_input(pixels)),
    )


def gradient_model(detector):
    """(the Keras model Grad-CAM differentiates, pixels [0, 1] -> its input); LabError when there is none.

    A lab run's model takes the pixels as they are. An imported .keras model in NHWC layout whose
    output the lab reads as its own (one logit or probability, or two softmax outputs, fake second)
    takes them through its adaptor's normalisation; ONNX and SavedModel graphs give no gradients here.
    """
    if not detector.imported:
        return detector.model, lambda pixels: pixels
    outside = detector.outside
    adaptor = outside.adaptor
    if outside.format != "keras":
        raise LabError(
            f"{detector.run_dir} is an imported {outside.format} model: Grad-CAM and activation maps need a "
            "Keras model's layers and gradients, which the lab cannot reach in it"
        )
    if adaptor.layout != "nhwc" or (adaptor.output == "softmax" and adaptor.fake_index != 1):
        raise LabError(
            f"{detector.run_dir}: Grad-CAM reads NHWC Keras models whose fake output is their only or second one; "
            f"this one is {adaptor.layout.upper()} with --output {adaptor.output}"
        )
    return outside.backend.model, lambda pixels: adaptor.inputs(pixels[None])[0]


def explain_image(
    run_dir: str | os.PathLike,
    image_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    crop: str | None = None,
) -> list[Path]:
    """Save activation maps and Grad-CAM (for the class the detector decided) for one image.

    Writes input.png, activations.png, gradcam.png (overlay), gradcam_heatmap.png and
    explanation.png (all three with P(fake)) into out_dir, by default
    run_dir/explanations/<image stem>/. Returns the paths written.
    crop: None fits the image as the run's training did; "resize" or "crop" overrides it.
    """
    from detector.data.images import open_rgb, save_png
    from detector.inference.predict import load_detector

    detector = load_detector(run_dir)
    image_path = Path(image_path)
    found = explain(detector, open_rgb(image_path), crop=crop, name=str(image_path))
    out_dir = Path(out_dir) if out_dir is not None else detector.run_dir / "explanations" / image_path.stem
    display = _upscale(found.pixels, DISPLAY_SIZE)
    display_heatmap = _resize(found.heatmap, DISPLAY_SIZE, DISPLAY_SIZE)
    return [
        save_png(out_dir / "input.png", display),
        _activation_figure(found.maps, out_dir / "activations.png"),
        save_png(out_dir / "gradcam.png", overlay(display, display_heatmap)),
        save_png(out_dir / "gradcam_heatmap.png", colorize(display_heatmap)),
        _summary_figure(
            found.pixels,
            found.heatmap,
            found.p_fake,
            f"{found.verdict} at threshold {detector.threshold:.3f}",
            found.target,
            out_dir / "explanation.png",
        ),
    ]

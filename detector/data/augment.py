"""Training-time augmentation: flips, small rotations, shifts and zooms, plus optional blur and JPEG re-compression."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from detector.data.recipes import BLUR_SIGMA_RANGE, JPEG_QUALITY_RANGE

BLUR_KERNEL_SIZE = 7


def _check_probability(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1. Received: {name}={value!r}")
    return float(value)


class _PerImageAugmentation(keras.layers.Layer):
    """A layer that draws a random transformation per image (get_random_transformation) and applies it
    (transform_images) in training only, with probability `self.probability`."""

    def call(self, images, training=True):
        if not training or self.probability == 0.0:
            return images
        return self.transform_images(images, self.get_random_transformation(images), training=True)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="detector")
class RandomPerImageGaussianBlur(_PerImageAugmentation):
    """Blurs each image with probability `probability`, its own sigma drawn from `sigma_range`, edges reflected.

    Laundering fakes through a blur is a cheap way to hide GAN artifacts; training on it
    keeps a detector from relying only on the finest pixel detail. Keras's
    `RandomGaussianBlur` draws one sigma per batch (not per image) and pads with zeros,
    which darkens a frame around every blurred image: a cue a detector could learn.
    """

    def __init__(
        self, probability=0.5, sigma_range=BLUR_SIGMA_RANGE, kernel_size=BLUR_KERNEL_SIZE, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.probability = _check_probability("probability", probability)
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and at least 3. Received: kernel_size={kernel_size!r}")
        if not 0 < sigma_range[0] <= sigma_range[1]:
            raise ValueError(
                f"sigma_range must be (low, high) with 0 < low <= high. Received: sigma_range={sigma_range!r}"
            )
        self.sigma_range = tuple(float(value) for value in sigma_range)
        self.kernel_size = int(kernel_size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _blur(self, images, weights):
        # Folding the batch into channels lets one depthwise convolution give every image its own sigma.
        batch, height, width, channels = tf.unstack(tf.shape(images))
        radius = self.kernel_size // 2
        padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
        folded = tf.reshape(
            tf.transpose(padded, [1, 2, 0, 3]), [1, height + 2 * radius, width + 2 * radius, batch * channels]
        )
        per_channel = tf.repeat(weights, channels, axis=0)  # [batch * channels, kernel]
        horizontal = tf.transpose(per_channel)[None, :, :, None]  # [1, kernel, batch * channels, 1]
        vertical = tf.transpose(per_channel)[:, None, :, None]  # [kernel, 1, batch * channels, 1]
        folded = tf.nn.depthwise_conv2d(folded, horizontal, strides=[1, 1, 1, 1], padding="VALID")
        folded = tf.nn.depthwise_conv2d(folded, vertical, strides=[1, 1, 1, 1], padding="VALID")
        return tf.transpose(tf.reshape(folded, [height, width, batch, channels]), [2, 0, 1, 3])

    def get_random_transformation(self, images, training=True, seed=None):
        """Each image's sigma and whether it is blurred at all."""
        batch = tf.shape(images)[0]
        seed = self.seed_generator if seed is None else seed
        sigma = keras.random.uniform((batch, 1), self.sigma_range[0], self.sigma_range[1], seed=seed)
        apply = keras.random.uniform((batch,), seed=seed) < self.probability
        return {"sigma": sigma, "apply": apply}

    def transform_images(self, images, transformation, training=True):
        if not training or self.probability == 0.0:
            return images
        images = tf.convert_to_tensor(images, dtype=self.compute_dtype)
        offsets = tf.cast(tf.range(self.kernel_size) - self.kernel_size // 2, images.dtype)
        weights = tf.exp(-0.5 * tf.square(offsets[None, :] / tf.cast(transformation["sigma"], images.dtype)))
        weights /= tf.reduce_sum(weights, axis=1, keepdims=True)
        blurred = tf.ensure_shape(self._blur(images, weights), images.shape)
        return tf.where(transformation["apply"][:, None, None, None], blurred, images)

    def get_config(self):
        config = super().get_config()
        config.update(
            probability=self.probability, sigma_range=self.sigma_range, kernel_size=self.kernel_size, seed=self.seed
        )
        return config


@keras.saving.register_keras_serializable(package="detector")
class RandomJpegQuality(_PerImageAugmentation):
    """Re-compresses each image as JPEG with probability `probability`, quality drawn per image.

    Expects float pixels in [0, 1].
    """

    def __init__(self, probability=0.5, quality_range=JPEG_QUALITY_RANGE, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.probability = _check_probability("probability", probability)
        if not 1 <= quality_range[0] <= quality_range[1] <= 100:
            raise ValueError(
                f"quality_range must be (low, high) within 1..100. Received: quality_range={quality_range!r}"
            )
        self.quality_range = tuple(int(value) for value in quality_range)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_random_transformation(self, images, training=True, seed=None):
        """Each image's JPEG quality and whether it is re-compressed at all."""
        batch = tf.shape(images)[0]
        seed = self.seed_generator if seed is None else seed
        draws = keras.random.uniform((batch,), seed=seed)
        low, high = self.quality_range
        quality = tf.minimum(tf.cast(tf.floor(low + draws * (high - low + 1)), tf.int32), high)
        apply = keras.random.uniform((batch,), seed=seed) < self.probability
        return {"quality": quality, "apply": apply}

    def transform_images(self, images, transformation, training=True):
        if not training or self.probability == 0.0:
            return images
        images = tf.convert_to_tensor(images, dtype=self.compute_dtype)

        def recompress(element):
            image, image_quality, image_apply = element
            return tf.cond(
                image_apply,
                lambda: tf.image.adjust_jpeg_quality(tf.clip_by_value(image, 0.0, 1.0), image_quality),
                lambda: image,
            )

        recompressed = tf.map_fn(
            recompress, (images, transformation["quality"], transformation["apply"]), fn_output_signature=images.dtype
        )
        return tf.ensure_shape(recompressed, images.shape)

    def get_config(self):
        config = super().get_config()
        config.update(probability=self.probability, quality_range=self.quality_range, seed=self.seed)
        return config


def staged_layers(augment) -> list | None:
    """The layers of `augment` if every one can draw its random parameters apart from applying them, else None.

    Drawing in order and applying in parallel keeps a seeded pipeline reproducible without
    running the (expensive) image transforms one batch at a time.
    """
    layers = list(augment.layers) if isinstance(augment, keras.Sequential) else [augment]
    staged = all(hasattr(layer, "get_random_transformation") and hasattr(layer, "transform_images") for layer in layers)
    return layers if staged and layers else None


def build_augmentation(
    seed: int = 0,
    flip: bool = True,
    rotation: float = 0.05,
    shift: float = 0.1,
    zoom: float = 0.1,
    blur_probability: float = 0.0,
    jpeg_probability: float = 0.0,
    blur_sigma: tuple[float, float] = BLUR_SIGMA_RANGE,
    jpeg_quality: tuple[int, int] = JPEG_QUALITY_RANGE,
) -> keras.Sequential:
    """Augmentation for training batches of float [0, 1] images; identity when called with training=False.

    rotation is a fraction of a full turn; shift and zoom fractions of the image size; blur_sigma
    and jpeg_quality the ranges each image's blur and JPEG quality are drawn from.
    """
    for name, value in (("rotation", rotation), ("shift", shift), ("zoom", zoom)):
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} must be in [0, 1). Received: {name}={value!r}")
    _check_probability("blur_probability", blur_probability)
    _check_probability("jpeg_probability", jpeg_probability)
    layers = []
    # Each layer gets its own seed so that switching one off does not change the others' draws.
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed + 1, name="rotation"))
    if shift:
        layers.append(keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 2, name="shift"))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed + 3, name="zoom"))
    if blur_probability:
        # Three sigmas either side: a wider blur gets a wider kernel.
        kernel_size = max(BLUR_KERNEL_SIZE, 2 * math.ceil(3 * float(blur_sigma[1])) + 1)
        layers.append(
            RandomPerImageGaussianBlur(blur_probability, tuple(blur_sigma), kernel_size, seed=seed + 4, name="blur")
        )
    if jpeg_probability:
        layers.append(RandomJpegQuality(jpeg_probability, tuple(jpeg_quality), seed=seed + 5, name="jpeg"))
    if not layers:
        layers.append(keras.layers.Identity(name="identity"))
    return keras.Sequential(layers, name="augmentation")

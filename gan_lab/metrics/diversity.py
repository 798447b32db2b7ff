"""How varied a set of generated images is: mean pairwise feature distance, and a mode-collapse warning.

The per-epoch figure in a GAN run's history.csv measures distances in the features of a
fixed, untrained convolutional network (`build_feature_extractor`): its weights come from
a constant seed, so every epoch, every run and every image size is measured with the same
network. The discriminator's own penultimate layer would change as it trains, so its
distances from one epoch could not be compared with another's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

# The extractor's weights: the same for every run, whatever the run's own seed.
FEATURE_SEED = 20240
# Images are area-resized to this side first, so every GAN size is measured alike.
FEATURE_SIZE = 32
FEATURE_FILTERS = (32, 64, 64)
# Rows of the distance matrix computed at once; bounds memory for large sets.
BLOCK_ROWS = 1024
COLLAPSE_FRACTION = 0.5


class ModeCollapseWarning(UserWarning):
    """The generator's samples became much less varied than the real training images."""


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of distinct rows of `features` (N, ...), flattened per row."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim < 1 or len(features) < 2:
        raise ValueError(f"features needs at least two rows. Received: features.shape={features.shape}")
    features = features.reshape(len(features), -1)
    squared_norms = np.einsum("ij,ij->i", features, features)
    total = 0.0
    for start in range(0, len(features), BLOCK_ROWS):
        block = features[start : start + BLOCK_ROWS]
        squared = squared_norms[start : start + BLOCK_ROWS, None] + squared_norms[None, :] - 2.0 * block @ features.T
        distances = np.sqrt(np.clip(squared, 0.0, None))
        # Each pair once: only the columns to the right of the diagonal.
        columns = np.arange(len(features))[None, :]
        rows = np.arange(start, start + len(block))[:, None]
        total += float(distances[columns > rows].sum())
    pairs = len(features) * (len(features) - 1) / 2
    return total / pairs


def build_feature_extractor(seed: int = FEATURE_SEED):
    """A fixed random conv net: pixels [0, 1] of any size -> (N, 1024) features.

    Three stride-2 4x4 convolutions with LeakyReLU on images area-resized to 32 px, weights
    from `seed` (He normal), never trained. Random convolutional features keep colour,
    layout and edges, which is what a collapsed generator stops varying.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None, None, 3), name="pixels")
    x = layers.Resizing(FEATURE_SIZE, FEATURE_SIZE, interpolation="area", name="resize")(inputs)
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(x)
    for index, filters in enumerate(FEATURE_FILTERS):
        x = layers.Conv2D(
            filters,
            4,
            strides=2,
            padding="same",
            kernel_initializer=keras.initializers.HeNormal(seed=seed + index),
            name=f"conv{index + 1}",
        )(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{index + 1}")(x)
    outputs = layers.Flatten(name="features")(x)
    extractor = keras.Model(inputs, outputs, name="diversity_features")
    extractor.trainable = False
    return extractor


def image_diversity(images: np.ndarray, extractor=None, batch_size: int = 256) -> float:
    """Mean pairwise distance of the images' features in `extractor` (default: `build_feature_extractor()`)."""
    extractor = extractor or build_feature_extractor()
    images = np.asarray(images, dtype=np.float32)
    features = [
        np.asarray(extractor(images[start : start + batch_size], training=False))
        for start in range(0, len(images), batch_size)
    ]
    return mean_pairwise_distance(np.concatenate(features))


def check_collapse(
    values: list[float], reference: float, fraction: float = COLLAPSE_FRACTION, epochs: list[int] | None = None
) -> str | None:
    """Warn (ModeCollapseWarning) and return the message when the last value is below `fraction` of `reference`.

    values: the diversity of each epoch so far, first epoch first; reference: the real
    training images' diversity. Not epoch 1's: an untrained generator's noise is more
    varied than faces, so its figure falls as the faces appear. A generator whose samples
    have never been that varied (one still drawing the same grey image after a few steps)
    has not collapsed, it has not started: no warning.
    """
    if not values or reference is None:
        return None
    last, reference = float(values[-1]), float(reference)
    if not (math.isfinite(reference) and math.isfinite(last)) or reference <= 0 or last >= fraction * reference:
        return None
    if max((float(value) for value in values[:-1]), default=0.0) < fraction * reference:
        return None
    epochs = epochs or list(range(1, len(values) + 1))
    message = (
        f"Possible mode collapse: sample diversity at epoch {epochs[-1]} is {last:.3g}, below {fraction:.0%} of "
        f"the real training images' {reference:.3g}. Look at the sample grids; if the faces look alike, try "
        "label smoothing or a lower discriminator learning rate."
    )
    warnings.warn(message, ModeCollapseWarning, stacklevel=2)
    return message

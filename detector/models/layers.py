"""Layers every detector architecture is made of: its input, its output head, and BatchNorm and Dropout that
follow a tf.distribute strategy's global batch (registered, so a model trained under one loads again).
"""

from __future__ import annotations

import keras
from keras import layers

from detector import HEADS


def replicas() -> int:
    """Replicas of the tf.distribute strategy whose scope the model is built in (1 outside any)."""
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def batch_norm_layer(name: str):
    """BatchNormalization; built under a strategy of several replicas, with the global batch's statistics."""
    return layers.BatchNormalization(name=name, synchronized=replicas() > 1)


@keras.saving.register_keras_serializable(package="detector")
class ReplicaDropout(layers.Dropout):
    """Keras' Dropout, but under a tf.distribute strategy each replica's mask is its rows of one
    mask drawn for the global batch: replicas drop different units (with Keras' own layer each
    replica would draw the same mask), exactly those one device would drop."""

    def call(self, inputs, training=False):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        if not training or not self.rate or replicas == 1 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        batch, rest = keras.ops.shape(inputs)[0], tuple(inputs.shape[1:])
        mask = keras.random.dropout(
            keras.ops.ones((batch * replicas, *rest), dtype=inputs.dtype), self.rate, seed=self.seed_generator
        )
        mask = tf.gather(keras.ops.reshape(mask, (replicas, batch, *rest)), context.replica_id_in_sync_group)
        return inputs * mask


def dropout_layer(rate: float, name: str):
    """Keras' Dropout; built under a strategy of several replicas, `ReplicaDropout`.

    A model built on one device then saves with Keras' own layers only, so its model.keras
    loads with `keras.models.load_model` and nothing of the lab's imported.
    """
    return ReplicaDropout(rate, name=name) if replicas() > 1 else layers.Dropout(rate, name=name)


def check_head(head: str) -> None:
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}. Received: head={head!r}")


def output_head(x, head: str):
    check_head(head)
    # float32 under a mixed-precision policy too: P(fake), its logit and the loss stay exact.
    if head == "probability":
        return layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    if head == "logit":
        return layers.Dense(1, name="fake_logit", dtype="float32")(x)
    return layers.Dense(2, activation="softmax", name="softmax2", dtype="float32")(x)


def image_input(size: int):
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer of at least 16 pixels. Received: size={size!r}")
    return keras.Input(shape=(size, size, 3), name="pixels")

"""Harden a detector: fine-tune a copy on its training data plus fresh GAN fakes.

The extra fakes come from their own latent stream (see `gan_lab.stress.HARDENING_STREAM`),
so the stress test that follows scores the hardened detector on fakes it never trained on.
The result is a detector run directory of its own (config.json, model.keras, metrics.json
with a validation-chosen threshold) that `detector.predict.load_detector` loads.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from detector.errors import LabError
from detector.runs import atomic_save_model, read_json, write_json

HARDEN_LEARNING_RATE = 1e-4
# The validation split is scored in memory to choose the threshold; cap it for large data sets.
VALID_LIMIT = 2000


def hardening_fakes(gan_dir: Path, epochs: list[int], n: int, seed: int, batch_size: int = 256) -> np.ndarray:
    """n fakes per epoch from the hardening latent stream, float32 [0, 1]."""
    from gan_lab.stress import HARDENING_STREAM, check_not_grid, stress_latents
    from gan_lab.train import load_generator

    batches = []
    for epoch in epochs:
        generator = load_generator(gan_dir, epoch)
        latents = stress_latents(seed, epoch, n, int(generator.input_shape[-1]), stream=HARDENING_STREAM)
        check_not_grid(latents, gan_dir)
        for start in range(0, n, batch_size):
            batches.append(np.asarray(generator(latents[start : start + batch_size], training=False)))
    return np.clip(np.concatenate(batches), 0.0, 1.0).astype(np.float32)


def _training_dataset(split, extra_fakes: np.ndarray, size: int, crop: str, batch_size: int, seed: int, head: str):
    """The detector's training split mixed at random with the extra fakes (label 1), batched."""
    import tensorflow as tf

    from detector.data import make_dataset

    base = make_dataset(split, size=size, batch_size=batch_size, crop=crop, shuffle=True, seed=seed).unbatch()
    extra = tf.data.Dataset.from_tensor_slices((extra_fakes, np.ones(len(extra_fakes), dtype=np.float32)))
    extra = extra.shuffle(len(extra_fakes), seed=seed)
    total = len(split.paths) + len(extra_fakes)
    # Weights by size, so both run out at about the same time and every image is seen once.
    mixed = tf.data.Dataset.sample_from_datasets(
        [base, extra],
        weights=[len(split.paths) / total, len(extra_fakes) / total],
        seed=seed,
        stop_on_empty_dataset=False,
    )
    if head == "softmax2":
        mixed = mixed.map(lambda pixels, label: (pixels, tf.cast(label, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    return mixed.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def harden_detector(
    detector_dir: str | os.PathLike,
    gan_dir: str | os.PathLike,
    epochs: list[int],
    out_dir: str | os.PathLike,
    n: int = 256,
    seed: int = 0,
    fine_tune_epochs: int = 1,
    learning_rate: float = HARDEN_LEARNING_RATE,
    batch_size: int = 32,
    progress: bool = True,
) -> Path:
    """Fine-tune a copy of the detector on its training split plus `n` fakes per GAN epoch; returns `out_dir`.

    out_dir becomes a detector run directory: model.keras, config.json (the original's plus
    what hardening added), metrics.json (threshold chosen on the validation split).
    """
    import keras

    from detector.metrics import best_threshold, binary_metrics, roc_auc
    from detector.predict import load_detector
    from detector.train import loss_for_head
    from gan_lab.stress import detector_index, split_images

    if not epochs:
        raise ValueError(f"epochs must name at least one GAN epoch. Received: epochs={epochs!r}")
    keras.utils.set_random_seed(seed)
    detector = load_detector(detector_dir)
    index = detector_index(detector)
    train = index.splits.get("train")
    if train is None or not len(train.paths):
        raise LabError(f"The detector's data {index.root} has no training split to fine-tune on")
    extra = hardening_fakes(Path(gan_dir), epochs, n, seed)
    dataset = _training_dataset(train, extra, detector.size, detector.crop, batch_size, seed, detector.head)

    # A fresh copy from disk: the original run's model.keras is never touched.
    model = keras.models.load_model(Path(detector.run_dir) / "model.keras", compile=False)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss_for_head(detector.head))
    with warnings.catch_warnings():
        # The mixed data set's length is unknown until read, and Keras warns each time it ends.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # shuffle=False: the data set shuffles itself, with `seed`.
        history = model.fit(dataset, epochs=fine_tune_epochs, shuffle=False, verbose=1 if progress else 0)

    out_dir = Path(out_dir)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    atomic_save_model(model, out_dir / "model.keras")
    original_config = read_json(Path(detector.run_dir) / "config.json")
    hardening = {
        "from_detector": os.fspath(Path(detector.run_dir).resolve()),
        "gan": os.fspath(Path(gan_dir).resolve()),
        "gan_epochs": list(epochs),
        "fakes_per_epoch": n,
        "extra_fakes": int(len(extra)),
        "fine_tune_epochs": fine_tune_epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "seed": seed,
        "final_loss": float(history.history["loss"][-1]),
    }
    write_json(
        out_dir / "config.json",
        {**original_config, "name": f"{original_config.get('name', '')}-hardened".strip("-"), "hardening": hardening},
    )

    # The threshold on the validation split, as training chose the original's.
    hardened = load_detector(out_dir)
    metrics = {"threshold": 0.5, "hardening": hardening}
    valid = index.splits.get("valid")
    if valid is not None and len(valid.paths):
        real = split_images(index, "valid", 0, detector.size, detector.crop, VALID_LIMIT // 2)
        fake = split_images(index, "valid", 1, detector.size, detector.crop, VALID_LIMIT // 2)
        if len(real) and len(fake):
            labels = np.r_[np.zeros(len(real), dtype=np.int64), np.ones(len(fake), dtype=np.int64)]
            scores = np.r_[hardened.score(real), hardened.score(fake)]
            threshold = best_threshold(labels, scores)
            metrics.update(
                {
                    "threshold": threshold,
                    "valid_accuracy": binary_metrics(labels, scores, threshold)["accuracy"],
                    "valid_roc_auc": roc_auc(labels, scores),
                }
            )
    write_json(out_dir / "metrics.json", metrics)
    return out_dir

"""Harden a detector: fine-tune a copy on its training data plus fresh GAN fakes.

The extra fakes come from their own latent stream (see `gan_lab.gan.latents.HARDENING_STREAM`),
so the stress test that follows scores the hardened detector on fakes it never trained on.
The result is a detector run directory of its own (config.json, model.keras, metrics.json
with a validation-chosen threshold) that `detector.inference.predict.load_detector` loads.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from detector import FAKE, REAL
from detector.base.errors import LabError
from detector.base.runs import atomic_save_model, read_json, write_json
from detector.data.datasets import class_images, run_index
from detector.inference.predict import load_detector
from gan_lab.gan.checkpoints import load_generator
from gan_lab.gan.latents import HARDENING_STREAM, check_not_grid, seeded_latents
from gan_lab.gan.sample import generate

HARDEN_LEARNING_RATE = 1e-4
# The validation split is scored in memory to choose the threshold; cap it for large data sets.
VALID_LIMIT = 2000
# Images the BatchNorm statistics are re-estimated on after fine-tuning, when the detector's run does not say.
BN_RECALIBRATION = 512


def hardening_fakes(gan_dir: Path, epochs: list[int], n: int, seed: int) -> np.ndarray:
    """n fakes per epoch from the hardening latent stream, float32 [0, 1]."""
    batches = []
    for epoch in epochs:
        generator = load_generator(gan_dir, epoch)
        latents = seeded_latents(seed, epoch, n, int(generator.input_shape[-1]), HARDENING_STREAM)
        check_not_grid(latents, gan_dir)
        batches.append(generate(generator, latents))
    return np.concatenate(batches)


def write_hardening_fakes(gan_dir: Path, epochs: list[int], n: int, seed: int, out_root: Path) -> Path:
    """`hardening_fakes` as 8-bit PNGs in a folder of their own under `out_root`, for a detector's `extra_fakes`.

    The folder is named by the GAN run, epochs, n and seed, and reused when a complete one exists;
    it is written under a hidden name and renamed whole, so an interrupted write leaves nothing.
    """
    import shutil

    from detector.data.images import save_png

    gan_dir, out_root = Path(gan_dir), Path(out_root)
    folder = out_root / f"{gan_dir.name}-epochs-{'_'.join(map(str, epochs))}-n{n}-seed{seed}"
    if (folder / "fakes.json").is_file():
        return folder
    partial = out_root / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for epoch in epochs:
            for index, image in enumerate(hardening_fakes(gan_dir, [epoch], n, seed)):
                save_png(partial / f"gan-epoch-{epoch:04d}-{index:05d}.png", image)
        provenance = {"gan": os.fspath(gan_dir.resolve()), "epochs": list(epochs), "n": n, "seed": seed}
        write_json(partial / "fakes.json", {**provenance, "latent_stream": "hardening"})
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder of an older version
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _training_dataset(split, extra_fakes: np.ndarray, size: int, crop: str, batch_size: int, seed: int, head: str):
    """The detector's training split mixed at random with the extra fakes (label 1), batched."""
    import tensorflow as tf

    from detector.data.datasets import make_dataset, prefetched

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
    return prefetched(mixed.batch(batch_size))


def recalibration_images(split, extra_fakes: np.ndarray, size: int, crop: str, count: int, seed: int) -> np.ndarray:
    """A seeded sample of the fine-tuning mix (training split and extra fakes, in proportion), shuffled."""
    from detector.data.datasets import load_images

    total = len(split.paths) + len(extra_fakes)
    rng = np.random.default_rng([seed, 7])
    from_split = min(len(split.paths), int(round(count * len(split.paths) / max(total, 1))))
    chosen = rng.permutation(len(split.paths))[:from_split]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreadable files were reported by the training pipeline
        images, _, _ = load_images([split.paths[i] for i in sorted(chosen)], size, crop=crop)
    extra = extra_fakes[rng.permutation(len(extra_fakes))[: max(count - len(images), 0)]]
    mixed = np.concatenate([images, extra]).astype(np.float32)
    return mixed[rng.permutation(len(mixed))]


def recalibrate_batch_norm(model, images: np.ndarray, batch_size: int) -> None:
    """Set the BatchNorm statistics to their average over `images` in batches, as detector training does."""
    from detector.training.callbacks import RecalibrateBatchNorm, batch_norm_layers

    if not batch_norm_layers(model) or not len(images):
        return
    recalibration = RecalibrateBatchNorm(images, batch_size)
    recalibration.set_model(model)
    recalibration.on_test_begin()


def _fine_tune(detector, dataset, epochs: int, learning_rate: float, progress: bool):
    """A fresh copy of the detector's model.keras (the original is never touched), fine-tuned; (model, final loss)."""
    import keras

    from detector.training.progress import fit_progress
    from detector.training.train import loss_for_head

    model = keras.models.load_model(Path(detector.run_dir) / "model.keras", compile=False)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss_for_head(detector.head))
    with warnings.catch_warnings():
        # The mixed data set's length is unknown until read, and Keras warns each time it ends.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # shuffle=False: the data set shuffles itself, with its seed.
        verbose, shown = fit_progress(progress)
        history = model.fit(dataset, epochs=epochs, shuffle=False, verbose=verbose, callbacks=shown)
    return model, float(history.history["loss"][-1])


def _validation_threshold(hardened, index, seed: int) -> dict:
    """The threshold on the validation split, as training chose the original's (0.5 without one)."""
    from detector.inference.metrics import best_threshold, binary_metrics, operating_thresholds, roc_auc

    real = class_images(index, "valid", REAL, hardened.size, hardened.crop, VALID_LIMIT // 2, seed=seed)
    fake = class_images(index, "valid", FAKE, hardened.size, hardened.crop, VALID_LIMIT // 2, seed=seed)
    if not len(real) or not len(fake):
        return {"threshold": 0.5}
    labels = np.r_[np.zeros(len(real), dtype=np.int64), np.ones(len(fake), dtype=np.int64)]
    scores = np.r_[hardened.score(real), hardened.score(fake)]
    threshold = best_threshold(labels, scores)
    return {
        "threshold": threshold,
        "valid_accuracy": binary_metrics(labels, scores, threshold)["accuracy"],
        "valid_roc_auc": roc_auc(labels, scores),
        **operating_thresholds(labels, scores),
    }


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
    if not epochs:
        raise ValueError(f"epochs must name at least one GAN epoch. Received: epochs={epochs!r}")
    hardenable(detector_dir)  # refuse before the fakes are made
    return harden_with_fakes(
        detector_dir,
        hardening_fakes(Path(gan_dir), epochs, n, seed),
        out_dir,
        {"gan": os.fspath(Path(gan_dir).resolve()), "gan_epochs": list(epochs), "fakes_per_epoch": n},
        seed=seed,
        fine_tune_epochs=fine_tune_epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        progress=progress,
    )


def hardenable(detector_dir: str | os.PathLike):
    """(the detector run's data index, its training split), or a LabError saying why it cannot be fine-tuned.

    It reads the run's config.json only, so refusing costs no model load.
    """
    from detector.base.runs import require_run_dir

    run_dir = require_run_dir(detector_dir, "detector")
    config = read_json(run_dir / "config.json")
    if "imported" in config:
        raise LabError(f"{run_dir} was imported from outside the lab: hardening fine-tunes a Keras model of the lab's")
    index = run_index(config, run_dir / "config.json")
    train = index.splits.get("train")
    if train is None or not len(train.paths):
        raise LabError(f"The detector's data {index.root} has no training split to fine-tune on")
    return index, train


def harden_with_fakes(
    detector_dir: str | os.PathLike,
    extra: np.ndarray,
    out_dir: str | os.PathLike,
    provenance: dict,
    seed: int = 0,
    fine_tune_epochs: int = 1,
    learning_rate: float = HARDEN_LEARNING_RATE,
    batch_size: int = 32,
    progress: bool = True,
) -> Path:
    """Fine-tune a copy of the detector on its training split plus the `extra` fakes (float32 [0, 1]).

    `provenance` (where the fakes came from) goes into the hardened run's config.json and metrics.json.
    """
    import keras

    keras.utils.set_random_seed(seed)
    index, train = hardenable(detector_dir)
    detector = load_detector(detector_dir)
    dataset = _training_dataset(train, extra, detector.size, detector.crop, batch_size, seed, detector.head)
    model, final_loss = _fine_tune(detector, dataset, fine_tune_epochs, learning_rate, progress)
    # Keras' running averages (momentum 0.99) barely move in a short fine-tune: re-estimate them on the mix.
    count = int(detector.config.get("bn_recalibration") or BN_RECALIBRATION)
    recalibrate_batch_norm(
        model, recalibration_images(train, extra, detector.size, detector.crop, count, seed), batch_size
    )
    hardening = {
        "from_detector": os.fspath(Path(detector.run_dir).resolve()),
        **provenance,
        "extra_fakes": int(len(extra)),
        "fine_tune_epochs": fine_tune_epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "seed": seed,
        "final_loss": final_loss,
        "batch_norm_recalibrated_on": count,
    }
    return _write_hardened_run(Path(out_dir), model, detector, index, hardening, seed)


def hardened_name(name: str) -> str:
    """The run name of `name`'s hardened copy: "x" -> "x-hardened", then "x-hardened-2", "x-hardened-3"."""
    match = re.fullmatch(r"(?:(.*)-)?hardened(?:-([2-9]|[1-9][0-9]))?", name, flags=re.DOTALL)
    if match is None:
        return f"{name}-hardened".strip("-")
    base, times = match.group(1) or "", int(match.group(2) or 1) + 1
    return f"{base}-hardened-{times}".strip("-")


def _write_hardened_run(out_dir: Path, model, detector, index, hardening: dict, seed: int) -> Path:
    """out_dir as a detector run: model.keras, the original's config.json plus `hardening`, metrics.json."""
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    atomic_save_model(model, out_dir / "model.keras")
    original_config = read_json(Path(detector.run_dir) / "config.json")
    name = hardened_name(str(original_config.get("name", "")))
    write_json(out_dir / "config.json", {**original_config, "name": name, "hardening": hardening})
    metrics = {**_validation_threshold(load_detector(out_dir), index, seed), "hardening": hardening}
    write_json(out_dir / "metrics.json", metrics)
    return out_dir

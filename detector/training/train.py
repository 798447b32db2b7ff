"""Train a real-vs-fake detector into a numbered run directory, and continue an interrupted one.

    run_dir = train_detector(DetectorConfig(data="synth", model="cnn3", size=64, epochs=10))

A run directory `runs/NNNNN-detector-<name>/` holds config.json (every option, resolved),
history.csv (one row per epoch, from 1), model.keras (the weights with the lowest
validation loss), checkpoints/ (the state after the last complete epoch, for `resume`),
plots/ (training curves, then evaluation plots), metrics.json and report.md (from
detector.inference.evaluate). The callbacks that write them are in `detector.training.callbacks`.

Keras is imported on first use, so that importing this module (for DetectorConfig, say,
when building the command line) stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from detector import HEADS, Head
from detector.base.errors import LabError
from detector.base.failpoints import failpoint
from detector.base.runs import (
    EPOCH_HISTORY,
    EPOCH_STATE,
    committed_epochs,
    read_history,
    read_json,
    remove_stale,
    write_json,
)
from detector.data.images import FIT_MODES, FitMode
from detector.data.recipes import BLUR_SIGMA_RANGE, JPEG_QUALITY_RANGE, RECIPES
from detector.data.synthfaces import DIFFICULTIES, Difficulty
from detector.training import lifecycle
from detector.training.lifecycle import refuse
from detector.training.scaling import RESUME_CHANGEABLE, Scaling, ScalingOptions, check_options, train_on_cluster

Recipe = Literal["none", "robust"]


@dataclasses.dataclass
class DetectorConfig(ScalingOptions):
    """Every option of a detector training run; the run's config.json holds them resolved.

    Beside these: strategy, devices, precision and jit (see `detector.training.scaling`).
    """

    data: str = "synth"  # a real-vs-fake image folder, or "synth" for SynthFaces rendered under runs_dir
    model: str = "cnn3"  # a name from detector.models.zoo.MODELS
    size: int = 64  # square input side in pixels
    head: Head = "probability"  # the output: P(fake), its logit, or two softmax units
    epochs: int = 10  # most epochs to train (with --resume: the new total)
    batch_size: int = 32  # images per step
    learning_rate: float = 1e-3  # Adam's initial learning rate
    patience: int = 4  # epochs without a lower validation loss before stopping early
    lr_patience: int = 2  # epochs without a lower validation loss before the learning rate is cut
    lr_factor: float = 0.5  # the learning rate is multiplied by this at each cut
    min_learning_rate: float = 1e-6  # cuts stop at this learning rate
    steps_per_epoch: int | None = None  # None: one pass over the training split
    crop: FitMode = "resize"  # how images of another size are fitted: stretched, or their centre square
    augment: bool = False  # random flips, rotations, shifts and zooms of training batches
    rotation: float = 0.05  # with augment: fraction of a full turn
    shift: float = 0.1  # with augment: fraction of the image side
    zoom: float = 0.1  # with augment: fraction of the image side
    blur_probability: float = 0.0  # Gaussian blur of a training image, with or without augment
    jpeg_probability: float = 0.0  # JPEG re-compression of a training image, with or without augment
    blur_sigma: tuple[float, float] = BLUR_SIGMA_RANGE  # the range each blurred image's sigma is drawn from
    jpeg_quality: tuple[int, int] = JPEG_QUALITY_RANGE  # the range each re-compressed image's quality is drawn from
    # A named set of the options above: "robust" is CNNDetection's blur + JPEG at p = 0.5 (options
    # given beside it win); "none" leaves them as they are.
    recipe: Recipe = "none"
    weights: str | None = (
        "imagenet"  # transfer models: "imagenet" (from the Keras cache, downloaded once), a file, or None
    )
    unfreeze: int = 0  # transfer models: how many of the backbone's top layers are trained
    split: tuple[float, float, float] = (
        0.8,
        0.1,
        0.1,
    )  # train/valid/test fractions for folders without their own splits
    cache: bool | None = None  # keep decoded images in memory; None: when they fit in CACHE_LIMIT_BYTES
    # BatchNorm statistics re-estimated from this many training images before each validation
    # (0: Keras' running averages, which lag far behind on runs of a few hundred steps).
    bn_recalibration: int = 512
    seed: int = 0  # the same seed gives the same data split, weights and batches
    name: str = ""  # run directory suffix; "" means "<model>-<size>px"
    synth_n: int = 2000  # with data="synth": images in total, half real, half fake
    synth_difficulty: Difficulty = "medium"  # with data="synth": how subtle the fakes are
    # Folders of extra fake images that join the training split (never valid or test), e.g. GAN
    # fakes written by `gan-lab detector train --fakes-from RUN@EPOCHS`.
    extra_fakes: tuple[str, ...] = ()
    tensorboard: bool = True  # losses, metrics and the learning rate under tensorboard/


# --------------------------------------------------------------------------- options


def _check_ranges(config: DetectorConfig) -> None:
    sigma, quality = tuple(config.blur_sigma), tuple(config.jpeg_quality)
    if len(sigma) != 2 or not all(lifecycle.is_number(value) for value in sigma) or not 0 < sigma[0] <= sigma[1]:
        refuse(config, "blur_sigma", "two numbers (low, high) with 0 < low <= high")
    if (
        len(quality) != 2
        or not all(lifecycle.is_int(value) for value in quality)
        or not 1 <= quality[0] <= quality[1] <= 100
    ):
        refuse(config, "jpeg_quality", "two whole numbers (low, high) with 1 <= low <= high <= 100")


def _check_numbers(config: DetectorConfig) -> None:
    _check_ranges(config)
    if not lifecycle.is_int(config.size) or config.size < 16:
        refuse(config, "size", "an integer of at least 16 pixels")
    lifecycle.require_positive(config, "epochs", "batch_size", "patience", "lr_patience")
    lifecycle.require_steps(config)
    lifecycle.require_seed(config)
    for option in ("bn_recalibration", "unfreeze"):
        if not lifecycle.is_int(getattr(config, option)) or getattr(config, option) < 0:
            refuse(config, option, "a non-negative integer")
    if not lifecycle.is_int(config.synth_n) or config.synth_n < 6:
        refuse(config, "synth_n", "an integer of at least 6")
    for option in ("learning_rate", "lr_factor"):
        if not lifecycle.is_number(value := getattr(config, option)) or not 0 < value < 1:
            refuse(config, option, "a number between 0 and 1")
    for option in ("rotation", "shift", "zoom"):
        if not lifecycle.is_number(value := getattr(config, option)) or not 0 <= value < 1:
            refuse(config, option, "a fraction in [0, 1)")
    for option in ("blur_probability", "jpeg_probability"):
        if not lifecycle.is_number(value := getattr(config, option)) or not 0 <= value <= 1:
            refuse(config, option, "a probability in [0, 1]")


def _check_split(config: DetectorConfig) -> tuple:
    try:
        split = tuple(float(value) for value in config.split)
    except (TypeError, ValueError):
        split = ()
    if len(split) != 3 or min(split) < 0 or not math.isclose(sum(split), 1.0, abs_tol=1e-6) or split[0] <= 0:
        refuse(config, "split", "three non-negative fractions (train, valid, test) summing to 1 with train > 0")
    return split


def check_config(config: DetectorConfig) -> DetectorConfig:
    """A copy of `config` with defaults filled in (name, weights); LabError naming the first bad option."""
    from detector.models.zoo import MODELS, TRANSFER_MODELS

    lifecycle.require_choice(config, "model", sorted(MODELS))
    lifecycle.require_choice(config, "head", HEADS)
    lifecycle.require_choice(config, "crop", FIT_MODES)
    lifecycle.require_choice(config, "synth_difficulty", DIFFICULTIES)
    _check_numbers(config)
    check_options(config)
    split = _check_split(config)
    weights = config.weights
    if isinstance(weights, str) and weights.lower() in ("", "none"):
        weights = None
    transfer = config.model in TRANSFER_MODELS
    if isinstance(config.extra_fakes, (str, os.PathLike)):
        refuse(config, "extra_fakes", "a list of folders, not one string")
    config = _with_recipe(config)
    return dataclasses.replace(
        config,
        data=os.fspath(config.data),
        split=split,
        name=config.name or f"{config.model}-{config.size}px",
        # Options that do not apply to the model are recorded as unused rather than misleading.
        weights=os.fspath(weights) if transfer and weights is not None else None,
        extra_fakes=tuple(os.path.abspath(folder) for folder in config.extra_fakes),
        unfreeze=config.unfreeze if transfer else 0,
    )


def _with_recipe(config: DetectorConfig) -> DetectorConfig:
    """The recipe's option values, for each option still at its default (an option given beside it wins)."""
    lifecycle.require_choice(config, "recipe", tuple(RECIPES))
    defaults = DetectorConfig()
    chosen = {
        option: value
        for option, value in RECIPES[config.recipe].items()
        if getattr(config, option) == getattr(defaults, option)
    }
    return dataclasses.replace(config, **chosen)


def loss_for_head(head: str):
    """The training loss for a head: binary cross-entropy on P(fake) or its logit, sparse CE on two classes."""
    import keras

    if head == "probability":
        return keras.losses.BinaryCrossentropy()
    if head == "logit":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    if head == "softmax2":
        return keras.losses.SparseCategoricalCrossentropy()
    raise ValueError(f"head must be one of ('probability', 'logit', 'softmax2'). Received: head={head!r}")


def metrics_for_head(head: str) -> list:
    """Accuracy at P(fake) = 0.5 and ROC-AUC of P(fake), named "accuracy" and "auc" for every head."""
    import keras

    if head == "probability":
        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    if head == "logit":
        return [
            keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy"),
            keras.metrics.AUC(from_logits=True, name="auc"),
        ]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), _fake_column_auc()(name="auc")]


_FAKE_COLUMN_AUC = None


def _fake_column_auc():
    """keras.metrics.AUC over column 1 (P(fake)) of a two-unit softmax; defined on first use."""
    global _FAKE_COLUMN_AUC
    if _FAKE_COLUMN_AUC is None:
        import keras

        @keras.saving.register_keras_serializable(package="detector")
        class FakeColumnAUC(keras.metrics.AUC):
            def update_state(self, y_true, y_pred, sample_weight=None):
                return super().update_state(y_true, y_pred[:, 1], sample_weight=sample_weight)

        _FAKE_COLUMN_AUC = FakeColumnAUC
    return _FAKE_COLUMN_AUC


def _build_model(config: DetectorConfig, weights):
    from detector.models.zoo import TRANSFER_MODELS, build_model

    options = {"weights": weights, "trainable_layers": config.unfreeze} if config.model in TRANSFER_MODELS else {}
    try:
        return build_model(config.model, size=config.size, head=config.head, **options)
    except LabError:
        raise
    except ValueError as error:  # e.g. an input too small for a backbone
        raise LabError(f"Cannot build model {config.model!r} at {config.size} px: {error}") from None


def _compiled_model(config: DetectorConfig, scaling: Scaling, weights):
    """The run's model and its optimizer, on the strategy's devices in the run's precision."""
    import keras

    with scaling.scope():
        model = _build_model(config, weights)
        # Under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer.
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=loss_for_head(config.head),
            metrics=metrics_for_head(config.head),
            jit_compile=scaling.jit,
        )
    return model


# --------------------------------------------------------------------------- data


def _index(config: DetectorConfig):
    """The run's train/valid/test index, split exactly as detector.inference.evaluate will split it again."""
    from detector.data.datasets import run_index

    index = run_index(config)
    for name, purpose in (("train", "train on"), ("valid", "choose the best epoch and the threshold with")):
        split = index.splits.get(name)
        if split is None or not len(split.paths):
            raise LabError(f"{config.data} has no {name} images to {purpose} (layout {index.layout!r})")
    train = index.splits["train"]
    if len({int(label) for label in train.labels}) < 2:
        raise LabError(f"The training split of {config.data} has one class only: {train.counts()}")
    return index


def _datasets(config: DetectorConfig, index, shuffle_seed: int, scaling: Scaling):
    """(training batches, repeated and shuffled; validation batches) as the head wants its labels."""
    import tensorflow as tf

    from detector.data.augment import build_augmentation
    from detector.data.datasets import make_dataset

    augment = None
    if config.augment or config.blur_probability or config.jpeg_probability:
        augment = build_augmentation(
            seed=config.seed,
            flip=config.augment,
            rotation=config.rotation if config.augment else 0.0,
            shift=config.shift if config.augment else 0.0,
            zoom=config.zoom if config.augment else 0.0,
            blur_probability=config.blur_probability,
            jpeg_probability=config.jpeg_probability,
            blur_sigma=config.blur_sigma,
            jpeg_quality=config.jpeg_quality,
        )
    common = dict(size=config.size, batch_size=config.batch_size, crop=config.crop, cache=bool(config.cache))
    # Repeated, so every step gets a full batch and steps_per_epoch may differ from one pass.
    train = make_dataset(index.splits["train"], shuffle=True, augment=augment, seed=shuffle_seed, repeat=True, **common)
    valid = make_dataset(index.splits["valid"], shuffle=False, **common)
    if config.head == "softmax2":

        def as_class(images, labels):
            return images, tf.cast(labels, tf.int32)

        train, valid = train.map(as_class), valid.map(as_class)
    return scaling.distribute(train), scaling.distribute(valid)


def _use_cache(config: DetectorConfig, index) -> bool:
    if config.cache is not None:
        return bool(config.cache)
    return lifecycle.fits_in_memory(len(index.splits["train"].paths) + len(index.splits["valid"].paths), config.size)


def _recalibration_images(config: DetectorConfig, index):
    """A fixed, seeded sample of training images for re-estimating BatchNorm statistics."""
    from detector.data.datasets import load_images

    paths = index.splits["train"].paths
    chosen = np.random.default_rng(config.seed).permutation(len(paths))[: config.bn_recalibration]
    images, _, _ = load_images([paths[i] for i in sorted(chosen)], config.size, crop=config.crop)
    return images[np.random.default_rng(config.seed + 1).permutation(len(images))]


# --------------------------------------------------------------------------- start and resume


def _start_run(config: DetectorConfig, runs_dir, progress: bool, scaling: Scaling):
    """Resolve the data, check it and the model, then create the run directory and its config.json."""
    import keras

    config, source = lifecycle.resolve_data(check_config(config), runs_dir)
    scaling.check_batch(config.batch_size)
    index = _index(config)
    config = dataclasses.replace(config, cache=_use_cache(config, index), precision=scaling.precision)
    keras.utils.set_random_seed(config.seed)
    # Before the run directory: a bad model leaves nothing behind.
    model = _compiled_model(config, scaling, config.weights)
    extra = {
        "data_source": source,
        "layout": index.layout,
        "counts": {name: split.counts() for name, split in index.splits.items()},
        "parameters": int(model.count_params()),
    }
    run_dir = lifecycle.start_run_dir("detector", config, runs_dir, extra)
    on = f" on {scaling.describe()}" if scaling.describe() else ""
    lifecycle.say(
        progress, f"Training {config.model} ({config.size} px, {config.head} head{on}) on {config.data} -> {run_dir}"
    )
    return run_dir, config, index, model


def _load_checkpoint(run_dir: Path, config: DetectorConfig, model, state: dict) -> None:
    """The weights and optimizer state of the last epoch that did not diverge."""
    from detector.training.callbacks import MODEL_FILE

    folder = committed_epochs(run_dir).get(state["checkpoint_epoch"])
    checkpoint = folder / MODEL_FILE if folder is not None else None
    if checkpoint is None or not checkpoint.is_file():
        raise LabError(
            f"Cannot resume {run_dir}: its state names epoch {state['checkpoint_epoch']}, whose model is missing "
            f"under {run_dir / 'checkpoints'}"
        )
    model.optimizer.build(model.trainable_variables)  # so that its saved moments and step count load too
    try:
        model.load_weights(checkpoint)
    except Exception as error:  # Keras raises several types for a foreign or mismatched file
        raise LabError(
            f"Cannot resume {run_dir}: {checkpoint} does not fit {config.model} at {config.size} px: {error}"
        ) from None


def _last_state(run_dir: Path) -> tuple[dict, list[dict]]:
    """(state, history rows) of the last committed epoch, after clearing what an interruption left."""
    from detector.training.callbacks import publish_epoch

    epochs = committed_epochs(run_dir)
    completed = max(epochs, default=0)
    if not completed and (run_dir / "checkpoints" / EPOCH_STATE).is_file():
        raise LabError(
            f"Cannot resume {run_dir}: it was written by an earlier version of the lab (checkpoints/state.json, "
            "no checkpoints/epoch-NNNN/ folders); its model.keras and metrics stand as they are. Start a new run"
        )
    remove_stale(run_dir, completed)
    if not completed:
        return {}, []
    state = read_json(epochs[completed] / EPOCH_STATE)
    publish_epoch(run_dir, state)  # mends a crash between the commit and its publication
    return state, read_history(epochs[completed] / EPOCH_HISTORY)


def _training_done(state: dict, config: DetectorConfig) -> bool:
    return bool(state.get("stopped")) or state.get("completed_epochs", 0) >= config.epochs


def _resume_run(run_dir, given: DetectorConfig | None, progress: bool, scaling: Scaling):
    """The run's own config (more epochs if given), index, model at its last committed epoch, state and history."""
    import keras

    run_dir, recorded, record = lifecycle.recorded_config(run_dir, "detector", DetectorConfig)
    lifecycle.claim_run(run_dir)  # before anything of the run is changed
    recorded = check_config(recorded)
    changeable = ("epochs", *RESUME_CHANGEABLE)
    config = lifecycle.resume_config(run_dir, recorded, record, check_config(given) if given else None, changeable)
    scaling.check_batch(config.batch_size)
    lifecycle.update_recorded(run_dir, record, config, changeable)
    lifecycle.require_data_here(run_dir, config)
    index = _index(config)
    state, rows = _last_state(run_dir)
    completed = int(state.get("completed_epochs", 0))
    if not _training_done(state, config):
        # The evaluation of an earlier end no longer describes the model training will leave.
        for name in ("metrics.json", "report.md"):
            (run_dir / name).unlink(missing_ok=True)
    keras.utils.set_random_seed(config.seed + completed)
    # The weights come from the checkpoint, so a transfer backbone needs no ImageNet file here.
    model = _compiled_model(config, scaling, None if completed else config.weights)
    if state.get("checkpoint_epoch"):
        _load_checkpoint(run_dir, config, model, state)
    lifecycle.say(progress, f"Resuming {run_dir} after epoch {completed} of {config.epochs}")
    return run_dir, config, index, model, state, rows


# --------------------------------------------------------------------------- training


def _fit(run_dir: Path, config: DetectorConfig, index, model, state: dict, history_rows, callbacks, progress, scaling):
    import keras

    from detector.training.callbacks import batch_norm_layers, run_callbacks
    from detector.training.progress import fit_progress

    completed = int(state.get("completed_epochs", 0))
    best_weights = None
    if completed and (run_dir / "model.keras").is_file():
        best_weights = keras.models.load_model(run_dir / "model.keras", compile=False).get_weights()
    recalibration = None
    if config.bn_recalibration and batch_norm_layers(model):
        recalibration = _recalibration_images(config, index)
    own = run_callbacks(run_dir, config, state, history_rows, best_weights, recalibration, progress)
    # A resumed run shuffles with another seed, so it does not repeat its first epochs' order.
    train, valid = _datasets(config, index, config.seed + completed, scaling)
    steps = config.steps_per_epoch or math.ceil(len(index.splits["train"].paths) / config.batch_size)
    verbose, shown = fit_progress(progress)  # a bar in a terminal, a line per epoch in a log, a widget in Jupyter
    with warnings.catch_warnings():
        # The validation set's length is only known once read (unreadable files are skipped),
        # and Keras warns every time such a data set ends, as it does after each validation pass.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        scaling.fit(
            model,
            train,
            validation_data=valid,
            epochs=config.epochs,
            initial_epoch=completed,
            steps_per_epoch=steps,
            shuffle=False,  # the training data set shuffles itself, with the run's seed
            callbacks=[*own, *shown, *(callbacks or [])],
            verbose=verbose,
        )


def _finish(run_dir: Path, config: DetectorConfig, state: dict, progress: bool) -> None:
    """Write the training metrics and curves, and evaluate the best model (model.keras)."""
    from detector.inference.evaluate import evaluate_run
    from detector.training.plots import plot_run_history

    failpoint("training-finished")
    if not (run_dir / "model.keras").is_file():
        raise LabError(
            f"Training in {run_dir} never reached a finite validation loss ({state.get('stopped') or 'no epoch completed'}); "
            f"try a lower learning rate than {config.learning_rate}"
        )
    training = {
        "best_epoch": state.get("best_epoch"),
        "best_val_loss": state.get("best_val_loss"),
        "epochs_trained": state.get("completed_epochs", 0),
        "stopped": state.get("stopped"),
        "train_seconds": round(float(state.get("train_seconds", 0.0)), 1),
    }
    write_json(run_dir / "metrics.json", {**_read_metrics(run_dir), **training})
    plot_run_history(run_dir)
    evaluate_run(run_dir, progress=progress)


def train_detector(
    config: DetectorConfig | None = None,
    runs_dir: str | os.PathLike = "runs",
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    callbacks: list | None = None,
) -> Path | None:
    """Train a detector into a new run directory (or continue `resume`), evaluate it, and return the directory.

    resume: a detector run directory interrupted after one or more epochs. Training continues
    at the next epoch with the optimizer state, learning rate, early-stopping counters and
    history it had. Its options come from its own config.json; a `config` given with it may
    change `epochs` (the new total) and must agree with the run on every other option
    (LabError listing those that do not). A finished run is only evaluated again if its
    metrics are missing.
    callbacks: extra Keras callbacks, called after the run's own (which save each epoch first).
    With strategy "multiworker", every worker of the cluster calls this with the same
    options; the chief writes the run and returns it, the others train in step with it
    (writing only to a temporary folder they remove) and return None.
    """
    return train_on_cluster("detector", DetectorConfig, _train, config, runs_dir, resume, progress, callbacks)


def _train(config, runs_dir, resume, progress: bool, callbacks, scaling: Scaling) -> Path:
    if resume is None:
        run_dir, config, index, model = _start_run(config or DetectorConfig(), runs_dir, progress, scaling)
        state, history_rows = {}, []
    else:
        run_dir, config, index, model, state, history_rows = _resume_run(resume, config, progress, scaling)
        # report.md is evaluation's last file: without it, an interrupted evaluation runs again.
        if _training_done(state, config) and "accuracy" in _read_metrics(run_dir) and (run_dir / "report.md").is_file():
            lifecycle.say(progress, f"{run_dir} has finished training and evaluation; nothing to resume")
            return run_dir
    if not _training_done(state, config):
        with lifecycle.interruptible(run_dir):
            _fit(run_dir, config, index, model, state, history_rows, callbacks, progress, scaling)
    _finish(run_dir, config, state, progress)
    lifecycle.say(progress, f"Wrote model.keras, history.csv, plots/, metrics.json and report.md to {run_dir}")
    return run_dir


def _read_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    return read_json(path) if path.is_file() else {}

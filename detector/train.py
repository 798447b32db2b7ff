"""Train a real-vs-fake detector into a numbered run directory, and continue an interrupted one.

    run_dir = train_detector(DetectorConfig(data="synth", model="cnn3", size=64, epochs=10))

A run directory `runs/NNNNN-detector-<name>/` holds config.json (every option, resolved),
history.csv (one row per epoch), model.keras (the weights with the lowest validation loss),
checkpoints/ (the state after the last complete epoch, for `resume`), plots/ (training
curves, then evaluation plots), metrics.json and report.md (from detector.evaluate).

Keras is imported on first use, so that importing this module (for DetectorConfig, say,
when building the command line) stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from pathlib import Path

from detector.errors import LabError
from detector.runs import (
    atomic_save_model,
    config_from_dict,
    create_run_dir,
    read_history,
    read_json,
    require_run_dir,
    write_history,
    write_json,
)

STATE_FILE = "state.json"  # under checkpoints/: what the last complete epoch left behind
# Training and validation images are decoded once and kept in memory when they fit in this.
CACHE_LIMIT_BYTES = 1 << 30
# history.csv columns in this order; any other logged value follows them.
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "learning_rate")
# A resumed run must agree with the given config on these; everything else comes from the run.
RESUME_CHECKED = ("model", "size", "head", "data")


@dataclasses.dataclass
class DetectorConfig:
    """Every option of a detector training run; the run's config.json holds them resolved."""

    data: str = "synth"  # a real-vs-fake image folder, or "synth" for SynthFaces rendered under runs_dir
    model: str = "cnn3"  # a name from detector.models.MODELS
    size: int = 64  # square input side in pixels
    head: str = "probability"  # "probability", "logit" or "softmax2"
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 4  # epochs without a lower validation loss before stopping early
    lr_patience: int = 2  # epochs without a lower validation loss before the learning rate is cut
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-6
    steps_per_epoch: int | None = None  # None: one pass over the training split
    crop: str = "resize"  # how images of another size are fitted: "resize" (stretch) or "crop" (centre square)
    augment: bool = False  # random flips, rotations, shifts and zooms of training batches
    rotation: float = 0.05  # with augment: fraction of a full turn
    shift: float = 0.1  # with augment: fraction of the image side
    zoom: float = 0.1  # with augment: fraction of the image side
    blur_probability: float = 0.0  # Gaussian blur of a training image, with or without augment
    jpeg_probability: float = 0.0  # JPEG re-compression of a training image, with or without augment
    weights: str | None = "imagenet"  # transfer models: "imagenet" (local Keras cache only), a file, or None
    unfreeze: int = 0  # transfer models: how many of the backbone's top layers are trained
    split: tuple = (0.8, 0.1, 0.1)  # train/valid/test fractions for folders without their own splits
    cache: bool | None = None  # keep decoded images in memory; None: when they fit in CACHE_LIMIT_BYTES
    # BatchNorm statistics re-estimated from this many training images before each validation
    # (0: Keras' running averages, which lag far behind on runs of a few hundred steps).
    bn_recalibration: int = 512
    seed: int = 0
    name: str = ""  # run directory suffix; "" means "<model>-<size>px"
    synth_n: int = 2000  # with data="synth": images in total, half real, half fake
    synth_difficulty: str = "medium"  # with data="synth": "easy", "medium" or "hard"


# --------------------------------------------------------------------------- options


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config: DetectorConfig) -> DetectorConfig:
    """A copy of `config` with defaults filled in (name, weights); LabError naming the first bad option."""
    from detector.images import FIT_MODES
    from detector.models import HEADS, MODELS, TRANSFER_MODELS
    from detector.synthfaces import DIFFICULTIES

    def refuse(option: str, expected: str):
        raise LabError(f"{option} must be {expected}. Received: {option}={getattr(config, option)!r}")

    if config.model not in MODELS:
        refuse("model", f"one of {sorted(MODELS)}")
    if config.head not in HEADS:
        refuse("head", f"one of {HEADS}")
    if config.crop not in FIT_MODES:
        refuse("crop", f"one of {FIT_MODES}")
    if config.synth_difficulty not in DIFFICULTIES:
        refuse("synth_difficulty", f"one of {DIFFICULTIES}")
    if not _is_int(config.size) or config.size < 16:
        refuse("size", "an integer of at least 16 pixels")
    if not _is_int(config.bn_recalibration) or config.bn_recalibration < 0:
        refuse("bn_recalibration", "a non-negative integer")
    for option in ("epochs", "batch_size", "patience", "lr_patience"):
        if not _is_int(getattr(config, option)) or getattr(config, option) < 1:
            refuse(option, "a positive integer")
    if config.steps_per_epoch is not None and (not _is_int(config.steps_per_epoch) or config.steps_per_epoch < 1):
        refuse("steps_per_epoch", "None or a positive integer")
    if not _is_int(config.seed) or config.seed < 0:
        refuse("seed", "a non-negative integer")
    if not _is_int(config.unfreeze) or config.unfreeze < 0:
        refuse("unfreeze", "a non-negative integer")
    if not _is_int(config.synth_n) or config.synth_n < 6:
        refuse("synth_n", "an integer of at least 6")
    if not isinstance(config.learning_rate, (int, float)) or not 0 < config.learning_rate < 1:
        refuse("learning_rate", "a number between 0 and 1")
    if not 0 < config.lr_factor < 1:
        refuse("lr_factor", "a number between 0 and 1")
    for option in ("rotation", "shift", "zoom"):
        if not 0 <= getattr(config, option) < 1:
            refuse(option, "a fraction in [0, 1)")
    for option in ("blur_probability", "jpeg_probability"):
        if not 0 <= getattr(config, option) <= 1:
            refuse(option, "a probability in [0, 1]")
    try:
        split = tuple(float(value) for value in config.split)
    except (TypeError, ValueError):
        split = ()
    if len(split) != 3 or min(split) < 0 or not math.isclose(sum(split), 1.0, abs_tol=1e-6) or split[0] <= 0:
        refuse("split", "three non-negative fractions (train, valid, test) summing to 1 with train > 0")
    weights = config.weights
    if isinstance(weights, str) and weights.lower() in ("", "none"):
        weights = None
    transfer = config.model in TRANSFER_MODELS
    return dataclasses.replace(
        config,
        data=os.fspath(config.data),
        split=split,
        name=config.name or f"{config.model}-{config.size}px",
        # Options that do not apply to the model are recorded as unused rather than misleading.
        weights=os.fspath(weights) if transfer and weights is not None else None,
        unfreeze=config.unfreeze if transfer else 0,
    )


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
    from detector.models import TRANSFER_MODELS, build_model

    options = {"weights": weights, "trainable_layers": config.unfreeze} if config.model in TRANSFER_MODELS else {}
    try:
        return build_model(config.model, size=config.size, head=config.head, **options)
    except LabError:
        raise
    except ValueError as error:  # e.g. an input too small for a backbone
        raise LabError(f"Cannot build model {config.model!r} at {config.size} px: {error}") from None


def _compile(model, config: DetectorConfig) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=loss_for_head(config.head),
        metrics=metrics_for_head(config.head),
    )


# --------------------------------------------------------------------------- data


def _index(config: DetectorConfig):
    """The run's train/valid/test index, split exactly as detector.evaluate will split it again."""
    from detector.data import index_folder

    index = index_folder(config.data, split=tuple(config.split), seed=config.seed)
    for name, purpose in (("train", "train on"), ("valid", "choose the best epoch and the threshold with")):
        split = index.splits.get(name)
        if split is None or not len(split.paths):
            raise LabError(f"{config.data} has no {name} images to {purpose} (layout {index.layout!r})")
    train = index.splits["train"]
    if len(set(int(label) for label in train.labels)) < 2:
        raise LabError(f"The training split of {config.data} has one class only: {train.counts()}")
    return index


def _datasets(config: DetectorConfig, index, shuffle_seed: int):
    """(training batches, repeated and shuffled; validation batches) as the head wants its labels."""
    import tensorflow as tf

    from detector.augment import build_augmentation
    from detector.data import make_dataset

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
        )
    common = dict(size=config.size, batch_size=config.batch_size, crop=config.crop, cache=bool(config.cache))
    # Repeated, so every step gets a full batch and steps_per_epoch may differ from one pass.
    train = make_dataset(index.splits["train"], shuffle=True, augment=augment, seed=shuffle_seed, repeat=True, **common)
    valid = make_dataset(index.splits["valid"], shuffle=False, **common)
    if config.head == "softmax2":

        def as_class(images, labels):
            return images, tf.cast(labels, tf.int32)

        train, valid = train.map(as_class), valid.map(as_class)
    return train, valid


def _use_cache(config: DetectorConfig, index) -> bool:
    if config.cache is not None:
        return bool(config.cache)
    images = len(index.splits["train"].paths) + len(index.splits["valid"].paths)
    return images * config.size * config.size * 3 * 4 <= CACHE_LIMIT_BYTES


# --------------------------------------------------------------------------- history


# --------------------------------------------------------------------------- callbacks


def _learning_rate(model) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _batch_norm_layers(layer) -> list:
    """The trainable BatchNormalization layers of a model, nested models included."""
    import keras

    found = []
    for child in getattr(layer, "layers", []):
        if isinstance(child, keras.layers.BatchNormalization):
            if child.trainable:
                found.append(child)
        else:
            found.extend(_batch_norm_layers(child))
    return found


def _recalibration_images(config: DetectorConfig, index):
    """A fixed, seeded sample of training images for re-estimating BatchNorm statistics."""
    import numpy as np

    from detector.data import load_images

    paths = index.splits["train"].paths
    chosen = np.random.default_rng(config.seed).permutation(len(paths))[: config.bn_recalibration]
    images, _, _ = load_images([paths[i] for i in sorted(chosen)], config.size, crop=config.crop)
    return images[np.random.default_rng(config.seed + 1).permutation(len(images))]


def _make_callbacks(
    run_dir: Path,
    config: DetectorConfig,
    model,
    index,
    state: dict,
    history_rows: list[dict],
    best_weights,
    progress: bool,
) -> list:
    """Checkpoints, early stopping, learning-rate cuts and history.csv, each continuing from `state`.

    Order matters: each epoch ends with history.csv, then model.keras (if the validation loss
    is the lowest yet), then the stopping and learning-rate decisions, and last the resumable
    state, which names only files already written.
    """
    import keras

    resumed = state.get("completed_epochs", 0) > 0
    verbose = 1 if progress else 0

    class RecalibrateBatchNorm(keras.callbacks.Callback):
        """Before each validation pass, set BatchNorm statistics to the average over training batches.

        Keras keeps running averages with momentum 0.99, about a hundred steps of memory. On a
        short run (a few hundred steps) they still carry their initial values, and the model
        that scores 95% on training batches scores 50% in inference mode; the validation loss,
        and so the best epoch and early stopping, would then measure that lag, not the model.
        Averaging the statistics of a fixed set of training batches ("precise BatchNorm")
        removes the lag; training itself is unchanged.
        """

        def __init__(self, images):
            super().__init__()
            self.images = images

        def on_test_begin(self, logs=None):
            layers = _batch_norm_layers(self.model)
            momenta = [layer.momentum for layer in layers]
            try:
                for step, start in enumerate(range(0, len(self.images), config.batch_size)):
                    # Momentum k / (k + 1) makes each moving statistic the mean over batches 0..k.
                    for layer in layers:
                        layer.momentum = step / (step + 1)
                    self.model(self.images[start : start + config.batch_size], training=True)
            finally:
                for layer, momentum in zip(layers, momenta):
                    layer.momentum = momentum

    class HistoryCSV(keras.callbacks.Callback):
        """history.csv, rewritten atomically after every epoch; rows from before a resume are kept."""

        def __init__(self, path: Path, rows: list[dict]):
            super().__init__()
            self.path, self.rows, self.rate = path, list(rows), None

        def on_epoch_begin(self, epoch, logs=None):
            self.rate = _learning_rate(self.model)  # the rate this epoch trains with

        def on_epoch_end(self, epoch, logs=None):
            values = {key: float(value) for key, value in (logs or {}).items() if key != "learning_rate"}
            self.rows.append({"epoch": int(epoch), **values, "learning_rate": self.rate})
            write_history(self.path, self.rows, HISTORY_COLUMNS)

    class BestModel(keras.callbacks.Callback):
        """model.keras, saved atomically whenever the validation loss is the lowest so far."""

        def __init__(self, path: Path, best: float | None, best_epoch: int | None):
            super().__init__()
            self.path, self.best, self.best_epoch = path, best, best_epoch

        def on_epoch_end(self, epoch, logs=None):
            current = _finite((logs or {}).get("val_loss"))
            if current is not None and (self.best is None or current < self.best):
                self.best, self.best_epoch = current, int(epoch)
                atomic_save_model(self.model, self.path)

    class EarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            saved = state.get("early_stopping")
            if resumed and saved:
                self.wait, self.best, self.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
                self.best_weights = best_weights

    class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            saved = state.get("reduce_lr")
            if resumed and saved:
                self.wait, self.best, self.cooldown_counter = saved["wait"], saved["best"], saved["cooldown_counter"]

    class ResumeState(keras.callbacks.Callback):
        """checkpoints/epoch-NNNN.keras (model and optimizer), then checkpoints/state.json naming it."""

        def __init__(self):
            super().__init__()
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            folder = run_dir / "checkpoints"
            diverged = _finite((logs or {}).get("loss")) is None
            if not diverged:
                name = f"epoch-{epoch + 1:04d}.keras"
                atomic_save_model(self.model, folder / name)
                state["checkpoint"] = name
            state.update(
                completed_epochs=int(epoch) + 1,
                best_val_loss=best_model.best,
                best_epoch=best_model.best_epoch,
                learning_rate=_learning_rate(self.model),
                stopped="loss became NaN" if diverged else ("early stopping" if self.model.stop_training else None),
                train_seconds=state.get("train_seconds", 0.0) + time.monotonic() - self.started,
                early_stopping={
                    "wait": early_stopping.wait,
                    "best": _finite(early_stopping.best),
                    "best_epoch": early_stopping.best_epoch,
                },
                reduce_lr={
                    "wait": reduce_lr.wait,
                    "best": _finite(reduce_lr.best),
                    "cooldown_counter": reduce_lr.cooldown_counter,
                },
            )
            self.started = time.monotonic()
            write_json(folder / STATE_FILE, state)
            for old in folder.glob("epoch-*.keras"):
                if old.name != state.get("checkpoint"):
                    old.unlink(missing_ok=True)

    best_model = BestModel(run_dir / "model.keras", state.get("best_val_loss"), state.get("best_epoch"))
    early_stopping = EarlyStopping(
        monitor="val_loss", mode="min", patience=config.patience, restore_best_weights=True, verbose=verbose
    )
    reduce_lr = ReduceLROnPlateau(
        monitor="val_loss",
        mode="min",
        factor=config.lr_factor,
        patience=config.lr_patience,
        min_lr=config.min_learning_rate,
        verbose=verbose,
    )
    recalibrate = []
    if config.bn_recalibration and _batch_norm_layers(model):
        recalibrate = [RecalibrateBatchNorm(_recalibration_images(config, index))]
    return [
        *recalibrate,
        keras.callbacks.TerminateOnNaN(),
        HistoryCSV(run_dir / "history.csv", history_rows),
        best_model,
        early_stopping,
        reduce_lr,
        ResumeState(),
    ]


# --------------------------------------------------------------------------- training


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def _start_run(config: DetectorConfig, runs_dir, progress: bool):
    """Resolve the data, check it and the model, then create the run directory and its config.json."""
    import keras

    from detector.synthfaces import resolve_data

    config = check_config(config)
    try:
        data = resolve_data(
            config.data,
            runs_dir,
            size=config.size,
            n=config.synth_n,
            seed=config.seed,
            difficulty=config.synth_difficulty,
        )
    except LabError:
        raise
    except ValueError as error:  # SynthFaces renders 32 to 256 px only
        raise LabError(f"Cannot make SynthFaces for this run: {error}") from None
    source = config.data
    config = dataclasses.replace(config, data=os.fspath(Path(data).resolve()))
    index = _index(config)
    config = dataclasses.replace(config, cache=_use_cache(config, index))
    keras.utils.set_random_seed(config.seed)
    model = _build_model(config, config.weights)  # before the run directory: a bad model leaves nothing behind
    run_dir = create_run_dir("detector", config.name, runs_dir)
    record = {
        **dataclasses.asdict(config),
        "data_source": source,
        "layout": index.layout,
        "counts": {name: split.counts() for name, split in index.splits.items()},
        "parameters": int(model.count_params()),
    }
    write_json(run_dir / "config.json", record)
    _say(progress, f"Training {config.model} ({config.size} px, {config.head} head) on {config.data} -> {run_dir}")
    return run_dir, config, index, model


def _check_resume_config(run_dir: Path, saved: dict, config: DetectorConfig | None) -> None:
    if config is None:
        return
    for option in RESUME_CHECKED:
        given, recorded = getattr(config, option), saved.get(option)
        if option == "data":
            if given == "synth" or recorded is None:
                continue
            same = Path(given).resolve() == Path(recorded).resolve()
        else:
            same = given == recorded
        if not same:
            unit = " px" if option == "size" else ""
            raise LabError(
                f"Cannot resume {run_dir}: it was trained with {option}={recorded!r}{unit} "
                f"but the given config has {option}={given!r}{unit}"
            )


def _resume_run(run_dir, config: DetectorConfig | None, progress: bool):
    """The run's own config, data index, a model with its last complete epoch's weights and optimizer, and its state."""
    import keras

    run_dir = require_run_dir(run_dir, "detector")
    saved = read_json(run_dir / "config.json")
    _check_resume_config(run_dir, saved, config)
    run_config = check_config(config_from_dict(DetectorConfig, saved))
    if not Path(run_config.data).is_dir():
        raise LabError(f"Cannot resume {run_dir}: its data folder {run_config.data} is not on this machine")
    index = _index(run_config)
    state_path = run_dir / "checkpoints" / STATE_FILE
    state = read_json(state_path) if state_path.is_file() else {}
    completed = int(state.get("completed_epochs", 0))
    keras.utils.set_random_seed(run_config.seed + completed)
    # The weights come from the checkpoint, so a transfer backbone needs no ImageNet file here.
    model = _build_model(run_config, None if completed else run_config.weights)
    _compile(model, run_config)
    if completed and "checkpoint" in state:
        checkpoint = run_dir / "checkpoints" / state["checkpoint"]
        if not checkpoint.is_file():
            raise LabError(f"Cannot resume {run_dir}: {state_path} names {checkpoint}, which is missing")
        model.optimizer.build(model.trainable_variables)  # so that its saved moments and step count load too
        try:
            model.load_weights(checkpoint)
        except Exception as error:  # Keras raises several types for a foreign or mismatched file
            raise LabError(
                f"Cannot resume {run_dir}: {checkpoint} does not fit {run_config.model} at {run_config.size} px: {error}"
            ) from None
    _say(progress, f"Resuming {run_dir} after epoch {completed} of {run_config.epochs}")
    return run_config, index, model, state


def train_detector(
    config: DetectorConfig | None = None,
    runs_dir: str | os.PathLike = "runs",
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    callbacks: list | None = None,
) -> Path:
    """Train a detector into a new run directory (or continue `resume`), evaluate it, and return the directory.

    resume: a detector run directory interrupted after one or more epochs. Training continues
    at the next epoch with the optimizer state, learning rate, early-stopping counters and
    history it had. Its options come from its own config.json; a `config` given with it must
    agree on model, size, head and data (LabError otherwise) and its other options are ignored.
    A finished run is only evaluated again if its metrics are missing.
    callbacks: extra Keras callbacks, called after the run's own (which save each epoch first).
    """
    import keras

    from detector.evaluate import evaluate_run
    from detector.plots import plot_run_history

    if resume is None:
        run_dir, config, index, model = _start_run(config or DetectorConfig(), runs_dir, progress)
        _compile(model, config)
        state, history_rows = {}, []
    else:
        run_dir = Path(resume)
        config, index, model, state = _resume_run(run_dir, config, progress)
        if state.get("finished") and "accuracy" in _read_metrics(run_dir):
            _say(progress, f"{run_dir} has finished training and evaluation; nothing to resume")
            return run_dir
        # Rows of epochs after the last saved state are trained again, so they are dropped.
        history_rows = [
            row for row in read_history(run_dir / "history.csv") if row["epoch"] < state.get("completed_epochs", 0)
        ]
    completed = int(state.get("completed_epochs", 0))

    if not state.get("finished") and not state.get("stopped") and completed < config.epochs:
        best_weights = None
        if completed and (run_dir / "model.keras").is_file():
            best_weights = keras.models.load_model(run_dir / "model.keras", compile=False).get_weights()
        # A resumed run shuffles with another seed, so it does not repeat its first epochs' order.
        train, valid = _datasets(config, index, shuffle_seed=config.seed + completed)
        steps = config.steps_per_epoch or math.ceil(len(index.splits["train"].paths) / config.batch_size)
        with warnings.catch_warnings():
            # The validation set's length is only known once read (unreadable files are skipped),
            # and Keras warns every time such a data set ends, as it does after each validation pass.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(
                train,
                validation_data=valid,
                epochs=config.epochs,
                initial_epoch=completed,
                steps_per_epoch=steps,
                shuffle=False,  # the training data set shuffles itself, with the run's seed
                callbacks=[
                    *_make_callbacks(run_dir, config, model, index, state, history_rows, best_weights, progress),
                    *(callbacks or []),
                ],
                verbose=1 if progress else 0,
            )
    state["finished"] = True
    write_json(run_dir / "checkpoints" / STATE_FILE, state)
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
    _say(progress, f"Wrote model.keras, history.csv, plots/, metrics.json and report.md to {run_dir}")
    return run_dir


def _read_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    return read_json(path) if path.is_file() else {}

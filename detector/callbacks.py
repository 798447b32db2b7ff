"""What a detector run does around each epoch, as Keras callbacks that continue from a resumed run's state.

Each epoch ends with history.csv, then model.keras (if the validation loss is the lowest
yet), then the stopping and learning-rate decisions, and last the resumable state, which
names only files already written. Epochs count from 1 in every file.

Imported by `detector.train` when training starts (it needs Keras at import time).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np

from detector.runs import atomic_save_model, write_history, write_json

STATE_FILE = "state.json"  # under checkpoints/: what the last complete epoch left behind
# history.csv columns in this order; any other logged value follows them.
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "learning_rate")


def learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def batch_norm_layers(layer) -> list:
    """The trainable BatchNormalization layers of a model, nested models included."""
    found = []
    for child in getattr(layer, "layers", []):
        if isinstance(child, keras.layers.BatchNormalization):
            if child.trainable:
                found.append(child)
        else:
            found.extend(batch_norm_layers(child))
    return found


class RecalibrateBatchNorm(keras.callbacks.Callback):
    """Before each validation pass, set BatchNorm statistics to the average over training batches.

    Keras keeps running averages with momentum 0.99, about a hundred steps of memory. On a
    short run (a few hundred steps) they still carry their initial values, and the model
    that scores 95% on training batches scores 50% in inference mode; the validation loss,
    and so the best epoch and early stopping, would then measure that lag, not the model.
    Averaging the statistics of a fixed set of training batches ("precise BatchNorm")
    removes the lag; training itself is unchanged.
    """

    def __init__(self, images: np.ndarray, batch_size: int):
        super().__init__()
        self.images, self.batch_size = images, batch_size

    def on_test_begin(self, logs=None):
        layers = batch_norm_layers(self.model)
        momenta = [layer.momentum for layer in layers]
        try:
            for step, start in enumerate(range(0, len(self.images), self.batch_size)):
                # Momentum k / (k + 1) makes each moving statistic the mean over batches 0..k.
                for layer in layers:
                    layer.momentum = step / (step + 1)
                self.model(self.images[start : start + self.batch_size], training=True)
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum


class HistoryCSV(keras.callbacks.Callback):
    """history.csv, rewritten atomically after every epoch; rows from before a resume are kept."""

    def __init__(self, path: Path, rows: list[dict]):
        super().__init__()
        self.path, self.rows, self.rate = path, list(rows), None

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = learning_rate(self.model)  # the rate this epoch trains with

    def on_epoch_end(self, epoch, logs=None):
        values = {key: float(value) for key, value in (logs or {}).items() if key != "learning_rate"}
        self.rows.append({"epoch": int(epoch) + 1, **values, "learning_rate": self.rate})
        write_history(self.path, self.rows, HISTORY_COLUMNS)


class BestModel(keras.callbacks.Callback):
    """model.keras, saved atomically whenever the validation loss is the lowest so far (best_epoch from 1)."""

    def __init__(self, path: Path, best: float | None, best_epoch: int | None):
        super().__init__()
        self.path, self.best, self.best_epoch = path, best, best_epoch

    def on_epoch_end(self, epoch, logs=None):
        current = finite((logs or {}).get("val_loss"))
        if current is not None and (self.best is None or current < self.best):
            self.best, self.best_epoch = current, int(epoch) + 1
            atomic_save_model(self.model, self.path)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' early stopping, continuing the counters a resumed run saved."""

    def __init__(self, saved: dict | None, best_weights, **kwargs):
        super().__init__(**kwargs)
        self.saved, self.saved_best_weights = saved, best_weights

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.saved:
            self.wait, self.best, self.best_epoch = self.saved["wait"], self.saved["best"], self.saved["best_epoch"]
            self.best_weights = self.saved_best_weights

    def snapshot(self) -> dict:
        return {"wait": self.wait, "best": finite(self.best), "best_epoch": self.best_epoch}


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Keras' learning-rate cuts, continuing the counters a resumed run saved."""

    def __init__(self, saved: dict | None, **kwargs):
        super().__init__(**kwargs)
        self.saved = saved

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.saved:
            self.wait, self.best = self.saved["wait"], self.saved["best"]
            self.cooldown_counter = self.saved["cooldown_counter"]

    def snapshot(self) -> dict:
        return {"wait": self.wait, "best": finite(self.best), "cooldown_counter": self.cooldown_counter}


class ResumeState(keras.callbacks.Callback):
    """checkpoints/epoch-NNNN.keras (model and optimizer), then checkpoints/state.json naming it."""

    def __init__(self, folder: Path, state: dict, best_model: BestModel, early_stopping, reduce_lr):
        super().__init__()
        self.folder, self.state = folder, state
        self.best_model, self.early_stopping, self.reduce_lr = best_model, early_stopping, reduce_lr
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        diverged = finite((logs or {}).get("loss")) is None
        if not diverged:
            name = f"epoch-{epoch + 1:04d}.keras"
            atomic_save_model(self.model, self.folder / name)
            self.state["checkpoint"] = name
        stopped = "loss became NaN" if diverged else ("early stopping" if self.model.stop_training else None)
        self.state.update(
            completed_epochs=int(epoch) + 1,
            best_val_loss=self.best_model.best,
            best_epoch=self.best_model.best_epoch,
            learning_rate=learning_rate(self.model),
            stopped=stopped,
            train_seconds=self.state.get("train_seconds", 0.0) + time.monotonic() - self.started,
            early_stopping=self.early_stopping.snapshot(),
            reduce_lr=self.reduce_lr.snapshot(),
        )
        self.started = time.monotonic()
        write_json(self.folder / STATE_FILE, self.state)
        for old in self.folder.glob("epoch-*.keras"):
            if old.name != self.state.get("checkpoint"):
                old.unlink(missing_ok=True)


def run_callbacks(
    run_dir: Path, config, state: dict, history_rows: list[dict], best_weights, recalibration, progress: bool
) -> list:
    """The run's callbacks in the order they must run, each continuing from `state`.

    recalibration: training images for RecalibrateBatchNorm, or None for none.
    """
    resumed = state.get("completed_epochs", 0) > 0
    verbose = 1 if progress else 0
    best_model = BestModel(run_dir / "model.keras", state.get("best_val_loss"), state.get("best_epoch"))
    early_stopping = ResumableEarlyStopping(
        state.get("early_stopping") if resumed else None,
        best_weights,
        monitor="val_loss",
        mode="min",
        patience=config.patience,
        restore_best_weights=True,
        verbose=verbose,
    )
    reduce_lr = ResumableReduceLROnPlateau(
        state.get("reduce_lr") if resumed else None,
        monitor="val_loss",
        mode="min",
        factor=config.lr_factor,
        patience=config.lr_patience,
        min_lr=config.min_learning_rate,
        verbose=verbose,
    )
    recalibrate = [] if recalibration is None else [RecalibrateBatchNorm(recalibration, config.batch_size)]
    return [
        *recalibrate,
        keras.callbacks.TerminateOnNaN(),
        HistoryCSV(run_dir / "history.csv", history_rows),
        best_model,
        early_stopping,
        reduce_lr,
        ResumeState(run_dir / "checkpoints", state, best_model, early_stopping, reduce_lr),
    ]

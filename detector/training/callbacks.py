"""What a detector run does around each epoch, as Keras callbacks that continue from a resumed run's state.

Each epoch ends with the stopping and learning-rate decisions, then one commit: the model
with its optimizer, history.csv and state.json appear together as checkpoints/epoch-NNNN/
(see `detector.base.runs.commit_epoch`). Only then are the run's own history.csv and
model.keras (the best epoch's) refreshed from it. Epochs count from 1 in every file.

Imported by `detector.training.train` when training starts (it needs Keras at import time).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from detector.base.runs import commit_epoch, committed_epochs, publish_file, publish_history

MODEL_FILE = "model.keras"  # in each epoch's folder: model and optimizer; at the run's root: the best epoch's
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


class HistoryRows(keras.callbacks.Callback):
    """One history row per epoch, kept in `rows` (shared with EpochCommit, which writes them)."""

    def __init__(self, rows: list[dict]):
        super().__init__()
        self.rows, self.rate = rows, None

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = learning_rate(self.model)  # the rate this epoch trains with

    def on_epoch_end(self, epoch, logs=None):
        values = {key: float(value) for key, value in (logs or {}).items() if key != "learning_rate"}
        self.rows.append({"epoch": int(epoch) + 1, **values, "learning_rate": self.rate})


class BestEpoch(keras.callbacks.Callback):
    """The epoch with the lowest finite validation loss so far (from 1); model.keras is published from it."""

    def __init__(self, best: float | None, best_epoch: int | None):
        super().__init__()
        self.best, self.best_epoch = best, best_epoch

    def on_epoch_end(self, epoch, logs=None):
        current = finite((logs or {}).get("val_loss"))
        if current is not None and (self.best is None or current < self.best):
            self.best, self.best_epoch = current, int(epoch) + 1


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


def publish_epoch(run_dir: Path, state: dict) -> None:
    """Bring the run's history.csv and model.keras in line with its last committed epoch; drop unneeded ones.

    Called after each commit and again on resume, so a crash between commit and publication
    is mended: model.keras always holds the epoch that state.json names as best.
    """
    epochs = committed_epochs(run_dir)
    last = epochs.get(state.get("completed_epochs", 0))
    publish_history(run_dir, last, HISTORY_COLUMNS)
    best = epochs.get(state.get("best_epoch") or 0)
    if best is not None and (best / MODEL_FILE).is_file():
        publish_file(best / MODEL_FILE, run_dir / MODEL_FILE)
    keep = {state.get("completed_epochs"), state.get("best_epoch"), state.get("checkpoint_epoch")}
    for epoch, folder in epochs.items():
        if epoch not in keep:
            shutil.rmtree(folder, ignore_errors=True)


class EpochCommit(keras.callbacks.Callback):
    """Commit each epoch (model and optimizer, history, state) in one step, then publish it."""

    def __init__(self, run_dir: Path, state: dict, rows: list[dict], best: BestEpoch, early_stopping, reduce_lr):
        super().__init__()
        self.run_dir, self.state, self.rows = run_dir, state, rows
        self.best, self.early_stopping, self.reduce_lr = best, early_stopping, reduce_lr
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        number = int(epoch) + 1
        diverged = finite((logs or {}).get("loss")) is None
        stopped = "loss became NaN" if diverged else ("early stopping" if self.model.stop_training else None)
        self.state.update(
            completed_epochs=number,
            best_val_loss=self.best.best,
            best_epoch=self.best.best_epoch,
            learning_rate=learning_rate(self.model),
            stopped=stopped,
            train_seconds=self.state.get("train_seconds", 0.0) + time.monotonic() - self.started,
            early_stopping=self.early_stopping.snapshot(),
            reduce_lr=self.reduce_lr.snapshot(),
        )
        if not diverged:  # a diverged epoch's weights are no place to resume from
            self.state["checkpoint_epoch"] = number

        def write_model(folder: Path) -> None:
            if not diverged:
                self.model.save(folder / MODEL_FILE)

        commit_epoch(self.run_dir, number, write_model, self.state, self.rows, HISTORY_COLUMNS)
        publish_epoch(self.run_dir, self.state)
        self.started = time.monotonic()


def run_callbacks(
    run_dir: Path, config, state: dict, history_rows: list[dict], best_weights, recalibration, progress: bool
) -> list:
    """The run's callbacks in the order they must run, each continuing from `state`.

    recalibration: training images for RecalibrateBatchNorm, or None for none.
    """
    resumed = state.get("completed_epochs", 0) > 0
    verbose = 1 if progress else 0
    best = BestEpoch(state.get("best_val_loss"), state.get("best_epoch"))
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
    # After the commit, so the board never shows an epoch the run directory does not hold.
    board = [keras.callbacks.TensorBoard(run_dir / "tensorboard", write_graph=False)] if config.tensorboard else []
    return [
        *recalibrate,
        keras.callbacks.TerminateOnNaN(),
        HistoryRows(history_rows),
        best,
        early_stopping,
        reduce_lr,
        EpochCommit(run_dir, state, history_rows, best, early_stopping, reduce_lr),
        *board,
    ]

"""Progress of `fit()`: Keras's live bar in a terminal, one line per epoch in a log file, a widget in a notebook."""

from __future__ import annotations

import sys
import time

import keras

from detector.base.console import in_notebook, notebook_bar_class


class EpochLines(keras.callbacks.Callback):
    """One plain line per epoch, for output that is not a terminal: `Epoch 3/10 - 12s - loss: 0.4123 - ...`.

    Keras's own bar writes a line per step with ANSI codes there, and verbose=2 two lines
    per epoch.
    """

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        # loss first, then the other figures, then the same for validation; learning rate last.
        names = sorted(
            logs or {}, key=lambda name: (name == "learning_rate", name.startswith("val_"), "loss" not in name)
        )
        figures = "".join(f" - {name}: {_format_value(logs[name])}" for name in names)
        epochs = self.params.get("epochs")
        count = f"{epoch + 1}/{epochs}" if epochs else f"{epoch + 1}"
        stream = self.stream or sys.stdout
        print(f"Epoch {count} - {seconds:.0f}s{figures}", file=stream, flush=True)


def _format_value(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4f}" if abs(number) >= 1e-3 or number == 0 else f"{number:.4e}"


def fit_progress(progress: bool) -> tuple[int, list]:
    """The `verbose` and extra callbacks to give `fit()` so that its progress suits where it is shown.

    progress=False: nothing. In a notebook: a tqdm widget over the epochs, with the figures
    of the last one (one finished bar in the saved notebook). In a terminal: Keras's live
    bar. Anywhere else (a log file, CI): one line per epoch.
    """
    if not progress:
        return 0, []
    if in_notebook():
        from tqdm.keras import TqdmCallback

        return 0, [TqdmCallback(verbose=0, tqdm_class=notebook_bar_class(), desc="Training")]
    isatty = getattr(sys.stdout, "isatty", None)
    if isatty is not None and isatty():
        return 1, []
    return 0, [EpochLines()]

"""What the benchmarks share: a Keras callback that times each epoch (imported as `timing` from a benchmark script)."""

from __future__ import annotations

import time


def epoch_timer():
    """A Keras callback whose `seconds` lists each epoch's wall-clock time."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    return EpochTimer()

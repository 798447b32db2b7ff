"""Watch a GAN train from Jupyter: the latest samples and the loss curves, redrawn in place each epoch.

    from gan_lab.gan.live import LiveView
    train_gan(config, callbacks=[LiveView()])

Outside IPython it draws the same picture (`last_png`) and shows nothing, so a script or a
test can use it too.
"""

from __future__ import annotations

import io

import keras
import numpy as np

from detector.data.images import image_grid
from gan_lab.gan.latents import GRID_STREAM, seeded_latents
from gan_lab.gan.sample import generate

LOSSES = ("d_loss", "g_loss")


def _ipython_shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


class LiveView(keras.callbacks.Callback):
    """After each epoch: a grid of `n` samples from fixed latents beside both losses so far."""

    def __init__(self, n: int = 16, seed: int = 0):
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer. Received: n={n!r}")
        self.n, self.seed = n, seed
        self.rows: list[dict] = []
        self.last_png: bytes | None = None
        self._handle = None

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch + 1, **{name: float((logs or {}).get(name, np.nan)) for name in LOSSES}})
        generator = getattr(self.model, "generator_ema", None)
        generator = self.model.generator if generator is None else generator
        latents = seeded_latents(self.seed, 0, self.n, int(generator.input_shape[-1]), GRID_STREAM)
        self.last_png = self._draw(generate(generator, latents))
        self._show()

    def _draw(self, samples: np.ndarray) -> bytes:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(10.0, 4.2))
        grid_axes, loss_axes = figure.subplots(1, 2, width_ratios=(1, 1.4))
        grid_axes.imshow(image_grid(samples))
        grid_axes.set_axis_off()
        grid_axes.set_title(f"Epoch {self.rows[-1]['epoch']}")
        epochs = [row["epoch"] for row in self.rows]
        for name in LOSSES:
            loss_axes.plot(epochs, [row[name] for row in self.rows], marker="o", markersize=3, label=name)
        loss_axes.set(xlabel="Epoch", ylabel="binary cross-entropy", title="Losses")
        loss_axes.xaxis.get_major_locator().set_params(integer=True)
        loss_axes.grid(alpha=0.3)
        loss_axes.legend(fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _show(self) -> None:
        if _ipython_shell() is None:
            return
        from IPython.display import Image, display

        if self._handle is None:
            self._handle = display(Image(data=self.last_png), display_id=True)
        else:
            self._handle.update(Image(data=self.last_png))

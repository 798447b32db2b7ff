"""What a GAN run does after each epoch, as a Keras callback: grid, diversity, faces, history, checkpoint, plots.

Imported by `gan_lab.gan.train` when training starts (it needs Keras at import time).
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from detector.base.runs import publish_history
from detector.data.images import load_rgb
from gan_lab.gan.checkpoints import save_checkpoint
from gan_lab.gan.latents import DIVERSITY_STREAM, FACES_STREAM, seeded_latents
from gan_lab.gan.report import HISTORY_COLUMNS, RealReference, plot_history, write_stats
from gan_lab.gan.sample import ProgressGif, generate, sample_epochs, save_grid
from gan_lab.metrics.diversity import build_feature_extractor, check_collapse, image_diversity

METRIC_NAMES = ("d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake")


class GanEpochEnd(keras.callbacks.Callback):
    """After each epoch: sample grid, diversity, faces found, history.csv, checkpoint, plot and GIF, in that order.

    The epoch's models, history and state are committed together as its checkpoint folder,
    and the run's history.csv is then copied from it: an interruption anywhere leaves the
    previous epoch complete, and resuming publishes the last committed one again.
    `rows` and `state` are the run's, updated in place for the caller's metrics.
    face_finder: a `gan_lab.metrics.faces.FaceFinder` (None: no faces_found figure).
    """

    def __init__(self, run_dir: Path, config, rows: list[dict], state: dict, reals: RealReference, face_finder=None):
        super().__init__()
        self.run_dir, self.config, self.rows, self.state = run_dir, config, rows, state
        self.reals, self.face_finder = reals, face_finder
        self.grid_latents = np.load(run_dir / "latents.npy").astype(np.float32)
        self.diversity_latents = seeded_latents(
            config.seed, 0, config.diversity_n, config.latent_dim, stream=DIVERSITY_STREAM
        )
        self.faces_latents = seeded_latents(config.seed, 0, config.faces_n, config.latent_dim, stream=FACES_STREAM)
        self.extractor = build_feature_extractor()
        self.started = time.monotonic()
        self.writer = None
        self.gif = ProgressGif()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        seconds = time.monotonic() - self.started
        values = {name: float((logs or {}).get(name, math.nan)) for name in METRIC_NAMES}
        if not all(math.isfinite(value) for value in values.values()):
            self._stop(number)
            return
        figures = self._save_samples(number)
        kimg = int(self.model.g_optimizer.iterations.numpy()) * self.config.batch_size / 1000
        self.rows.append({"epoch": number, "kimg": kimg, **values, **figures, "seconds": seconds})
        self.state.update(
            epoch=number,
            train_seconds=self.state.get("train_seconds", 0.0) + seconds,
            d_iterations=int(self.model.d_optimizer.iterations.numpy()),
            g_iterations=int(self.model.g_optimizer.iterations.numpy()),
        )
        folder = save_checkpoint(self.model, self.run_dir, number, self.state, self.rows, HISTORY_COLUMNS)
        publish_history(self.run_dir, folder, HISTORY_COLUMNS)
        write_stats(self.run_dir, self.rows)
        self._draw(number)
        if self.config.tensorboard:
            self._log_to_tensorboard(number)
        self._watch_collapse()

    def _stop(self, number: int) -> None:
        self.state["stopped"] = f"a loss became NaN or infinite in epoch {number}"
        warnings.warn(
            f"Stopping {self.run_dir.name}: {self.state['stopped']}; epoch {number} is not saved",
            RuntimeWarning,
            stacklevel=3,
        )
        self.model.stop_training = True

    def _save_samples(self, number: int) -> dict:
        """The epoch's grid from the fixed latents; returns the diversity and faces found of fresh samples."""
        generator = self.model.generator if self.model.generator_ema is None else self.model.generator_ema
        save_grid(self.run_dir / "samples" / f"epoch-{number:04d}.png", generate(generator, self.grid_latents))
        figures = {"diversity": image_diversity(generate(generator, self.diversity_latents), self.extractor)}
        figures["faces_found"] = math.nan
        if self.face_finder is not None and len(self.faces_latents):
            figures["faces_found"] = float(np.mean(self.face_finder.found(generate(generator, self.faces_latents))))
        return figures

    def _draw(self, number: int) -> None:
        plot_history(self.rows, self.run_dir / "plots" / "losses.png", self.reals)
        frames = [path for epoch, path in sample_epochs(self.run_dir / "samples").items() if epoch <= number]
        self.gif.write(frames, self.run_dir / "progress.gif")

    def _log_to_tensorboard(self, number: int) -> None:
        """Scalars and the epoch's grid under tensorboard/ (`tensorboard --logdir runs`)."""
        import tensorflow as tf

        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(self.run_dir / "tensorboard"))
        row = self.rows[-1]
        with self.writer.as_default(step=number):
            for name in (*METRIC_NAMES, "diversity", "faces_found", "kimg"):
                if math.isfinite(row[name]):
                    tf.summary.scalar(name, row[name])
            for name, optimizer in (
                ("d_learning_rate", self.model.d_optimizer),
                ("g_learning_rate", self.model.g_optimizer),
            ):
                tf.summary.scalar(name, float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
            grid = load_rgb(self.run_dir / "samples" / f"epoch-{number:04d}.png")
            tf.summary.image("samples", grid[None], step=number)
        self.writer.flush()

    def _watch_collapse(self) -> None:
        if self.state.get("collapse_warned"):  # once per run: after a collapse, every epoch would repeat it
            return
        message = check_collapse(
            [row["diversity"] for row in self.rows],
            self.reals.diversity,
            self.config.collapse_fraction,
            [row["epoch"] for row in self.rows],
        )
        self.state["collapse_warned"] = message is not None

"""GAN checkpoints: one folder per complete epoch, with both models and both optimizers' state.

`checkpoints/epoch-NNNN/` holds generator.keras, discriminator.keras, optimizer.npz (both
optimizers' variables and the DCGAN's seed generator), history.csv up to that epoch and
state.json, and generator_ema.keras where the run keeps an EMA generator. It is committed in one step (`detector.base.runs.commit_epoch`), so a folder is
complete or absent; `list_checkpoints` ignores anything else.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from detector.base.errors import LabError
from detector.base.runs import atomic_write_bytes, commit_epoch, committed_epochs, require_run_dir

CHECKPOINT_FILES = ("generator.keras", "discriminator.keras", "optimizer.npz", "state.json")
EMA_FILE = "generator_ema.keras"  # the EMA generator, in runs that keep one


def list_checkpoints(gan_dir: str | os.PathLike) -> dict[int, Path]:
    """Complete checkpoints of a GAN run, epoch -> checkpoints/epoch-NNNN folder, oldest first."""
    return committed_epochs(gan_dir, required=CHECKPOINT_FILES)


def checkpoint_dir(gan_dir: str | os.PathLike, epoch: int | None = None) -> Path:
    """The checkpoint folder of `epoch` (None: the last complete one); LabError naming the epochs there are."""
    gan_dir = require_run_dir(gan_dir, "gan")
    checkpoints = list_checkpoints(gan_dir)
    if not checkpoints:
        raise LabError(
            f"{gan_dir} has no complete checkpoints under {gan_dir / 'checkpoints'}: has training finished an epoch?"
        )
    if epoch is None:
        return checkpoints[max(checkpoints)]
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or int(epoch) not in checkpoints:
        raise LabError(f"{gan_dir} has no checkpoint for epoch {epoch}; available epochs: {list(checkpoints)}")
    return checkpoints[int(epoch)]


def load_model(path: Path):
    import keras

    import detector.models.zoo  # noqa: F401  (these two register the lab's custom layers for loading)
    import gan_lab.gan.dcgan  # noqa: F401

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        raise LabError(f"{path} could not be loaded as a Keras model: {error}") from None


def load_generator(gan_dir: str | os.PathLike, epoch: int | None = None, raw: bool = False):
    """The generator saved at `epoch` (None: the last complete epoch): latents -> pixels in [0, 1].

    The EMA generator where the run keeps one (the one its grids show), unless `raw`.
    """
    folder = checkpoint_dir(gan_dir, epoch)
    if not raw and (folder / EMA_FILE).is_file():
        return load_model(folder / EMA_FILE)
    return load_model(folder / "generator.keras")


def load_discriminator(gan_dir: str | os.PathLike, epoch: int | None = None):
    """The discriminator saved at `epoch` (None: the last complete epoch): pixels -> logit of P(fake)."""
    return load_model(checkpoint_dir(gan_dir, epoch) / "discriminator.keras")


def optimizer_state_bytes(gan) -> bytes:
    arrays = {"seed_generator": np.asarray(gan.seed_generator.state.numpy())}
    for prefix, optimizer in (("discriminator", gan.d_optimizer), ("generator", gan.g_optimizer)):
        for index, variable in enumerate(optimizer.variables):
            arrays[f"{prefix}/{index:04d}"] = np.asarray(variable.numpy())
        arrays[f"{prefix}/names"] = np.array([variable.path for variable in optimizer.variables])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def restore_optimizer_state(gan, path: Path) -> None:
    gan.build_optimizers()
    try:
        saved = np.load(path)
    except Exception as error:
        raise LabError(f"{path} could not be read as optimizer state: {error}") from None
    with saved:
        for prefix, optimizer in (("discriminator", gan.d_optimizer), ("generator", gan.g_optimizer)):
            keys = sorted(key for key in saved.files if key.startswith(f"{prefix}/") and key != f"{prefix}/names")
            if len(keys) != len(optimizer.variables):
                raise LabError(
                    f"{path} holds {len(keys)} {prefix} optimizer variables; the {prefix} needs {len(optimizer.variables)}"
                )
            for key, variable in zip(keys, optimizer.variables):
                value = saved[key]
                if tuple(value.shape) != tuple(variable.shape):
                    raise LabError(
                        f"{path}: {key} has shape {value.shape}, the {prefix} optimizer's {variable.path} {tuple(variable.shape)}"
                    )
                variable.assign(value)
        gan.seed_generator.state.assign(saved["seed_generator"])


def save_checkpoint(gan, run_dir: str | os.PathLike, epoch: int, state: dict, rows: list[dict], columns) -> Path:
    """Commit checkpoints/epoch-NNNN/: both models, both optimizers' state, history up to it and `state`."""

    def write_models(folder: Path) -> None:
        gan.generator.save(folder / "generator.keras")
        gan.discriminator.save(folder / "discriminator.keras")
        if gan.generator_ema is not None:
            gan.generator_ema.save(folder / EMA_FILE)
        atomic_write_bytes(folder / "optimizer.npz", optimizer_state_bytes(gan))

    return commit_epoch(run_dir, epoch, write_models, state, rows, columns)


def require_gan_run(gan_dir: str | os.PathLike) -> tuple[Path, dict[int, Path]]:
    """A GAN run directory and its complete checkpoints, or a LabError saying what is wrong."""
    if not gan_dir:
        raise LabError("No GAN run given: pass --gan RUN_DIR (a runs/NNNNN-gan-... directory)")
    gan_dir = require_run_dir(gan_dir, "gan")
    if (gan_dir / "model.keras").is_file() and not (gan_dir / "checkpoints").is_dir():
        raise LabError(f"{gan_dir} looks like a detector run (it has model.keras); --gan needs a GAN run directory")
    checkpoints = list_checkpoints(gan_dir)
    if not checkpoints:
        raise LabError(
            f"{gan_dir} has no complete GAN checkpoints under {gan_dir / 'checkpoints'}: "
            "has GAN training finished at least one epoch?"
        )
    return gan_dir, checkpoints

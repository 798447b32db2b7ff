"""Train a DCGAN on real faces into a numbered run directory, and continue an interrupted one.

    run_dir = train_gan(GanConfig(data="synth", size=64, epochs=10))

A run directory `runs/NNNNN-gan-<name>/` holds config.json (every option, resolved),
latents.npy (the fixed latents of the sample grids), history.csv (one row per epoch,
epochs counted from 1), samples/epoch-NNNN.png (the grid of each epoch), progress.gif,
plots/losses.png, checkpoints/epoch-NNNN/ (generator.keras, discriminator.keras,
optimizer.npz with both optimizers' state, state.json), metrics.json and report.md.

A checkpoint is written into a hidden temporary folder and renamed into place, so a
`checkpoints/epoch-NNNN/` folder is complete or absent; `list_checkpoints` ignores anything
else. `train_gan(resume=run_dir)` continues from the last complete epoch.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from detector.errors import LabError
from detector.runs import (
    atomic_write_bytes,
    atomic_write_text,
    config_from_dict,
    create_run_dir,
    read_json,
    require_run_dir,
    write_history,
    write_json,
)
from detector.runs import (
    read_history as read_history_file,
)

HISTORY_COLUMNS = ("epoch", "d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake", "diversity", "seconds")
METRIC_NAMES = ("d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake")
CHECKPOINT_FILES = ("generator.keras", "discriminator.keras", "optimizer.npz", "state.json")
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})$")
# Latent stream tags, SeedSequence([seed, 0, tag]): epoch slot 0 is never a trained epoch, so
# these never meet the stress test's or `sample_run`'s latents (epochs 1 and up).
GRID_STREAM = 0
DIVERSITY_STREAM = 5
# Discriminators built from scratch; transfer backbones need ImageNet weights a GAN cannot use.
DISCRIMINATORS = ("cnn3", "small_cnn", "alexnet")
# Real training images are decoded once and kept in memory when they fit in this.
CACHE_LIMIT_BYTES = 1 << 30
# A resumed run must agree with a given config on these; everything else comes from the run.
RESUME_CHECKED = ("size", "latent_dim", "discriminator", "preset", "data")


@dataclasses.dataclass
class GanConfig:
    """Every option of a DCGAN training run; the run's config.json holds them resolved."""

    data: str = "synth"  # an image folder (only its real images are used), or "synth" for SynthFaces
    size: int = 64  # image side in pixels: a multiple of 16 (32, 64, 128, 256)
    epochs: int = 10
    batch_size: int = 32  # real images per step (the discriminator sees as many fakes besides)
    steps_per_epoch: int | None = None  # None: one pass over the real training images
    grid_size: int = 64  # images in each epoch's sample grid
    preset: str | None = None  # None, or "seed128" for the published 128 px generator
    latent_dim: int = 128
    generator_filters: tuple | None = None  # widths of the four upsampling steps; None: the default for the preset
    batch_norm: bool = False  # BatchNorm after each of the generator's transposed convolutions
    discriminator: str = "cnn3"  # the detector architecture the discriminator uses: one of DISCRIMINATORS
    init_discriminator: str | None = None  # a detector run directory whose weights start the discriminator
    d_learning_rate: float = 2e-4
    g_learning_rate: float = 2e-4
    beta_1: float = 0.5  # Adam's first-moment decay for both optimizers
    label_smoothing: float = 0.0  # real targets become this instead of 0
    label_noise: float = 0.05  # every target moves towards 0.5 by a uniform amount up to this
    # Differentiable augmentation of everything the discriminator sees (gan_lab.dcgan.diff_augment):
    # names from "color", "translation", "cutout"; for real data sets of a few thousand images.
    augment: tuple = ()
    diversity_n: int = 128  # generated (and real) images the per-epoch diversity is measured on
    collapse_fraction: float = 0.5  # warn when diversity falls below this fraction of the real images' diversity
    crop: str = "resize"  # how images of another size are fitted: "resize" (stretch) or "crop" (centre square)
    seed: int = 0
    name: str = ""  # run directory suffix; "" means "<preset or dcgan>-<size>px"
    synth_n: int = 2000  # with data="synth": SynthFaces images in total (half of them real)
    synth_difficulty: str = "medium"  # with data="synth": "easy", "medium" or "hard"


# --------------------------------------------------------------------------- options


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config: GanConfig) -> GanConfig:
    """A copy of `config` with defaults resolved (name, generator widths); LabError naming the first bad option."""
    from detector.images import FIT_MODES
    from detector.synthfaces import DIFFICULTIES
    from gan_lab.dcgan import AUGMENT_POLICIES, generator_options

    def refuse(option: str, expected: str):
        raise LabError(f"{option} must be {expected}. Received: {option}={getattr(config, option)!r}")

    if not _is_int(config.size) or config.size < 32 or config.size % 16:
        refuse("size", "a multiple of 16 pixels, at least 32 (32, 64, 128, 256)")
    for option in ("epochs", "batch_size", "grid_size", "latent_dim", "synth_n"):
        if not _is_int(getattr(config, option)) or getattr(config, option) < 1:
            refuse(option, "a positive integer")
    if config.steps_per_epoch is not None and (not _is_int(config.steps_per_epoch) or config.steps_per_epoch < 1):
        refuse("steps_per_epoch", "None or a positive integer")
    if not _is_int(config.diversity_n) or config.diversity_n < 2:
        refuse("diversity_n", "an integer of at least 2")
    if not _is_int(config.seed) or config.seed < 0:
        refuse("seed", "a non-negative integer")
    if config.discriminator not in DISCRIMINATORS:
        refuse("discriminator", f"one of {DISCRIMINATORS}")
    if config.crop not in FIT_MODES:
        refuse("crop", f"one of {FIT_MODES}")
    if config.synth_difficulty not in DIFFICULTIES:
        refuse("synth_difficulty", f"one of {DIFFICULTIES}")
    for option in ("d_learning_rate", "g_learning_rate", "beta_1"):
        value = getattr(config, option)
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            refuse(option, "a number between 0 and 1")
    for option in ("label_smoothing", "label_noise"):
        value = getattr(config, option)
        if not isinstance(value, (int, float)) or not 0 <= value < 0.5:
            refuse(option, "a number in [0, 0.5)")
    if not isinstance(config.augment, (list, tuple)) or any(name not in AUGMENT_POLICIES for name in config.augment):
        refuse("augment", f"a list of names from {AUGMENT_POLICIES}")
    if not isinstance(config.collapse_fraction, (int, float)) or not 0 <= config.collapse_fraction < 1:
        refuse("collapse_fraction", "a fraction in [0, 1)")
    try:
        options = generator_options(
            size=config.size,
            latent_dim=config.latent_dim,
            filters=config.generator_filters,
            batch_norm=config.batch_norm,
            preset=config.preset,
        )
    except ValueError as error:
        raise LabError(f"Generator options do not fit together: {error}") from None
    init = config.init_discriminator
    return dataclasses.replace(
        config,
        data=os.fspath(config.data),
        generator_filters=options["filters"],
        augment=tuple(config.augment),
        init_discriminator=os.fspath(Path(init).resolve()) if init else None,
        name=config.name or f"{config.preset or 'dcgan'}-{config.size}px",
    )


def run_config(run_dir: str | os.PathLike) -> GanConfig:
    """The resolved GanConfig a GAN run directory was trained with (from its config.json)."""
    run_dir = require_run_dir(run_dir, "gan")
    return check_config(config_from_dict(GanConfig, read_json(run_dir / "config.json")))


def _generator_kwargs(config: GanConfig) -> dict:
    return dict(
        size=config.size,
        latent_dim=config.latent_dim,
        filters=config.generator_filters,
        batch_norm=config.batch_norm,
        preset=config.preset,
    )


# --------------------------------------------------------------------------- checkpoints


def list_checkpoints(gan_dir: str | os.PathLike) -> dict[int, Path]:
    """Complete checkpoints of a GAN run, epoch -> checkpoints/epoch-NNNN folder, oldest first."""
    folder = Path(gan_dir) / "checkpoints"
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match and path.is_dir() and all((path / name).is_file() for name in CHECKPOINT_FILES):
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


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


def _load_model(path: Path):
    import keras

    import detector.models  # noqa: F401  (registers the lab's custom layers for loading)

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        raise LabError(f"{path} could not be loaded as a Keras model: {error}") from None


def load_generator(gan_dir: str | os.PathLike, epoch: int | None = None):
    """The generator saved at `epoch` (None: the last complete epoch): latents -> pixels in [0, 1]."""
    return _load_model(checkpoint_dir(gan_dir, epoch) / "generator.keras")


def load_discriminator(gan_dir: str | os.PathLike, epoch: int | None = None):
    """The discriminator saved at `epoch` (None: the last complete epoch): pixels -> logit of P(fake)."""
    return _load_model(checkpoint_dir(gan_dir, epoch) / "discriminator.keras")


def _optimizer_state_bytes(gan) -> bytes:
    arrays = {"seed_generator": np.asarray(gan.seed_generator.state.numpy())}
    for prefix, optimizer in (("discriminator", gan.d_optimizer), ("generator", gan.g_optimizer)):
        for index, variable in enumerate(optimizer.variables):
            arrays[f"{prefix}/{index:04d}"] = np.asarray(variable.numpy())
        arrays[f"{prefix}/names"] = np.array([variable.path for variable in optimizer.variables])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _restore_optimizer_state(gan, path: Path) -> None:
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


def save_checkpoint(gan, run_dir: str | os.PathLike, epoch: int, state: dict) -> Path:
    """checkpoints/epoch-NNNN/: both models, both optimizers' state and `state`, renamed into place when complete."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"epoch-{epoch:04d}"
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=folder))
    try:
        gan.generator.save(partial / "generator.keras")
        gan.discriminator.save(partial / "discriminator.keras")
        atomic_write_bytes(partial / "optimizer.npz", _optimizer_state_bytes(gan))
        write_json(partial / "state.json", state)
        if target.exists():  # an incomplete leftover of an interrupted earlier attempt
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _remove_leftovers(run_dir: Path, completed: int) -> None:
    """Drop partial checkpoint folders and any checkpoint beyond the last complete epoch."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if path.is_dir() and (path.name.endswith(".partial") or (match and int(match.group(1)) > completed)):
            shutil.rmtree(path, ignore_errors=True)


def make_dcgan(generator, discriminator, config: GanConfig):
    """A compiled DCGAN with the config's Adam optimizers and label options."""
    import keras

    from gan_lab.dcgan import DCGAN

    gan = DCGAN(
        generator,
        discriminator,
        label_smoothing=config.label_smoothing,
        label_noise=config.label_noise,
        augment=tuple(config.augment),
        seed=config.seed,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(config.d_learning_rate, beta_1=config.beta_1),
        g_optimizer=keras.optimizers.Adam(config.g_learning_rate, beta_1=config.beta_1),
        # XLA measured slower than the default graph on CPU for these models.
        jit_compile=False,
    )
    return gan


def restore_dcgan(gan_dir: str | os.PathLike, epoch: int | None = None):
    """The DCGAN of a run as saved at `epoch` (None: the last complete), with both optimizers' state."""
    folder = checkpoint_dir(gan_dir, epoch)
    config = run_config(gan_dir)
    gan = make_dcgan(_load_model(folder / "generator.keras"), _load_model(folder / "discriminator.keras"), config)
    _restore_optimizer_state(gan, folder / "optimizer.npz")
    return gan


# --------------------------------------------------------------------------- history, plots, report


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of run_dir/history.csv: "epoch" an int (from 1), every other column a float."""
    return read_history_file(Path(run_dir) / "history.csv")


def plot_history(rows: list[dict], path: str | os.PathLike, real_diversity: float | None = None) -> Path | None:
    """plots/losses.png: both losses, the discriminator's mean P(fake) on reals and fakes, and diversity, per epoch."""
    from matplotlib.figure import Figure

    from detector.evaluate import save_figure

    if not rows:
        return None
    epochs = [row["epoch"] for row in rows]
    figure = Figure(figsize=(13.0, 3.8))
    losses, p_fake, diversity = figure.subplots(1, 3)
    style = dict(marker="o", markersize=3)
    losses.plot(epochs, [row["d_loss"] for row in rows], label="discriminator", **style)
    losses.plot(epochs, [row["g_loss"] for row in rows], label="generator", **style)
    losses.set(xlabel="Epoch", ylabel="binary cross-entropy", title="Losses")
    p_fake.plot(epochs, [row["d_p_fake_fake"] for row in rows], label="on generated images", color="C3", **style)
    p_fake.plot(epochs, [row["d_p_fake_real"] for row in rows], label="on real images", color="C2", **style)
    p_fake.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    p_fake.set(xlabel="Epoch", ylabel="mean P(fake)", title="Discriminator's P(fake)", ylim=(-0.02, 1.02))
    diversity.plot(epochs, [row.get("diversity", math.nan) for row in rows], label="generated", color="C4", **style)
    if real_diversity is not None:
        diversity.axhline(real_diversity, color="grey", linestyle="--", label="real training images")
    diversity.set(xlabel="Epoch", ylabel="mean pairwise feature distance", title="Sample diversity")
    for axes in (losses, p_fake, diversity):
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def write_report(run_dir: Path, config: GanConfig, rows: list[dict], metrics: dict) -> Path:
    """report.md: what was trained on what, the per-epoch table and the pictures."""
    lines = [
        f"# DCGAN run `{run_dir.name}`",
        "",
        f"{config.size} px generator ({config.preset or 'default widths ' + ', '.join(map(str, config.generator_filters))}, "
        f"latent {config.latent_dim}) against a {config.discriminator} discriminator, on {metrics['real_images']} real "
        f"images of `{config.data}`. Batch {config.batch_size}, {metrics['steps_per_epoch']} steps per epoch, "
        f"{metrics['epochs_trained']} epochs in {metrics['train_seconds'] / 60:.1f} min, seed {config.seed}.",
        "",
        "| epoch | D loss | G loss | D P(fake) real | D P(fake) generated | diversity |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['epoch']} | {row['d_loss']:.3f} | {row['g_loss']:.3f} | {row['d_p_fake_real']:.3f} "
            f"| {row['d_p_fake_fake']:.3f} | {row['diversity']:.3g} |"
        )
    if metrics.get("real_diversity") is not None:
        lines += ["", f"Real training images' diversity: {metrics['real_diversity']:.3g}."]
    if metrics.get("stopped"):
        lines += ["", f"Training stopped early: {metrics['stopped']}."]
    if rows:
        last = rows[-1]["epoch"]
        lines += [
            "",
            f"![sample grid, epoch {last}](samples/epoch-{last:04d}.png)",
            "",
            "![every epoch's grid](progress.gif)",
            "",
            "![losses](plots/losses.png)",
        ]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- data


def _index(config: GanConfig):
    """The real training images: the train split of the data folder's real images."""
    from detector.data import index_folder

    index = index_folder(config.data, real_only=True, seed=config.seed)
    split = index.splits["train"]
    if not len(split.paths):
        raise LabError(f"{config.data} has no real training images to train the GAN on (layout {index.layout!r})")
    return index


def _dataset(config: GanConfig, split, shuffle_seed: int):
    from detector.data import make_dataset

    cache = len(split.paths) * config.size * config.size * 3 * 4 <= CACHE_LIMIT_BYTES
    # Repeated, so every step gets a full batch whatever steps_per_epoch is.
    return make_dataset(
        split,
        size=config.size,
        batch_size=config.batch_size,
        crop=config.crop,
        shuffle=True,
        seed=shuffle_seed,
        repeat=True,
        drop_remainder=True,
        cache=cache,
    )


def _real_sample(config: GanConfig, split) -> np.ndarray:
    from detector.data import load_images

    order = np.random.default_rng(np.random.SeedSequence([config.seed, 0, DIVERSITY_STREAM])).permutation(
        len(split.paths)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreadable files are reported by the training pipeline
        pixels, _, _ = load_images(
            [split.paths[i] for i in order], config.size, crop=config.crop, limit=config.diversity_n
        )
    return pixels


# --------------------------------------------------------------------------- the epoch callback


def _make_callback(run_dir: Path, config: GanConfig, rows: list[dict], state: dict, real_diversity: float | None):
    """After each epoch: sample grid, diversity, history.csv, checkpoint, plot and GIF, in that order.

    The history row is written before the checkpoint, and a resumed run drops rows after
    its last complete checkpoint, so an interruption between them never loses or repeats a row.
    """
    import keras

    from gan_lab.diversity import (
        build_feature_extractor,
        check_collapse,
        image_diversity,
    )
    from gan_lab.sample import generate, sample_epochs, save_grid, write_progress_gif
    from gan_lab.stress import stress_latents

    grid_latents = np.load(run_dir / "latents.npy").astype(np.float32)
    diversity_latents = stress_latents(config.seed, 0, config.diversity_n, config.latent_dim, stream=DIVERSITY_STREAM)
    extractor = build_feature_extractor()

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            number = epoch + 1
            seconds = time.monotonic() - self.started
            values = {name: float((logs or {}).get(name, math.nan)) for name in METRIC_NAMES}
            if not all(math.isfinite(value) for value in values.values()):
                state["stopped"] = f"a loss became NaN or infinite in epoch {number}"
                warnings.warn(
                    f"Stopping {run_dir.name}: {state['stopped']}; epoch {number} is not saved",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.model.stop_training = True
                return
            generator = self.model.generator
            save_grid(run_dir / "samples" / f"epoch-{number:04d}.png", generate(generator, grid_latents))
            diversity = image_diversity(generate(generator, diversity_latents), extractor)
            rows.append({"epoch": number, **values, "diversity": diversity, "seconds": seconds})
            write_history(run_dir / "history.csv", rows, HISTORY_COLUMNS)
            state.update(
                epoch=number,
                train_seconds=state.get("train_seconds", 0.0) + seconds,
                d_iterations=int(self.model.d_optimizer.iterations.numpy()),
                g_iterations=int(self.model.g_optimizer.iterations.numpy()),
            )
            save_checkpoint(self.model, run_dir, number, state)
            plot_history(rows, run_dir / "plots" / "losses.png", real_diversity)
            frames = [
                path for epoch_number, path in sample_epochs(run_dir / "samples").items() if epoch_number <= number
            ]
            write_progress_gif(frames, run_dir / "progress.gif")
            if not state.get("collapse_warned"):  # once per run: after a collapse, every epoch would repeat it
                message = check_collapse(
                    [row["diversity"] for row in rows],
                    real_diversity,
                    config.collapse_fraction,
                    [row["epoch"] for row in rows],
                )
                state["collapse_warned"] = message is not None

    return EpochEnd()


# --------------------------------------------------------------------------- training


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def _resolve_data(config: GanConfig, runs_dir) -> str:
    from detector.synthfaces import resolve_data

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
    return os.fspath(Path(data).resolve())


def _build_models(config: GanConfig):
    from gan_lab.dcgan import (
        build_discriminator,
        build_generator,
        copy_detector_weights,
    )

    generator = build_generator(**_generator_kwargs(config))
    discriminator = build_discriminator(config.discriminator, config.size)
    if config.init_discriminator:
        copy_detector_weights(discriminator, config.init_discriminator)
    return generator, discriminator


def _start_run(config: GanConfig, runs_dir, progress: bool):
    """Check the options and the data, build both models, then create the run directory and its files."""
    import keras

    from gan_lab.dcgan import generator_options
    from gan_lab.stress import stress_latents

    config = check_config(config)
    source = config.data
    config = dataclasses.replace(config, data=_resolve_data(config, runs_dir))
    index = _index(config)
    keras.utils.set_random_seed(config.seed)
    generator, discriminator = _build_models(config)  # before the run directory: a bad option leaves nothing behind
    run_dir = create_run_dir("gan", config.name, runs_dir)
    record = {
        **dataclasses.asdict(config),
        "data_source": source,
        "layout": index.layout,
        "real_images": len(index.splits["train"].paths),
        "generator": generator_options(**_generator_kwargs(config)),
        "parameters": {"generator": int(generator.count_params()), "discriminator": int(discriminator.count_params())},
    }
    write_json(run_dir / "config.json", record)
    grid = stress_latents(config.seed, 0, config.grid_size, config.latent_dim, stream=GRID_STREAM)
    buffer = io.BytesIO()
    np.save(buffer, grid)
    atomic_write_bytes(run_dir / "latents.npy", buffer.getvalue())
    (run_dir / "samples").mkdir(exist_ok=True)
    _say(
        progress,
        f"Training a {config.size} px DCGAN ({config.discriminator} discriminator) on {config.data} -> {run_dir}",
    )
    return run_dir, config, index, make_dcgan(generator, discriminator, config)


def _check_resume_config(run_dir: Path, saved: GanConfig, config: GanConfig | None) -> None:
    if config is None:
        return
    for option in RESUME_CHECKED:
        given, recorded = getattr(config, option), getattr(saved, option)
        if option == "data":
            if given == "synth":
                continue
            same = Path(given).resolve() == Path(recorded).resolve()
        else:
            same = given == recorded
        if not same:
            raise LabError(
                f"Cannot resume {run_dir}: it was trained with {option}={recorded!r} but the given config has {option}={given!r}"
            )


def _resume_run(run_dir, config: GanConfig | None, progress: bool):
    """The run's config (epochs from `config` if given), index, DCGAN at its last complete epoch, and state."""
    import keras

    run_dir = require_run_dir(run_dir, "gan")
    saved = run_config(run_dir)
    _check_resume_config(run_dir, saved, config)
    if config is not None and config.epochs != saved.epochs:
        if not _is_int(config.epochs) or config.epochs < 1:
            raise LabError(f"epochs must be a positive integer. Received: epochs={config.epochs!r}")
        saved = dataclasses.replace(saved, epochs=config.epochs)
    if not Path(saved.data).is_dir():
        raise LabError(f"Cannot resume {run_dir}: its data folder {saved.data} is not on this machine")
    index = _index(saved)
    checkpoints = list_checkpoints(run_dir)
    completed = max(checkpoints, default=0)
    if saved.epochs < completed:
        raise LabError(
            f"Cannot resume {run_dir} to {saved.epochs} epochs in total: it has completed {completed}. "
            f"Give --epochs above {completed} to train on"
        )
    if saved.epochs != read_json(run_dir / "config.json").get("epochs"):
        write_json(run_dir / "config.json", {**read_json(run_dir / "config.json"), "epochs": saved.epochs})
    _remove_leftovers(run_dir, completed)
    keras.utils.set_random_seed(saved.seed + completed)
    if completed:
        gan = restore_dcgan(run_dir, completed)
        state = read_json(checkpoints[completed] / "state.json")
    else:  # interrupted in its first epoch: start again exactly as the run started
        keras.utils.set_random_seed(saved.seed)
        gan, state = make_dcgan(*_build_models(saved), saved), {}
    _say(progress, f"Resuming {run_dir} after epoch {completed} of {saved.epochs}")
    return run_dir, saved, index, gan, state, completed


def train_gan(
    config: GanConfig | None = None,
    runs_dir: str | os.PathLike = "runs",
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    callbacks: list | None = None,
) -> Path:
    """Train a DCGAN into a new run directory (or continue `resume`) and return the directory.

    resume: a GAN run directory. Training continues after its last complete checkpoint with
    both optimizers' state and the epoch count intact; an epoch interrupted part-way is
    trained again. Options come from the run's config.json; a `config` given with it must
    agree on size, latent_dim, discriminator, preset and data, and its `epochs` becomes the
    new total (so a finished run can be extended).
    callbacks: extra Keras callbacks, called after the run's own (which save each epoch first).
    """
    from gan_lab.diversity import image_diversity

    if resume is None:
        run_dir, config, index, gan = _start_run(config or GanConfig(), runs_dir, progress)
        state, rows, completed = {}, [], 0
    else:
        run_dir, config, index, gan, state, completed = _resume_run(resume, config, progress)
        # Rows of epochs after the last complete checkpoint are trained again, so they are dropped.
        rows = [row for row in read_history(run_dir) if row["epoch"] <= completed]
        write_history(run_dir / "history.csv", rows, HISTORY_COLUMNS)
    split = index.splits["train"]
    steps = config.steps_per_epoch or max(1, len(split.paths) // config.batch_size)
    reals = _real_sample(config, split)
    # The collapse warning's reference; with fewer than two readable images there is none.
    real_diversity = image_diversity(reals) if len(reals) >= 2 else None

    state.pop("stopped", None)
    if completed < config.epochs:
        # A resumed run shuffles with another seed, so it does not repeat its first epochs' order.
        dataset = _dataset(config, split, shuffle_seed=config.seed + completed)
        gan.fit(
            dataset,
            epochs=config.epochs,
            initial_epoch=completed,
            steps_per_epoch=steps,
            shuffle=False,  # the data set shuffles itself, with the run's seed
            callbacks=[_make_callback(run_dir, config, rows, state, real_diversity), *(callbacks or [])],
            verbose=1 if progress else 0,
        )
    else:
        _say(progress, f"{run_dir} has trained all {config.epochs} epochs; nothing to resume")
    if not list_checkpoints(run_dir):
        raise LabError(
            f"Training in {run_dir} saved no epoch ({state.get('stopped') or 'no epoch completed'}); "
            f"try lower learning rates than {config.d_learning_rate} and {config.g_learning_rate}"
        )
    metrics = {
        "epochs_trained": rows[-1]["epoch"] if rows else 0,
        "steps_per_epoch": steps,
        "batch_size": config.batch_size,
        "real_images": len(split.paths),
        "train_seconds": round(float(state.get("train_seconds", 0.0)), 1),
        "seconds_per_step": round(float(np.mean([row["seconds"] for row in rows])) / steps, 3) if rows else None,
        "real_diversity": real_diversity,
        "last_epoch": rows[-1] if rows else None,
        "stopped": state.get("stopped"),
    }
    write_json(run_dir / "metrics.json", metrics)
    plot_history(rows, run_dir / "plots" / "losses.png", real_diversity)
    write_report(run_dir, config, rows, metrics)
    _say(progress, f"Wrote checkpoints/, samples/, progress.gif, history.csv, plots/ and report.md to {run_dir}")
    return run_dir

"""Train a DCGAN on real faces into a numbered run directory, and continue an interrupted one.

    run_dir = train_gan(GanConfig(data="synth", size=64, epochs=10))

A run directory `runs/NNNNN-gan-<name>/` holds config.json (every option, resolved),
latents.npy (the fixed latents of the sample grids), history.csv (one row per epoch,
epochs counted from 1), samples/epoch-NNNN.png (the grid of each epoch), progress.gif,
plots/losses.png, checkpoints/epoch-NNNN/ (see `gan_lab.gan.checkpoints`), metrics.json and
report.md. `train_gan(resume=run_dir)` continues from the last complete epoch.

Keras is imported on first use, so that importing this module (for GanConfig, say, when
building the command line) stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import warnings
from pathlib import Path
from typing import ClassVar, Literal, get_args

import numpy as np

from detector.base.errors import LabError
from detector.base.failpoints import failpoint
from detector.base.runs import (
    EPOCH_HISTORY,
    atomic_write_bytes,
    publish_history,
    read_json,
    remove_stale,
    write_history,
    write_json,
)
from detector.data.images import FitMode
from detector.data.synthfaces import Difficulty
from detector.training import lifecycle
from detector.training.lifecycle import refuse
from detector.training.scaling import RESUME_CHANGEABLE, Scaling, ScalingOptions, check_options, train_on_cluster
from gan_lab.gan.checkpoints import (
    EMA_FILE,
    checkpoint_dir,
    list_checkpoints,
    load_model,
    restore_optimizer_state,
    save_checkpoint,
)
from gan_lab.gan.latents import DIVERSITY_STREAM, GRID_STREAM, seeded_latents, stream_rng
from gan_lab.gan.report import (
    HISTORY_COLUMNS,
    RealReference,
    best_faces_epoch,
    plot_history,
    read_history,
    write_report,
)

# Discriminators built from scratch; transfer backbones need ImageNet weights a GAN cannot use.
Discriminator = Literal["cnn3", "small_cnn", "alexnet"]
DISCRIMINATORS = get_args(Discriminator)
Upsampling = Literal["transpose", "nearest", "bilinear", "pixelshuffle"]
DEFAULT_SIZE = 64


@dataclasses.dataclass
class GanConfig(ScalingOptions):
    """Every option of a DCGAN training run; the run's config.json holds them resolved.

    Beside these: strategy, devices, precision and jit (see `detector.training.scaling`).
    """

    data: str = "synth"  # an image folder (only its real images are used), or "synth" for SynthFaces
    size: int | None = None  # image side in pixels, a multiple of 16; None: 64, or the preset's size
    epochs: int = 12  # epochs in total (with --resume: the new total)
    batch_size: int = 32  # real images per step over all replicas (the discriminator sees as many fakes besides)
    steps_per_epoch: int | None = 100  # None: one pass over the real training images
    kimg: float | None = None  # train until this many thousand real images are shown (sets epochs); None: --epochs
    grid_size: int = 64  # images in each epoch's sample grid
    preset: str | None = None  # None, or "seed128" for the published 128 px generator
    latent_dim: int = 128  # latent vector length
    # Widths of the four upsampling steps; None: the default for the preset.
    generator_filters: tuple[int, int, int, int] | None = None
    batch_norm: bool = False  # BatchNorm after each of the generator's upsampling steps
    # How the generator doubles the image side: Conv2DTranspose 4x4 stride 2, a resize then a
    # 3x3 convolution, or a convolution then depth-to-space.
    upsampling: Upsampling = "transpose"
    ema_kimg: float = 10.0  # half-life of the EMA generator in thousand images shown (grids, samples); 0: none
    ema_rampup: float = 0.05  # the EMA's half-life is at most this share of the images shown so far
    discriminator: Discriminator = "cnn3"  # the detector architecture the discriminator uses
    init_discriminator: str | None = None  # a detector run directory whose weights start the discriminator
    spectral_norm: bool = True  # each discriminator kernel divided by its largest singular value
    d_learning_rate: float = 2e-4  # the discriminator's Adam learning rate
    g_learning_rate: float = 4e-4  # the generator's Adam learning rate
    beta_1: float = 0.5  # Adam's first-moment decay for both optimizers
    # The last fraction of the run's steps over which both learning rates ease to 0 (half a
    # cosine); 0: constant rates. Resuming with more epochs stretches the ramp to the new total.
    lr_rampdown: float = 0.0
    label_smoothing: float = 0.0  # real targets become this instead of 0
    label_noise: float = 0.05  # every target moves towards 0.5 by a uniform amount up to this
    r1_gamma: float = 0.0  # R1 penalty weight on the discriminator's gradient at real images; 0: none
    r1_interval: int = 16  # the R1 penalty on every this many steps, weighted by it (lazy, as StyleGAN2); 1: every step
    # Differentiable augmentation of everything the discriminator sees: names from
    # "color", "translation", "cutout"; for real data sets of a few thousand images.
    augment: tuple[str, ...] = ()
    diversity_n: int = 128  # generated (and real) images the per-epoch diversity is measured on
    collapse_fraction: float = 0.5  # warn when diversity falls below this fraction of the real images' diversity
    faces_n: int = 256  # fresh samples (and real images) per epoch MTCNN looks for a face in; 0: no faces_found
    crop: FitMode = "resize"  # how images of another size are fitted: stretched, or their centre square
    seed: int = 0  # the same seed gives the same data, weights and samples
    name: str = ""  # run directory suffix; "" means "<preset or dcgan>-<size>px"
    synth_n: int = 2000  # with data="synth": SynthFaces images in total (half of them real)
    synth_difficulty: Difficulty = "medium"  # with data="synth": how subtle the fakes are
    tensorboard: bool = True  # losses, P(fake), diversity, learning rates and grids under tensorboard/

    # What a config.json written before an option existed meant by leaving it out.
    ABSENT: ClassVar[dict] = {"spectral_norm": False, "r1_interval": 1}


# --------------------------------------------------------------------------- options


def _check_numbers(config: GanConfig) -> None:
    if not lifecycle.is_int(config.size) or config.size < 32 or config.size % 16:
        refuse(config, "size", "a multiple of 16 pixels, at least 32 (32, 64, 128, 256)")
    lifecycle.require_positive(config, "epochs", "batch_size", "grid_size", "latent_dim", "synth_n")
    lifecycle.require_steps(config)
    lifecycle.require_seed(config)
    if not lifecycle.is_int(config.diversity_n) or config.diversity_n < 2:
        refuse(config, "diversity_n", "an integer of at least 2")
    if not lifecycle.is_int(config.faces_n) or config.faces_n < 0:
        refuse(config, "faces_n", "an integer of at least 0 (0: no face-found figure)")
    for option in ("d_learning_rate", "g_learning_rate", "beta_1"):
        if not lifecycle.is_number(value := getattr(config, option)) or not 0 < value < 1:
            refuse(config, option, "a number between 0 and 1")
    if not lifecycle.is_number(config.lr_rampdown) or not 0 <= config.lr_rampdown <= 1:
        refuse(config, "lr_rampdown", "a fraction of the run in [0, 1] (0: constant learning rates)")
    for option in ("label_smoothing", "label_noise"):
        if not lifecycle.is_number(value := getattr(config, option)) or not 0 <= value < 0.5:
            refuse(config, option, "a number in [0, 0.5)")
    if not lifecycle.is_number(config.collapse_fraction) or not 0 <= config.collapse_fraction < 1:
        refuse(config, "collapse_fraction", "a fraction in [0, 1)")
    if not lifecycle.is_number(config.r1_gamma) or config.r1_gamma < 0:
        refuse(config, "r1_gamma", "0 (no R1 penalty) or a positive number")
    if not lifecycle.is_int(config.r1_interval) or config.r1_interval < 1:
        refuse(config, "r1_interval", "a whole number of steps, at least 1 (1: the R1 penalty on every step)")
    if not lifecycle.is_number(config.ema_kimg) or config.ema_kimg < 0:
        refuse(config, "ema_kimg", "0 (no EMA generator) or a positive number of thousand images")
    if not lifecycle.is_number(config.ema_rampup) or not 0 < config.ema_rampup <= 1:
        refuse(config, "ema_rampup", "a share of the images shown, above 0 and at most 1")
    if config.kimg is not None and (not lifecycle.is_number(config.kimg) or not config.kimg > 0):
        refuse(config, "kimg", "None or a positive number of thousand images")


def check_config(config: GanConfig) -> GanConfig:
    """A copy of `config` with defaults resolved (name, generator widths); LabError naming the first bad option."""
    from detector.data.images import FIT_MODES
    from detector.data.synthfaces import DIFFICULTIES
    from gan_lab.gan.dcgan import AUGMENT_POLICIES, GENERATOR_PRESETS, generator_options

    if config.size is None:
        preset = GENERATOR_PRESETS.get(config.preset) if isinstance(config.preset, str) else None
        config = dataclasses.replace(config, size=preset["size"] if preset else DEFAULT_SIZE)
    _check_numbers(config)
    check_options(config)
    lifecycle.require_choice(config, "discriminator", DISCRIMINATORS)
    lifecycle.require_choice(config, "crop", FIT_MODES)
    lifecycle.require_choice(config, "synth_difficulty", DIFFICULTIES)
    if not isinstance(config.augment, (list, tuple)) or any(name not in AUGMENT_POLICIES for name in config.augment):
        refuse(config, "augment", f"a list of names from {AUGMENT_POLICIES}")
    try:
        options = generator_options(**_generator_kwargs(config))
    except ValueError as error:
        raise LabError(f"Generator options do not fit together: {error}") from None
    init = config.init_discriminator
    return dataclasses.replace(
        config,
        data=os.fspath(config.data),
        generator_filters=tuple(options["filters"]),
        augment=tuple(config.augment),
        init_discriminator=os.fspath(Path(init).resolve()) if init else None,
        name=config.name or f"{config.preset or 'dcgan'}-{config.size}px",
    )


def run_config(run_dir: str | os.PathLike) -> GanConfig:
    """The resolved GanConfig a GAN run directory was trained with (from its config.json)."""
    _, config, _ = lifecycle.recorded_config(run_dir, "gan", GanConfig)
    return check_config(config)


def _generator_kwargs(config: GanConfig) -> dict:
    filters = tuple(config.generator_filters) if config.generator_filters is not None else None
    return dict(
        size=config.size,
        latent_dim=config.latent_dim,
        filters=filters,
        batch_norm=config.batch_norm,
        preset=config.preset,
        upsampling=config.upsampling,
    )


# --------------------------------------------------------------------------- models


def _optimizer(config: GanConfig, learning_rate: float, total_steps: int):
    import keras

    from gan_lab.gan.dcgan import RampDown

    if config.lr_rampdown:
        learning_rate = RampDown(learning_rate, total_steps, config.lr_rampdown)
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=config.beta_1)
    # float16 gradients underflow: the loss is scaled up before them and the gradients down after.
    return keras.optimizers.LossScaleOptimizer(optimizer) if config.precision == "mixed_float16" else optimizer


def make_dcgan(
    generator, discriminator, config: GanConfig, total_steps: int, generator_ema=None, model_class=None, **options
):
    """A compiled DCGAN with the config's Adam optimizers, label options and EMA generator.

    total_steps: the steps of the whole run, the length the learning rates ramp down over.
    model_class: a DCGAN subclass to make instead (the arena's), given `options` besides.

    Call it in the run's `Scaling.scope()` (as `train_gan` does), with models made there.
    """
    from gan_lab.gan.dcgan import DCGAN

    gan = (model_class or DCGAN)(
        generator,
        discriminator,
        label_smoothing=config.label_smoothing,
        label_noise=config.label_noise,
        r1_gamma=config.r1_gamma,
        r1_interval=config.r1_interval,
        augment=tuple(config.augment),
        seed=config.seed,
        ema_kimg=config.ema_kimg,
        ema_rampup=config.ema_rampup,
        generator_ema=generator_ema,
        **options,
    )
    gan.compile(
        d_optimizer=_optimizer(config, config.d_learning_rate, total_steps),
        g_optimizer=_optimizer(config, config.g_learning_rate, total_steps),
        jit_compile=config.jit,  # off by default: XLA measured slower than the default graph on CPU
    )
    return gan


def restore_dcgan(
    gan_dir: str | os.PathLike, epoch: int | None = None, scaling: Scaling | None = None, model_class=None, **options
):
    """The DCGAN of a run as saved at `epoch` (None: the last complete), with both optimizers' state.

    scaling: the strategy to restore it onto (None: none; the models keep their saved precision).
    model_class, options: as `make_dcgan` takes them.
    """
    folder = checkpoint_dir(gan_dir, epoch)
    _, config, record = lifecycle.recorded_config(gan_dir, "gan", GanConfig)
    config = check_config(config)
    ema_path = folder / EMA_FILE
    with scaling.scope() if scaling is not None else contextlib.nullcontext():
        generator_ema = load_model(ema_path) if ema_path.is_file() else None
        generator, discriminator = load_model(folder / "generator.keras"), load_model(folder / "discriminator.keras")
        steps = total_steps(config, record["real_images"])
        gan = make_dcgan(generator, discriminator, config, steps, generator_ema, model_class, **options)
        restore_optimizer_state(gan, folder / "optimizer.npz")
    return gan


def _new_dcgan(config: GanConfig, scaling: Scaling, real_images: int):
    """A DCGAN of new models, on the strategy's devices in the run's precision."""
    from gan_lab.gan.dcgan import build_discriminator, build_generator, copy_detector_weights

    with scaling.scope():
        generator = build_generator(**_generator_kwargs(config))
        discriminator = build_discriminator(config.discriminator, config.size, spectral_norm=bool(config.spectral_norm))
        if config.init_discriminator:
            copy_detector_weights(discriminator, config.init_discriminator)
        return make_dcgan(generator, discriminator, config, total_steps(config, real_images))


# --------------------------------------------------------------------------- data


def _index(config: GanConfig):
    """The real training images: the train split of the data folder's real images."""
    from detector.data.datasets import index_folder

    index = index_folder(config.data, real_only=True, seed=config.seed)
    if not len(index.splits["train"].paths):
        raise LabError(f"{config.data} has no real training images to train the GAN on (layout {index.layout!r})")
    return index


def _dataset(config: GanConfig, split, shuffle_seed: int, scaling: Scaling):
    from detector.data.datasets import make_dataset

    # Repeated, so every step gets a full batch whatever steps_per_epoch is.
    dataset = make_dataset(
        split,
        size=config.size,
        batch_size=config.batch_size,
        crop=config.crop,
        shuffle=True,
        seed=shuffle_seed,
        repeat=True,
        drop_remainder=True,
        cache=lifecycle.fits_in_memory(len(split.paths), config.size),
    )
    return scaling.distribute(dataset)


def _real_sample(config: GanConfig, split) -> np.ndarray:
    """Real training images in a seeded order: the grid in reals.png and the watches' references."""
    from detector.data.datasets import load_images

    order = stream_rng(config.seed, 0, DIVERSITY_STREAM).permutation(len(split.paths))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreadable files are reported by the training pipeline
        pixels, _, _ = load_images(
            [split.paths[i] for i in order],
            config.size,
            crop=config.crop,
            limit=max(config.diversity_n, config.faces_n),
        )
    return pixels


def _face_finder(config: GanConfig):
    """MTCNN for the face-found watch; None (with a warning) when `faces_n` is 0 or it cannot start."""
    if not config.faces_n:
        return None
    try:
        from gan_lab.metrics.faces import FaceFinder

        return FaceFinder()
    except Exception as error:  # the watch is a figure, not the training: carry on without it
        warnings.warn(f"No faces_found figure this run: MTCNN could not start ({error})", RuntimeWarning, stacklevel=2)
        return None


def _real_reference(config: GanConfig, reals: np.ndarray, face_finder) -> RealReference:
    """The real images' diversity (the collapse warning's reference) and face-found share."""
    from gan_lab.metrics.diversity import image_diversity

    diverse, faces = reals[: config.diversity_n], reals[: config.faces_n]
    return RealReference(
        diversity=image_diversity(diverse) if len(diverse) >= 2 else None,
        faces_found=float(np.mean(face_finder.found(faces))) if face_finder is not None and len(faces) else None,
        n_faces=len(faces) if face_finder is not None else 0,
    )


# --------------------------------------------------------------------------- start and resume


def _write_grid_latents(run_dir: Path, config: GanConfig) -> None:
    grid = seeded_latents(config.seed, 0, config.grid_size, config.latent_dim, stream=GRID_STREAM)
    buffer = io.BytesIO()
    np.save(buffer, grid)
    atomic_write_bytes(run_dir / "latents.npy", buffer.getvalue())


def _steps(config: GanConfig, real_images: int) -> int:
    return config.steps_per_epoch or max(1, real_images // config.batch_size)


def total_steps(config: GanConfig, real_images: int) -> int:
    """Optimizer steps in the whole run: `epochs` of `_steps` each."""
    return config.epochs * _steps(config, real_images)


def _resolve_epochs(config: GanConfig, real_images: int) -> GanConfig:
    """With `kimg`, the epochs that show that many real images (the last one may show a few more)."""
    if config.kimg is None:
        return config
    per_epoch = _steps(config, real_images) * config.batch_size
    return dataclasses.replace(config, epochs=max(1, math.ceil(config.kimg * 1000 / per_epoch)))


def _start_run(config: GanConfig, runs_dir, progress: bool, scaling: Scaling):
    """Check the options and the data, build both models, then create the run directory and its files."""
    import keras

    from gan_lab.gan.dcgan import generator_options

    config, source = lifecycle.resolve_data(check_config(config), runs_dir)
    scaling.check_batch(config.batch_size)
    config = dataclasses.replace(config, precision=scaling.precision)  # "auto" recorded as what it became
    index = _index(config)
    real_images = len(index.splits["train"].paths)
    config = _resolve_epochs(config, real_images)
    keras.utils.set_random_seed(config.seed)
    gan = _new_dcgan(config, scaling, real_images)  # before the run directory: a bad option leaves nothing behind
    generator, discriminator = gan.generator, gan.discriminator
    extra = {
        "data_source": source,
        "layout": index.layout,
        "real_images": real_images,
        "generator": generator_options(**_generator_kwargs(config)),
        "parameters": {"generator": int(generator.count_params()), "discriminator": int(discriminator.count_params())},
    }
    run_dir = lifecycle.start_run_dir("gan", config, runs_dir, extra)
    from gan_lab.gan.manifest import write_training_manifest  # which real images the GAN trains on

    write_training_manifest(run_dir, index.splits["train"].paths)
    _write_grid_latents(run_dir, config)
    (run_dir / "samples").mkdir(exist_ok=True)
    on = f", {scaling.describe()}" if scaling.describe() else ""
    lifecycle.say(
        progress,
        f"Training a {config.size} px DCGAN ({config.discriminator} discriminator{on}) on {config.data} -> {run_dir}",
    )
    return run_dir, config, index, gan


def start_gan_run(config: GanConfig, runs_dir: str | os.PathLike = "runs", progress: bool = True) -> Path:
    """A new GAN run whose one checkpoint is epoch 0: the models as initialised, before any step.

    What continues a GAN run's last checkpoint starts from it (the arena with --data);
    `gan train --resume` trains it from the start, exactly as a new run with its options would.
    """
    with lifecycle.run_claims():
        run_dir, config, _, gan = _start_run(config, runs_dir, progress, Scaling.of(config))
        state = {"epoch": 0, "train_seconds": 0.0, "d_iterations": 0, "g_iterations": 0}
        save_checkpoint(gan, run_dir, 0, state, [], HISTORY_COLUMNS)
    return run_dir


def _resume_run(run_dir, given: GanConfig | None, progress: bool, scaling: Scaling):
    """The run's config (more epochs if given), index, DCGAN at its last complete epoch, and state."""
    import keras

    run_dir, recorded, record = lifecycle.recorded_config(run_dir, "gan", GanConfig)
    lifecycle.claim_run(run_dir)  # before anything of the run is changed
    recorded = check_config(recorded)
    config = lifecycle.resume_config(
        run_dir, recorded, record, check_config(given) if given else None, ("epochs", "kimg", *RESUME_CHANGEABLE)
    )
    scaling.check_batch(config.batch_size)
    lifecycle.require_data_here(run_dir, config)
    index = _index(config)
    if config.kimg != recorded.kimg:  # a new total in images decides the epochs
        config = _resolve_epochs(config, len(index.splits["train"].paths))
    checkpoints = list_checkpoints(run_dir)
    completed = max(checkpoints, default=0)
    if config.epochs < completed:
        raise LabError(
            f"Cannot resume {run_dir} to {config.epochs} epochs in total: it has completed {completed}. "
            f"Give --epochs above {completed} to train on"
        )
    lifecycle.update_recorded(run_dir, record, config, ("epochs", "kimg", *RESUME_CHANGEABLE))
    if not (run_dir / "latents.npy").is_file():  # interrupted before its first files were all written
        _write_grid_latents(run_dir, config)
    remove_stale(run_dir, completed)
    _remove_later_samples(run_dir, completed)
    (run_dir / "samples").mkdir(exist_ok=True)
    if completed:
        keras.utils.set_random_seed(config.seed + completed)
        gan = restore_dcgan(run_dir, completed, scaling)
        state = read_json(checkpoints[completed] / "state.json")
    else:  # interrupted in its first epoch: start again exactly as the run started
        keras.utils.set_random_seed(config.seed)
        gan, state = _new_dcgan(config, scaling, len(index.splits["train"].paths)), {}
    lifecycle.say(progress, f"Resuming {run_dir} after epoch {completed} of {config.epochs}")
    return run_dir, config, index, gan, state, completed


def _remove_later_samples(run_dir: Path, completed: int) -> None:
    """Grids of epochs that were never committed: they are drawn again."""
    from gan_lab.gan.sample import sample_epochs

    for epoch, path in sample_epochs(run_dir / "samples").items():
        if epoch > completed:
            path.unlink(missing_ok=True)


def _committed_rows(run_dir: Path, completed: int) -> list[dict]:
    """The history up to the last committed epoch, published again as the run's history.csv."""
    folder = list_checkpoints(run_dir).get(completed)
    if folder is not None and not (folder / EPOCH_HISTORY).is_file():  # a run from before epochs carried history
        rows = [row for row in read_history(run_dir) if row["epoch"] <= completed]
        write_history(run_dir / EPOCH_HISTORY, rows, HISTORY_COLUMNS)
        return rows
    publish_history(run_dir, folder, HISTORY_COLUMNS)
    return read_history(run_dir)


# --------------------------------------------------------------------------- training


def _metrics(config: GanConfig, rows: list[dict], state: dict, steps: int, real_images: int, reals) -> dict:
    best = best_faces_epoch(rows)
    return {
        "epochs_trained": rows[-1]["epoch"] if rows else 0,
        "steps_per_epoch": steps,
        "batch_size": config.batch_size,
        "real_images": real_images,
        "train_seconds": round(float(state.get("train_seconds", 0.0)), 1),
        "seconds_per_step": round(float(np.mean([row["seconds"] for row in rows])) / steps, 3) if rows else None,
        "real_diversity": reals.diversity,
        "real_faces_found": reals.faces_found,
        "n_real_faces": reals.n_faces,
        "most_faces_epoch": best["epoch"] if best else None,
        "last_epoch": rows[-1] if rows else None,
        "stopped": state.get("stopped"),
    }


def _fit(gan, config: GanConfig, split, completed: int, steps: int, epoch_end, callbacks, progress, scaling: Scaling):
    from detector.training.progress import fit_progress

    # A resumed run shuffles with another seed, so it does not repeat its first epochs' order.
    dataset = _dataset(config, split, config.seed + completed, scaling)
    verbose, shown = fit_progress(progress)  # a bar in a terminal, a line per epoch in a log, a widget in Jupyter
    scaling.fit(
        gan,
        dataset,
        epochs=config.epochs,
        initial_epoch=completed,
        steps_per_epoch=steps,
        shuffle=False,  # the data set shuffles itself, with the run's seed
        callbacks=[epoch_end, *shown, *(callbacks or [])],
        verbose=verbose,
    )


def train_gan(
    config: GanConfig | None = None,
    runs_dir: str | os.PathLike = "runs",
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    callbacks: list | None = None,
) -> Path | None:
    """Train a DCGAN into a new run directory (or continue `resume`) and return the directory.

    resume: a GAN run directory. Training continues after its last complete checkpoint with
    both optimizers' state and the epoch count intact; an epoch interrupted part-way is
    trained again. Options come from the run's config.json; a `config` given with it may
    change `epochs` (the new total, so a finished run can be extended) and must agree with
    the run on every other option (LabError listing those that do not).
    callbacks: extra Keras callbacks, called after the run's own (which save each epoch first).
    With strategy "multiworker", every worker of the cluster calls this with the same
    options; the chief writes the run and returns it, the others train in step with it
    (writing only to a temporary folder they remove) and return None.
    """
    return train_on_cluster("gan", GanConfig, _train, config, runs_dir, resume, progress, callbacks)


def _train(config, runs_dir, resume, progress: bool, callbacks, scaling: Scaling) -> Path:
    from gan_lab.gan.callbacks import GanEpochEnd
    from gan_lab.gan.sample import save_grid

    if resume is None:
        run_dir, config, index, gan = _start_run(config or GanConfig(), runs_dir, progress, scaling)
        state, rows, completed = {}, [], 0
    else:
        run_dir, config, index, gan, state, completed = _resume_run(resume, config, progress, scaling)
        rows = _committed_rows(run_dir, completed)
    split = index.splits["train"]
    steps = _steps(config, len(split.paths))
    reals = _real_sample(config, split)
    if len(reals) and not (run_dir / "reals.png").is_file():
        save_grid(run_dir / "reals.png", reals[: config.grid_size])
    face_finder = _face_finder(config)
    real_reference = _real_reference(config, reals, face_finder)

    state.pop("stopped", None)
    if completed < config.epochs:
        epoch_end = GanEpochEnd(run_dir, config, rows, state, real_reference, face_finder)
        with lifecycle.interruptible(run_dir):
            _fit(gan, config, split, completed, steps, epoch_end, callbacks, progress, scaling)
    else:
        lifecycle.say(progress, f"{run_dir} has trained all {config.epochs} epochs; nothing to resume")
    if not list_checkpoints(run_dir):
        raise LabError(
            f"Training in {run_dir} saved no epoch ({state.get('stopped') or 'no epoch completed'}); "
            f"try lower learning rates than {config.d_learning_rate} and {config.g_learning_rate}"
        )
    failpoint("training-finished")
    metrics = _metrics(config, rows, state, steps, len(split.paths), real_reference)
    write_json(run_dir / "metrics.json", metrics)
    plot_history(rows, run_dir / "plots" / "losses.png", real_reference)
    write_report(run_dir, config, rows, metrics)
    lifecycle.say(
        progress, f"Wrote checkpoints/, samples/, progress.gif, history.csv, plots/ and report.md to {run_dir}"
    )
    return run_dir

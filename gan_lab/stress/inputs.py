"""What a stress run scores, resolved once from its options: detectors, GAN runs and epochs, reals, fake sources.

`resolve_inputs` turns a `StressConfig` into a `StressInputs`, checking everything a user can
get wrong (paths, sizes, epochs, folders, real images a GAN trained on) before the run's
directory exists; the rest of the run only reads that object.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from detector import FAKE
from detector.base.errors import LabError
from detector.base.runs import read_json, require_run_dir
from detector.data.datasets import DatasetIndex, class_images, run_index
from detector.inference.predict import Detector, load_detector
from detector.training.scaling import DistributeOptions, Scaling
from gan_lab.gan.checkpoints import require_gan_run
from gan_lab.gan.latents import describe_streams
from gan_lab.metrics.intervals import BOOTSTRAP_RESAMPLES
from gan_lab.stress.formats import Encoding, FakeFormat, resolve_encoding
from gan_lab.stress.leakage import LeakageCheck, MemorisationReals, RealImages, comparison_reals, memorisation_reals
from gan_lab.stress.matrix import Source, data_source, folder_source, gan_sources

# 400 images give a rate's 95% Wilson interval a half-width of at most 4.9 points (at a rate of 50%).
DEFAULT_N = 400


@dataclasses.dataclass
class StressConfig(DistributeOptions):
    """Every option of a stress run; the run's config.json holds them resolved.

    Beside these: strategy ("default" or "mirrored": each batch of fakes generated and scored
    across the replicas), devices and jit (see `detector.training.scaling`).
    """

    detector: str = ""  # a detector run directory: the one scored epoch by epoch
    # More detector runs: with `detector`, the rows of the generalisation matrix (matrix.csv).
    detectors: tuple[str, ...] = ()
    # Runs trained as `detector` was but with other seeds (`detector train --seeds`): each epoch's verdicts
    # then carry their mean and spread across the training seeds
    seed_runs: tuple[str, ...] = ()
    # A GAN run directory, scored epoch by epoch; RUN_DIR@EPOCHS picks its matrix columns (default: its last epoch).
    gan: str = ""
    # More GAN runs as matrix columns: RUN_DIR (its last epoch) or RUN_DIR@EPOCHS ("all", "last" or "1,5,10").
    gans: tuple[str, ...] = ()
    # Folders of fake images, each a matrix column (a StyleGAN's or a diffusion model's, say).
    fakes: tuple[str, ...] = ()
    epochs: str | tuple[int, ...] = "all"  # GAN epochs to score: "all", "last", "1,5,10", or epoch numbers
    n: int = DEFAULT_N  # fresh fakes per epoch, and real test images (400: a rate's 95% interval within ±5 points)
    seed: int = 0  # the same seed gives the same fakes, the same real images and the same intervals
    batch_size: int = 256  # generation and scoring batch
    sweeps: bool = True  # robustness sweeps (JPEG, blur, rescaling, noise) at the strongest and the last epoch
    inception: bool = True  # FID and KID in InceptionV3 features (ImageNet weights: Keras cache, downloaded once)
    inception_n: int = 256  # fakes per epoch (and real images) the InceptionV3 measures use
    # How GAN fakes are stored before scoring: "auto" as the reals are (8-bit, and JPEG at the reals' quality
    # when they are JPEG files), "png" (8-bit), "jpeg" (at --fake-jpeg-quality or the reals'), "float" (as generated)
    fake_format: FakeFormat = "auto"
    fake_jpeg_quality: int | None = None  # with "jpeg" or "auto": this quality instead of the reals'
    # A weights file for Keras' InceptionV3 without its top, instead of the Keras cache's ImageNet weights
    # (the report names the file and its MD5: FID is comparable only between figures of the same weights)
    inception_weights: str | None = None
    faces: bool = True  # the share of images in which MTCNN finds a face
    faces_n: int = DEFAULT_N  # fakes per epoch (and real images) the face detector looks at
    allow_overlap: bool = False  # keep real test images a GAN trained on (the report warns); else they are left out
    # Per epoch, whether the fakes sit nearer the GAN's training images than real images it never trained on
    memorisation: bool = True
    bootstrap: int = BOOTSTRAP_RESAMPLES  # bootstrap resamples over images for the AP and ROC-AUC intervals
    export_fakes: str | None = None  # also write the fakes as PNGs in the detector's folder layout here
    harden: bool = False  # fine-tune a copy of the detector on extra fakes and score it too
    harden_epochs: str | tuple[int, ...] | None = None  # GAN epochs whose fakes hardening trains on; None: all scored
    harden_fine_tune_epochs: int = 1  # fine-tuning epochs of hardening
    name: str = ""  # run directory suffix


def select_epochs(epochs: str | list | tuple | None, available: list[int], option: str = "--epochs") -> list[int]:
    """Parse "all", "last", "1,5,10" or a list of ints into epochs that have checkpoints (LabError otherwise)."""
    available = sorted(available)
    if epochs is None or (isinstance(epochs, str) and epochs.strip().lower() in ("all", "")):
        return available
    if isinstance(epochs, str) and epochs.strip().lower() == "last":
        return available[-1:]
    if isinstance(epochs, str):
        try:
            wanted = [int(part) for part in epochs.split(",") if part.strip()]
        except ValueError:
            raise LabError(
                f"{option} takes 'all', 'last' or comma-separated epoch numbers such as 1,5,10. Received: {epochs!r}"
            ) from None
    elif isinstance(epochs, int):
        wanted = [epochs]
    else:
        wanted = [int(epoch) for epoch in epochs]
    missing = [epoch for epoch in wanted if epoch not in available]
    if missing or not wanted:
        raise LabError(f"{option}: no checkpoint for epoch(s) {missing or wanted}; the GAN run has epochs {available}")
    return sorted(set(wanted))


def split_gan_option(text: str) -> tuple[str, str | None]:
    """ "RUN_DIR@EPOCHS" -> (RUN_DIR, EPOCHS); a plain RUN_DIR -> (RUN_DIR, None)."""
    path, at, epochs = str(text).rpartition("@")
    if at and (epochs in ("all", "last") or all(part.strip().isdigit() for part in epochs.split(","))):
        return path, epochs
    return str(text), None


def _validate(config: StressConfig) -> None:
    from detector.training.lifecycle import is_int

    for option, least in (("n", 2), ("batch_size", 1), ("harden_fine_tune_epochs", 1), ("bootstrap", 1)):
        value = getattr(config, option)
        if not is_int(value) or value < least:
            raise ValueError(f"{option} must be an integer of at least {least}. Received: {option}={value!r}")
    for option in ("inception_n", "faces_n"):
        value = getattr(config, option)
        if not is_int(value) or value < 0:
            raise ValueError(f"{option} must be a non-negative integer. Received: {option}={value!r}")
    for option in ("detectors", "seed_runs", "gans", "fakes"):
        if isinstance(getattr(config, option), str):
            raise ValueError(
                f"{option} must be a list of paths, not one string. Received: {option}={getattr(config, option)!r}"
            )
    Scaling.of(config)  # LabError for a bad strategy, devices or jit
    if config.strategy == "multiworker":
        raise LabError(
            "stress scores on one machine: use strategy 'mirrored' for its GPUs (multiworker is for training)"
        )
    if not config.detector and not config.detectors:
        raise LabError("No detector run given: pass --detector RUN_DIR (a runs/NNNNN-detector-... directory)")
    if not config.gan and not config.gans:
        raise LabError("No GAN run given: pass --gan RUN_DIR (a runs/NNNNN-gan-... directory)")


@dataclasses.dataclass(frozen=True)
class DetectorUnderTest:
    """One detector of the run, with the real images it is compared on and the data set they came from."""

    label: str  # its row in tables: the run directory's name, numbered when two share it
    detector: Detector
    reals: RealImages
    index: DatasetIndex


@dataclasses.dataclass(frozen=True)
class GanRun:
    """A GAN run given to the stress test: its directory, its checkpointed epochs, and the @EPOCHS asked of it."""

    path: Path
    checkpoints: tuple[int, ...]
    asked: str | None = None


@dataclasses.dataclass(frozen=True)
class StressInputs:
    """What a stress run scores, checked before its directory exists.

    The first detector is scored epoch by epoch against the first GAN run; every detector
    meets every source in the generalisation matrix.
    """

    detectors: tuple[DetectorUnderTest, ...]
    gans: tuple[GanRun, ...]
    epochs: tuple[int, ...]  # the first GAN run's epochs scored one by one
    harden_epochs: tuple[int, ...]  # epochs whose fakes hardening trains on (empty without --harden)
    training_fakes: np.ndarray  # fakes of the first detector's training split, for the spectra
    sources: tuple[Source, ...]  # the matrix columns
    indexes: dict[Path, DatasetIndex]  # data folder -> its index, for "data" sources
    encoding: Encoding = Encoding("float")  # how GAN fakes are stored before they are scored
    seed_runs: tuple[DetectorUnderTest, ...] = ()  # the first detector retrained with other seeds, own reals each
    # The first GAN run's training images and as many it never trained on, for the memorisation check
    memorisation: MemorisationReals = dataclasses.field(
        default_factory=lambda: MemorisationReals(None, None, "not checked (--no-memorisation)")
    )

    @property
    def primary(self) -> DetectorUnderTest:
        return self.detectors[0]

    @property
    def detector(self) -> Detector:
        return self.primary.detector

    @property
    def real(self) -> np.ndarray:
        return self.primary.reals.pixels

    @property
    def leakage(self) -> LeakageCheck:
        return self.primary.reals.check

    @property
    def index(self) -> DatasetIndex:
        return self.primary.index

    @property
    def gan_dir(self) -> Path:
        return self.gans[0].path

    def resolved_config(self, config: StressConfig) -> StressConfig:
        """`config` with every path absolute and every epoch chosen, as config.json records it."""
        return dataclasses.replace(
            config,
            detector=os.fspath(Path(self.detector.run_dir).resolve()),
            detectors=tuple(os.fspath(Path(each.detector.run_dir).resolve()) for each in self.detectors[1:]),
            seed_runs=tuple(os.fspath(Path(each.detector.run_dir).resolve()) for each in self.seed_runs),
            gan=os.fspath(self.gan_dir.resolve()),
            gans=tuple(
                f"{os.fspath(source.path.resolve())}@{source.epoch}"
                for source in self.sources
                if source.kind == "gan" and source.path != self.gan_dir
            ),
            fakes=tuple(os.fspath(Path(folder).resolve()) for folder in config.fakes),
            epochs=self.epochs,
            harden_epochs=self.harden_epochs or None,
            export_fakes=os.fspath(Path(config.export_fakes).resolve()) if config.export_fakes else None,
            inception_weights=os.fspath(Path(config.inception_weights).resolve()) if config.inception_weights else None,
        )

    def context(self) -> dict:
        """What was resolved besides the options: threshold, feature layer, reals, data, streams, leakage, columns."""
        feature_layer = self.detector.feature_layer()  # None: an imported detector, its features out of reach
        return {
            "detector_threshold": self.detector.threshold,
            "feature_layer": None if feature_layer is None else feature_layer.name,
            "feature_width": None if feature_layer is None else int(np.prod(feature_layer.output.shape[1:])),
            "n_real_test": int(len(self.real)),
            "data": os.fspath(self.index.root),
            "layout": self.index.layout,
            "latent_streams": describe_streams(),
            "leakage": dataclasses.asdict(self.leakage),
            "matrix_sources": [source.label for source in self.sources],
            "fake_format": self.encoding.describe(),
            "fake_format_source": self.encoding.source,
            "memorisation": self.memorisation.note,
        }


def resolve_inputs(config: StressConfig) -> StressInputs:
    """The detectors, the GAN runs' chosen epochs, the reals and the fake sources, or a LabError saying what is wrong."""
    _validate(config)
    detectors = _load_detectors(config)
    if config.harden and detectors[0].imported:
        raise LabError(f"--harden fine-tunes a lab-trained detector; {detectors[0].run_dir} was imported")
    gans = _gan_runs(config)
    _check_sizes(gans[0].path, detectors[0])
    epochs = tuple(select_epochs(config.epochs, list(gans[0].checkpoints)))
    sources, indexes = _matrix_sources(config, gans, epochs, detectors)
    under_test = _with_reals(config, detectors, [gan.path for gan in gans])
    primary = under_test[0]
    seed_runs = _with_reals(config, _seed_runs(config, detectors[0]), [gan.path for gan in gans])
    training_fakes = class_images(
        primary.index, "train", FAKE, primary.detector.size, primary.detector.crop, config.n, seed=config.seed
    )
    return StressInputs(
        detectors=tuple(under_test),
        gans=tuple(gans),
        epochs=epochs,
        harden_epochs=_harden_epochs(config, epochs, gans[0]),
        training_fakes=training_fakes,
        sources=tuple(sources),
        indexes=indexes,
        seed_runs=tuple(seed_runs),
        encoding=resolve_encoding(config.fake_format, config.fake_jpeg_quality, primary.reals.paths, config.jit),
        **({"memorisation": memorisation_reals(gans[0].path, config.n, config.seed)} if config.memorisation else {}),
    )


def _load_detectors(config: StressConfig) -> list[Detector]:
    paths = list(dict.fromkeys([path for path in (config.detector, *config.detectors) if path]))
    with Scaling.of(config).scope():  # on the strategy's devices, to score there
        return [load_detector(require_run_dir(path, "detector")) for path in paths]


# What a seed run must share with the detector it repeats: everything that makes it the same recipe.
SEED_RUN_KEYS = ("model", "size", "crop", "head", "data", "epochs", "recipe", "learning_rate", "batch_size")


def _seed_runs(config: StressConfig, primary: Detector) -> list[Detector]:
    """The seed runs, each checked to be `primary`'s recipe with another seed."""
    paths = list(dict.fromkeys(config.seed_runs))
    with Scaling.of(config).scope():
        runs = [load_detector(require_run_dir(path, "detector")) for path in paths]
    seeds = {primary.config.get("seed", 0): primary.run_dir}
    for run in runs:
        if run.imported or primary.imported:
            raise LabError(
                f"--seed-runs compares lab-trained runs of one recipe; {run.run_dir} or the detector was imported"
            )
        differing = [key for key in SEED_RUN_KEYS if run.config.get(key) != primary.config.get(key)]
        if differing:
            key = differing[0]
            raise LabError(
                f"--seed-runs: {run.run_dir} differs from {primary.run_dir} in more than its seed ({key}: "
                f"{run.config.get(key)!r} against {primary.config.get(key)!r}); pass runs of one recipe"
            )
        seed = run.config.get("seed", 0)
        if seed in seeds:
            raise LabError(f"--seed-runs: {run.run_dir} and {seeds[seed]} were both trained with seed {seed}")
        seeds[seed] = run.run_dir
    return runs


def _gan_runs(config: StressConfig) -> list[GanRun]:
    """Every GAN run given, the epoch-by-epoch one first, each once."""
    runs, seen = [], set()
    for text in ([config.gan] if config.gan else []) + list(config.gans):
        path, asked = split_gan_option(text)
        gan_dir, checkpoints = require_gan_run(path)
        if gan_dir.resolve() not in seen:
            seen.add(gan_dir.resolve())
            runs.append(GanRun(gan_dir, tuple(checkpoints), asked))
    return runs


def _check_sizes(gan_dir: Path, detector: Detector) -> None:
    gan_config = read_json(gan_dir / "config.json")
    if gan_config.get("size") not in (None, detector.size):
        raise LabError(
            f"Image sizes differ: {gan_dir / 'config.json'} makes {gan_config['size']} px fakes but the detector "
            f"{detector.run_dir} takes {detector.size} px; train both at one size"
        )


def _harden_epochs(config: StressConfig, epochs: tuple[int, ...], gan: GanRun) -> tuple[int, ...]:
    """By default hardening trains on fakes of every scored epoch."""
    if not config.harden:
        return ()
    if config.harden_epochs is None:
        return epochs
    return tuple(select_epochs(config.harden_epochs, list(gan.checkpoints), "--harden-epochs"))


def _detector_index(detector: Detector) -> DatasetIndex:
    if detector.imported and not detector.config.get("data"):
        raise LabError(
            f"{detector.run_dir} was imported without --calibrate: it names no real/fake folder for the real "
            "comparison images; import it again with --calibrate DATA_DIR"
        )
    return run_index(detector.config, Path(detector.run_dir) / "config.json")


def _matrix_sources(config: StressConfig, gans: list[GanRun], epochs, detectors: list[Detector]):
    """(the matrix columns, data folder -> index): GAN epochs, each detector's own data set's fakes, fake folders."""
    sources, indexes = [], {}
    for position, gan in enumerate(gans):
        if gan.asked is None:
            picked = list(epochs[-1:]) if position == 0 else select_epochs("last", list(gan.checkpoints))
        else:
            picked = select_epochs(gan.asked, list(gan.checkpoints), f"--gans {gan.path}@")
        sources += gan_sources(gan.path, picked)
    for detector in detectors:
        index = _detector_index(detector)
        if Path(index.root) not in indexes and any(FAKE in split.labels for split in index.splits.values()):
            indexes[Path(index.root)] = index
            sources.append(data_source(index))
    sources += [folder_source(folder) for folder in config.fakes]
    return sources, indexes


def _with_reals(config: StressConfig, detectors: list[Detector], gan_dirs: list[Path]) -> list[DetectorUnderTest]:
    """Each detector with its real comparison images (none a GAN of the run trained on, unless allowed)."""
    under_test, taken = [], set()
    for detector in detectors:
        index = _detector_index(detector)
        reals = comparison_reals(
            index,
            detector.size,
            detector.crop,
            config.n,
            config.seed,
            gan_dirs,
            config.allow_overlap,
            f"{detector.run_dir}'s data",
        )
        under_test.append(DetectorUnderTest(_label(detector.run_dir, taken), detector, reals, index))
    return under_test


def _label(run_dir, taken: set[str]) -> str:
    label, number = Path(run_dir).name, 2
    while label in taken:
        label, number = f"{Path(run_dir).name} ({number})", number + 1
    taken.add(label)
    return label

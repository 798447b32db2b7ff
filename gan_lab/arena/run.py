"""An arena run: a GAN run's last checkpoint continued twice, once against a frozen detector and once plainly.

Both arms restore the same checkpoint (weights, optimizer state, random state) and train the
same steps on the same real images; the arena arm's generator also learns to make the detector
say "real" (`gan_lab.arena.model.ArenaGAN`, weight W), the plain arm's does not (W = 0, the DCGAN
step draw for draw). After every epoch each arm's generator makes the same fresh latents'
fakes (the stress test's scoring stream), stored as the reals are, and the detector scores them:
so evasion is told apart from the drift of a GAN that simply keeps training.

With rounds, each round after the first hardens the last round's detector on the evasive fakes of
every round so far (drawn from the hardening latent stream, so the scoring fakes stay unseen) and
evades it again from the same checkpoint. The plain arm does not depend on the detector: it is
trained once and its fakes are scored by each round's detector.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import keras
import numpy as np

from detector.base.errors import LabError
from detector.base.runs import create_run_dir, read_json, write_json
from detector.inference.predict import Detector, load_detector
from detector.training.lifecycle import is_int
from gan_lab.arena.arms import Epoch, arm_checker, forget_after, stored_arm
from gan_lab.arena.evasion import DEFAULT_TARGET, time_to_evasion
from gan_lab.arena.model import ArenaGAN
from gan_lab.gan.checkpoints import checkpoint_dir, list_checkpoints, require_gan_run
from gan_lab.gan.latents import SCORING_STREAM, seeded_latents
from gan_lab.metrics.intervals import rate_with_interval

ARMS = ("arena", "plain")
FAKES_BATCH = 64


@dataclasses.dataclass
class ArenaConfig:
    """Every option of an arena run; its config.json holds them resolved."""

    detector: str = ""  # the detector run to evade (the lab's, or an imported Keras or SavedModel one; it stays frozen)
    gan: str = ""  # the GAN run whose last checkpoint both arms continue
    data: str = ""  # instead of --gan: real images ("synth": SynthFaces) both arms train a new GAN on, from scratch
    gan_epoch: int = -1  # the GAN run's checkpoint both arms continue (-1: its last, recorded as which)
    weight: float = 1.0  # W: the detector's loss on the fakes (labelled real) beside the discriminator's
    epochs: int = 4  # arena epochs, each scored
    steps_per_epoch: int = 50  # generator and discriminator steps per epoch, at the GAN run's batch size
    n: int = 200  # fresh fakes per arm and epoch, scored by the detector
    target: float = DEFAULT_TARGET  # evaded when the detection rate falls below this
    rounds: int = 1  # after each round, harden the detector on its evasive fakes and evade it again
    harden_n: int = 256  # evasive fakes per round (own latent stream); a hardening fine-tunes on all rounds so far
    faces: bool = True  # the share of fakes in which MTCNN finds a face, per arm and epoch
    inception: bool = True  # KID against held-out reals in InceptionV3 features (weights: the Keras cache)
    seed: int = 0  # the fresh fakes' latents
    name: str = ""  # run directory suffix


def _validate(config: ArenaConfig) -> None:
    for option in ("epochs", "steps_per_epoch", "n", "rounds", "harden_n"):
        value = getattr(config, option)
        if not is_int(value) or value < 1:
            raise ValueError(f"{option} must be a positive integer. Received: {option}={value!r}")
    if not is_int(config.gan_epoch) or config.gan_epoch < -1 or (config.data and config.gan_epoch > 0):
        raise ValueError(
            "gan_epoch must be a checkpoint's epoch, or -1 for the last (with --data, 0 or -1). "
            f"Received: gan_epoch={config.gan_epoch!r}"
        )
    if not isinstance(config.weight, (int, float)) or isinstance(config.weight, bool) or config.weight <= 0:
        raise ValueError(f"weight must be a positive number (0 is the plain arm). Received: weight={config.weight!r}")
    if not 0 < config.target < 1:
        raise ValueError(f"target must be a rate between 0 and 1. Received: target={config.target!r}")
    if not config.detector or bool(config.gan) == bool(config.data):
        raise LabError(
            "The arena needs --detector RUN_DIR (the detector to evade) and one of --gan RUN_DIR (a GAN run to "
            "continue) or --data DIR (real images to train a new GAN on)"
        )


def arena_detector(path: str | os.PathLike) -> Detector:
    """The detector to evade: a lab run, or an imported Keras or SavedModel detector; a LabError in one line for
    an imported ONNX model, whose gradients are out of reach."""
    from detector.base.runs import require_run_dir

    detector = load_detector(require_run_dir(path, "detector"))
    if detector.model is None and getattr(detector.outside, "format", None) not in ("keras", "savedmodel"):
        source = getattr(detector.outside, "format", "imported")
        raise LabError(
            f"{detector.run_dir} is an imported detector ({source}): the arena trains the generator through the "
            "detector's gradients, which the lab reaches in Keras and SavedModel detectors; an ONNX model gives none"
        )
    return detector


class _OutsideLogit(keras.layers.Layer):
    """An imported detector as a layer: pixels in [0, 1] in, the logit of P(fake) out, through its adaptor."""

    def __init__(self, function, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.function = function

    def call(self, pixels, training=False):
        return self.function(pixels)


def _evasion_target(detector: Detector) -> tuple:
    """(what the generator's fakes go through in its loss, that output's head)."""
    if detector.model is not None:
        return detector.model, detector.head
    return _OutsideLogit(detector.outside.logit_graph(), name="imported_detector"), "logit"


def _gan_data(gan_dir: Path):
    """(the GAN run's config, a repeated, shuffled data set of its real training images)."""
    from detector.data.datasets import index_folder, make_dataset

    config = read_json(gan_dir / "config.json")
    data = config.get("data")
    if not data or not Path(data).is_dir():
        raise LabError(f"The GAN run's data folder {data!r} ({gan_dir / 'config.json'}) is not on this machine")
    split = index_folder(data, real_only=True, seed=int(config.get("seed", 0))).splits["train"]
    dataset = make_dataset(
        split,
        size=int(config["size"]),
        batch_size=int(config["batch_size"]),
        crop=config.get("crop", "resize"),
        shuffle=True,
        seed=int(config.get("seed", 0)),
        repeat=True,
        drop_remainder=True,
    )
    return config, dataset


class _AfterEachEpoch(keras.callbacks.Callback):
    """Calls `function(epoch)` (1-based) after each epoch of fit()."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def on_epoch_end(self, epoch, logs=None):
        self.function(epoch + 1)


def _train_arm(gan_dir: Path, detector: Detector, weight: float, config: ArenaConfig, sample, label: str, progress):
    """The GAN run's last checkpoint as an ArenaGAN (weight 0: the plain continuation), trained for all epochs:
    (`sample(epoch, generator)` of the checkpoint and after each epoch, the generator at the end)."""
    from gan_lab.gan.train import restore_dcgan

    def after(epoch: int) -> None:
        epochs.append(sample(epoch, gan.generator))
        if progress:
            print(f"[arena] {label}: epoch {epoch}/{config.epochs} trained and sampled", flush=True)

    keras.utils.set_random_seed(0)  # dropout and anything else outside the GAN's own seed generator
    target, head = _evasion_target(detector)
    epoch = None if config.gan_epoch == -1 else config.gan_epoch  # -1: runs recorded before the epoch was
    gan = restore_dcgan(gan_dir, epoch, model_class=ArenaGAN, detector=target, head=head, weight=weight)
    epochs = [sample(0, gan.generator)]  # the checkpoint itself, before any arena step
    # A new pipeline per arm, one fit for all epochs: both arms draw the same real batches, in order.
    _, dataset = _gan_data(gan_dir)
    gan.fit(
        dataset,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        verbose=0,
        shuffle=False,
        callbacks=[_AfterEachEpoch(after)],
    )
    return epochs, gan.generator


def _sampler(config: ArenaConfig, encoding, probe, real_features):
    """sample(epoch, generator) -> Epoch: the fresh latents' fakes, their faces and KID."""
    from gan_lab.gan.sample import generate
    from gan_lab.metrics.kid import kernel_inception_distance

    def sample(epoch: int, generator) -> Epoch:
        latents = seeded_latents(config.seed, epoch, config.n, int(generator.input_shape[-1]), SCORING_STREAM)
        pixels = np.asarray(encoding(generate(generator, latents, FAKES_BATCH)), dtype=np.float32)
        quality = {}
        features = probe.inception_features(pixels) if real_features is not None else None
        if features is not None:
            value, spread = kernel_inception_distance(real_features, features, seed=[config.seed, epoch])
            quality = {"kid_inception": value, "kid_inception_std": spread}
        return Epoch(epoch, np.rint(pixels * 255).astype(np.uint8), probe.faces_found(pixels), quality)

    return sample


def _score(detector: Detector, pixels: np.ndarray) -> tuple[dict, np.ndarray]:
    """The detector's figures on fakes (float32 [0, 1]): (row, their P(fake))."""
    from detector.inference.metrics import fpr_key

    p_fake = detector.score(pixels)
    row = {"mean_p_fake": float(np.mean(p_fake)), **rate_with_interval("detection_rate", p_fake >= detector.threshold)}
    threshold = detector.operating_thresholds.get(fpr_key(0.01))
    if threshold is not None:
        row.update(rate_with_interval("tpr_at_fpr_1", p_fake >= threshold))
    return row, p_fake


def _rows(detector: Detector, epochs: list[Epoch], arm: str, weight: float, round_: int, kimg_per_epoch: float):
    """One arm's rows in one round, its epochs scored by that round's detector; and the last epoch's P(fake)."""
    rows, p_fake = [], None
    for sample in epochs:
        row, p_fake = _score(detector, sample.fakes.astype(np.float32) / 255.0)
        if sample.faces is not None:
            row.update(rate_with_interval("faces_found", sample.faces))
        rows.append(
            {
                "round": round_,
                "arm": arm,
                "epoch": sample.epoch,
                "kimg": sample.epoch * kimg_per_epoch,
                "weight": weight,
                **row,
                **sample.quality,
            }
        )
    return rows, p_fake


def _score_round(detector: Detector, arena: list[Epoch], plain: list[Epoch], round_: int, config, kimg, progress):
    """Both arms' rows scored by the round's detector, the round's record, and (fakes, P(fake), faces) of its
    arena arm's last epoch."""
    arena_rows, p_fake = _rows(detector, arena, "arena", config.weight, round_, kimg)
    rows = arena_rows + _rows(detector, plain, "plain", 0.0, round_, kimg)[0]
    record = {"round": round_, "detector": os.fspath(Path(detector.run_dir).resolve())}
    record.update(_reals_called_fake(detector, config.n, config.seed))
    if progress:
        for row in rows:
            print(f"[arena] round {round_} {row['arm']} epoch {row['epoch']}: {row['detection_rate']:.1%} caught")
    return rows, record, (arena[-1].fakes.astype(np.float32) / 255.0, p_fake, arena[-1].faces)


def _real_features(gan_dir: Path, config: ArenaConfig, probe) -> tuple[np.ndarray | None, str]:
    """InceptionV3 features of as many held-out reals (never trained on by the GAN) as fakes; or None and why."""
    from gan_lab.stress.leakage import memorisation_reals

    if probe.inception is None:
        return None, probe.notes["inception"]
    reals = memorisation_reals(gan_dir, config.n, config.seed)
    if reals.held_out is None:
        return None, "no KID: " + reals.note.removeprefix("not checked: ")
    return probe.inception_features(reals.held_out), (
        f"KID against {len(reals.held_out)} real images of the GAN's data it never trained on"
    )


def _reals_called_fake(detector: Detector, n: int, seed: int) -> dict:
    """The share of the detector's own test reals (up to n) it calls fake, with its interval; {} without them."""
    from detector import REAL
    from detector.data.datasets import class_images, run_index

    try:
        index = run_index(detector.config, Path(detector.run_dir) / "config.json")
        reals = class_images(index, "test", REAL, detector.size, detector.crop, n, seed=seed)
    except (LabError, OSError):
        return {}
    if not len(reals):
        return {}
    return rate_with_interval("reals_called_fake", detector.score(reals) >= detector.threshold)


def _hardening_fakes(generator, round_: int, config: ArenaConfig, encoding) -> np.ndarray:
    """`harden_n` fakes of the round's evader from the hardening latent stream (never scored), uint8."""
    from gan_lab.gan.latents import HARDENING_STREAM
    from gan_lab.gan.sample import generate

    latents = seeded_latents(config.seed, round_, config.harden_n, int(generator.input_shape[-1]), HARDENING_STREAM)
    return np.rint(np.asarray(encoding(generate(generator, latents, FAKES_BATCH))) * 255).astype(np.uint8)


def _harden(detector: Detector, fakes: np.ndarray, run_dir: Path, round_: int, config: ArenaConfig, progress):
    """The round's detector fine-tuned on the evaders' fakes of rounds 1 to `round_`, as detectors/round-<next>/
    (kept when complete and made from those rounds' fakes; else made anew, and the later rounds' work goes)."""
    import shutil

    from gan_lab.stress.harden import harden_with_fakes

    out = run_dir / "detectors" / f"round-{round_ + 1}"
    rounds = list(range(1, round_ + 1))
    if out.is_dir() and _hardened_on(out) != rounds:
        if progress:
            print(f"[arena] {out} was hardened on other fakes than rounds {rounds}'s: made anew", flush=True)
        forget_after(run_dir, round_)
    if not out.is_dir():
        if progress:
            which = f"rounds 1-{round_}" if round_ > 1 else "round 1"
            print(f"[arena] round {round_}: hardening the detector on {len(fakes)} fakes of {which}", flush=True)
        partial = out.with_name(f".{out.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        provenance = {
            "arena_run": os.fspath(run_dir.resolve()),
            "arena_round": round_,
            "arena_rounds_of_fakes": rounds,
            "latent_stream": "hardening",
        }
        pixels = fakes.astype(np.float32) / 255.0
        harden_with_fakes(detector.run_dir, pixels, partial, provenance, seed=config.seed, progress=progress)
        os.replace(partial, out)  # whole or not at all
    return load_detector(out)


def _hardened_on(detector_dir: Path) -> list[int] | None:
    """The rounds whose evasive fakes a stored hardened detector trained on (None: unknown or unreadable).

    A run from before the rounds were recorded hardened on its own round's fakes only: the same for round 1."""
    try:
        hardening = read_json(detector_dir / "config.json")["hardening"]
        rounds = hardening.get("arena_rounds_of_fakes", [1] if hardening.get("arena_round") == 1 else None)
    except (LabError, KeyError, TypeError, AttributeError, ValueError):
        return None
    return rounds if isinstance(rounds, list) else None


def _new_gan_run(config: ArenaConfig, detector: Detector, runs_dir, progress: bool) -> Path:
    """A GAN run of the lab's default recipe on --data at the detector's size, at epoch 0 (nothing trained yet)."""
    from gan_lab.gan.train import GanConfig, start_gan_run

    name = f"arena-{config.name or Path(detector.run_dir).name}"
    gan = GanConfig(
        data=config.data,
        size=detector.size,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        seed=config.seed,
        name=name,
    )
    return start_gan_run(gan, runs_dir, progress)


def _start(config: ArenaConfig, runs_dir, progress: bool) -> tuple[Detector, Path, dict, Path, ArenaConfig]:
    """Every check before a run directory exists, then the run directory: (detector, GAN run, its config, run, config).

    With --data, the GAN run is a new one (the lab's default recipe) holding only its initial epoch 0.
    """
    from gan_lab.stress.harden import hardenable

    _validate(config)
    detector = arena_detector(config.detector)
    if config.rounds > 1:
        hardenable(detector.run_dir)  # each round after the first fine-tunes it
    if config.data:
        gan_dir = _new_gan_run(config, detector, runs_dir, progress)
    else:
        gan_dir, _ = require_gan_run(config.gan)
    gan_config, _ = _gan_data(gan_dir)
    if int(gan_config["size"]) != detector.size:
        raise LabError(
            f"Image sizes differ: {gan_dir} makes {gan_config['size']} px fakes, {detector.run_dir} takes {detector.size}"
        )
    epoch = max(list_checkpoints(gan_dir)) if config.gan_epoch == -1 else config.gan_epoch
    checkpoint_dir(gan_dir, epoch)  # a LabError naming the epochs there are
    run_dir = create_run_dir("arena", config.name or Path(detector.run_dir).name, runs_dir)
    resolved = dataclasses.replace(
        config,
        detector=os.fspath(Path(detector.run_dir).resolve()),
        gan=os.fspath(gan_dir.resolve()),
        gan_epoch=epoch,  # fixed, so every arm and a resumed run start from the same checkpoint
    )
    write_json(run_dir / "config.json", dataclasses.asdict(resolved))  # resumable from here on
    return detector, gan_dir, gan_config, run_dir, resolved


def run_arena(config: ArenaConfig, runs_dir: str | os.PathLike = "runs", progress: bool = True, resume=None) -> Path:
    """Every round's arms, epoch by epoch, then results.csv/json, the plots, the evasive grid and report.md.

    resume: an interrupted arena run: the arms and hardened detectors it finished are kept, the rest trained.
    """
    from detector.training import lifecycle

    with lifecycle.run_claims():
        if resume is None:
            detector, gan_dir, gan_config, run_dir, config = _start(config, runs_dir, progress)
        else:
            detector, gan_dir, gan_config, run_dir, config = _reopen(resume, config, progress)
        lifecycle.claim_run(run_dir)
        return _run(detector, gan_dir, gan_config, run_dir, config, progress)


def _run(detector: Detector, gan_dir: Path, gan_config: dict, run_dir: Path, config: ArenaConfig, progress) -> Path:
    from gan_lab.metrics.quality import open_probe
    from gan_lab.stress.formats import resolve_encoding

    encoding = resolve_encoding("png", None, [], False)  # 8 bits, as images on disk are
    probe = open_probe(config.inception, config.faces, config.n, config.n)
    real_features, kid_note = _real_features(gan_dir, config, probe)
    notes = {"faces": probe.notes.get("faces"), "kid": kid_note}
    write_json(run_dir / "config.json", {**dataclasses.asdict(config), "resolved": notes})
    if progress:
        print("\n".join(f"[arena] {note}" for note in notes.values()), flush=True)
    sample = _sampler(config, encoding, probe, real_features)
    kimg_per_epoch = config.steps_per_epoch * int(gan_config["batch_size"]) / 1000.0

    def train(target: Detector, weight: float, round_: int | None):
        label = "plain" if round_ is None else f"round {round_}"
        epochs, generator = _train_arm(gan_dir, target, weight, config, sample, label, progress)
        last_round = round_ is None or round_ == config.rounds
        return epochs, None if last_round else _hardening_fakes(generator, round_, config, encoding)

    check = arm_checker(config, detector.size, probe.faces is not None, real_features is not None)
    plain, _ = stored_arm(run_dir, None, functools.partial(train, detector, 0.0, None), check, progress)
    rows, rounds, lasts, evasive = [], [], [], []
    for round_ in range(1, config.rounds + 1):
        evade = functools.partial(train, detector, config.weight, round_)  # this round's detector
        arena, hardening = stored_arm(run_dir, round_, evade, check, progress)
        round_rows, record, last = _score_round(detector, arena, plain, round_, config, kimg_per_epoch, progress)
        if round_ < config.rounds:
            evasive.append(hardening)  # every round's evaders so far: a hardened detector must not forget one
            detector = _harden(detector, np.concatenate(evasive), run_dir, round_, config, progress)
            record["hardened"] = _score(detector, last[0])[0]  # the round's evasive fakes, never trained on
        rows, rounds, lasts = rows + round_rows, rounds + [record], lasts + [last]
    return _write_outputs(run_dir, config, rows, rounds, lasts)


def _reopen(resume, given: ArenaConfig | None, progress: bool):
    """An interrupted arena run as `_start` gives a new one; LabError for options that contradict it."""
    from detector.training import lifecycle

    run_dir, recorded, record = lifecycle.recorded_config(resume, "arena", ArenaConfig)
    config = lifecycle.resume_config(run_dir, recorded, record, given, changeable=())
    detector = arena_detector(config.detector)
    gan_dir, _ = require_gan_run(config.gan)
    gan_config, _ = _gan_data(gan_dir)
    if config.gan_epoch != -1:
        checkpoint_dir(gan_dir, config.gan_epoch)  # the checkpoint the run started from is still there
    if progress:
        print(f"[arena] resuming {run_dir}", flush=True)
    return detector, gan_dir, gan_config, run_dir, config


def _write_outputs(run_dir: Path, config: ArenaConfig, rows: list[dict], rounds: list[dict], lasts: list) -> Path:
    from gan_lab.arena.report import write_report

    for record in rounds:
        for arm in ARMS:
            points = [row for row in rows if row["arm"] == arm and row["round"] == record["round"]]
            record[arm] = time_to_evasion(points, config.target)
    evasion = {"arena": rounds[0]["arena"], "plain": rounds[0]["plain"], "rounds": rounds}
    write_report(run_dir, config, rows, evasion, lasts)
    return run_dir

"""An arena run: a GAN run's last checkpoint continued twice, once against a frozen detector and once plainly.

Both arms restore the same checkpoint (weights, optimizer state, random state) and train the
same steps on the same real images; the arena arm's generator also learns to make the detector
say "real" (`gan_lab.arena.model.ArenaGAN`, weight W), the plain arm's does not (W = 0, the DCGAN
step draw for draw). After every epoch each arm's generator makes the same fresh latents'
fakes (the stress test's scoring stream), stored as the reals are, and the detector scores them:
so evasion is told apart from the drift of a GAN that simply keeps training.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np

from detector.base.errors import LabError
from detector.base.runs import create_run_dir, read_json, write_json
from detector.inference.predict import Detector, load_detector
from detector.training.lifecycle import is_int
from gan_lab.arena.evasion import DEFAULT_TARGET, time_to_evasion
from gan_lab.arena.model import ArenaGAN
from gan_lab.gan.checkpoints import require_gan_run
from gan_lab.gan.latents import SCORING_STREAM, seeded_latents
from gan_lab.metrics.intervals import rate_with_interval

ARMS = ("arena", "plain")


@dataclasses.dataclass
class ArenaConfig:
    """Every option of an arena run; its config.json holds them resolved."""

    detector: str = ""  # the detector run to evade (lab-trained; it stays frozen)
    gan: str = ""  # the GAN run whose last checkpoint both arms continue
    weight: float = 1.0  # W: the detector's loss on the fakes (labelled real) beside the discriminator's
    epochs: int = 4  # arena epochs, each scored
    steps_per_epoch: int = 50  # generator and discriminator steps per epoch, at the GAN run's batch size
    n: int = 200  # fresh fakes per arm and epoch, scored by the detector
    target: float = DEFAULT_TARGET  # evaded when the detection rate falls below this
    faces: bool = True  # the share of fakes in which MTCNN finds a face, per arm and epoch
    seed: int = 0  # the fresh fakes' latents
    name: str = ""  # run directory suffix


def _validate(config: ArenaConfig) -> None:
    for option in ("epochs", "steps_per_epoch", "n"):
        value = getattr(config, option)
        if not is_int(value) or value < 1:
            raise ValueError(f"{option} must be a positive integer. Received: {option}={value!r}")
    if not isinstance(config.weight, (int, float)) or isinstance(config.weight, bool) or config.weight <= 0:
        raise ValueError(f"weight must be a positive number (0 is the plain arm). Received: weight={config.weight!r}")
    if not 0 < config.target < 1:
        raise ValueError(f"target must be a rate between 0 and 1. Received: target={config.target!r}")
    if not config.detector or not config.gan:
        raise LabError(
            "The arena needs --detector RUN_DIR (the detector to evade) and --gan RUN_DIR (the GAN to train)"
        )


def arena_detector(path: str | os.PathLike) -> Detector:
    """The detector to evade, or a LabError saying in one line why its gradients are out of reach."""
    from detector.base.runs import require_run_dir

    detector = load_detector(require_run_dir(path, "detector"))
    if detector.model is None:
        source = getattr(detector.outside, "format", "imported")
        raise LabError(
            f"{detector.run_dir} is an imported detector ({source}): the arena trains the generator through the "
            "detector's gradients, which the lab reaches only in its own Keras detectors; an ONNX model gives none"
        )
    return detector


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


def _arm(gan_dir: Path, detector: Detector, weight: float):
    """The GAN run's last checkpoint as an ArenaGAN (weight 0: the plain continuation)."""
    import keras

    from gan_lab.gan.train import restore_dcgan

    keras.utils.set_random_seed(0)  # dropout and anything else outside the GAN's own seed generator
    return restore_dcgan(gan_dir, model_class=ArenaGAN, detector=detector.model, head=detector.head, weight=weight)


class _AfterEachEpoch(keras.callbacks.Callback):
    """Calls `function(epoch)` (1-based) after each epoch of fit()."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def on_epoch_end(self, epoch, logs=None):
        self.function(epoch + 1)


def _score(detector: Detector, generator, latents, encoding, faces) -> tuple[dict, np.ndarray, np.ndarray]:
    """One arm's figures on the fresh latents' fakes: (row, the fakes as scored, their P(fake))."""
    from detector.inference.metrics import fpr_key
    from gan_lab.gan.sample import generate

    fakes = np.asarray(encoding(generate(generator, latents, 64)), dtype=np.float32)
    p_fake = detector.score(fakes)
    row = {"mean_p_fake": float(np.mean(p_fake)), **rate_with_interval("detection_rate", p_fake >= detector.threshold)}
    threshold = detector.operating_thresholds.get(fpr_key(0.01))
    if threshold is not None:
        row.update(rate_with_interval("tpr_at_fpr_1", p_fake >= threshold))
    if faces is not None:
        found = faces(fakes)
        if found is not None:
            row.update(rate_with_interval("faces_found", found))
            row["_faces"] = found
    return row, fakes, p_fake


def run_arena(config: ArenaConfig, runs_dir: str | os.PathLike = "runs", progress: bool = True) -> Path:
    """Both arms, epoch by epoch, then results.csv/json, the plot, the evasive grid and report.md."""
    from gan_lab.metrics.quality import open_probe
    from gan_lab.stress.formats import resolve_encoding

    _validate(config)
    detector = arena_detector(config.detector)
    gan_dir, _ = require_gan_run(config.gan)
    gan_config, _ = _gan_data(gan_dir)
    if int(gan_config["size"]) != detector.size:
        raise LabError(
            f"Image sizes differ: {gan_dir} makes {gan_config['size']} px fakes, {detector.run_dir} takes {detector.size}"
        )
    encoding = resolve_encoding("png", None, [], False)  # 8 bits, as images on disk are
    probe = open_probe(False, config.faces, 0, config.n)
    run_dir = create_run_dir("arena", config.name or Path(detector.run_dir).name, runs_dir)
    resolved = dataclasses.replace(
        config, detector=os.fspath(Path(detector.run_dir).resolve()), gan=os.fspath(gan_dir.resolve())
    )
    write_json(
        run_dir / "config.json", {**dataclasses.asdict(resolved), "resolved": {"faces": probe.notes.get("faces")}}
    )
    kimg_per_epoch = config.steps_per_epoch * int(gan_config["batch_size"]) / 1000.0
    rows, last = [], {}
    faces = probe.faces_found if config.faces else None
    for arm, weight in zip(ARMS, (config.weight, 0.0)):
        gan = _arm(gan_dir, detector, weight)

        def score(epoch: int, arm=arm, weight=weight, gan=gan) -> None:
            latents = seeded_latents(config.seed, epoch, config.n, gan.latent_dim, SCORING_STREAM)
            row, fakes, p_fake = _score(detector, gan.generator, latents, encoding, faces)
            found = row.pop("_faces", None)
            rows.append({"arm": arm, "epoch": epoch, "kimg": epoch * kimg_per_epoch, "weight": weight, **row})
            last[arm] = (fakes, p_fake, found)
            if progress:
                print(f"[arena] {arm} epoch {epoch}: {row['detection_rate']:.1%} caught", flush=True)

        score(0)  # the checkpoint itself, before any arena step
        # A new pipeline per arm, one fit for all epochs: both arms draw the same real batches, in order.
        _, dataset = _gan_data(gan_dir)
        gan.fit(
            dataset,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            verbose=0,
            shuffle=False,
            callbacks=[_AfterEachEpoch(score)],
        )
    return _write_outputs(run_dir, resolved, rows, last)


def _write_outputs(run_dir: Path, config: ArenaConfig, rows: list[dict], last: dict) -> Path:
    from gan_lab.arena.report import write_report

    evasion = {arm: time_to_evasion([row for row in rows if row["arm"] == arm], config.target) for arm in ARMS}
    write_report(run_dir, config, rows, evasion, last)
    return run_dir

"""An arena run's stored arms: each trained arm's sampled epochs, kept so a resumed run trains only what is missing.

arms/plain.npz and arms/round-R.npz hold one arm's fakes per epoch (uint8, as the detector scores them), what
was measured on them without the detector (faces found, KID), and, for a round that hands on to a hardening,
its own evader's hardening fakes (each hardening trains on those of every round so far). Each is written whole;
on resume each is checked against the run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.base.errors import LabError

if TYPE_CHECKING:
    from gan_lab.arena.run import ArenaConfig

ARMS_FOLDER = "arms"
QUALITY_KEYS = ("kid_inception", "kid_inception_std")


@dataclasses.dataclass
class Epoch:
    """One arm's fakes after one epoch, with what does not depend on the detector."""

    epoch: int
    fakes: np.ndarray  # uint8, as the detector scores them
    faces: np.ndarray | None  # per fake: MTCNN found a face
    quality: dict  # KID against held-out reals, when measured


def _save_arm(path: Path, epochs: list[Epoch], hardening: np.ndarray | None) -> None:
    """An arm's sampled epochs (and its hardening fakes) as one .npz, written whole."""
    import io

    from detector.base.runs import atomic_write_bytes

    arrays = {"epoch": np.array([sample.epoch for sample in epochs]), "fakes": np.stack([e.fakes for e in epochs])}
    if epochs[0].faces is not None:
        arrays["faces"] = np.stack([sample.faces for sample in epochs])
    for key in epochs[0].quality:
        arrays[key] = np.array([sample.quality[key] for sample in epochs])
    if hardening is not None:
        arrays["hardening"] = hardening
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _load_arm(path: Path) -> tuple[list[Epoch], np.ndarray | None]:
    import zipfile

    try:
        with np.load(path) as saved:
            arrays = {key: saved[key] for key in saved.files}
        epochs = [
            Epoch(
                int(epoch),
                arrays["fakes"][i],
                arrays["faces"][i] if "faces" in arrays else None,
                {key: float(arrays[key][i]) for key in QUALITY_KEYS if key in arrays},
            )
            for i, epoch in enumerate(arrays["epoch"])
        ]
    except (OSError, ValueError, KeyError, EOFError, TypeError, IndexError, zipfile.BadZipFile) as error:
        raise LabError(f"{path} is unreadable ({error}): delete it and resume again to train that arm anew") from None
    return epochs, arrays.get("hardening")


def arm_checker(config: ArenaConfig, size: int, faces: bool, kid: bool):
    """check(path, epochs, hardening, round_): LabError when a stored arm is not what this run would have made."""

    def check(path: Path, epochs: list[Epoch], hardening, round_: int | None) -> None:
        problems = []
        if [sample.epoch for sample in epochs] != list(range(config.epochs + 1)):
            problems.append(f"epochs {[sample.epoch for sample in epochs]}, not 0 to {config.epochs}")
        if not all(_is_uint8(sample.fakes, (config.n, size, size, 3)) for sample in epochs):
            problems.append(f"fakes not of shape ({config.n}, {size}, {size}, 3) uint8")
        stored = {(sample.faces is not None, bool(sample.quality)) for sample in epochs}
        if stored != {(faces, kid)}:
            here = f"faces {'' if faces else 'not '}measured, KID {'' if kid else 'not '}measured"
            problems.append(f"measures other than this machine's ({here})")
        wanted = (config.harden_n, size, size, 3)
        if round_ is not None and round_ < config.rounds and not _is_uint8(hardening, wanted):
            problems.append(f"not the {config.harden_n} hardening fakes round {round_} hands on ({wanted} uint8)")
        if problems:
            raise LabError(
                f"{path} holds {'; '.join(problems)}: resume on the machine that made it, or delete it and the later "
                "rounds' arms and detectors to train them anew"
            )

    return check


def _is_uint8(array, shape: tuple) -> bool:
    return isinstance(array, np.ndarray) and array.shape == shape and array.dtype == np.uint8


def forget_after(run_dir: Path, round_: int) -> None:
    """Remove the stored arms and hardened detectors of rounds after `round_`: they were made from an earlier try."""
    import shutil

    for path in (run_dir / ARMS_FOLDER).glob("round-*.npz"):
        if path.stem.split("-")[-1].isdigit() and int(path.stem.split("-")[-1]) > round_:
            path.unlink()
    for path in (run_dir / "detectors").glob("round-*"):
        if path.name.split("-")[-1].isdigit() and int(path.name.split("-")[-1]) > round_:
            shutil.rmtree(path)


def stored_arm(run_dir: Path, round_: int | None, train, check, progress: bool):
    """An arm's epochs (and hardening fakes) from arms/<plain|round-R>.npz when an earlier try of the run trained
    it, else `train()`'s, stored there first: a resumed run trains only what is missing. A round trained anew makes
    the later rounds' stored work stale, so it goes."""
    name = "plain" if round_ is None else f"round-{round_}"
    path = run_dir / ARMS_FOLDER / f"{name}.npz"
    if path.is_file():
        if progress:
            print(f"[arena] {name}: kept from before ({path})", flush=True)
        epochs, hardening = _load_arm(path)
        check(path, epochs, hardening, round_)
        return epochs, hardening
    if round_ is not None:
        forget_after(run_dir, round_)
    epochs, hardening = train()
    _save_arm(path, epochs, hardening)
    return epochs, hardening

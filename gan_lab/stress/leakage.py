"""Real comparison images a GAN never trained on: the detector's real test images, drawn with the seed, checked.

A fake is compared with real images; if the GAN trained on some of them, the comparison
measures memorisation as much as detection. Each candidate is checked against every GAN
run's training images (`gan_lab.gan.manifest`), by path and by content hash, and left out when
the GAN trained on it, unless the caller allows the overlap (and the report says so loudly).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from detector import REAL
from detector.base.errors import LabError
from detector.base.runs import read_json
from gan_lab.gan.manifest import TrainingImages, content_hash, training_images


@dataclasses.dataclass
class LeakageCheck:
    """What the check found, for the report and config.json."""

    gans: dict[str, str]  # GAN run -> how its training images are known ("manifest", "recomputed", "unknown")
    notes: dict[str, str]  # GAN run -> one sentence on that
    candidates: int  # real test images looked at
    overlapping: int  # of those, images some GAN trained on
    allowed: bool  # overlapping images were kept (--allow-overlap)

    @property
    def complete(self) -> bool:
        """Whether every GAN run's training images were known."""
        return all(source != "unknown" for source in self.gans.values())


@dataclasses.dataclass
class RealImages:
    """The real comparison images of one detector: pixels, their files, and the leakage check."""

    pixels: np.ndarray
    paths: list[str]
    check: LeakageCheck


def _seeded_paths(index, split: str, label: int, seed: int) -> list[str]:
    """One class's paths of one split in the seeded random order `detector.data.datasets.class_images` draws them in."""
    if split not in index.splits:
        return []
    chosen = index.splits[split]
    paths = [path for path, value in zip(chosen.paths, np.asarray(chosen.labels)) if int(value) == label]
    return [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]


def _overlaps(path: str, trained: list[TrainingImages]) -> bool:
    if not any(images.paths or images.hashes for images in trained):
        return False
    if any(images.contains(path) for images in trained):
        return True
    try:
        digest = content_hash(path)
    except OSError:
        return False  # unreadable: loading it will warn and skip it
    return any(digest in images.hashes for images in trained)


def comparison_reals(
    index,
    size: int,
    crop: str,
    n: int,
    seed: int,
    gan_dirs: list[Path],
    allow_overlap: bool = False,
    source: str = "the detector's data",
) -> RealImages:
    """Up to n real test images, drawn at random with `seed`, none of which a GAN of `gan_dirs` trained on.

    With allow_overlap=True those images are kept and counted. LabError when fewer than two remain.
    """
    from detector.data.datasets import load_images

    trained = {os.fspath(gan_dir): training_images(gan_dir) for gan_dir in gan_dirs}
    kept, overlapping, looked_at = [], 0, 0
    for path in _seeded_paths(index, "test", REAL, seed):
        if len(kept) >= n:
            break
        looked_at += 1
        if _overlaps(path, list(trained.values())):
            overlapping += 1
            if not allow_overlap:
                continue
        kept.append(path)
    pixels, _, loaded = load_images(kept, size, crop=crop, limit=n)
    check = LeakageCheck(
        gans={name: images.source for name, images in trained.items()},
        notes={name: images.note for name, images in trained.items()},
        candidates=looked_at,
        overlapping=overlapping,
        allowed=allow_overlap,
    )
    if len(pixels) < 2:
        reason = f", {overlapping} left out because a GAN trained on them" if overlapping else ""
        hint = "; pass --allow-overlap to compare with them anyway" if overlapping and not allow_overlap else ""
        raise LabError(
            f"{source} ({index.root}) has {len(pixels)} usable real test images{reason}; "
            f"the stress test needs at least 2{hint}"
        )
    return RealImages(np.asarray(pixels, dtype=np.float32), loaded, check)


def describe(check: LeakageCheck) -> str:
    """One or two sentences for the report: what was checked and what was found."""
    known = "; ".join(f"`{Path(name).name}`: {note}" for name, note in check.notes.items())
    if check.overlapping and check.allowed:
        found = (
            f"**WARNING: {check.overlapping} of the {check.candidates} real test images compared with the fakes were "
            "in a GAN's training set and were kept (--allow-overlap): figures against them mix detection with "
            "memorisation.**"
        )
    elif check.overlapping:
        found = (
            f"{check.overlapping} of the {check.candidates} real test images drawn were in a GAN's training set and "
            "were left out; the rest were not."
        )
    elif check.complete:
        found = f"None of the {check.candidates} real test images drawn is in a GAN's training set."
    else:
        found = (
            f"No overlap found among the {check.candidates} real test images drawn, but not every GAN could be checked."
        )
    return f"Leakage check (paths and SHA-256 of the files): {found} GAN training images: {known}."


@dataclasses.dataclass
class MemorisationReals:
    """For the memorisation check: as many of a GAN's training images as of its data's held-out real images."""

    training: np.ndarray | None  # None: the check cannot be made (note says why)
    held_out: np.ndarray | None
    note: str


def _drawn(paths, n: int, seed: int) -> list[str]:
    paths = sorted(paths)
    return [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))[:n]]


def memorisation_reals(gan_dir: Path, n: int, seed: int) -> MemorisationReals:
    """Up to n training images of a GAN run and as many real images of its data folder it never trained on.

    Both are loaded as the GAN loads its data (its size and crop), drawn with `seed`; when the data
    folder or the training list is out of reach, the arrays are None and the note says why.
    """
    from detector.data.datasets import index_folder, load_images

    config = read_json(Path(gan_dir) / "config.json")
    trained = training_images(gan_dir)
    data = config.get("data")
    if trained.source == "unknown" or not data or not Path(data).is_dir():
        return MemorisationReals(None, None, f"not checked: the GAN's data folder {data!r} is not on this machine")
    index = index_folder(data, real_only=True, seed=int(config.get("seed", 0)))
    held_out = [
        path
        for name, split in index.splits.items()
        if name != "train"
        for path in split.paths
        if not trained.contains(path)
    ]
    training = [path for path in trained.paths if Path(path).is_file()]
    count = min(n, len(training), len(held_out))
    if count < 2:
        return MemorisationReals(
            None,
            None,
            f"not checked: {data} has {len(held_out)} real images outside the GAN's training set "
            f"and {len(training)} of its training images are on this machine (2 of each needed)",
        )
    size, crop = int(config["size"]), config.get("crop", "resize")
    loaded_training, _, _ = load_images(_drawn(training, count, seed), size, crop=crop)
    loaded_held_out, _, _ = load_images(_drawn(held_out, count, seed + 1), size, crop=crop)
    count = min(len(loaded_training), len(loaded_held_out))  # unreadable files were skipped with a warning
    if count < 2:
        return MemorisationReals(None, None, f"not checked: fewer than 2 readable images of each kind in {data}")
    return MemorisationReals(
        np.asarray(loaded_training[:count], dtype=np.float32),
        np.asarray(loaded_held_out[:count], dtype=np.float32),
        f"{count} of the GAN's training images against {count} real images of {data} it never trained on",
    )

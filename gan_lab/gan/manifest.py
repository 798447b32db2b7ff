"""Which real images a GAN run trained on: `training_images.csv` in the run directory (path and content hash).

The stress test reads it to keep the GAN's training images out of the real images it
compares fakes with. A run from before the file existed has its list recomputed from its
config.json (data folder and seed, split as training split it); when the data folder is not
on this machine, the check cannot be made, and `training_images` says so.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
from pathlib import Path

from detector.base.runs import atomic_write_text, read_json

MANIFEST_FILE = "training_images.csv"


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, in hex: the same image under another name or folder has the same hash."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_training_manifest(run_dir: str | os.PathLike, paths) -> Path:
    """Write run_dir/training_images.csv: one row per training image, its absolute path and SHA-256."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "sha256"])
    for path in paths:
        # An unreadable file still names its path; training skips it with a warning of its own.
        try:
            digest = content_hash(path)
        except OSError:
            digest = ""
        writer.writerow([os.fspath(Path(path).resolve()), digest])
    return atomic_write_text(Path(run_dir) / MANIFEST_FILE, buffer.getvalue())


@dataclasses.dataclass
class TrainingImages:
    """The real images a GAN run trained on, and how that is known."""

    paths: frozenset[str]
    hashes: frozenset[str]
    source: str  # "manifest", "recomputed" or "unknown"
    note: str  # one sentence for the report

    def contains(self, path: str | os.PathLike, digest: str | None = None) -> bool:
        """Whether an image (by resolved path, or by content hash when given) is among them."""
        return os.fspath(Path(path).resolve()) in self.paths or (digest is not None and digest in self.hashes)


def read_training_manifest(run_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """The (path, sha256) rows of run_dir/training_images.csv."""
    with open(Path(run_dir) / MANIFEST_FILE, newline="", encoding="utf-8") as handle:
        return [(row["path"], row["sha256"]) for row in csv.DictReader(handle)]


def _recompute(run_dir: Path) -> TrainingImages | None:
    from detector.base.errors import LabError
    from detector.data.datasets import index_folder

    config = read_json(run_dir / "config.json")
    data = config.get("data")
    if not data or not Path(data).is_dir():
        return None
    try:
        index = index_folder(data, real_only=True, seed=int(config.get("seed", 0)))
    except LabError:
        return None
    paths = index.splits["train"].paths
    return TrainingImages(
        paths=frozenset(os.fspath(Path(path).resolve()) for path in paths),
        hashes=frozenset(content_hash(path) for path in paths),
        source="recomputed",
        note=(
            f"the run has no {MANIFEST_FILE} (it predates it); its {len(paths)} training images were recomputed "
            f"from its config.json (data {data}, seed {config.get('seed', 0)})"
        ),
    )


def training_images(run_dir: str | os.PathLike) -> TrainingImages:
    """The real images a GAN run trained on: from its manifest, recomputed from its config, or unknown."""
    run_dir = Path(run_dir)
    if (run_dir / MANIFEST_FILE).is_file():
        rows = read_training_manifest(run_dir)
        return TrainingImages(
            paths=frozenset(path for path, _ in rows),
            hashes=frozenset(digest for _, digest in rows if digest),
            source="manifest",
            note=f"{len(rows)} training images listed in its {MANIFEST_FILE}",
        )
    recomputed = _recompute(run_dir)
    if recomputed is not None:
        return recomputed
    return TrainingImages(
        paths=frozenset(),
        hashes=frozenset(),
        source="unknown",
        note=(
            f"the check could not be made: the run has no {MANIFEST_FILE} and its data folder "
            f"{read_json(run_dir / 'config.json').get('data')!r} is not on this machine"
        ),
    )

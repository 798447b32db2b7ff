"""Images from a trained generator: fresh samples as a detector-readable folder, sample grids, the progress GIF.

    gan-lab gan sample runs/00002-gan-dcgan-64px --n 256 --seed 1 --out data/gan-fakes --grid

writes data/gan-fakes/fake/gan-epoch-NNNN-seed-1-00000.png ... (the "real_fake" layout's fake
class: add a real/ folder beside it and the detector's data loader reads both) and, with
--grid, data/gan-fakes/grid-epoch-NNNN-seed-1.png.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from detector.base.errors import LabError
from detector.base.runs import atomic_write_bytes, make_folder
from detector.data.images import image_grid, save_png
from gan_lab.gan.checkpoints import list_checkpoints, load_generator
from gan_lab.gan.latents import SAMPLE_STREAM, check_not_grid, seeded_latents

GENERATE_BATCH_SIZE = 256
GRID_TILES = 64  # at most this many images in a `sample_run` grid
GIF_MAX_SIDE = 512  # progress.gif frames are shrunk to this, so a long run's GIF stays small
GIF_FRAME_MS = 500
_SAMPLE_NAME = re.compile(r"^epoch-(\d+)\.png$")


def generate(generator, latents: np.ndarray, batch_size: int = GENERATE_BATCH_SIZE) -> np.ndarray:
    """The generator's images for `latents` (N, latent_dim), float32 (N, S, S, 3) clipped to [0, 1]."""
    latents = np.asarray(latents, dtype=np.float32)
    batches = [
        np.asarray(generator(latents[start : start + batch_size], training=False))
        for start in range(0, len(latents), batch_size)
    ]
    if not batches:
        return np.zeros((0, *generator.output_shape[1:]), dtype=np.float32)
    return np.clip(np.concatenate(batches), 0.0, 1.0).astype(np.float32)


def save_grid(path: str | os.PathLike, images: np.ndarray) -> Path:
    """Tile images (N, S, S, 3) in [0, 1] into a square-ish grid PNG, atomically."""
    return save_png(path, image_grid(np.asarray(images)))


def sample_epochs(samples_dir: str | os.PathLike) -> dict[int, Path]:
    """The per-epoch grids `samples/epoch-NNNN.png` of a GAN run, by epoch, in order."""
    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        return {}
    found = {int(match.group(1)): path for path in samples_dir.iterdir() if (match := _SAMPLE_NAME.match(path.name))}
    return dict(sorted(found.items()))


class ProgressGif:
    """An endlessly looping GIF of PNG files, one frame each; a frame is read, shrunk and given its palette once.

    A run rewrites its GIF after every epoch with one frame more: remembering the finished
    frames keeps that write proportional to one frame, not to every frame so far. A file
    rewritten since (an epoch trained again on resume) is read again.
    """

    def __init__(self, max_side: int = GIF_MAX_SIDE):
        self.max_side = max_side
        self._frames: dict[tuple, object] = {}

    def _frame(self, path: Path):
        from PIL import Image

        status = path.stat()
        key = (os.fspath(path), status.st_ino, status.st_mtime_ns, status.st_size)
        if key not in self._frames:
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = self.max_side / max(image.size)
                if scale < 1:
                    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                    image = image.resize(size, Image.Resampling.LANCZOS)
                self._frames[key] = image.convert("P", palette=Image.Palette.ADAPTIVE)
        return self._frames[key]

    def write(self, frames: list[str | os.PathLike], out: str | os.PathLike) -> Path:
        """The GIF of `frames` (in order) at `out`, written atomically."""
        if not frames:
            raise ValueError("frames must name at least one image")
        pictures = [self._frame(Path(frame)) for frame in frames]
        buffer = io.BytesIO()
        pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0)
        return atomic_write_bytes(out, buffer.getvalue())


def sample_latents(seed: int, epoch: int, n: int, latent_dim: int) -> np.ndarray:
    """`sample_run`'s latents: standard normal (n, latent_dim) from SeedSequence([seed, epoch, SAMPLE_STREAM])."""
    return seeded_latents(seed, epoch, n, latent_dim, stream=SAMPLE_STREAM)


def sample_run(
    run_dir: str | os.PathLike,
    n: int,
    seed: int,
    out: str | os.PathLike,
    epoch: int | None = None,
    grid: bool = False,
    raw: bool = False,
) -> Path:
    """Write `n` fresh fakes of a GAN run's epoch (default: the last complete one) as PNGs; return `out`.

    Images go to out/fake/gan-epoch-NNNN-seed-S-IIIII.png, readable by detector.data.datasets;
    grid=True also writes out/grid-epoch-NNNN-seed-S.png (the first 64). The latents
    depend on seed and epoch and are never the training grid's. The EMA generator draws
    them where the run keeps one; raw=True uses the trained generator itself.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer. Received: n={n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    generator = load_generator(run_dir, epoch, raw=raw)
    if epoch is None:
        epoch = max(list_checkpoints(run_dir))
    latents = sample_latents(int(seed), int(epoch), int(n), int(generator.input_shape[-1]))
    check_not_grid(latents, Path(run_dir))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LabError(f"--out {out} is a file; give a folder for the samples")
    make_folder(out, "--out")
    folder = out / "fake"
    stem = f"gan-epoch-{epoch:04d}-seed-{seed}"
    for start in range(0, n, GENERATE_BATCH_SIZE):
        pixels = generate(generator, latents[start : start + GENERATE_BATCH_SIZE])
        for offset, image in enumerate(pixels):
            save_png(folder / f"{stem}-{start + offset:05d}.png", image)
    if grid:
        save_grid(out / f"grid-epoch-{epoch:04d}-seed-{seed}.png", generate(generator, latents[:GRID_TILES]))
    return out

"""The latent streams: every latent vector the lab draws, from one seeded function and one table of tags.

A stream is `SeedSequence([seed, epoch, tag])`. Epoch slot 0 belongs to the training run
(its sample grid and its diversity and face-found watches); epochs 1 and up belong to the tools that use a
trained epoch. Distinct tags keep the streams apart, so the fakes a detector is scored on
are never the ones hardening trained on, nor the training grid the GAN was watched with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.base.errors import LabError

GRID_STREAM = 0  # the training run's fixed sample grid (epoch slot 0)
SCORING_STREAM = 1  # the fakes the stress test scores
HARDENING_STREAM = 2  # the extra fakes hardening fine-tunes on
EXPORT_SHUFFLE_STREAM = 3  # the order in which exported fakes are dealt to train/valid/test
SAMPLE_STREAM = 4  # `gan-lab gan sample`
DIVERSITY_STREAM = 5  # the training run's diversity watch (epoch slot 0), and its real-image sample
FACES_STREAM = 6  # the training run's face-found watch (epoch slot 0)
STREAMS = {
    "grid": GRID_STREAM,
    "scoring": SCORING_STREAM,
    "hardening": HARDENING_STREAM,
    "export_shuffle": EXPORT_SHUFFLE_STREAM,
    "sample": SAMPLE_STREAM,
    "diversity": DIVERSITY_STREAM,
    "faces": FACES_STREAM,
}


def stream_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    """The random generator of one stream of one epoch."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(stream)]))


def seeded_latents(seed: int, epoch: int, n: int, latent_dim: int, stream: int) -> np.ndarray:
    """Standard normal latents (n, latent_dim), float32, from SeedSequence([seed, epoch, stream])."""
    if stream not in STREAMS.values():
        raise ValueError(f"stream must be one of {STREAMS}. Received: stream={stream!r}")
    return stream_rng(seed, epoch, stream).standard_normal((n, latent_dim)).astype(np.float32)


def describe_streams() -> dict[str, str]:
    """Each stream's name and its SeedSequence, for a run's config.json."""
    return {name: f"SeedSequence([seed, epoch, {tag}])" for name, tag in STREAMS.items()}


def check_not_grid(latents: np.ndarray, gan_dir: str | Path) -> None:
    """Refuse latents that repeat any of a GAN run's training grid (latents.npy): those fakes were seen."""
    grid_path = Path(gan_dir) / "latents.npy"
    if not grid_path.is_file():
        return
    grid = np.load(grid_path).astype(np.float32)
    if grid.size % latents.shape[-1]:
        return  # another latent width: those grid images cannot come from these latents
    grid = grid.reshape(-1, latents.shape[-1])
    if (latents[:, None, :] == grid[None, :, :]).all(axis=-1).any():
        raise LabError(f"The latents repeat the training grid in {grid_path}; choose another --seed")

import numpy as np
import pytest

from detector.base.errors import LabError
from gan_lab.gan.latents import STREAMS, check_not_grid, describe_streams, seeded_latents


def test_same_seed_same_latents_and_every_stream_its_own():
    first = seeded_latents(3, 2, 8, 16, STREAMS["scoring"])
    assert np.array_equal(first, seeded_latents(3, 2, 8, 16, STREAMS["scoring"]))
    draws = {name: seeded_latents(3, 2, 8, 16, tag) for name, tag in STREAMS.items()}
    for name, latents in draws.items():
        assert latents.shape == (8, 16) and latents.dtype == np.float32
        others = [other for other in draws if other != name]
        assert not any(np.array_equal(latents, draws[other]) for other in others), name
    assert not np.array_equal(first, seeded_latents(3, 3, 8, 16, STREAMS["scoring"]))


def test_stream_tags_are_distinct_and_described():
    assert len(set(STREAMS.values())) == len(STREAMS)
    assert describe_streams()["hardening"] == f"SeedSequence([seed, epoch, {STREAMS['hardening']}])"
    with pytest.raises(ValueError, match="stream must be one of"):
        seeded_latents(0, 1, 2, 4, stream=99)


def test_latents_that_repeat_the_training_grid_are_refused(tmp_path):
    grid = seeded_latents(0, 0, 4, 16, STREAMS["grid"])
    np.save(tmp_path / "latents.npy", grid)
    fresh = seeded_latents(0, 1, 6, 16, STREAMS["scoring"])
    check_not_grid(fresh, tmp_path)  # fresh latents pass
    with pytest.raises(LabError, match="repeat the training grid"):
        check_not_grid(np.concatenate([fresh, grid[2:3]]), tmp_path)
    check_not_grid(fresh[:, :8], tmp_path)  # another latent width cannot repeat the grid

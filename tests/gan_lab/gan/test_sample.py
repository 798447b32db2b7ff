import shutil

import pytest

from detector.base.errors import LabError
from detector.base.runs import create_run_dir, write_json
from detector.data.datasets import index_folder, load_images
from gan_lab.gan.sample import sample_run

PNG = b"\x89PNG\r\n\x1a\n"


def test_writes_exactly_n_fresh_images_and_a_grid(gan_run, tmp_path):
    out = sample_run(gan_run, n=5, seed=1, out=tmp_path / "samples", grid=True)
    files = sorted((out / "fake").iterdir())
    assert [path.name for path in files] == [f"gan-epoch-0002-seed-1-{index:05d}.png" for index in range(5)]
    pixels, _, kept = load_images(files, 32)
    assert pixels.shape == (5, 32, 32, 3) and len(kept) == 5
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    (grid,) = [path for path in out.iterdir() if path.is_file()]
    assert "grid" in grid.name and grid.read_bytes()[:8] == PNG


def test_same_seed_same_images_other_seed_other_images(gan_run, tmp_path):
    first = sample_run(gan_run, n=3, seed=4, out=tmp_path / "a", epoch=1)
    again = sample_run(gan_run, n=3, seed=4, out=tmp_path / "b", epoch=1)
    other = sample_run(gan_run, n=3, seed=5, out=tmp_path / "c", epoch=1)
    read = [sorted(path.read_bytes() for path in (folder / "fake").iterdir()) for folder in (first, again, other)]
    assert read[0] == read[1] and read[0] != read[2]
    assert all(path.name.startswith("gan-epoch-0001-") for path in (first / "fake").iterdir())


def test_output_reads_as_the_fake_class_of_a_data_folder(gan_run, synth_root, tmp_path):
    out = sample_run(gan_run, n=4, seed=2, out=tmp_path / "mixed", grid=True)
    (out / "real").mkdir()
    for path in sorted((synth_root / "train" / "real").iterdir())[:3]:
        shutil.copy(path, out / "real" / path.name)
    index = index_folder(out, split=(1.0, 0.0, 0.0))
    assert index.layout == "real_fake"
    assert index.splits["train"].counts() == {"real": 3, "fake": 4}


def test_bad_run_directory_and_missing_epoch_are_lab_errors(gan_run, tmp_path):
    with pytest.raises(LabError, match="not found"):
        sample_run(tmp_path / "nowhere", n=2, seed=0, out=tmp_path / "out")
    detector_dir = create_run_dir("detector", "x", tmp_path / "runs")
    write_json(detector_dir / "config.json", {"model": "cnn3"})
    with pytest.raises(LabError, match="detector run"):
        sample_run(detector_dir, n=2, seed=0, out=tmp_path / "out")
    empty_gan = create_run_dir("gan", "empty", tmp_path / "runs")
    write_json(empty_gan / "config.json", {"size": 32})
    with pytest.raises(LabError, match="no complete checkpoints"):
        sample_run(empty_gan, n=2, seed=0, out=tmp_path / "out")
    with pytest.raises(LabError, match=r"epoch 7; available epochs: \[1, 2\]"):
        sample_run(gan_run, n=2, seed=0, out=tmp_path / "out", epoch=7)
    assert not (tmp_path / "out").exists()


def test_cli_samples_and_reports_errors(gan_run, tmp_path, capsys):
    from gan_lab.cli import main

    assert (
        main(["gan", "sample", str(gan_run), "--n", "3", "--seed", "2", "--out", str(tmp_path / "cli"), "--grid"]) == 0
    )
    assert len(list((tmp_path / "cli" / "fake").glob("*.png"))) == 3
    assert len(list((tmp_path / "cli").glob("*grid*.png"))) == 1
    assert main(["gan", "sample", str(gan_run), "--epoch", "9", "--out", str(tmp_path / "cli2")]) == 2
    error = capsys.readouterr().err
    assert "gan-lab: error:" in error and "[1, 2]" in error


def _frame_colours(gif_path) -> list[tuple]:
    from PIL import Image

    with Image.open(gif_path) as gif:
        colours = []
        for index in range(gif.n_frames):
            gif.seek(index)
            colours.append(gif.convert("RGB").getpixel((0, 0)))
    return colours


def test_progress_gif_shrinks_frames_and_rereads_a_rewritten_one(tmp_path):
    import numpy as np
    from PIL import Image

    from detector.data.images import save_png
    from gan_lab.gan.sample import ProgressGif

    def frame(name: str, value: float):
        return save_png(tmp_path / name, np.full((40, 60, 3), value, np.float32))

    frames = [frame("epoch-0001.png", 0.0), frame("epoch-0002.png", 1.0)]
    gif = ProgressGif(max_side=30)
    gif.write(frames, tmp_path / "progress.gif")
    with Image.open(tmp_path / "progress.gif") as written:
        assert written.size == (30, 20) and written.info["loop"] == 0
    assert _frame_colours(tmp_path / "progress.gif") == [(0, 0, 0), (255, 255, 255)]

    frames.append(frame("epoch-0003.png", 0.0))
    frame("epoch-0002.png", 0.5)  # epoch 2 trained again on resume: its grid is new
    gif.write(frames, tmp_path / "progress.gif")
    assert _frame_colours(tmp_path / "progress.gif") == [(0, 0, 0), (128, 128, 128), (0, 0, 0)]
    with pytest.raises(ValueError, match="at least one"):
        gif.write([], tmp_path / "empty.gif")

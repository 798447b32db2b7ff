import shutil
from pathlib import Path

import pytest

from detector.base.errors import LabError
from detector.base.runs import read_json, write_json
from detector.data.images import is_image_file
from gan_lab.stress.inputs import StressConfig, resolve_inputs, select_epochs, split_gan_option
from gan_lab.stress.run import run_stress


def test_inputs_are_resolved_once_with_every_path_absolute_and_every_epoch_chosen(
    detector_run, gan_run, synth_root, tmp_path
):
    fakes = tmp_path / "stylegan"
    fakes.mkdir()
    image = next(path for path in sorted(Path(synth_root).rglob("*")) if is_image_file(path.name))
    shutil.copy(image, fakes / f"one{image.suffix}")
    config = StressConfig(detector=str(detector_run), gans=(f"{gan_run}@1",), fakes=(str(fakes),), n=8, epochs="last")
    inputs = resolve_inputs(config)
    assert inputs.gan_dir == Path(gan_run) and inputs.epochs == (2,)
    assert [each.label for each in inputs.detectors] == [Path(detector_run).name]
    assert 2 <= len(inputs.real) <= 8 and inputs.real.shape[1:] == (32, 32, 3)
    assert [source.kind for source in inputs.sources] == ["gan", "data", "folder"]
    assert [source.epoch for source in inputs.sources][0] == 1  # @1 picks the matrix column, not the last epoch
    resolved = inputs.resolved_config(config)
    assert Path(resolved.detector).is_absolute() and Path(resolved.gan) == Path(gan_run).resolve()
    assert resolved.epochs == (2,) and resolved.fakes == (str(fakes.resolve()),)
    assert inputs.context()["n_real_test"] == len(inputs.real)


def test_a_fake_folder_without_images_is_refused_before_anything_is_scored(detector_run, gan_run, tmp_path):
    empty = tmp_path / "no-images"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(LabError, match="no-images has no images"):
        resolve_inputs(StressConfig(detector=str(detector_run), gan=str(gan_run), fakes=(str(empty),)))


def _copy_run(source, destination, keep_checkpoints=True):
    shutil.copytree(source, destination, ignore=None if keep_checkpoints else shutil.ignore_patterns("checkpoints"))
    return destination


def test_mismatched_or_missing_runs_give_clear_errors(detector_run, gan_run, tmp_path, capsys):
    from gan_lab.cli import main

    runs = tmp_path / "runs"
    with pytest.raises(LabError, match="detector run, not a gan run"):
        run_stress(StressConfig(detector=str(detector_run), gan=str(detector_run)), runs_dir=runs, progress=False)
    with pytest.raises(LabError, match="not found"):
        run_stress(
            StressConfig(detector=str(detector_run), gan=str(tmp_path / "nowhere")), runs_dir=runs, progress=False
        )
    empty = _copy_run(gan_run, tmp_path / "00001-gan-empty", keep_checkpoints=False)
    with pytest.raises(LabError, match="no complete GAN checkpoints"):
        run_stress(StressConfig(detector=str(detector_run), gan=str(empty)), runs_dir=runs, progress=False)
    big = _copy_run(gan_run, tmp_path / "00002-gan-big")
    write_json(big / "config.json", {**read_json(big / "config.json"), "size": 64})
    with pytest.raises(LabError, match="sizes differ.*64 px.*32 px"):
        run_stress(StressConfig(detector=str(detector_run), gan=str(big)), runs_dir=runs, progress=False)
    with pytest.raises(LabError, match=r"epoch\(s\) \[7\].*\[1, 2\]"):
        run_stress(
            StressConfig(detector=str(detector_run), gan=str(gan_run), epochs="7"), runs_dir=runs, progress=False
        )
    assert not runs.exists() or not any(runs.iterdir())  # nothing half-written for a refused run
    assert main(["stress", "--detector", str(detector_run), "--gan", str(detector_run), "--runs-dir", str(runs)]) == 2
    assert "not a gan run" in capsys.readouterr().err


def test_select_epochs_parses_all_last_and_lists():
    assert split_gan_option("runs/00003-gan@1,5") == ("runs/00003-gan", "1,5")
    assert split_gan_option("runs/a@b/00003-gan") == ("runs/a@b/00003-gan", None)
    assert split_gan_option("runs/00003-gan@last") == ("runs/00003-gan", "last")
    assert select_epochs("all", [3, 1, 2]) == [1, 2, 3]
    assert select_epochs("2, 1", [1, 2, 3]) == [1, 2]
    assert select_epochs([3], [1, 2, 3]) == [3]
    assert select_epochs("last", [1, 3, 2]) == [3]
    with pytest.raises(LabError, match="comma-separated"):
        select_epochs("latest", [1])

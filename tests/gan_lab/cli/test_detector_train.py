"""`gan-lab detector train --fakes-from RUN@EPOCHS`: GAN fakes of the hardening stream join the training split."""

import dataclasses
import json
import re

import numpy as np

from detector.data.images import load_rgb
from gan_lab.cli import main
from gan_lab.gan.checkpoints import list_checkpoints
from gan_lab.stress.harden import hardening_fakes


def _train(synth_root, runs, *extra):
    argv = ["detector", "train", "--data", str(synth_root), "--size", "32", "--epochs", "1", "--batch-size", "32"]
    return main([*argv, "--runs-dir", str(runs), "--quiet", "--no-tensorboard", *extra])


def test_fakes_from_a_gan_run_join_the_training_split_and_are_written_once(synth_root, gan_run, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert _train(synth_root, runs, "--fakes-from", f"{gan_run}@2", "--fakes-n", "8", "--name", "mixed") == 0
    (run_dir,) = runs.glob("*-detector-mixed")
    config = json.loads((run_dir / "config.json").read_text())
    (folder,) = config["extra_fakes"]
    pngs = sorted(p for p in (runs / "fakes").glob("*/*.png"))
    assert [str(p.parent) for p in pngs] == [folder] * 8
    # The hardening stream's fakes of epoch 2, as 8-bit PNGs: never the fakes the stress test scores.
    expected = np.rint(hardening_fakes(gan_run, [2], 8, seed=0) * 255) / 255
    np.testing.assert_allclose(np.stack([load_rgb(p) / 255.0 for p in pngs]), expected, atol=1e-6)
    assert json.loads((pngs[0].parent / "fakes.json").read_text())["epochs"] == [2]
    plain = _train_counts(synth_root)
    assert config["counts"]["train"] == {"real": plain["real"], "fake": plain["fake"] + 8}

    written = pngs[0].stat().st_mtime_ns
    assert _train(synth_root, runs, "--fakes-from", f"{gan_run}@2", "--fakes-n", "8", "--name", "again") == 0
    assert pngs[0].stat().st_mtime_ns == written  # the same fakes again: reused, not redrawn
    assert not list((runs / "fakes").glob(".*"))


def _train_counts(synth_root):
    from detector.data.datasets import index_folder

    return index_folder(synth_root).splits["train"].counts()


def test_bad_fakes_from_are_refused_and_an_interrupted_write_leaves_nothing(
    synth_root, gan_run, tmp_path, monkeypatch, capsys
):
    runs = tmp_path / "runs"
    for extra, message in (
        (["--fakes-from", f"{gan_run}@9"], "no checkpoint for epoch"),
        (["--fakes-from", str(tmp_path / "nowhere")], "Run directory not found: .*nowhere"),
        (["--fakes-from", str(gan_run), "--fakes-n", "0"], "--fakes-n must be a positive integer"),
        (["--fakes-from", str(gan_run), "--resume", str(gan_run)], "is a gan run, not a detector run"),
    ):
        assert _train(synth_root, runs, *extra) != 0
        assert re.search(message, capsys.readouterr().err), extra
    assert sorted(list_checkpoints(gan_run)) == [1, 2]

    import detector.data.images

    calls = []

    def fail_on_the_third(path, pixels):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_save(path, pixels)

    real_save = detector.data.images.save_png
    monkeypatch.setattr(detector.data.images, "save_png", fail_on_the_third)
    assert _train(synth_root, runs, "--fakes-from", f"{gan_run}@1,2", "--fakes-n", "4") != 0  # Ctrl-C, reported
    assert len(calls) == 3 and "interrupted" in capsys.readouterr().err
    assert not list((runs / "fakes").iterdir()) and not list(runs.glob("*-detector-*"))


def test_seeds_train_one_run_each_and_the_stress_test_gives_their_spread(
    synth_root, detector_run, gan_run, tmp_path, capsys
):
    """Seeds 1 and 2 of detector_run's recipe; stressed together, each epoch carries their mean and spread."""
    import pytest

    from detector.base.errors import LabError
    from detector.base.runs import read_json
    from gan_lab.stress.inputs import StressConfig
    from gan_lab.stress.run import run_stress

    runs = tmp_path / "runs"
    argv = ["detector", "train", "--data", str(synth_root), "--size", "32", "--epochs", "2", "--batch-size", "32"]
    assert main([*argv, "--name", "tiny", "--seeds", "1,2", "--runs-dir", str(runs), "--quiet"]) == 0
    out = capsys.readouterr().out
    seed_runs = sorted(runs.glob("*-detector-tiny-seed*"))
    assert [read_json(run / "config.json")["seed"] for run in seed_runs] == [1, 2]
    assert re.search(r"accuracy +0\.\d{4} ± 0\.\d{4}", out) and "--seed-runs" in out

    config = StressConfig(
        detector=str(detector_run),
        seed_runs=tuple(map(str, seed_runs)),
        gan=str(gan_run),
        n=24,
        batch_size=16,
        sweeps=False,
        inception=False,
        faces=False,
        bootstrap=50,
    )
    stress = run_stress(config, runs_dir=tmp_path / "stress", progress=False)
    rows = read_json(stress / "results.json")
    for row in (row for row in rows if row["kind"] == "epoch"):
        seeds = [other for other in rows if other["kind"] == "seed" and other["epoch"] == row["epoch"]]
        assert [other["seed"] for other in seeds] == [1, 2] and row["seed_runs"] == 3
        rates = [row["detection_rate"], *(other["detection_rate"] for other in seeds)]
        assert row["detection_rate_seed_mean"] == pytest.approx(np.mean(rates))
        assert row["detection_rate_seed_sd"] == pytest.approx(np.std(rates, ddof=1))
    report = (stress / "report.md").read_text()
    assert "## Across training seeds" in report and "Across 3 detectors trained with seeds 0, 1, 2" in report

    with pytest.raises(LabError, match="both trained with seed 0"):
        run_stress(dataclasses.replace(config, seed_runs=(str(detector_run),)), tmp_path / "stress", progress=False)

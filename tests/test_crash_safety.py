"""Runs killed anywhere in their write paths resume to the same invariants, however often they are killed.

Each case starts a real `gan-lab ... train` process that dies at a named failpoint (as kill -9
would: no clean-up), resumes it in this process, and checks what a user relies on: history
epochs 1..N exactly once, every checkpoint loads, model.keras is the epoch history names
best, metrics.json describes it, and no temporary file is left.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from detector.base.failpoints import EXIT_CODE, FAILPOINTS
from detector.base.runs import committed_epochs, list_runs, read_history, read_json

pytestmark = pytest.mark.slow
EPOCHS = 2


def _train(kind: str, data, runs, failpoint: str | None = None, resume=None, timeout=300):
    if resume is not None:
        options = ["--resume", str(resume)]
    elif kind == "detector":
        options = ["--data", str(data), "--size", "32", "--epochs", str(EPOCHS), "--batch-size", "16"]
        options += ["--steps-per-epoch", "2", "--bn-recalibration", "32", "--runs-dir", str(runs)]
    else:
        options = ["--data", str(data), "--size", "32", "--epochs", str(EPOCHS), "--batch-size", "8"]
        options += ["--steps-per-epoch", "2", "--grid-size", "4", "--diversity-n", "8", "--runs-dir", str(runs)]
    environment = {**os.environ, "GAN_LAB_FAILPOINT": failpoint or ""}
    command = [sys.executable, "-m", "gan_lab.cli", kind, "train", *options, "--quiet"]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout)


def _leftovers(run_dir):
    return [path for path in run_dir.rglob("*") if ".tmp" in path.name or path.name.endswith(".partial")]


def _check_detector_run(run_dir):
    import keras

    from detector.training.scaling import Scaling
    from detector.training.train import DetectorConfig as Config
    from detector.training.train import _datasets, _index, check_config, loss_for_head

    rows = read_history(run_dir / "history.csv")
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1))
    for folder in committed_epochs(run_dir).values():
        keras.models.load_model(folder / "model.keras", compile=False)
    best = min(rows, key=lambda row: row["val_loss"])
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["best_epoch"] == best["epoch"] and metrics["best_val_loss"] == pytest.approx(best["val_loss"])
    assert "accuracy" in metrics and metrics["epochs_trained"] == EPOCHS
    # model.keras is the model whose validation loss history names as best.
    recorded = read_json(run_dir / "config.json")
    config = check_config(Config(**{key: value for key, value in recorded.items() if key in Config.__annotations__}))
    _, valid = _datasets(config, _index(config), 0, Scaling.of(config))
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    model.compile(loss=loss_for_head(config.head))
    assert model.evaluate(valid, verbose=0, return_dict=True)["loss"] == pytest.approx(best["val_loss"], rel=1e-4)
    assert not _leftovers(run_dir)


def _check_gan_run(run_dir):
    from gan_lab.gan.checkpoints import list_checkpoints, load_discriminator, load_generator

    rows = read_history(run_dir / "history.csv")
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1))
    assert sorted(list_checkpoints(run_dir)) == list(range(1, EPOCHS + 1))
    for epoch in list_checkpoints(run_dir):
        assert load_generator(run_dir, epoch).output_shape == (None, 32, 32, 3)
        assert load_discriminator(run_dir, epoch).output_shape == (None, 1)
        assert [
            row["epoch"] for row in read_history(run_dir / "checkpoints" / f"epoch-{epoch:04d}" / "history.csv")
        ] == list(range(1, epoch + 1))
    assert sorted(path.name for path in (run_dir / "samples").iterdir()) == [
        f"epoch-{epoch:04d}.png" for epoch in range(1, EPOCHS + 1)
    ]
    assert read_json(run_dir / "metrics.json")["epochs_trained"] == EPOCHS
    assert not _leftovers(run_dir)


def _resume(kind, run_dir):
    if kind == "detector":
        from detector.training.train import train_detector

        train_detector(None, resume=run_dir, progress=False)
    else:
        from gan_lab.gan.train import train_gan

        train_gan(None, resume=run_dir, progress=False)


DETECTOR_POINTS = [
    "config-written",
    "epoch-files-written@2",
    "epoch-before-commit@2",
    "epoch-committed@2",
    "history-published@1",
    "atomic-write@4",
    "training-finished",
]
GAN_POINTS = ["config-written", "epoch-before-commit@2", "epoch-committed@1", "history-published@2", "atomic-write@5"]


def test_every_failpoint_is_exercised():
    named = {point.split("@")[0] for point in DETECTOR_POINTS + GAN_POINTS}
    assert named == set(FAILPOINTS)


@pytest.mark.parametrize("point", DETECTOR_POINTS)
def test_a_detector_run_killed_at_a_failpoint_resumes_whole(point, synth_root, tmp_path):
    crashed = _train("detector", synth_root, tmp_path, failpoint=point)
    assert crashed.returncode == EXIT_CODE, crashed.stderr[-2000:]
    (run_dir,) = list_runs(tmp_path)
    _resume("detector", run_dir)
    _check_detector_run(run_dir)


@pytest.mark.parametrize("point", GAN_POINTS)
def test_a_gan_run_killed_at_a_failpoint_resumes_whole(point, synth_root, tmp_path):
    crashed = _train("gan", synth_root, tmp_path, failpoint=point)
    assert crashed.returncode == EXIT_CODE, crashed.stderr[-2000:]
    (run_dir,) = list_runs(tmp_path)
    _resume("gan", run_dir)
    _check_gan_run(run_dir)


def test_a_gan_run_killed_twice_in_its_first_epoch_still_resumes(synth_root, tmp_path):
    first = _train("gan", synth_root, tmp_path, failpoint="epoch-files-written")
    assert first.returncode == EXIT_CODE, first.stderr[-2000:]
    (run_dir,) = list_runs(tmp_path)
    again = _train("gan", None, None, failpoint="epoch-files-written", resume=run_dir)
    assert again.returncode == EXIT_CODE, again.stderr[-2000:]
    assert read_history(run_dir / "history.csv") == []  # an empty history, still readable
    _resume("gan", run_dir)
    _check_gan_run(run_dir)


@pytest.mark.parametrize("kind", ["detector", "gan"])
def test_random_sigkills_never_break_a_run(kind, synth_root, tmp_path):
    """Real SIGKILLs at seeded random moments, each followed by a resume that may be killed again."""
    rng = random.Random(7 if kind == "gan" else 11)
    environment = {**os.environ, "GAN_LAB_FAILPOINT": ""}
    run_dir = None
    for _ in range(2):
        if run_dir is None:
            options = ["--data", str(synth_root), "--size", "32", "--epochs", str(EPOCHS), "--steps-per-epoch", "2"]
            options += ["--batch-size", "8", "--runs-dir", str(tmp_path), "--quiet"]
        else:
            options = ["--resume", str(run_dir), "--quiet"]
        process = subprocess.Popen(
            [sys.executable, "-m", "gan_lab.cli", kind, "train", *options],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(4.0, 10.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        # A kill between creating the folder and writing config.json leaves nothing to resume.
        runs = [path for path in list_runs(tmp_path) if (path / "config.json").is_file()]
        run_dir = runs[0] if runs else None
    if run_dir is None:  # killed before even its directory existed: nothing to lose
        return
    _resume(kind, run_dir)
    (_check_detector_run if kind == "detector" else _check_gan_run)(run_dir)
    assert np.all([row["epoch"] > 0 for row in read_history(run_dir / "history.csv")])

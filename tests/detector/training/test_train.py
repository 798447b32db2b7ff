import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError

TRAIN_IMAGES = 192  # the synth_root fixture: 240 images, 80% for training
BATCH_SIZE = 32
STEPS_PER_EPOCH = TRAIN_IMAGES // BATCH_SIZE


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _tiny_config(synth_root, **options):
    from detector.training.train import DetectorConfig

    return DetectorConfig(
        **{"data": str(synth_root), "size": 32, "batch_size": BATCH_SIZE, "seed": 0, "epochs": 1, **options}
    )


def _optimizer_steps(checkpoint):
    import keras

    return int(keras.models.load_model(checkpoint).optimizer.iterations)


def test_a_run_directory_holds_every_file(detector_run, synth_root):
    from detector.inference.predict import load_detector

    assert detector_run.name.endswith("-detector-tiny")
    config = json.loads((detector_run / "config.json").read_text())
    assert Path(config["data"]) == Path(synth_root).resolve()
    assert {
        key: config[key] for key in ("model", "size", "head", "epochs", "batch_size", "seed", "crop", "weights")
    } == {
        "model": "cnn3",
        "size": 32,
        "head": "probability",
        "epochs": 2,
        "batch_size": 32,
        "seed": 0,
        "crop": "resize",
        "weights": None,
    }
    assert config["split"] == [0.8, 0.1, 0.1] and config["counts"]["train"] == {"real": 96, "fake": 96}

    rows = _history(detector_run)
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for row in rows:
        for key in ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc", "learning_rate"):
            assert math.isfinite(float(row[key])), key
        # Accuracy over the validation split: a whole number of its images.
        n_valid = sum(config["counts"]["valid"].values())
        assert float(row["val_accuracy"]) * n_valid == pytest.approx(
            round(float(row["val_accuracy"]) * n_valid), abs=1e-3
        )

    detector = load_detector(detector_run)
    scores = detector.score(np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32))
    assert detector.size == 32 and scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))

    for name in ("loss.png", "accuracy.png"):
        with Image.open(detector_run / "plots" / name) as image:
            assert image.format == "PNG" and image.size[0] > 200

    metrics = json.loads((detector_run / "metrics.json").read_text())
    assert metrics["n_test"] == 24 and metrics["epochs_trained"] == 2
    best = min(rows, key=lambda row: float(row["val_loss"]))
    assert metrics["best_epoch"] == int(best["epoch"])  # both count from 1
    assert metrics["best_val_loss"] == pytest.approx(float(best["val_loss"]))

    report = (detector_run / "report.md").read_text()
    assert "| ROC-AUC |" in report and "plots/loss.png" in report and "plots/accuracy.png" in report
    state = json.loads((detector_run / "checkpoints" / "epoch-0002" / "state.json").read_text())
    assert state["completed_epochs"] == 2 and state["stopped"] is None
    assert any((detector_run / "tensorboard").rglob("events.out.tfevents.*"))
    # The last epoch and the best one are kept; model.keras is the best one's model.
    kept = sorted(path.name for path in (detector_run / "checkpoints").iterdir())
    assert kept == sorted({"epoch-0002", f"epoch-{metrics['best_epoch']:04d}"})
    best = detector_run / "checkpoints" / f"epoch-{metrics['best_epoch']:04d}" / "model.keras"
    assert (detector_run / "model.keras").read_bytes() == best.read_bytes()


def test_resume_continues_an_interrupted_run_where_it_stopped(synth_root, tmp_path):
    import keras

    from detector.base.runs import list_runs
    from detector.training.train import train_detector

    class InterruptAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    runs = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        train_detector(
            _tiny_config(synth_root, epochs=2), runs_dir=runs, progress=False, callbacks=[InterruptAfterFirstEpoch()]
        )
    (run_dir,) = list_runs(runs)
    first = _history(run_dir)
    assert [row["epoch"] for row in first] == ["1"]
    assert not (run_dir / "metrics.json").exists()
    assert _optimizer_steps(run_dir / "checkpoints" / "epoch-0001" / "model.keras") == STEPS_PER_EPOCH

    with pytest.raises(LabError, match=r"size=64 \(the run has 32\)"):
        train_detector(_tiny_config(synth_root, size=64), resume=run_dir, progress=False)

    assert train_detector(None, resume=run_dir, progress=False) == run_dir
    rows = _history(run_dir)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert rows[0] == first[0]
    # The optimizer's step count (and with it Adam's moments) went on rather than starting again.
    assert _optimizer_steps(run_dir / "checkpoints" / "epoch-0002" / "model.keras") == 2 * STEPS_PER_EPOCH
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2 and 0.0 <= metrics["accuracy"] <= 1.0
    assert list_runs(runs) == [run_dir]

    # A finished run has nothing left to do: no file is written again.
    written = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()}
    assert train_detector(None, resume=run_dir, progress=False) == run_dir
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()} == written


def test_the_command_line_trains_like_the_api_with_the_same_seed(synth_root, tmp_path, capsys):
    from detector.training.train import train_detector
    from gan_lab.cli import main

    api_run = train_detector(_tiny_config(synth_root, name="api"), runs_dir=tmp_path / "api", progress=False)
    code = main(
        [
            "detector",
            "train",
            "--data",
            str(synth_root),
            "--size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            str(BATCH_SIZE),
            "--seed",
            "0",
            "--name",
            "cli",
            "--runs-dir",
            str(tmp_path / "cli"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    cli_run = tmp_path / "cli" / "00001-detector-cli"
    assert str(cli_run) in out and "ROC-AUC" in out and "Accuracy (threshold 0.5)" in out
    api_rows, cli_rows = _history(api_run), _history(cli_run)
    for key in ("loss", "val_loss", "accuracy"):
        assert float(cli_rows[0][key]) == pytest.approx(float(api_rows[0][key]), rel=1e-5), key


def test_bad_input_is_a_clear_error_and_leaves_no_run_behind(synth_root, tmp_path, capsys):
    from detector.base.runs import list_runs
    from detector.training.train import DetectorConfig, train_detector
    from gan_lab.cli import main

    runs = tmp_path / "runs"
    with pytest.raises(LabError, match="model must be one of .*'cnn3'.*Received: model='resnet9'"):
        train_detector(_tiny_config(synth_root, model="resnet9"), runs_dir=runs, progress=False)
    with pytest.raises(LabError, match="Data folder not found: .*nowhere"):
        train_detector(DetectorConfig(data=str(tmp_path / "nowhere")), runs_dir=runs, progress=False)
    with pytest.raises(LabError, match="rotation must be a fraction in \\[0, 1\\). Received: rotation='a lot'"):
        train_detector(_tiny_config(synth_root, rotation="a lot"), runs_dir=runs, progress=False)
    with pytest.raises(LabError, match="xception.*71 px"):
        train_detector(_tiny_config(synth_root, model="xception", weights=None), runs_dir=runs, progress=False)
    with pytest.raises(LabError, match="not a run directory"):
        train_detector(None, resume=tmp_path, progress=False)
    assert list_runs(runs) == []

    assert main(["detector", "train", "--data", str(tmp_path / "nowhere"), "--runs-dir", str(runs), "--quiet"]) == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.slow
def test_cnn3_learns_medium_synthfaces_at_64_px(tmp_path):
    from detector.training.train import DetectorConfig, train_detector

    started = time.monotonic()
    config = DetectorConfig(
        data="synth", model="cnn3", size=64, epochs=5, synth_n=2400, synth_difficulty="medium", seed=0
    )
    run_dir = train_detector(config, runs_dir=tmp_path, progress=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(
        f"test accuracy {metrics['accuracy']:.3f}, ROC-AUC {metrics['roc_auc']:.3f} in {time.monotonic() - started:.0f} s"
    )
    assert metrics["n_test"] == 240
    assert metrics["accuracy"] > 0.90


def test_the_robust_recipe_is_cnndetections_blur_and_jpeg_and_given_options_win():
    from detector.base.errors import LabError
    from detector.data.augment import build_augmentation
    from detector.training.train import DetectorConfig, check_config

    robust = check_config(DetectorConfig(recipe="robust"))
    assert (robust.blur_probability, robust.jpeg_probability) == (0.5, 0.5)
    assert robust.blur_sigma == (0.1, 3.0) and robust.jpeg_quality == (30, 100)
    mine = check_config(DetectorConfig(recipe="robust", blur_probability=0.2, jpeg_quality=(50, 95)))
    assert (mine.blur_probability, mine.jpeg_probability, mine.jpeg_quality) == (0.2, 0.5, (50, 95))
    assert check_config(DetectorConfig()).blur_probability == 0.0
    with pytest.raises(LabError, match="recipe"):
        check_config(DetectorConfig(recipe="sturdy"))
    with pytest.raises(LabError, match="blur_sigma must be two numbers"):
        check_config(DetectorConfig(blur_sigma=(2.0, 1.0)))
    with pytest.raises(LabError, match="jpeg_quality must be two whole numbers"):
        check_config(DetectorConfig(jpeg_quality=(30, 101)))
    augment = build_augmentation(
        blur_probability=0.5, jpeg_probability=0.5, blur_sigma=(0.1, 3.0), jpeg_quality=(30, 100)
    )
    assert augment.get_layer("blur").kernel_size == 19  # three sigmas either side of the widest blur
    assert augment.get_layer("blur").sigma_range == (0.1, 3.0)

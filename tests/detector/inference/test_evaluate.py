import csv
import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.base.runs import atomic_save_model, write_json

SIZE = 32
PLOT_NAMES = (
    "roc.png",
    "precision_recall.png",
    "confusion_matrix.png",
    "reliability.png",
    "score_histogram.png",
    "mistakes.png",
)


def _write_faces(root, counts, seed=0):
    """A tiny folder in the train/valid/test x real/fake layout; fakes are brighter."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for label, name in enumerate(("real", "fake")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.random((SIZE, SIZE, 3)) * (110 + 140 * label)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{name}{index:02d}.png")
    return root


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return _write_faces(tmp_path_factory.mktemp("data") / "faces", {"train": 4, "valid": 10, "test": 12})


@pytest.fixture()
def hand_run(tmp_path, faces):
    """An untrained cnn3 run at 32 px over `faces`, made by hand, with a training plot."""
    from detector.models.zoo import build_model

    run_dir = tmp_path / "00001-detector-hand"
    (run_dir / "plots").mkdir(parents=True)
    atomic_save_model(build_model("cnn3", size=SIZE), run_dir / "model.keras")
    config = {"model": "cnn3", "head": "probability", "size": SIZE, "crop": "resize", "data": str(faces), "seed": 0}
    write_json(run_dir / "config.json", config)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(run_dir / "plots" / "training_curves.png")
    write_json(run_dir / "metrics.json", {"best_epoch": 3})
    return run_dir


def test_evaluate_writes_metrics_scores_plots_and_report(hand_run):
    from detector.inference.evaluate import evaluate_run

    result = evaluate_run(hand_run)
    metrics = json.loads((hand_run / "metrics.json").read_text())
    for key in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "average_precision",
        "ece",
        "accuracy_real",
        "accuracy_fake",
        "accuracy_at_threshold",
        "threshold",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
        assert metrics[key] == pytest.approx(result[key])
    assert metrics["n_test"] == 24 and metrics["n_valid"] == 20
    assert np.asarray(metrics["confusion_matrix"]).sum() == 24
    assert metrics["best_epoch"] == 3  # what training recorded survives
    with open(hand_run / "test_scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and all("/test/" in row["file"] for row in rows)
    assert {row["label"] for row in rows} == {"0", "1"} and all(0.0 <= float(row["p_fake"]) <= 1.0 for row in rows)
    for name in PLOT_NAMES:
        with Image.open(hand_run / "plots" / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    report = (hand_run / "report.md").read_text()
    assert "| ROC-AUC |" in report and "plots/roc.png" in report and "plots/training_curves.png" in report


def test_threshold_is_chosen_on_validation_scores_only(hand_run, faces, monkeypatch):
    import detector.inference.evaluate as evaluate
    from detector.data.datasets import index_folder, load_images
    from detector.inference.predict import load_detector

    seen = []
    original = evaluate.best_threshold

    def spy(labels, scores, criterion="accuracy"):
        seen.append((np.asarray(labels), np.asarray(scores)))
        return original(labels, scores, criterion)

    monkeypatch.setattr(evaluate, "best_threshold", spy)
    metrics = evaluate.evaluate_run(hand_run)
    assert len(seen) == 1
    labels, scores = seen[0]
    detector = load_detector(hand_run)
    valid = index_folder(faces, seed=0).splits["valid"]
    images, _, _ = load_images(valid, SIZE, crop="resize")
    np.testing.assert_allclose(np.sort(scores), np.sort(detector.score(images)), atol=1e-5)
    assert len(scores) == 20 and labels.sum() == 10
    assert metrics["threshold"] == original(labels, scores)
    assert metrics["threshold_source"].startswith("validation split")


def test_evaluating_other_data_writes_a_separate_evaluation(hand_run, faces, tmp_path):
    from detector.inference.evaluate import evaluate_run

    baseline = evaluate_run(hand_run)
    other = _write_faces(tmp_path / "other set", {"train": 1, "valid": 1, "test": 5}, seed=1)
    result = evaluate_run(hand_run, data=other)
    out_dir = hand_run / "evaluations" / "other-set"
    assert result["out_dir"] == str(out_dir)
    assert json.loads((out_dir / "metrics.json").read_text())["n_test"] == 10
    assert all((out_dir / "plots" / name).is_file() for name in PLOT_NAMES)
    assert (out_dir / "report.md").is_file() and (out_dir / "test_scores.csv").is_file()
    # The run's own metrics are untouched, and the threshold still comes from its validation split.
    assert json.loads((hand_run / "metrics.json").read_text())["n_test"] == 24
    assert result["threshold"] == baseline["threshold"]


def test_one_class_test_split_gives_nan_auc_with_a_warning(hand_run, faces, tmp_path):
    from detector.inference.evaluate import evaluate_run

    only_real = tmp_path / "only real"
    shutil.copytree(faces, only_real)
    shutil.rmtree(only_real / "test" / "fake")
    (only_real / "test" / "fake").mkdir()
    with pytest.warns(RuntimeWarning, match="only one class"):
        result = evaluate_run(hand_run, data=only_real)
    assert math.isnan(result["roc_auc"]) and result["n_test"] == 12


def test_evaluate_names_a_missing_data_folder(hand_run, tmp_path):
    from detector.inference.evaluate import evaluate_run

    with pytest.raises(LabError, match="not found"):
        evaluate_run(hand_run, data=tmp_path / "nowhere")
    with pytest.raises(LabError, match="not found"):
        evaluate_run(tmp_path / "no-run")


def test_cli_evaluate_prints_the_table(hand_run, capsys):
    from gan_lab.cli import main

    assert main(["detector", "evaluate", str(hand_run), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "ROC-AUC" in printed and "Accuracy (chosen threshold)" in printed
    assert f"to {hand_run}" in printed

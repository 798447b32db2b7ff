import csv

import numpy as np
import pytest

from detector.base.runs import read_json
from gan_lab.gan.checkpoints import list_checkpoints, load_discriminator, load_generator
from gan_lab.gan.latents import SCORING_STREAM, check_not_grid, seeded_latents
from gan_lab.stress.epoch_metrics import COLUMNS, EpochScores, compute_metrics
from gan_lab.stress.inputs import StressConfig
from gan_lab.stress.run import read_scores_csv, run_stress

N = 24


@pytest.fixture(scope="module")
def stress_run(detector_run, gan_run, inception_home, tmp_path_factory):
    runs = tmp_path_factory.mktemp("stress-runs")
    config = StressConfig(
        detector=str(detector_run),
        gan=str(gan_run),
        n=N,
        batch_size=16,
        seed=0,
        name="tiny",
        export_fakes=str(runs / "exported"),
        bootstrap=200,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(inception_home))
        return run_stress(config, runs_dir=runs, progress=False)


def _rows(run_dir, kind):
    return [row for row in read_json(run_dir / "results.json") if row["kind"] == kind and row["detector"] == "original"]


def test_a_row_per_epoch_whose_figures_follow_from_the_saved_scores(stress_run, gan_run):
    rows = _rows(stress_run, "epoch")
    assert [row["epoch"] for row in rows] == sorted(list_checkpoints(gan_run))
    for row in rows:
        assert set(COLUMNS) <= set(row)
        saved = read_scores_csv(stress_run / "scores" / f"epoch-{row['epoch']:04d}.csv")
        fakes = saved["p_fake"][saved["labels"] == 1]
        assert row["detection_rate_05"] == pytest.approx(np.mean(fakes >= 0.5))
        assert row["mean_p_fake"] == pytest.approx(np.mean(fakes), abs=1e-6)
        assert row["median_p_fake"] == pytest.approx(np.median(fakes), abs=1e-6)
        assert np.isfinite(row["kid_detector"]) and row["diversity"] > 0
        assert row["n_fake"] == N and row["n_real"] >= 2
        assert "best_accuracy" not in row and 0.5 <= row["oracle_accuracy"] <= 1
    with open(stress_run / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == COLUMNS
    assert [int(row["epoch"]) for row in table if row["kind"] == "epoch"] == [row["epoch"] for row in rows]


def test_fakes_are_fresh_not_the_training_grid(stress_run, gan_run):
    from detector.data.images import load_rgb

    grid = np.load(gan_run / "latents.npy")
    generator = load_generator(gan_run, 2)
    latents = seeded_latents(0, 2, N, int(generator.input_shape[-1]), SCORING_STREAM)
    check_not_grid(latents, gan_run)  # raises if any scored latent is a grid latent
    grid_images = np.rint(np.asarray(generator(grid.astype("float32"), training=False)) * 255)
    exported = sorted((stress_run.parent / "exported").rglob("gan-epoch-0002-*.png"))
    assert len(exported) == N
    for path in exported:
        image = load_rgb(path).astype(np.float64)
        assert np.abs(grid_images - image).reshape(len(grid_images), -1).max(axis=1).min() > 1


def test_ap_and_roc_auc_agree_with_scikit_learn_on_saved_scores(stress_run):
    metrics = pytest.importorskip("sklearn.metrics")
    for row in _rows(stress_run, "epoch"):
        saved = read_scores_csv(stress_run / "scores" / f"epoch-{row['epoch']:04d}.csv")
        assert (saved["labels"] == 1).sum() == row["n_fake"] and (saved["labels"] == 0).sum() == row["n_real"]
        assert row["roc_auc"] == pytest.approx(metrics.roc_auc_score(saved["labels"], saved["p_fake"]), abs=1e-9)
        assert row["average_precision"] == pytest.approx(
            metrics.average_precision_score(saved["labels"], saved["p_fake"]), abs=1e-9
        )
        assert row["disc_roc_auc"] == pytest.approx(
            metrics.roc_auc_score(saved["labels"], saved["discriminator_p_fake"]), abs=1e-9
        )
        fakes = saved["p_fake"][saved["labels"] == 1]
        assert row["detection_rate"] == pytest.approx(np.mean(fakes >= row["threshold"]))


def test_sweeps_at_the_strongest_and_last_epoch_report_both_rates(stress_run):
    from gan_lab.stress.run import strongest_epoch

    epochs = {row["epoch"]: row for row in _rows(stress_run, "epoch")}
    sweeps = _rows(stress_run, "sweep")
    expected = {strongest_epoch(list(epochs.values())), max(epochs)}
    assert {row["epoch"] for row in sweeps} == expected
    for row in sweeps:
        assert 0 <= row["detection_rate"] <= 1 and 0 <= row["reals_called_fake"] <= 1
        assert row["reals_called_fake_low"] <= row["reals_called_fake"] <= row["reals_called_fake_high"]
    for epoch in expected:
        points = {(row["perturbation"], row["level"]): row for row in sweeps if row["epoch"] == epoch}
        for point in (("blur", 0), ("rescale", 1), ("noise", 0)):
            for key in ("detection_rate", "reals_called_fake", "mean_p_fake", "average_precision", "roc_auc"):
                assert points[point][key] == pytest.approx(epochs[epoch][key], abs=1e-6), (point, key)
            # Unperturbed: the same verdicts image by image, so the paired tests find nothing at all.
            assert points[point]["sweep_fakes_p"] == points[point]["sweep_reals_p"] == 1.0
        # JPEG at quality 100 still rounds and requantises: close, not equal.
        assert points[("jpeg", 100)]["mean_p_fake"] == pytest.approx(epochs[epoch]["mean_p_fake"], abs=0.05)
        assert all(0 < row["sweep_fakes_p"] <= 1 and 0 < row["sweep_reals_p"] <= 1 for row in points.values())
    assert "McNemar on the same fakes" in (stress_run / "report.md").read_text()


def test_every_rate_ap_and_auc_has_an_interval_around_it(stress_run):
    for row in _rows(stress_run, "epoch"):
        for key in ("detection_rate", "reals_called_fake", "roc_auc", "average_precision", "disc_detection_rate"):
            assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"], key
        # 24 fakes cannot pin a rate down to a few points: the Wilson interval says so.
        assert row["detection_rate_high"] - row["detection_rate_low"] > 0.1
    report = (stress_run / "report.md").read_text()
    assert "Intervals are 95%" in report and "achieved here" in report


def test_quality_apart_from_the_detector_inception_and_faces(stress_run):
    reals = [row for row in read_json(stress_run / "results.json") if row["kind"] == "real"]
    assert len(reals) == 1 and 0 <= reals[0]["faces_found"] <= 1 and reals[0]["n_faces"] == reals[0]["n_real"]
    for row in _rows(stress_run, "epoch"):
        assert row["fid_inception"] >= 0 and np.isfinite(row["kid_inception"]) and row["n_inception"] == N
        assert row["faces_found_low"] <= row["faces_found"] <= row["faces_found_high"] and row["n_faces"] == N
    report = (stress_run / "report.md").read_text()
    assert "not Keras' published ImageNet weights" in report and "MTCNN finds a face" in report
    assert "KID (as the detector sees them)" in report
    assert "InceptionV3 weights from" in read_json(stress_run / "config.json")["resolved"]["quality"]["inception"]
    # SynthFaces reals are PNG files: the fakes are quantised to 8 bits as they are, and the reals re-stored so
    # are scored again (the format check).
    assert "Fakes are scored quantised to 8 bits" in report and "Format check: real test images" in report
    assert 0 <= reals[0]["format_check_p"] <= 1


def test_the_report_states_the_leakage_check(stress_run):
    report = (stress_run / "report.md").read_text()
    assert "## Leakage" in report and "None of the" in report and "training_images.csv" in report
    leakage = read_json(stress_run / "config.json")["resolved"]["leakage"]
    assert leakage["overlapping"] == 0 and leakage["gans"] and set(leakage["gans"].values()) == {"manifest"}


def test_report_plots_gallery_and_resolved_config(stress_run, gan_run):
    report = (stress_run / "report.md").read_text()
    assert "catches" in report and "dropout_dense" in report and "## Robustness" in report
    for name in ("plots/epochs.png", "plots/robustness.png", "plots/spectra.png", "plots/matrix.png", "gallery.png"):
        assert (stress_run / name).read_bytes()[:4] == b"\x89PNG", name
        assert name in report
    for sample in sorted((gan_run / "samples").glob("epoch-*.png")):
        assert (stress_run / "samples" / sample.name).read_bytes() == sample.read_bytes()
    config = read_json(stress_run / "config.json")
    assert config["epochs"] == [1, 2] and config["n"] == N
    assert config["resolved"]["feature_layer"] == "dropout_dense"


def test_fused_scorer_matches_separate_forward_passes(detector_run, gan_run):
    from detector.inference.predict import load_detector
    from gan_lab.stress.run import build_fused_scorer, generate_and_score

    detector = load_detector(detector_run)
    generator = load_generator(gan_run, 1)
    latents = seeded_latents(3, 1, 10, int(generator.input_shape[-1]), SCORING_STREAM)
    scorer = build_fused_scorer(generator, detector.model, detector.feature_layer(), load_discriminator(gan_run, 1))
    fused = generate_and_score(scorer, latents, detector.head, batch_size=4)
    pixels = np.asarray(generator(latents, training=False))
    np.testing.assert_allclose(fused.p_fake, detector.score(pixels), atol=1e-5)
    np.testing.assert_allclose(fused.features, detector.features(pixels), atol=1e-4)


def test_same_seed_same_scores_through_the_cli_and_offline_inception_leaves_columns_empty(
    stress_run, detector_run, gan_run, tmp_path, monkeypatch
):
    from gan_lab.cli import main
    from gan_lab.metrics import inception

    def offline(weights):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setattr(inception, "_build", offline)
    code = main(
        [
            "stress",
            "--detector",
            str(detector_run),
            "--gan",
            str(gan_run),
            "--n",
            str(N),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--no-sweeps",
            "--no-faces",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    (run_dir,) = tmp_path.glob("*-stress*")
    again = read_scores_csv(run_dir / "scores" / "epoch-0002.csv")
    first = read_scores_csv(stress_run / "scores" / "epoch-0002.csv")
    np.testing.assert_allclose(again["p_fake"], first["p_fake"], atol=1e-6)
    rows = read_json(run_dir / "results.json")
    assert [row["kind"] for row in rows] == ["real", "epoch"]
    assert rows[1]["fid_inception"] is None and rows[1]["faces_found"] is None
    report = (run_dir / "report.md").read_text()
    assert report.count("no InceptionV3 weights") == 1 and "download failed" in report


def test_registered_metrics_on_separable_scores():
    scores = EpochScores(
        epoch=1,
        threshold=0.7,
        fake_p_fake=np.array([0.9, 0.8, 0.6, 0.95]),
        real_p_fake=np.array([0.1, 0.2, 0.3]),
        discriminator_fake_p_fake=np.array([0.4, 0.4, 0.4, 0.4]),
        discriminator_real_p_fake=np.array([0.6, 0.6, 0.6]),
    )
    row = compute_metrics(scores, ("detection", "discriminator"))
    assert row["detection_rate"] == 0.75 and row["detection_rate_05"] == 1.0
    assert row["roc_auc"] == 1.0 and row["oracle_accuracy"] == 1.0 and row["reals_called_fake"] == 0.0
    assert row["disc_detection_rate"] == 0.0 and row["disc_roc_auc"] == 0.0


@pytest.mark.slow
def test_hardening_catches_more_held_out_fakes_of_its_epochs_and_recalibrates_batch_norm(
    detector_run, gan_run, tmp_path
):
    import keras

    from detector.data.datasets import run_index
    from detector.inference.predict import load_detector
    from gan_lab.stress.harden import hardening_fakes, recalibration_images

    config = StressConfig(
        detector=str(detector_run),
        gan=str(gan_run),
        n=16,
        batch_size=16,
        sweeps=False,
        inception=False,
        faces=False,
        harden=True,
        harden_epochs="2",
        name="hard",
    )
    run_dir = run_stress(config, runs_dir=tmp_path, progress=False)
    hardened = load_detector(run_dir / "hardened")
    assert hardened.size == 32 and 0 < hardened.threshold < 1
    assert read_json(run_dir / "hardened" / "config.json")["hardening"]["gan_epochs"] == [2]
    rows = [row for row in read_json(run_dir / "results.json") if row["kind"] == "epoch"]
    by = {(row["detector"], row["epoch"]): row for row in rows}
    assert sorted(by) == [("hardened", 1), ("hardened", 2), ("original", 1), ("original", 2)]
    # The scored fakes come from another latent stream than the ones hardening trained on: held out.
    before, after = by[("original", 2)], by[("hardened", 2)]
    assert after["detection_rate_low"] > before["detection_rate_high"]
    # Paired: the same fakes before and after, their changed verdicts counted and tested (McNemar).
    for epoch in (1, 2):
        b, a = by[("original", epoch)], by[("hardened", epoch)]
        assert a["newly_caught"] - a["newly_missed"] == round((a["detection_rate"] - b["detection_rate"]) * 16)
        assert 0 <= a["paired_p"] <= 1 and a["trained_on"] == (epoch == 2)
    assert by[("hardened", 2)]["paired_p"] < 0.05
    report = (run_dir / "report.md").read_text()
    assert "before and after" in report and "McNemar" in report
    assert (
        "On the epochs it trained on (2; 16 fakes" in report and "On epochs it never trained on (1; 16 fakes" in report
    )
    # BatchNorm statistics: the average over the fine-tuning mix's batches, as detector training sets them.
    model = keras.models.load_model(run_dir / "hardened" / "model.keras", compile=False)
    layer = model.get_layer("bn1")
    before_layer = keras.Model(model.input, layer.input)
    detector = load_detector(detector_run)
    index = run_index(detector.config, detector_run / "config.json")
    images = recalibration_images(
        index.splits["train"], hardening_fakes(gan_run, [2], 16, 0), 32, "resize", 512, seed=0
    )
    batch_means = [
        np.asarray(before_layer(images[start : start + 16])).mean(axis=(0, 1, 2)) for start in range(0, len(images), 16)
    ]
    np.testing.assert_allclose(np.asarray(layer.moving_mean), np.mean(batch_means, axis=0), rtol=1e-3, atol=1e-4)
    original = keras.models.load_model(detector_run / "model.keras", compile=False).get_layer("bn1")
    assert not np.allclose(np.asarray(original.moving_mean), np.asarray(layer.moving_mean), atol=1e-3)


def test_a_ranking_interval_holds_its_figure_when_every_resample_rounds_past_it(monkeypatch):
    import gan_lab.stress.epoch_metrics as stress_metrics

    # What a perfect separation gave: every resample's AP a rounding step above the figure itself.
    def beside(real_scores, fake_scores, threshold, resamples, seed):
        return {
            f"{name}_{end}": 1.5
            for name in ("roc_auc", "average_precision", "balanced_accuracy")
            for end in ("low", "high")
        }

    monkeypatch.setattr(stress_metrics, "bootstrap_intervals", beside)
    row = stress_metrics.detection_figures(np.array([0.9, 0.8]), np.array([0.1, 0.3]), 0.5)
    for key in ("roc_auc", "average_precision", "balanced_accuracy"):
        assert row[key] == 1.0 and (row[f"{key}_low"], row[f"{key}_high"]) == (1.0, 1.5), key


def test_memorisation_columns_follow_from_the_scored_fakes_and_the_gan_s_own_images(stress_run, gan_run):
    from detector.data.images import load_rgb
    from gan_lab.metrics.memorisation import memorisation_figures, nearest_reals
    from gan_lab.stress.leakage import memorisation_reals

    reals = memorisation_reals(gan_run, N, 0)
    assert len(reals.training) == len(reals.held_out) == N
    for row in _rows(stress_run, "epoch"):
        # The exported PNGs are the scored fakes: stored as 8-bit PNGs, as the SynthFaces reals are.
        files = sorted(
            (stress_run.parent / "exported").rglob(f"gan-epoch-{row['epoch']:04d}-*.png"),
            key=lambda path: int(path.stem.rsplit("-", 1)[1]),
        )
        fakes = np.stack([load_rgb(path) for path in files]).astype(np.float32) / 255.0
        expected = memorisation_figures(nearest_reals(fakes, reals.training, reals.held_out))
        for key in ("nearer_training", "nearer_training_low", "nearest_ratio", "near_copies", "n_memorisation"):
            assert row[key] == pytest.approx(expected[key], rel=1e-6), key
        # The permutation p-value draws its relabellings with the stress run's seed and the epoch.
        seeded = memorisation_figures(nearest_reals(fakes, reals.training, reals.held_out), seed=[0, row["epoch"]])
        assert row["memorisation_p"] == seeded["memorisation_p"] <= row["memorisation_p_holm"] <= 1
    report = (stress_run / "report.md").read_text()
    assert "## Memorisation" in report and "Memorisation check: no epoch" in report
    assert (stress_run / "closest_pairs.png").read_bytes()[:4] == b"\x89PNG" and "closest_pairs.png" in report


def test_the_report_flags_an_epoch_whose_fakes_sit_nearer_the_training_images():
    from gan_lab.stress.report import plain_reading

    def row(epoch, share, p):
        return {
            "kind": "epoch",
            "detector": "original",
            "epoch": epoch,
            "threshold": 0.5,
            "n_fake": 100,
            "detection_rate": 0.5,
            "reals_called_fake": 0.1,
            "average_precision": 0.8,
            "nearer_training": share,
            "memorisation_p_holm": p,
        }

    flagged = " ".join(plain_reading([row(1, 0.52, 0.9), row(2, 0.81, 1e-6)]))
    assert "**Memorisation: fakes sit nearer the GAN's training images" in flagged and "epoch 2: 81.0%" in flagged
    assert "epoch 1:" not in flagged.split("**Memorisation")[1].split("**")[0]
    calm = " ".join(plain_reading([row(1, 0.52, 0.9), row(2, 0.55, 0.6)]))
    assert "Memorisation check: no epoch" in calm and "nearest: epoch 2, 55.0%" in calm

"""The generalisation matrix: detectors down, fake sources across."""

import shutil

import numpy as np
import pytest

from detector.base.runs import read_json
from gan_lab.stress.inputs import StressConfig
from gan_lab.stress.matrix import read_matrix_csv
from gan_lab.stress.run import run_stress

N = 16


@pytest.fixture(scope="module")
def second_gan(synth_root, tmp_path_factory):
    """Another DCGAN with other generator options: BatchNorm in the generator and a shorter latent."""
    from gan_lab.gan.train import GanConfig, train_gan

    config = GanConfig(
        data=str(synth_root),
        size=32,
        epochs=1,
        batch_size=16,
        steps_per_epoch=3,
        grid_size=16,
        batch_norm=True,
        latent_dim=64,
        name="other",
        seed=1,
    )
    return train_gan(config, runs_dir=tmp_path_factory.mktemp("gan-runs"), progress=False)


@pytest.fixture(scope="module")
def second_detector(synth_root, tmp_path_factory):
    from detector.training.train import DetectorConfig, train_detector

    config = DetectorConfig(data=str(synth_root), model="small_cnn", size=32, epochs=1, batch_size=32, seed=1, name="s")
    return train_detector(config, runs_dir=tmp_path_factory.mktemp("detector-runs"), progress=False)


def _base(**options):
    return StressConfig(n=N, batch_size=16, sweeps=False, inception=False, faces=False, bootstrap=200, **options)


@pytest.mark.slow
def test_two_detectors_against_two_gans_and_their_training_fakes(
    detector_run, second_detector, gan_run, second_gan, tmp_path
):
    config = _base(detectors=(str(detector_run), str(second_detector)), gans=(str(gan_run), str(second_gan)))
    run_dir = run_stress(config, runs_dir=tmp_path, progress=False)
    rows = read_matrix_csv(run_dir / "matrix.csv")
    cells = [row for row in rows if row["source"] != "mean"]
    detectors = list(dict.fromkeys(row["detector"] for row in cells))
    sources = list(dict.fromkeys(row["source"] for row in cells))
    assert detectors == [detector_run.name, second_detector.name]
    assert sources == [f"{gan_run.name} @ 2", f"{second_gan.name} @ 1", "faces fakes (test split)"]
    assert len(cells) == 6 and {(row["detector"], row["source"]) for row in cells} == {
        (detector, source) for detector in detectors for source in sources
    }
    for row in cells:
        for key in ("balanced_accuracy", "average_precision"):
            assert 0 <= row[f"{key}_low"] <= row[key] <= row[f"{key}_high"] <= 1, (row["source"], key)
        assert row["n_fake"] == (N if row["source_kind"] == "gan" else 12) and row["n_real"] >= 2
    for detector in detectors:
        (mean,) = [row for row in rows if row["source"] == "mean" and row["detector"] == detector]
        own = [row["average_precision"] for row in cells if row["detector"] == detector]
        assert mean["average_precision"] == pytest.approx(np.mean(own), abs=1e-5)
    report = (run_dir / "report.md").read_text()
    assert "## Generalisation matrix" in report and f"| `{second_detector.name}` |" in report
    assert (run_dir / "plots" / "matrix.png").read_bytes()[:4] == b"\x89PNG"
    # The first detector's matrix cell at the GAN's last epoch is the epoch-by-epoch figure itself.
    (epoch_2,) = [row for row in read_json(run_dir / "results.json") if row["kind"] == "epoch" and row["epoch"] == 2]
    first = next(row for row in cells if row["detector"] == detector_run.name and row["source"].endswith("@ 2"))
    assert first["average_precision"] == pytest.approx(epoch_2["average_precision"], abs=1e-5)


@pytest.mark.slow
def test_a_folder_of_fakes_is_a_column_scored_like_the_same_images_elsewhere(
    detector_run, gan_run, synth_root, tmp_path
):
    folder = tmp_path / "their-fakes"
    shutil.copytree(synth_root / "test" / "fake", folder / "images")
    run_dir = run_stress(
        _base(detector=str(detector_run), gan=f"{gan_run}@1,2", fakes=(str(folder),)), tmp_path / "runs", False
    )
    cells = {row["source"]: row for row in read_matrix_csv(run_dir / "matrix.csv")}
    assert list(cells) == [
        f"{gan_run.name} @ 1",
        f"{gan_run.name} @ 2",
        "faces fakes (test split)",
        "their-fakes (folder)",
        "mean",
    ]
    # The same images, drawn in the same seeded order: the same figures.
    for key in ("balanced_accuracy", "average_precision", "detection_rate"):
        assert cells["their-fakes (folder)"][key] == pytest.approx(cells["faces fakes (test split)"][key])
    assert read_json(run_dir / "config.json")["fakes"] == [str(folder.resolve())]

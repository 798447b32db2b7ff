import csv
import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.base.runs import list_runs, read_json
from gan_lab.gan.checkpoints import list_checkpoints, load_discriminator, load_generator
from gan_lab.gan.report import read_history
from gan_lab.gan.train import GanConfig, restore_dcgan, run_config, train_gan

PNG = b"\x89PNG\r\n\x1a\n"
COLUMNS = ["epoch", "kimg", "d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake", "diversity", "faces_found"]


def _tiny(synth_root, **options):
    values = dict(
        data=str(synth_root), size=32, epochs=2, batch_size=8, steps_per_epoch=2, grid_size=4, name="t", seed=0
    )
    return GanConfig(**{**values, **options})


def test_run_directory_holds_every_file(gan_run):
    config = read_json(gan_run / "config.json")
    assert config["size"] == 32 and config["epochs"] == 2 and Path(config["data"]).is_dir()
    assert config["generator_filters"] == [256, 128, 64, 32] and config["parameters"]["generator"] > 0
    with open(gan_run / "history.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[: len(COLUMNS)] == COLUMNS
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for row in rows:
        assert 0 <= float(row["d_p_fake_real"]) <= 1 and 0 <= float(row["d_p_fake_fake"]) <= 1
        assert float(row["diversity"]) > 0 and np.isfinite(float(row["d_loss"])) and np.isfinite(float(row["g_loss"]))
        assert 0 <= float(row["faces_found"]) <= 1
    metrics = read_json(gan_run / "metrics.json")
    assert 0 < metrics["real_faces_found"] <= 1 and metrics["n_real_faces"] > 0  # MTCNN finds SynthFaces' faces
    assert np.load(gan_run / "latents.npy").shape == (16, 128)
    samples = sorted((gan_run / "samples").glob("epoch-*.png"))
    assert [path.name for path in samples] == ["epoch-0001.png", "epoch-0002.png"]
    for path in [*samples, gan_run / "plots" / "losses.png"]:
        assert path.read_bytes()[:8] == PNG, path
    with Image.open(gan_run / "progress.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2
    assert "epoch-0002.png" in (gan_run / "report.md").read_text()
    assert read_json(gan_run / "metrics.json")["epochs_trained"] == 2


def test_checkpoints_load_per_epoch(gan_run):
    assert sorted(list_checkpoints(gan_run)) == [1, 2]
    generator = load_generator(gan_run, 1)
    assert generator.input_shape == (None, 128) and generator.output_shape == (None, 32, 32, 3)
    assert load_discriminator(gan_run).output_shape == (None, 1)
    last, first = load_generator(gan_run), load_generator(gan_run, 1)
    assert not np.array_equal(last.get_layer("dense").get_weights()[0], first.get_layer("dense").get_weights()[0])
    gan = restore_dcgan(gan_run, 2)
    assert int(gan.d_optimizer.iterations) == 6 and int(gan.g_optimizer.iterations) == 6
    with pytest.raises(LabError, match=r"available epochs: \[1, 2\]"):
        load_generator(gan_run, 5)


def test_same_seed_same_losses(gan_run, synth_root, tmp_path):
    again = train_gan(dataclasses.replace(run_config(gan_run), name="again"), runs_dir=tmp_path, progress=False)
    first, second = read_history(gan_run), read_history(again)
    for key in ("d_loss", "g_loss", "d_p_fake_fake", "diversity"):
        np.testing.assert_allclose([row[key] for row in second], [row[key] for row in first], rtol=1e-5, err_msg=key)
    np.testing.assert_array_equal(np.load(again / "latents.npy"), np.load(gan_run / "latents.npy"))


class _Interrupt(keras.callbacks.Callback):
    """Stops training like Ctrl-C, part-way through the second epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_with_optimizer_state(synth_root, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train_gan(_tiny(synth_root), runs_dir=tmp_path, progress=False, callbacks=[_Interrupt()])
    (run_dir,) = list_runs(tmp_path, "gan")
    assert sorted(list_checkpoints(run_dir)) == [1]
    assert int(restore_dcgan(run_dir).g_optimizer.iterations) == 2

    assert train_gan(resume=run_dir, progress=False) == run_dir
    assert sorted(list_checkpoints(run_dir)) == [1, 2]
    gan = restore_dcgan(run_dir, 2)
    # Not reset on resume: two steps per epoch, two epochs.
    assert int(gan.d_optimizer.iterations) == 4 and int(gan.g_optimizer.iterations) == 4
    assert [row["epoch"] for row in read_history(run_dir)] == [1, 2]
    with Image.open(run_dir / "progress.gif") as gif:
        assert gif.n_frames == 2


def test_incomplete_checkpoint_is_ignored_and_replaced(gan_run, tmp_path):
    run_dir = tmp_path / gan_run.name
    shutil.copytree(gan_run, run_dir)
    broken = run_dir / "checkpoints" / "epoch-0003"
    broken.mkdir()
    shutil.copy(run_dir / "checkpoints" / "epoch-0002" / "generator.keras", broken / "generator.keras")
    (run_dir / "checkpoints" / ".epoch-0003.k3j2h1g0.partial").mkdir()
    assert sorted(list_checkpoints(run_dir)) == [1, 2]
    assert int(restore_dcgan(run_dir).g_optimizer.iterations) == 6  # the last complete epoch, 2

    train_gan(dataclasses.replace(run_config(run_dir), epochs=3), resume=run_dir, progress=False)
    assert sorted(list_checkpoints(run_dir)) == [1, 2, 3]
    assert not (run_dir / "checkpoints" / ".epoch-0003.k3j2h1g0.partial").exists()
    assert int(restore_dcgan(run_dir, 3).g_optimizer.iterations) == 9
    assert read_json(run_dir / "config.json")["epochs"] == 3

    # Fewer epochs than it has done: refused, and nothing of the run is touched.
    with pytest.raises(LabError, match="completed 3"):
        train_gan(dataclasses.replace(run_config(run_dir), epochs=2), resume=run_dir, progress=False)
    assert read_json(run_dir / "config.json")["epochs"] == 3
    assert sorted(list_checkpoints(run_dir)) == [1, 2, 3]


def test_learning_rates_ramp_down_over_the_run_and_stretch_when_it_is_extended(synth_root, tmp_path):
    config = _tiny(synth_root, epochs=4, lr_rampdown=0.75, d_learning_rate=4e-4, g_learning_rate=2e-4)
    run_dir = train_gan(config, runs_dir=tmp_path, progress=False)
    # 4 epochs of 2 steps: both rates ease down over the last 6 of the 8 steps.
    gan = restore_dcgan(run_dir, 2)  # after step 4, a third of the way down half a cosine
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(2e-4 * 0.75)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(4e-4 * 0.75)
    assert float(restore_dcgan(run_dir, 4).g_optimizer.learning_rate) == pytest.approx(0.0, abs=1e-12)

    train_gan(dataclasses.replace(config, epochs=8), resume=run_dir, progress=False)
    # Now 16 steps with the ramp over the last 12: after step 8 the rate is again 0.75 of the start.
    assert float(restore_dcgan(run_dir, 4).g_optimizer.learning_rate) == pytest.approx(2e-4 * 0.75)
    assert float(restore_dcgan(run_dir, 8).g_optimizer.learning_rate) == pytest.approx(0.0, abs=1e-12)


def test_spectral_norm_reaches_the_checkpoints_and_survives_a_resume(synth_root, tmp_path):
    config = _tiny(synth_root, epochs=1, spectral_norm=True)
    run_dir = train_gan(config, runs_dir=tmp_path, progress=False)
    assert read_json(run_dir / "config.json")["spectral_norm"] is True
    train_gan(dataclasses.replace(config, epochs=2), resume=run_dir, progress=False)
    for discriminator in (load_discriminator(run_dir, 1), restore_dcgan(run_dir, 2).discriminator):
        assert type(discriminator.get_layer("conv1")).__name__ == "SpectralNorm"
        assert type(discriminator.get_layer("fake_logit")).__name__ == "SpectralNorm"


def test_bad_options_are_refused_before_a_run_directory_exists(synth_root, tmp_path):
    for options, message in (
        (dict(size=40), "multiple of 16"),
        (dict(preset="seed128"), "size=32"),
        (dict(discriminator="vgg16"), "discriminator"),
        (dict(label_noise=0.6), "label_noise"),
        (dict(lr_rampdown=1.5), "lr_rampdown"),
        (dict(lr_rampdown=True), "lr_rampdown"),
        (dict(r1_gamma=float("inf")), "r1_gamma"),
        (dict(r1_interval=0), "r1_interval"),
        (dict(ema_rampup=0), "ema_rampup"),
        (dict(ema_rampup=1.5), "ema_rampup"),
        (dict(augment=None), "augment"),
        (dict(augment=("mixup",)), "augment"),
        (dict(collapse_fraction="half"), "collapse_fraction"),
        (dict(faces_n=-1), "faces_n"),
        (dict(data=str(tmp_path / "nowhere")), "nowhere"),
    ):
        with pytest.raises(LabError, match=message):
            train_gan(_tiny(synth_root, **options), runs_dir=tmp_path / "runs", progress=False)
    assert list_runs(tmp_path / "runs") == []


def test_cli_trains_resumes_and_reports_errors(synth_root, tmp_path, capsys):
    from gan_lab.cli import main

    common = [
        "--size",
        "32",
        "--batch-size",
        "8",
        "--steps-per-epoch",
        "2",
        "--grid-size",
        "4",
        "--runs-dir",
        str(tmp_path),
        "--quiet",
    ]
    assert main(["gan", "train", "--data", str(synth_root), "--epochs", "1", *common]) == 0
    (run_dir,) = list_runs(tmp_path, "gan")
    assert str(run_dir) in capsys.readouterr().out
    assert main(["gan", "train", "--resume", str(run_dir), "--epochs", "2", "--quiet"]) == 0
    assert sorted(list_checkpoints(run_dir)) == [1, 2]

    assert main(["gan", "train", "--data", str(tmp_path / "missing"), "--epochs", "1", *common]) == 2
    error = capsys.readouterr().err
    assert "gan-lab: error:" in error and "missing" in error


def test_a_run_in_training_refuses_a_second_trainer_until_it_ends(synth_root, tmp_path):
    refusals = []

    class ResumeMeanwhile(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            (run_dir,) = list_runs(tmp_path)
            with pytest.raises(LabError, match="being trained elsewhere") as refusal:
                train_gan(_tiny(synth_root, epochs=3), resume=run_dir, progress=False)
            refusals.append(str(refusal.value))

    run_dir = train_gan(_tiny(synth_root, epochs=1), runs_dir=tmp_path, progress=False, callbacks=[ResumeMeanwhile()])
    assert len(refusals) == 1 and str(run_dir) in refusals[0]
    assert read_json(run_dir / "config.json")["epochs"] == 1  # the refused resume changed nothing
    train_gan(_tiny(synth_root, epochs=2), resume=run_dir, progress=False)  # the lock went with the first training
    assert sorted(list_checkpoints(run_dir)) == [1, 2]


def test_a_run_from_before_an_option_existed_reads_and_resumes_as_it_trained(gan_run, synth_root, tmp_path):
    from detector.base.runs import write_json

    run_dir = shutil.copytree(gan_run, tmp_path / "00001-gan-old")  # two epochs, no spectral norm
    record = read_json(run_dir / "config.json")
    del record["spectral_norm"]  # written before --spectral-norm existed, when no discriminator had it
    del record["r1_interval"]  # and before --r1-interval, when R1 came on every step
    write_json(run_dir / "config.json", record)
    assert run_config(run_dir).spectral_norm is False and GanConfig().spectral_norm is True
    assert run_config(run_dir).r1_interval == 1 and GanConfig().r1_interval == 16
    # A config built today (as a quickstart builds its GAN step's) leaves the option at its default.
    given = GanConfig(**{name: record[name] for name in ("data", "size", "batch_size", "steps_per_epoch", "grid_size")})
    train_gan(dataclasses.replace(given, epochs=3, name="tiny", g_learning_rate=2e-4), resume=run_dir, progress=False)
    assert sorted(list_checkpoints(run_dir)) == [1, 2, 3]
    assert type(restore_dcgan(run_dir, 3).discriminator.get_layer("conv1")).__name__ == "Conv2D"


class _BrightFaces:
    """A face finder that finds a face in every image brighter than mid-grey, and keeps what it was shown."""

    shown: list = []

    def found(self, pixels):
        _BrightFaces.shown.append(np.array(pixels))
        return np.asarray(pixels).mean(axis=(1, 2, 3)) > 0.5


def test_each_epoch_counts_faces_in_the_ema_samples_of_its_own_latents(synth_root, tmp_path, monkeypatch):
    from gan_lab.gan.latents import FACES_STREAM, seeded_latents
    from gan_lab.gan.sample import generate

    monkeypatch.setattr("gan_lab.metrics.faces.FaceFinder", _BrightFaces)
    _BrightFaces.shown = []
    run_dir = train_gan(_tiny(synth_root, faces_n=6, diversity_n=4), runs_dir=tmp_path, progress=False)
    reals, *epochs = _BrightFaces.shown
    assert len(reals) == 6 and [len(pixels) for pixels in epochs] == [6, 6]
    latents = seeded_latents(0, 0, 6, 128, stream=FACES_STREAM)
    rows = read_history(run_dir)
    for row, shown in zip(rows, epochs):
        np.testing.assert_allclose(shown, generate(load_generator(run_dir, row["epoch"]), latents), atol=1e-6)
        assert row["faces_found"] == pytest.approx(np.mean(shown.mean(axis=(1, 2, 3)) > 0.5))
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["real_faces_found"] == pytest.approx(np.mean(reals.mean(axis=(1, 2, 3)) > 0.5))
    assert metrics["n_real_faces"] == 6
    best = max(reversed(rows), key=lambda row: row["faces_found"])
    assert metrics["most_faces_epoch"] == best["epoch"]
    assert "Faces found: the share of 6 fresh samples" in (run_dir / "report.md").read_text()


def test_without_a_face_finder_training_goes_on_and_says_why(synth_root, tmp_path, monkeypatch):
    class Broken:
        def __init__(self):
            raise ImportError("No module named 'mtcnn'")

    monkeypatch.setattr("gan_lab.metrics.faces.FaceFinder", Broken)
    with pytest.warns(RuntimeWarning, match="No faces_found figure this run: MTCNN could not start .*mtcnn"):
        run_dir = train_gan(_tiny(synth_root, epochs=1), runs_dir=tmp_path / "broken", progress=False)
    off = train_gan(_tiny(synth_root, epochs=1, faces_n=0), runs_dir=tmp_path / "off", progress=False)
    for run in (run_dir, off):
        assert np.isnan(read_history(run)[0]["faces_found"])
        assert read_json(run / "metrics.json")["real_faces_found"] is None
        assert "Faces found" not in (run / "report.md").read_text()

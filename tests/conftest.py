"""Shared fixtures: a private HOME for Keras and matplotlib, and tiny data and runs."""

import os
import tempfile

_home = tempfile.mkdtemp(prefix="gan-lab-test-home-")
os.environ["KERAS_HOME"] = os.path.join(_home, "keras")
os.environ["MPLCONFIGDIR"] = os.path.join(_home, "matplotlib")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small SynthFaces folder (32 px, easy) in the 140k layout."""
    from detector.data.synthfaces import write_dataset

    return write_dataset(
        tmp_path_factory.mktemp("synth") / "faces", n=240, size=32, seed=0, difficulty="easy", progress=False
    )


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def detector_run(synth_root, runs_dir):
    """A cnn3 detector trained for two epochs at 32 px."""
    from detector.training.train import DetectorConfig, train_detector

    config = DetectorConfig(data=str(synth_root), size=32, epochs=2, batch_size=32, name="tiny", seed=0)
    return train_detector(config, runs_dir=runs_dir, progress=False)


@pytest.fixture(scope="session")
def gan_run(synth_root, runs_dir):
    """A DCGAN trained for two short epochs at 32 px, checkpoints for both.

    Without spectral normalisation and with one learning rate: after six steps its fakes still
    fool the tiny detector often enough for hardening to have something to catch (with the
    defaults, that detector already catches every one).
    """
    from gan_lab.gan.train import GanConfig, train_gan

    config = GanConfig(
        data=str(synth_root),
        size=32,
        epochs=2,
        batch_size=16,
        steps_per_epoch=3,
        grid_size=16,
        name="tiny",
        seed=0,
        spectral_norm=False,
        g_learning_rate=2e-4,
    )
    return train_gan(config, runs_dir=runs_dir, progress=False)


@pytest.fixture(scope="session")
def inception_home(tmp_path_factory):
    """A KERAS_HOME whose cache holds an InceptionV3 (random weights) under the file name keras.applications uses."""
    import keras

    from gan_lab.metrics.inception import WEIGHTS_FILE

    home = tmp_path_factory.mktemp("keras-with-inception")
    keras.utils.set_random_seed(1)
    model = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg")
    (home / "models").mkdir(parents=True, exist_ok=True)
    model.save(home / "models" / WEIGHTS_FILE)
    return home


@pytest.fixture(scope="session")
def lab_runs(tmp_path_factory):
    """A runs folder with one run of each kind: a `--preset tiny` quickstart (detector, GAN, stress, quickstart)."""
    from gan_lab.apps.quickstart import QuickstartConfig, run_quickstart

    runs = tmp_path_factory.mktemp("lab-runs")
    run_quickstart(QuickstartConfig(preset="tiny", seed=0), runs_dir=runs, progress=False)
    return runs

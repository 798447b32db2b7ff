import socket

import numpy as np
import pytest

from detector.base.errors import LabError

# The smallest input each architecture takes; transfer backbones are built without weights.
MIN_SIZE = {"xception": 71}


def _batch(size, count=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, size, size, 3), dtype=np.float32), np.array([0, 1] * (count // 2), dtype=np.float32)


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails loudly, so a download cannot pass unnoticed."""

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _names():
    from detector.models.zoo import MODELS

    return sorted(MODELS)


@pytest.mark.parametrize("name", _names())
def test_every_architecture_builds_and_trains_one_step(name, no_network):
    import keras

    from detector.models.zoo import TRANSFER_MODELS, build_model, outputs_to_p_fake
    from detector.training.train import loss_for_head, metrics_for_head

    size = MIN_SIZE.get(name, 32)
    options = {"weights": None} if name in TRANSFER_MODELS else {}
    model = build_model(name, size=size, head="probability", **options)
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, 1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=loss_for_head("probability"),
        metrics=metrics_for_head("probability"),
    )
    images, labels = _batch(size)
    before = [weight.copy() for weight in model.get_weights()]
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert np.isfinite(logs["loss"]) and 0.0 <= logs["accuracy"] <= 1.0
    assert any(not np.array_equal(old, new) for old, new in zip(before, model.get_weights())), (
        "one step changed nothing"
    )
    p_fake = outputs_to_p_fake(model.predict(images, verbose=0), "probability")
    assert p_fake.shape == (4,) and np.all((p_fake >= 0) & (p_fake <= 1))


@pytest.mark.parametrize("head", ["probability", "logit", "softmax2"])
def test_every_head_trains_with_its_loss_and_metrics(head):
    import keras

    from detector.models.zoo import build_model, model_head, outputs_to_p_fake
    from detector.training.train import loss_for_head, metrics_for_head

    model = build_model("cnn3", size=32, head=head)
    assert model_head(model) == head
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss_for_head(head), metrics=metrics_for_head(head))
    images, labels = _batch(32, count=8)
    logs = model.train_on_batch(images, labels.astype("int32") if head == "softmax2" else labels, return_dict=True)
    assert np.isfinite(logs["loss"]) and set(logs) >= {"loss", "accuracy", "auc"}
    p_fake = outputs_to_p_fake(model.predict(images, verbose=0), head)
    assert p_fake.shape == (8,) and np.all((p_fake >= 0) & (p_fake <= 1))


def test_cnn3_parameter_counts_at_128_px():
    from detector.models.zoo import build_model

    assert build_model("cnn3", size=128, head="softmax2").count_params() == 1_666_882
    assert build_model("cnn3", size=128, head="probability").count_params() == 1_666_753
    assert build_model("cnn3", size=128, head="logit").count_params() == 1_666_753


def test_imagenet_weights_come_from_the_keras_cache_without_a_download(no_network):
    import keras

    from detector.models.zoo import build_model, imagenet_weights_file, keras_cache_dir

    # A stand-in for the real file: a randomly initialised backbone saved under the name
    # keras.applications caches its ImageNet weights under, in $KERAS_HOME/models/.
    keras.utils.set_random_seed(7)
    stand_in = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    cached = keras_cache_dir() / imagenet_weights_file("mobilenetv2", 96)
    assert cached.name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    cached.parent.mkdir(parents=True, exist_ok=True)
    stand_in.save(cached)
    try:
        keras.utils.set_random_seed(8)
        model = build_model("mobilenetv2", size=96, weights="imagenet")
    finally:
        cached.unlink()
    backbone = model.get_layer(stand_in.name)
    loaded, saved = backbone.get_weights(), stand_in.get_weights()
    assert len(loaded) == len(saved) > 100
    assert all(np.array_equal(a, b) for a, b in zip(loaded, saved)), "the cached weights were not loaded"


@pytest.fixture()
def offline(monkeypatch, no_network):
    """Keras's download fails as it does on a machine without internet."""
    import urllib.error

    from keras.src.utils import file_utils

    def fail(*args, **kwargs):
        raise urllib.error.URLError("no internet here")

    monkeypatch.setattr(file_utils, "urlretrieve", fail)


def test_a_failed_download_is_one_line_naming_the_file_the_cache_and_weights_none(
    offline, synth_root, tmp_path, capsys
):
    from detector.base.runs import list_runs
    from detector.models.zoo import build_model, keras_cache_dir
    from gan_lab.cli import main

    with pytest.raises(LabError) as error:
        build_model("mobilenetv2", size=32, weights="imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert "no internet here" in message
    assert f"put mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 in {keras_cache_dir()}/" in message
    assert "--weights none" in message
    with pytest.raises(LabError, match="Weights file not found.*nowhere.h5"):
        build_model("vgg16", size=32, weights=str(tmp_path / "nowhere.h5"))
    # The command line prints the same line, before a run directory is made.
    runs = tmp_path / "runs"
    command = ["detector", "train", "--data", str(synth_root), "--model", "vgg16", "--size", "32", "--epochs", "1"]
    assert main([*command, "--runs-dir", str(runs)]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("gan-lab: error: ImageNet weights for vgg16 could not be downloaded")
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in last_line and "--weights none" in last_line
    assert list_runs(runs) == []


def test_models_command_lists_every_architecture_with_its_size(capsys):
    from detector.models.zoo import MODELS
    from gan_lab.cli import main

    assert main(["detector", "models", "--size", "128", "--head", "softmax2"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert set(lines) == set(MODELS)
    assert "1,666,882" in lines["cnn3"]
    assert lines["xception"].split()[1] != "-"  # 128 px is enough for every backbone


def test_models_command_says_which_backbones_need_larger_inputs(capsys):
    from gan_lab.cli import main

    assert main(["detector", "models", "--size", "32"]) == 0
    out = capsys.readouterr().out
    xception = next(line for line in out.splitlines() if line.startswith("xception"))
    assert "71 px" in xception


def test_unfreezing_trains_the_top_of_a_backbone():
    from detector.models.zoo import build_model
    from detector.training.train import DetectorConfig, check_config

    frozen = build_model("mobilenetv2", size=32, weights=None)
    unfrozen = build_model("mobilenetv2", size=32, weights=None, trainable_layers=10)
    count = lambda model: sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)  # noqa: E731
    assert count(unfrozen) > count(frozen) > 0
    # The training config passes the option on to transfer models only.
    assert check_config(DetectorConfig(model="mobilenetv2", unfreeze=10, weights="none")).weights is None
    assert check_config(DetectorConfig(model="cnn3", unfreeze=10)).unfreeze == 0

"""Strategies, precisions and XLA: two logical CPUs for MirroredStrategy, two local workers for
MultiWorkerMirroredStrategy (each in fresh processes, see scaling_jobs.py), mixed_bfloat16 here."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.base.errors import LabError

JOBS = Path(__file__).with_name("scaling_jobs.py")
LOSSES = {"gan": ("d_loss", "g_loss", "d_p_fake_real", "d_p_fake_fake"), "detector": ("loss", "val_loss")}


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _job(*args, env=None, timeout=600) -> dict:
    done = subprocess.run(
        [sys.executable, str(JOBS), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return _result(done.stdout)


# --------------------------------------------------------------------------- options


def test_bad_scaling_options_are_refused_by_name():
    from detector.training.train import DetectorConfig, check_config
    from gan_lab.gan.train import GanConfig
    from gan_lab.gan.train import check_config as check_gan

    with pytest.raises(LabError, match="strategy must be one of"):
        check_config(DetectorConfig(strategy="tpu"))
    with pytest.raises(LabError, match="precision must be one of"):
        check_gan(GanConfig(precision="float16"))
    with pytest.raises(LabError, match="devices must be None unless strategy is 'mirrored'"):
        check_gan(GanConfig(devices=("/gpu:0",)))
    with pytest.raises(LabError, match="jit must be True or False"):
        check_config(DetectorConfig(jit="yes"))


def test_multiworker_without_a_cluster_says_what_it_needs_and_writes_nothing(monkeypatch, tmp_path):
    from gan_lab.gan.train import GanConfig, train_gan

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(LabError, match="TF_CONFIG"):
        train_gan(GanConfig(strategy="multiworker"), runs_dir=tmp_path, progress=False)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief"}}')
    with pytest.raises(LabError, match="TF_CONFIG must hold a cluster and this process's task"):
        train_gan(GanConfig(strategy="multiworker"), runs_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_mixed_float16_gan_scales_its_losses():
    import keras

    from detector.training.scaling import Scaling
    from gan_lab.gan.train import GanConfig, _new_dcgan, check_config

    config = check_config(GanConfig(size=32, precision="mixed_float16"))
    gan = _new_dcgan(config, Scaling.of(config), real_images=64)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert gan.generator.get_layer("dense").compute_dtype == "float16"
    assert gan.generator.output.dtype == "float32" and gan.discriminator.output.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the policy holds only while the models are made


# --------------------------------------------------------------------------- precision


def test_auto_precision_is_mixed_bfloat16_only_on_a_cpu_with_bfloat16_arithmetic(monkeypatch, tmp_path):
    from detector.training import scaling
    from gan_lab.apps.quickstart import QuickstartConfig
    from gan_lab.gan.train import GanConfig

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu sse2\n")
    assert scaling.cpu_has_bfloat16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512bw\nbugs\t: avx512_bf16\n")
    assert not scaling.cpu_has_bfloat16(cpuinfo)  # a flag only counts on the flags line
    assert not scaling.cpu_has_bfloat16(tmp_path / "missing")  # no /proc (macOS, Windows): float32

    monkeypatch.setattr(scaling, "_has_gpu", lambda: False)
    for has_bfloat16, expected in ((True, "mixed_bfloat16"), (False, "float32")):
        monkeypatch.setattr(scaling, "cpu_has_bfloat16", lambda has=has_bfloat16: has)
        assert scaling.resolve_precision("auto") == expected
        assert scaling.Scaling.of(GanConfig(precision="auto")).precision == expected
    assert scaling.resolve_precision("auto", strategy="multiworker") == "float32"  # every worker agrees
    monkeypatch.setattr(scaling, "_has_gpu", lambda: True)
    assert scaling.resolve_precision("auto") == "float32"
    assert scaling.resolve_precision("mixed_float16") == "mixed_float16"
    # The quickstart's default stays "auto" until a new quickstart starts (see the tiny quickstart's test).
    assert QuickstartConfig().precision == QuickstartConfig().resolved().precision == "auto"


def test_a_quickstart_recorded_before_precision_existed_resumes_in_float32(tmp_path):
    from detector.training.lifecycle import recorded_config
    from gan_lab.apps.quickstart import QuickstartConfig

    run_dir = tmp_path / "00001-quickstart"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"preset": "tiny", "seed": 3}))
    _, config, _ = recorded_config(run_dir, "quickstart", QuickstartConfig)
    assert (config.precision, config.seed) == ("float32", 3)


@pytest.mark.slow
def test_mixed_bfloat16_runs_train_with_finite_losses_and_predict_in_float32(synth_root, tmp_path, monkeypatch):
    from detector.inference.predict import load_detector
    from detector.training import scaling
    from detector.training.train import DetectorConfig, train_detector
    from gan_lab.gan.checkpoints import load_generator
    from gan_lab.gan.train import GanConfig, train_gan

    # "auto", on a machine where it means mixed_bfloat16: each run records what it trained in.
    monkeypatch.setattr(scaling, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(scaling, "_has_gpu", lambda: False)
    common = dict(data=str(synth_root), size=32, epochs=1, steps_per_epoch=3, batch_size=16, precision="auto")
    detector_dir = train_detector(DetectorConfig(**common, bn_recalibration=32), runs_dir=tmp_path, progress=False)
    gan_dir = train_gan(GanConfig(**common, diversity_n=8, grid_size=4), runs_dir=tmp_path, progress=False)
    for run_dir in (detector_dir, gan_dir):
        assert json.loads((run_dir / "config.json").read_text())["precision"] == "mixed_bfloat16"
    # Resumed with "auto" where it would now mean float32, the run keeps its own precision.
    monkeypatch.setattr(scaling, "cpu_has_bfloat16", lambda: False)
    more = GanConfig(**{**common, "epochs": 2}, diversity_n=8, grid_size=4)
    assert train_gan(more, runs_dir=tmp_path, resume=gan_dir, progress=False) == gan_dir

    detector = load_detector(detector_dir)
    assert detector.model.get_layer("conv1").compute_dtype == "bfloat16"
    scores = detector.model.predict(np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32), verbose=0)
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    generator = load_generator(gan_dir)
    assert generator.get_layer("dense").compute_dtype == "bfloat16"
    pixels = np.asarray(generator(np.zeros((2, 128), np.float32)))
    assert pixels.dtype == np.float32
    history = (gan_dir / "history.csv").read_text().splitlines()[1].split(",")
    assert all(np.isfinite(float(value)) for value in history)
    metrics = json.loads((detector_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["best_val_loss"])


# --------------------------------------------------------------------------- mirrored


@pytest.mark.slow
def test_quickstart_hands_its_scaling_to_every_step(tmp_path):
    from detector.base.runs import read_json
    from gan_lab.apps.quickstart import QuickstartConfig, run_quickstart

    config = QuickstartConfig(preset="tiny", strategy="mirrored", precision="mixed_bfloat16", stress_n=16)
    run_dir = run_quickstart(config, runs_dir=tmp_path, progress=False)
    state = read_json(run_dir / "state.json")
    for step in ("detector", "gan"):
        recorded = read_json(Path(state[step]) / "config.json")
        assert (recorded["strategy"], recorded["precision"]) == ("mirrored", "mixed_bfloat16"), step
    assert read_json(Path(state["stress"]) / "config.json")["strategy"] == "mirrored"
    assert (run_dir / "report.md").is_file()


@pytest.mark.slow
def test_two_mirrored_devices_train_what_one_device_does_and_resume(tmp_path):
    result = _job("mirrored", tmp_path)
    one, two = result["default"], result["mirrored"]
    assert len(two["gan"]) == len(one["gan"]) == len(two["detector"]) == len(one["detector"]) == 2
    # The GAN's discriminator runs in inference mode, and its lazy R1 penalty comes on the same steps.
    for single, mirrored in zip(one["gan"], two["gan"]):
        for name in LOSSES["gan"]:
            assert mirrored[name] == pytest.approx(single[name], abs=1e-4), name
    # The detector's synchronized BatchNorm sums squares over replicas (one pass) where one device
    # takes the variance in two passes: its first epoch agrees to rounding, amplified by small batches.
    for name in LOSSES["detector"]:
        assert two["detector"][0][name] == pytest.approx(one["detector"][0][name], rel=1e-2), name
    assert result["generator_output"] == [None, 32, 32, 3]
    odd_batch, float16 = result["refused"]
    assert "batch_size must split evenly over the 2 replicas" in odd_batch
    assert "mixed_float16' trains on one replica only" in float16
    # The stress harness splits each batch of fakes over the replicas and keeps their order.
    assert result["stress_p_fake"]["mirrored"] == pytest.approx(result["stress_p_fake"]["default"], abs=1e-5)
    resumed = result["resumed_gan"]
    assert [row["epoch"] for row in resumed] == [1, 2, 3]
    assert resumed[:2] == two["gan"]  # the first two epochs kept as they were
    config = json.loads((Path(two["gan_dir"]) / "config.json").read_text())
    assert config["strategy"] == "mirrored" and config["devices"] == ["/cpu:0", "/cpu:1"]
    assert (config["r1_gamma"], config["r1_interval"]) == (1.0, 2)


# --------------------------------------------------------------------------- multiworker


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _cluster(runs_dir: Path, kind: str, scratch: Path, *extra) -> list[dict]:
    """Two workers on 127.0.0.1 training one `kind` run; worker 1's temporary folder is `scratch`."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
        )
        if index == 1:
            env["TMPDIR"] = str(scratch)
        processes.append(
            subprocess.Popen(
                [sys.executable, str(JOBS), "worker", str(runs_dir), kind, *map(str, extra)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, stderr[-4000:]
            results.append((_result(stdout), stdout))
    finally:
        for process in processes:
            process.kill()
    return results


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gan", "detector"])
def test_two_workers_write_one_run_and_resume_it(tmp_path, kind):
    from gan_lab.gan.checkpoints import list_checkpoints, load_generator

    runs_dir, scratch = tmp_path / "runs", tmp_path / "worker-tmp"
    scratch.mkdir()
    (chief, chief_out), (other, other_out) = _cluster(runs_dir, kind, scratch)
    assert other["run_dir"] is None and "training in step with the chief" in other_out
    run_dir = Path(chief["run_dir"])
    assert [path.name for path in runs_dir.iterdir() if path.name[0].isdigit()] == [run_dir.name]
    assert list(scratch.iterdir()) == []  # the other worker's copies are gone
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + 2
    if kind == "gan":
        assert sorted(list_checkpoints(run_dir)) == [1, 2]
        assert load_generator(run_dir).output_shape == (None, 32, 32, 3)
        (chief, _), (other, _) = _cluster(runs_dir, kind, scratch, "--resume", run_dir, "--epochs", 3)
        assert Path(chief["run_dir"]) == run_dir and other["run_dir"] is None
        assert sorted(list_checkpoints(run_dir)) == [1, 2, 3]
        assert (run_dir / "history.csv").read_text().splitlines()[:3] == rows
        assert list(scratch.iterdir()) == []
    else:
        from detector.inference.predict import load_detector

        assert load_detector(run_dir).model.output_shape == (None, 1)
        assert (run_dir / "report.md").is_file()

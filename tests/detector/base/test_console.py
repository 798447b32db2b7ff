"""What a person reads: no TensorFlow start-up lines unless asked, one line per epoch in a log, live bars in a terminal."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

GAN_LAB = Path(sys.executable).with_name("gan-lab")
# As TensorFlow 2.21 prints them while it loads (TF_CPP_MIN_LOG_LEVEL does not reach them).
STARTUP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795462787.657992   19745 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1795462787.704413   19745 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
]


def _command(*args, verbose=False):
    """Run the console script with output to pipes (not a terminal), as a CI job or `> log` would."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = [str(GAN_LAB), *(["--verbose"] if verbose else []), *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


def test_startup_lines_are_told_apart_from_errors_and_our_own_output():
    from detector.base.console import is_startup_line

    assert all(is_startup_line(line + "\n") for line in STARTUP_LINES)
    assert not is_startup_line("E0000 00:00:1795462787.657992   19745 cuda_dnn.cc:8310] Unable to register cuDNN")
    assert not is_startup_line("gan-lab: error: /tmp/x is not a detector run directory")
    assert not is_startup_line("Scoring: 100%|##########| 1/1 [00:00<00:00,  5.67batch/s]")


def test_training_into_a_log_prints_one_line_per_epoch_and_no_tensorflow_startup_lines(synth_root, tmp_path):
    result = _command(
        "detector", "train", "--data", str(synth_root), "--size", "32", "--epochs", "2", "--batch-size", "32",
        "--runs-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for output in (result.stdout, result.stderr):
        assert "oneDNN" not in output and "absl" not in output and "cpu_feature_guard" not in output
        assert "\x1b[" not in output and "\b" not in output and "━" not in output  # no Keras step bar
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert [line.split(" - ")[0] for line in epoch_lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert all("loss: " in line and "val_loss: " in line for line in epoch_lines)
    assert len(result.stdout.splitlines()) < 30


def test_verbose_shows_tensorflow_startup_lines(detector_run, tmp_path):
    image = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 128, dtype=np.uint8)).save(image)
    command = ("detector", "predict", str(detector_run), str(image), "--out", str(tmp_path / "p.csv"))
    verbose, quiet = _command(*command, verbose=True), _command(*command)
    assert verbose.returncode == quiet.returncode == 0, verbose.stderr + quiet.stderr
    assert "absl::InitializeLog" in verbose.stderr  # TensorFlow's own start-up lines, shown
    assert "oneDNN" not in quiet.stderr and "absl" not in quiet.stderr
    assert str(image) in quiet.stdout  # our own output is untouched


def test_fit_shows_keras_bar_in_a_terminal_and_epoch_lines_elsewhere(monkeypatch, capsys):
    import keras

    from detector.training.progress import EpochLines, fit_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert fit_progress(False) == (0, [])
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert fit_progress(True) == (1, [])  # Keras's own live bar
    monkeypatch.undo()

    verbose, callbacks = fit_progress(True)  # stdout captured by pytest: not a terminal
    assert verbose == 0 and [type(callback) for callback in callbacks] == [EpochLines]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((64, 3), dtype="float32"), np.zeros((64, 1), dtype="float32")
    model.fit(x, y, epochs=3, batch_size=8, validation_data=(x, y), verbose=verbose, callbacks=callbacks)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3 - ") and lines[2].startswith("Epoch 3/3 - ")
    assert lines[0].split(" - ")[2:4] == ["loss: 0.0000", "val_loss: 0.0000"]


def test_a_bar_outside_a_terminal_writes_a_few_lines_not_one_per_update():
    from detector.base.console import progress_bar

    log = io.StringIO()
    for _ in progress_bar(range(5000), desc="Scoring", file=log):
        pass
    updates = [part for part in log.getvalue().replace("\r", "\n").splitlines() if part.strip()]
    assert 1 <= len(updates) <= 3 and "5000/5000" in updates[-1]

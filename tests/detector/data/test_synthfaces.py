"""SynthFaces: rendering, folder layout, determinism, metadata, difficulty and learnability."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from detector.base.errors import LabError
from detector.data.synthfaces import (
    ARTIFACTS,
    DIFFICULTIES,
    ensure_synthfaces,
    read_metadata,
    render_faces,
    resolve_data,
    write_dataset,
)


def _files(root):
    return sorted(
        os.path.relpath(os.path.join(directory, name), root) for directory, _, names in os.walk(root) for name in names
    )


def test_render_faces_shapes_dtype_and_metadata():
    images, metadata = render_faces(6, size=32, seed=3, fake=True, difficulty="easy")
    assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
    assert images.min() < 60 and images.max() > 180  # real contrast, not a flat image
    assert len(metadata) == 6
    assert all(entry["label"] == 1 and entry["class_name"] == "fake" for entry in metadata)
    assert all(set(entry["artifacts"]) <= set(ARTIFACTS) and entry["artifacts"] for entry in metadata)
    real, real_metadata = render_faces(4, size=40, seed=3)
    assert real.shape == (4, 40, 40, 3)
    assert all(entry["label"] == 0 and entry["artifacts"] == {} for entry in real_metadata)


def test_render_faces_does_not_depend_on_batching():
    many, _ = render_faces(5, size=32, seed=7)
    few, _ = render_faces(2, size=32, seed=7)
    np.testing.assert_array_equal(many[:2], few)
    assert not np.array_equal(many[0], many[1])
    other, _ = render_faces(2, size=32, seed=8)
    assert not np.array_equal(other, few)


def test_write_dataset_layout_metadata_and_determinism(tmp_path):
    first = write_dataset(tmp_path / "a", n=40, size=32, seed=1, difficulty="medium", progress=False)
    files = [name for name in _files(first) if name.endswith(".png")]
    assert len(files) == 40
    for split, expected in (("train", 16), ("valid", 2), ("test", 2)):
        for class_name in ("real", "fake"):
            names = os.listdir(first / split / class_name)
            assert len(names) == expected
            assert all(name.startswith(f"{class_name}_") and len(name) == len("real_000000.png") for name in names)
    rows = read_metadata(first)
    assert sorted(row["file"] for row in rows) == sorted(name.replace(os.sep, "/") for name in files)
    for row in rows:
        strengths = [row[name] for name in ARTIFACTS]
        assert row["label"] == (1 if row["class_name"] == "fake" else 0)
        assert row["file"].startswith(f"{row['split']}/{row['class_name']}/")
        assert (max(strengths) > 0) == (row["label"] == 1)
    with open(first / "metadata.csv", newline="") as handle:
        assert next(csv.reader(handle)) == ["file", "split", "label", "class_name", "difficulty", *ARTIFACTS]

    again = write_dataset(tmp_path / "b", n=40, size=32, seed=1, difficulty="medium", progress=False)
    other = write_dataset(tmp_path / "c", n=40, size=32, seed=2, difficulty="medium", progress=False)
    assert _files(again) == _files(first)
    for name in _files(first):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    differing = [name for name in files if (first / name).read_bytes() != (other / name).read_bytes()]
    assert len(differing) == len(files)


def test_difficulty_sets_artifact_strength():
    mean_strength = {}
    for difficulty in DIFFICULTIES:
        _, metadata = render_faces(24, size=32, seed=0, fake=True, difficulty=difficulty)
        mean_strength[difficulty] = np.mean([value for entry in metadata for value in entry["artifacts"].values()])
    assert mean_strength["easy"] > mean_strength["medium"] > mean_strength["hard"] > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"size": 16}, "size"),
        ({"size": 300}, "size"),
        ({"n": 4}, "n="),
        ({"difficulty": "extreme"}, "difficulty"),
        ({"split": (0.5, 0.1, 0.1)}, "split"),
        ({"split": (0.0, 0.5, 0.5)}, "split"),
    ],
)
def test_write_dataset_rejects_bad_arguments(tmp_path, arguments, message):
    options = {"n": 12, "size": 32, "progress": False, **arguments}
    with pytest.raises(ValueError, match=f"{message}.*Received|Received.*{message}"):
        write_dataset(tmp_path / "faces", **options)
    assert not (tmp_path / "faces").exists()


def test_render_faces_rejects_bad_size():
    with pytest.raises(ValueError, match="Received: size=20"):
        render_faces(2, size=20)


def test_ensure_synthfaces_writes_once_and_leaves_no_temporary_folder(tmp_path):
    root = ensure_synthfaces(tmp_path, n=12, size=32, seed=0, difficulty="easy")
    assert root == tmp_path / "synthfaces-32px-n12-seed0-easy"
    assert len(read_metadata(root)) == 12
    marker = root / "train" / "real" / "real_000000.png"
    written = marker.stat().st_mtime_ns
    assert ensure_synthfaces(tmp_path, n=12, size=32, seed=0, difficulty="easy") == root
    assert marker.stat().st_mtime_ns == written  # reused, not rewritten
    assert sorted(os.listdir(tmp_path)) == [root.name]


def test_resolve_data(tmp_path):
    root = resolve_data("synth", runs_dir=tmp_path, size=32, n=12, seed=0, difficulty="easy")
    assert root == tmp_path / "synthfaces" / "synthfaces-32px-n12-seed0-easy"
    assert resolve_data(str(root)) == root
    with pytest.raises(LabError, match="nowhere"):
        resolve_data(str(tmp_path / "nowhere"))


def _spectral_features(images):
    """Log power in radial bands plus the Nyquist row, column and corner of the grey image's spectrum."""
    grey = images.astype(np.float32).mean(axis=-1) / 255.0
    power = np.abs(np.fft.fft2(grey)) ** 2
    size = grey.shape[1]
    frequency = np.abs(np.fft.fftfreq(size))
    radius = np.sqrt(frequency[None, :] ** 2 + frequency[:, None] ** 2)
    bands = [power[:, (radius >= low) & (radius < low + 0.0625)].mean(axis=1) for low in np.arange(0.0, 0.7, 0.0625)]
    half = size // 2
    nyquist = [power[:, half, :].mean(axis=1), power[:, :, half].mean(axis=1), power[:, half, half]]
    return np.log(np.stack(bands + nyquist, axis=1) + 1e-9)


def _labelled_features(seed, n, difficulty):
    real, _ = render_faces(n, size=32, seed=seed, difficulty=difficulty)
    fake, _ = render_faces(n, size=32, seed=seed, fake=True, difficulty=difficulty)
    return _spectral_features(np.concatenate([real, fake])), np.r_[np.zeros(n), np.ones(n)]


def test_easy_fakes_are_learnable_from_the_spectrum():
    train_features, train_labels = _labelled_features(seed=1, n=100, difficulty="easy")
    test_features, test_labels = _labelled_features(seed=2, n=100, difficulty="easy")
    mean, deviation = train_features.mean(axis=0), train_features.std(axis=0) + 1e-6
    train_features, test_features = (train_features - mean) / deviation, (test_features - mean) / deviation
    weights, bias = np.zeros(train_features.shape[1]), 0.0
    for _ in range(300):  # logistic regression by gradient descent
        error = 1.0 / (1.0 + np.exp(-(train_features @ weights + bias))) - train_labels
        weights -= 0.1 * (train_features.T @ error / len(error) + 1e-2 * weights)
        bias -= 0.1 * error.mean()
    accuracy = np.mean((test_features @ weights + bias > 0) == test_labels)
    assert accuracy > 0.8  # 200 unseen images: chance is 0.5 with a standard deviation of 0.035


def test_small_data_set_fills_every_split_and_refuses_a_used_folder(tmp_path):
    root = write_dataset(tmp_path / "faces", n=6, size=32, seed=0, progress=False)
    for split in ("train", "valid", "test"):
        assert len(os.listdir(root / split / "real")) == 1 and len(os.listdir(root / split / "fake")) == 1
    with pytest.raises(LabError, match="faces"):
        write_dataset(root, n=6, size=32, seed=0, progress=False)


def test_module_does_not_import_tensorflow():
    code = "import sys, detector.data.synthfaces; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

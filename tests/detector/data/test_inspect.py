import json

import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.data.inspect import format_inspection, inspect_folder


def make_folder(root, real: int, fake: int):
    for class_name, count, color in (("real", real, (20, 40, 60)), ("fake", fake, (200, 100, 50))):
        folder = root / class_name
        folder.mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (30, 24), color).save(folder / f"{index}.png")
    Image.new("L", (48, 48), 128).save(root / "real" / "gray.jpg")
    (root / "fake" / "broken.jpg").write_bytes(b"")
    return root


def test_inspect_counts_sizes_modes_and_writes_files(tmp_path):
    root = make_folder(tmp_path / "faces", real=9, fake=3)
    result = inspect_folder(root)
    assert result["layout"] == "real_fake"
    assert result["counts"]["total"] == {"real": 10, "fake": 4}
    assert sum(result["counts"][name]["fake"] for name in ("train", "valid", "test")) == 4
    assert result["sizes"] == {"30x24": 12, "48x48": 1}
    assert result["modes"] == {"RGB": 12, "L": 1}
    assert result["unreadable"] == [str(root / "fake" / "broken.jpg")]
    assert any("total: 10 real vs 4 fake" in note for note in result["imbalance"])
    out = root / "_inspect"
    assert result["out_dir"] == str(out)
    for name in ("counts.png", "samples_real.png", "samples_fake.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width >= 64
    assert json.loads((out / "inspect.json").read_text())["counts"]["total"]["real"] == 10
    report = format_inspection(result)
    assert "class imbalance" in report and str(out) in report and "30x24 (12)" in report


def test_inspect_balanced_real_only_and_custom_out(tmp_path):
    balanced = inspect_folder(make_folder(tmp_path / "balanced", real=9, fake=12), tmp_path / "report")
    assert balanced["imbalance"] == [] and (tmp_path / "report" / "counts.png").is_file()
    flat = tmp_path / "flat"
    flat.mkdir()
    for index in range(3):
        Image.new("RGB", (16, 16), (index, 0, 0)).save(flat / f"{index}.png")
    result = inspect_folder(flat)
    assert result["layout"] == "real_only" and result["counts"]["total"] == {"real": 3, "fake": 0}
    assert (flat / "_inspect" / "samples_real.png").is_file() and not (flat / "_inspect" / "samples_fake.png").exists()
    # Inspecting again does not count the inspection's own pictures as data.
    assert inspect_folder(flat)["counts"]["total"]["real"] == 3


def test_inspect_names_a_missing_folder(tmp_path):
    with pytest.raises(LabError, match="not found: .*nowhere"):
        inspect_folder(tmp_path / "nowhere")


def test_inspect_names_every_unreadable_truncated_or_tiny_file(tmp_path):
    root = make_folder(tmp_path / "faces", real=4, fake=4)
    (root / "real" / "text.png").write_bytes(b"not an image at all")
    whole = root / "fake" / "whole.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(whole)
    (root / "fake" / "cut.png").write_bytes(whole.read_bytes()[:-40])
    Image.new("RGB", (80, 80), (9, 9, 9)).save(root / "real" / "full.jpg")
    (root / "real" / "cut.jpg").write_bytes((root / "real" / "full.jpg").read_bytes()[:-300])
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "real" / "dot.png")
    result = inspect_folder(root, size=64)
    named = {name.rsplit("/", 1)[-1] for name in result["unreadable"]}
    assert named == {"broken.jpg", "text.png", "cut.png", "cut.jpg"}
    assert "truncated JPEG" in result["unreadable_reasons"][str(root / "real" / "cut.jpg")]
    assert [entry.rsplit("/", 1)[-1] for entry in result["too_small"] if "dot.png" in entry] == ["dot.png: 1x1"]
    report = format_inspection(result)
    for name in ("broken.jpg", "text.png", "cut.png", "cut.jpg", "dot.png"):
        assert name in report

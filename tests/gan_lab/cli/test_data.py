import pytest
from PIL import Image

from gan_lab.cli import main


def test_synth_then_inspect(tmp_path, capsys):
    out = tmp_path / "faces"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--n",
                "40",
                "--size",
                "32",
                "--seed",
                "3",
                "--difficulty",
                "easy",
                "--split",
                "0.5,0.25,0.25",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert str(out) in printed and "metadata" in printed
    pngs = sorted(out.glob("*/*/*.png"))
    assert len(pngs) == 40
    assert len(list(out.glob("train/real/*.png"))) == 10 and len(list(out.glob("test/fake/*.png"))) == 5
    with Image.open(pngs[0]) as image:
        assert image.size == (32, 32)

    assert main(["data", "inspect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "layout: 140k" in printed and "32x32 (40)" in printed
    assert str(out / "_inspect") in printed
    assert (out / "_inspect" / "counts.png").is_file() and (out / "_inspect" / "samples_fake.png").is_file()


def test_inspect_errors_are_printed_not_raised(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "real" / "a.png")
    (tmp_path / "fake").mkdir()
    assert main(["data", "inspect", str(tmp_path)]) == 2
    assert f"{tmp_path / 'fake'} has no images" in capsys.readouterr().err
    assert main(["data", "inspect", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_synth_rejects_a_bad_split(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path / "x"), "--split", "0.8,0.3,0.1"])
    assert "summing to 1" in capsys.readouterr().err


def test_synth_refuses_too_few_images_and_a_used_folder(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "few"), "--n", "2", "--no-progress"]) == 2
    assert "n=2" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["data", "synth", "--out", str(used), "--n", "20", "--no-progress"]) == 2
    assert str(used) in capsys.readouterr().err and (used / "keep.txt").read_text() == "mine"


def test_outputs_that_cannot_be_created_get_a_one_line_error(gan_run, capsys):
    from gan_lab.cli import main

    assert main(["data", "synth", "--out", "/proc/gan-lab-nope", "--n", "12", "--size", "32"]) == 2
    assert main(["gan", "sample", str(gan_run), "--n", "2", "--out", "/proc/gan-lab-nope"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("Cannot create the folder --out /proc/gan-lab-nope" in line for line in errors)

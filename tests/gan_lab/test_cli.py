import subprocess
import sys

import pytest

from gan_lab.cli import build_parser, main

COMMANDS = {
    ("data", "synth"),
    ("data", "inspect"),
    ("detector", "models"),
    ("detector", "train"),
    ("detector", "evaluate"),
    ("detector", "predict"),
    ("detector", "explain"),
    ("gan", "train"),
    ("gan", "sample"),
    ("stress",),
    ("quickstart",),
    ("serve",),
    ("video",),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: gan-lab " + " ".join(command) in capsys.readouterr().out


def test_every_parser_sets_a_handler():
    parser = build_parser()
    minimal = {
        ("data", "synth"): ["--out", "x"],
        ("data", "inspect"): ["x"],
        ("detector", "evaluate"): ["x"],
        ("detector", "predict"): ["x", "y"],
        ("detector", "explain"): ["x", "y"],
        ("gan", "sample"): ["x", "--out", "y"],
        ("stress",): ["--detector", "x", "--gan", "y"],
        ("serve",): ["x"],
        ("video",): ["x", "--source", "0"],
    }
    for command in COMMANDS:
        args = parser.parse_args([*command, *minimal.get(command, [])])
        assert callable(args.handler), command


def test_console_script_reports_lab_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gan_lab.cli", "data", "inspect", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "gan-lab: error:" in result.stderr and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_gan_command_knows_the_augmentation_names_without_tensorflow():
    from gan_lab.cli.gan import AUGMENT_POLICIES
    from gan_lab.dcgan import AUGMENT_POLICIES as MODEL_POLICIES

    assert AUGMENT_POLICIES == MODEL_POLICIES

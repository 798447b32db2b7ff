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
        ("serve",): ["x"],
        ("video",): ["x", "--source", "0"],
    }
    for command in COMMANDS:
        args, rest = parser.parse_known_args([*command, *minimal.get(command, [])])
        assert callable(args.handler), command
        assert not rest or args.takes_rest, command


def test_console_script_reports_lab_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gan_lab.cli", "data", "inspect", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "gan-lab: error:" in result.stderr and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_of_a_run_command_needs_no_tensorflow():
    code = "import sys; from gan_lab.cli import main\ntry: main(['gan', 'train', '--help'])\nexcept SystemExit: pass\nprint('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "--d-learning-rate" in result.stdout and result.stdout.strip().endswith("False")

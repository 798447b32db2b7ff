"""The README is a guide a new user follows: every command it shows exists and takes the options it shows.

The quickstart's `--preset tiny` runs whole in tests/gan_lab/apps/test_quickstart.py; here each
`gan-lab ...` line runs with `--help`, and each `--option` on it must be in that help.
"""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
GROUPS = ("data", "detector", "gan")


def _commands() -> list[str]:
    """Every `gan-lab ...` line of the README's code blocks, continuation lines joined."""
    lines, joined = README.read_text(encoding="utf-8").splitlines(), []
    for line in lines:
        if line.startswith("    ") and joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        elif line.startswith("    "):
            joined.append(line.strip())
    commands = []
    for line in joined:
        match = re.search(r"(?:^|\s)gan-lab\s.*", line)
        if match and not line.startswith("#"):
            commands.append(match.group(0).strip().split("  #")[0].strip())
    return commands


def _subcommand(command: str) -> list[str]:
    words = command.split()[1:]
    return words[:2] if words[0] in GROUPS else words[:1]


def test_the_readme_shows_the_main_commands():
    shown = {" ".join(_subcommand(command)) for command in _commands()}
    for expected in ("quickstart", "detector import", "detector export", "stress", "serve", "gan train"):
        assert expected in shown
    makefile = (README.parent / "Makefile").read_text()
    assert "make demo" in README.read_text() and re.search(r"(?m)^demo:", makefile)
    assert "make test" in README.read_text() and re.search(r"(?m)^test:", makefile)


@pytest.mark.parametrize("command", _commands())
def test_every_readme_command_takes_the_options_it_shows(command, capsys):
    from gan_lab.cli import main

    with pytest.raises(SystemExit) as leaving:
        main([*_subcommand(command), "--help"])
    assert leaving.value.code == 0, command
    help_text = capsys.readouterr().out
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command):
        assert option in help_text, f"{command!r}: {option} is not an option of this command"

"""Run options on the command line, generated from each run's config dataclass.

Every field of a run config becomes `--field-name`, with its type, default and comment as
help, by tyro: it reads the dataclasses the API already has (comments included), so the
command line cannot drift from them, and it handles Literal choices, tuples and optional
values that hand-kept argparse would each need code for. Defaults are layered:

    the dataclass  <  the resumed run's config.json (--resume)  <  --config FILE  <  the command line
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import tyro

from detector.base.errors import LabError
from detector.base.runs import require_run_dir


@dataclasses.dataclass
class RunOptions:
    """Where the run goes and how it talks."""

    config: str | None = None  # a JSON file of options (a run's config.json works); the command line overrides it
    runs_dir: str = "runs"  # where run directories go
    quiet: bool = False  # no progress bars


@dataclasses.dataclass
class ResumableRunOptions(RunOptions):
    """Where the run goes, how it talks, and which interrupted run it continues."""

    # Continue this run directory after its last complete epoch: its config.json decides,
    # options that contradict it are refused, --epochs sets a new total.
    resume: str | None = None


def options_from_file(path: str | Path, config_class: type) -> dict[str, Any]:
    """The options a JSON file gives for `config_class` (keys it does not know are left out)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabError(f"--config {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LabError(f"--config {path} is not a readable JSON file: {error}") from None
    if not isinstance(values, dict):
        raise LabError(f"--config {path} must hold a JSON object of options, not {type(values).__name__}")
    names = {field.name for field in dataclasses.fields(config_class)}
    # JSON has no tuples: every list a run config holds is a tuple field.
    return {key: tuple(value) if isinstance(value, list) else value for key, value in values.items() if key in names}


def _layered_defaults(config_class: type, argv: list[str], kind: str | None) -> tuple[Any, dict]:
    """(the config the command line starts from, the given --config and --resume)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--resume")
    known, _ = pre.parse_known_args(argv)
    given = {"config": known.config}
    values: dict[str, Any] = {}
    if kind is not None and known.resume:
        run_dir = require_run_dir(known.resume, kind)
        values.update(options_from_file(run_dir / "config.json", config_class))
        given["resume"] = known.resume
    if known.config:
        values.update(options_from_file(known.config, config_class))
    try:
        return config_class(**values), given
    except TypeError as error:
        raise LabError(
            f"The options of {known.config or known.resume} do not fit {config_class.__name__}: {error}"
        ) from None


def parse_run_command(
    config_class: type,
    argv: list[str],
    prog: str,
    description: str,
    kind: str | None = None,
    options_class: type | None = None,
) -> tuple[Any, RunOptions]:
    """(the run config, the run options) from `argv`; `kind` names the run kind `--resume` takes, None for none.

    options_class: a subclass of the run options with a command's own options beside them.
    """
    options_class = options_class or (ResumableRunOptions if kind is not None else RunOptions)
    default, given = _layered_defaults(config_class, argv, kind)
    command_class = dataclasses.make_dataclass(
        "Command",
        [
            ("options", Annotated[config_class, tyro.conf.OmitArgPrefixes, tyro.conf.arg(name="")]),
            ("run", Annotated[options_class, tyro.conf.OmitArgPrefixes]),
        ],
    )
    parsed = tyro.cli(
        command_class,
        args=argv,
        prog=prog,
        description=description,
        default=command_class(options=default, run=options_class(**given)),
    )
    return parsed.options, parsed.run


def config_flags(config_class: type) -> list[str]:
    """The command-line flag of every field of `config_class`."""
    return ["--" + field.name.replace("_", "-") for field in dataclasses.fields(config_class)]

"""The `gan-lab` command line: subcommands that call the Python API (the top layer; nothing imports it).

Commands that start a run (detector train, gan train, stress, quickstart) take every field
of their config dataclass as an option (see `gan_lab.cli.options`): argparse picks the
command and hands the rest of the line to it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module's `register(subparsers)` adds its subcommands and sets `handler=function(args)`.
# Heavy imports (TensorFlow) happen inside the handlers, so `--help` stays fast.
GROUPS = {
    "data": ("Make and inspect image folders", ("gan_lab.cli.data",)),
    "detector": (
        "Train, evaluate, run and explain detectors",
        ("gan_lab.cli.detector_train", "gan_lab.cli.detector_eval", "gan_lab.cli.detector_io"),
    ),
    "gan": ("Train a DCGAN and sample from it", ("gan_lab.cli.gan",)),
}
COMMANDS = (
    "gan_lab.cli.stress",
    "gan_lab.cli.arena",
    "gan_lab.cli.quickstart",
    "gan_lab.cli.serve",
    "gan_lab.cli.video",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-lab",
        description="Stress-test real-vs-fake face detectors against freshly generated GAN fakes.",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's own start-up and info lines (oneDNN, CPU features), held back by default",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group, (help_text, modules) in GROUPS.items():
        group_parser = commands.add_parser(group, help=help_text, description=help_text)
        group_commands = group_parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for module in modules:
            importlib.import_module(module).register(group_commands)
    for module in COMMANDS:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from detector.base.console import quiet_tensorflow_startup
    from detector.base.errors import LabError

    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "takes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    if not args.verbose:
        quiet_tensorflow_startup()

    try:
        result = args.handler(args)
    except LabError as error:
        print(f"gan-lab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        run_dir = getattr(interrupt, "run_dir", None)
        where = f"continue with --resume {run_dir}" if run_dir else "nothing was lost"
        print(f"\ngan-lab: interrupted; completed epochs are saved ({where})", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())

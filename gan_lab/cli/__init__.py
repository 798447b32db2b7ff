"""The `gan-lab` command line: argparse subcommands that call the Python API."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each module's `register(subparsers)` adds its subcommands and sets `handler=function(args)`.
# Heavy imports (TensorFlow) happen inside the handlers, so `--help` stays fast.
GROUPS = {
    "data": ("Make and inspect image folders", ("gan_lab.cli.data",)),
    "detector": (
        "Train, evaluate, run and explain detectors",
        ("gan_lab.cli.detector_train", "gan_lab.cli.detector_eval"),
    ),
    "gan": ("Train a DCGAN and sample from it", ("gan_lab.cli.gan",)),
}
COMMANDS = ("gan_lab.cli.stress", "gan_lab.cli.quickstart", "gan_lab.cli.serve", "gan_lab.cli.video")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-lab",
        description="Stress-test real-vs-fake face detectors against freshly generated GAN fakes.",
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from detector.errors import LabError

    try:
        result = args.handler(args)
    except LabError as error:
        print(f"gan-lab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ngan-lab: interrupted; completed epochs are saved, continue with --resume RUN_DIR", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())

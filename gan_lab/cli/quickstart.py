"""`gan-lab quickstart`: the whole lab on one command."""

from __future__ import annotations

DESCRIPTION = (
    "Generate SynthFaces (or use --data), train the cnn3 detector, train the DCGAN with a "
    "checkpoint per epoch, stress-test the detector on fresh fakes from every epoch, and "
    "write one report linking all of it. Options left unset come from --preset."
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        add_help=False,  # the options, --help included, come from QuickstartConfig
        help="Data, detector, DCGAN and stress test in one run (about 15 minutes on 2 CPU cores with bfloat16)",
    )
    parser.set_defaults(handler=_quickstart, takes_rest=True)


def _quickstart(args) -> int:
    from gan_lab.apps.quickstart import QuickstartConfig, run_quickstart
    from gan_lab.cli.options import parse_run_command

    config, run = parse_run_command(QuickstartConfig, args.rest, "gan-lab quickstart", DESCRIPTION, kind="quickstart")
    run_quickstart(config, runs_dir=run.runs_dir, resume=run.resume, progress=not run.quiet)
    return 0

"""`gan-lab quickstart`: the whole lab on one command."""

from __future__ import annotations

from gan_lab.cli.common import add_runs_dir, add_seed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="Data, detector, DCGAN and stress test in one run (about 15 minutes on 2 CPU cores)",
        description=(
            "Generate SynthFaces (or use --data), train the cnn3 detector, train the DCGAN with a "
            "checkpoint per epoch, stress-test the detector on fresh fakes from every epoch, and "
            "write one report linking all of it."
        ),
    )
    parser.add_argument("--data", default="synth", help="an image folder, or 'synth' for SynthFaces (default)")
    parser.add_argument(
        "--preset",
        default="default",
        choices=("tiny", "default", "full"),
        help="tiny: a one-minute check; default: 64 px, ~15 min on CPU; full: the published 128 px setting",
    )
    parser.add_argument("--name", default="", help="a name for the run directory")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted quickstart run")
    add_seed(parser)
    add_runs_dir(parser)
    parser.set_defaults(handler=_quickstart)


def _quickstart(args) -> int:
    from gan_lab.quickstart import QuickstartConfig, run_quickstart

    config = QuickstartConfig(data=args.data, preset=args.preset, seed=args.seed, name=args.name)
    run_quickstart(config, runs_dir=args.runs_dir, resume=args.resume)
    return 0

"""`gan-lab arena`: train a GAN run further against a frozen detector, beside a plain continuation."""

from __future__ import annotations

DESCRIPTION = (
    "Continue a GAN run's last checkpoint (or, with --data DIR, a new GAN's initialisation) twice: once with the generator also trained to make the frozen "
    "detector say real (--weight W x its cross-entropy), once plainly (W = 0), the same steps on the same "
    "real images. Each epoch scores both arms' fresh fakes with the detector (detection rate, TPR at 1% FPR, "
    "faces found, KID against held-out reals) and the report gives the time to evasion (kimg until the detection rate falls below "
    "--target) with its interval. With --rounds R, each round after the first hardens the last round's "
    "detector on every round's evasive fakes so far and evades it again from the same checkpoint, and the "
    "report says whether hardening bought time. Writes results.csv, evasion.json, plots, a grid of the most evasive fakes "
    "and report.md to a new runs/NNNNN-arena-<name>/ directory; --resume RUN_DIR finishes an interrupted one."
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "arena",
        add_help=False,  # the options, --help included, come from ArenaConfig
        help="train a GAN against a frozen detector and measure how long the detector lasts",
    )
    parser.set_defaults(handler=_arena, takes_rest=True)


def _arena(args) -> int:
    from gan_lab.arena.run import ArenaConfig, run_arena
    from gan_lab.cli.options import parse_run_command

    config, run = parse_run_command(ArenaConfig, args.rest, "gan-lab arena", DESCRIPTION, kind="arena")
    run_dir = run_arena(config, runs_dir=run.runs_dir, progress=not run.quiet, resume=run.resume)
    print(f"Arena run: {run_dir}\nReport: {run_dir / 'report.md'}")
    return 0

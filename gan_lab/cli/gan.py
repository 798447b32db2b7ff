"""`gan-lab gan train | sample`: train a DCGAN on real faces, and draw fresh fakes from a trained one."""

from __future__ import annotations

import argparse

from gan_lab.cli.common import add_seed, positive_int


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        add_help=False,  # the options, --help included, come from GanConfig
        help="train a DCGAN whose discriminator is the detector's architecture",
    )
    train.set_defaults(handler=run_train, takes_rest=True)

    sample = subparsers.add_parser(
        "sample",
        help="write fresh fakes from a GAN run as a folder the detector can read",
        description="Generate N images from new latents (never the training grid's) with one epoch's generator "
        "and write them to OUT/fake/ as PNGs; --grid also writes a sample grid to OUT/.",
    )
    sample.add_argument("run_dir", metavar="RUN_DIR", help="a GAN run directory")
    sample.add_argument(
        "--epoch", type=positive_int, default=None, help="which epoch's generator (default: the last complete one)"
    )
    sample.add_argument("--n", type=positive_int, default=64, help="images to write (default: 64)")
    add_seed(sample, default=1)
    sample.add_argument("--out", metavar="DIR", required=True, help="output folder (images go to DIR/fake/)")
    sample.add_argument("--grid", action="store_true", help="also write a grid of the first 64 images")
    sample.add_argument(
        "--raw", action="store_true", help="use the trained generator itself, not its moving average (EMA)"
    )
    sample.set_defaults(handler=run_sample)


TRAIN_DESCRIPTION = (
    "Train a DCGAN on the real images of --data (or SynthFaces). Every epoch saves both models, "
    "a sample grid from fixed latents and a history row to runs/NNNNN-gan-<name>/."
)


def run_train(args: argparse.Namespace) -> int:
    from gan_lab.cli.options import parse_run_command
    from gan_lab.gan.train import GanConfig, train_gan

    config, run = parse_run_command(GanConfig, args.rest, "gan-lab gan train", TRAIN_DESCRIPTION, kind="gan")
    run_dir = train_gan(config, runs_dir=run.runs_dir, resume=run.resume, progress=not run.quiet)
    if run_dir is not None:  # None on another worker of a multiworker cluster: the chief wrote the run
        print(f"GAN run: {run_dir}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from gan_lab.gan.sample import sample_run

    out = sample_run(
        args.run_dir, n=args.n, seed=args.seed, out=args.out, epoch=args.epoch, grid=args.grid, raw=args.raw
    )
    print(f"Wrote {args.n} images to {out / 'fake'}" + (f" and a grid to {out}" if args.grid else ""))
    return 0

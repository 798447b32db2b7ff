"""`gan-lab gan train | sample`: train a DCGAN on real faces, and draw fresh fakes from a trained one."""

from __future__ import annotations

import argparse

from gan_lab.cli.common import add_runs_dir, add_seed, positive_int

# The same names as gan_lab.dcgan.AUGMENT_POLICIES, spelled out so that `--help` needs no TensorFlow.
AUGMENT_POLICIES = ("color", "translation", "cutout")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 0.5), got {text}")
    return value


def _policy(text: str) -> tuple[str, ...]:
    names = () if text.strip().lower() in ("", "none") else tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in AUGMENT_POLICIES]
    if unknown:
        raise argparse.ArgumentTypeError(f"expected 'none' or names from {', '.join(AUGMENT_POLICIES)}, got {text}")
    return names


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a DCGAN whose discriminator is the detector's architecture",
        description="Train a DCGAN on the real images of DIR (or SynthFaces). Every epoch saves both models, "
        "a sample grid from fixed latents and a history row to runs/NNNNN-gan-<name>/.",
    )
    train.add_argument(
        "--data",
        default=None,
        metavar="DIR|synth",
        help="image folder (its real images only) or 'synth' (default: synth)",
    )
    train.add_argument(
        "--size",
        type=positive_int,
        default=None,
        help="image size in pixels, a multiple of 16 (default: 64; 128 with --preset seed128)",
    )
    train.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs in total (default: 10; with --resume: the new total)"
    )
    train.add_argument("--batch-size", type=positive_int, default=None, help="real images per step (default: 32)")
    train.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=None,
        help="steps per epoch (default: one pass over the real training images)",
    )
    train.add_argument(
        "--preset", choices=["seed128"], default=None, help="the published 128 px generator (1,520,643 parameters)"
    )
    train.add_argument("--latent-dim", type=positive_int, default=None, help="latent vector length (default: 128)")
    train.add_argument(
        "--batch-norm", action="store_true", help="BatchNorm after each of the generator's upsampling steps"
    )
    train.add_argument(
        "--discriminator",
        default=None,
        metavar="MODEL",
        help="detector architecture of the discriminator: cnn3, small_cnn or alexnet (default: cnn3)",
    )
    train.add_argument(
        "--init-discriminator",
        metavar="RUN_DIR",
        default=None,
        help="start the discriminator from this detector run's weights",
    )
    train.add_argument(
        "--label-smoothing", type=_fraction, default=None, help="target for real images instead of 0 (default: 0)"
    )
    train.add_argument(
        "--label-noise",
        type=_fraction,
        default=None,
        help="random shift of every target towards 0.5, up to this (default: 0.05)",
    )
    train.add_argument(
        "--augment",
        type=_policy,
        default=None,
        metavar="NAMES",
        help="differentiable augmentation of the discriminator's inputs: 'none' or comma-separated names from "
        f"{', '.join(AUGMENT_POLICIES)}; helps with a few thousand real images (default: none)",
    )
    train.add_argument(
        "--grid-size", type=positive_int, default=None, help="images in each epoch's sample grid (default: 64)"
    )
    train.add_argument(
        "--synth-n",
        type=positive_int,
        default=None,
        help="with --data synth: SynthFaces images in total, half real (default: 2000)",
    )
    train.add_argument("--name", default=None, help="run directory suffix (default: dcgan-<size>px)")
    add_seed(train)
    add_runs_dir(train)
    train.add_argument(
        "--resume", metavar="RUN_DIR", default=None, help="continue this GAN run after its last complete epoch"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)

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
    sample.set_defaults(handler=run_sample)


# Command-line option -> GanConfig field, for the options left unset unless given.
_OPTIONS = {
    "data": "data",
    "size": "size",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "steps_per_epoch": "steps_per_epoch",
    "preset": "preset",
    "latent_dim": "latent_dim",
    "discriminator": "discriminator",
    "init_discriminator": "init_discriminator",
    "label_smoothing": "label_smoothing",
    "label_noise": "label_noise",
    "augment": "augment",
    "grid_size": "grid_size",
    "synth_n": "synth_n",
    "name": "name",
}


def run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from gan_lab.dcgan import GENERATOR_PRESETS
    from gan_lab.train import GanConfig, run_config, train_gan

    if args.resume:
        config = run_config(args.resume)
        if args.epochs is not None:
            config = dataclasses.replace(config, epochs=args.epochs)
        run_dir = train_gan(config, runs_dir=args.runs_dir, resume=args.resume, progress=not args.quiet)
    else:
        values = {
            field: getattr(args, option) for option, field in _OPTIONS.items() if getattr(args, option) is not None
        }
        if args.preset and args.size is None:
            values["size"] = GENERATOR_PRESETS[args.preset]["size"]
        config = GanConfig(**values, batch_norm=args.batch_norm, seed=args.seed)
        run_dir = train_gan(config, runs_dir=args.runs_dir, progress=not args.quiet)
    print(f"GAN run: {run_dir}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from gan_lab.sample import sample_run

    out = sample_run(args.run_dir, n=args.n, seed=args.seed, out=args.out, epoch=args.epoch, grid=args.grid)
    print(f"Wrote {args.n} images to {out / 'fake'}" + (f" and a grid to {out}" if args.grid else ""))
    return 0

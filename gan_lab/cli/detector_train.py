"""`gan-lab detector train | models`: train a detector into a run directory, list the architectures."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gan_lab.cli.common import add_runs_dir, positive_int

# The same tuples as detector.models.HEADS and detector.synthfaces.DIFFICULTIES, spelled out
# so that `--help` needs no TensorFlow.
HEADS = ("probability", "logit", "softmax2")
DIFFICULTIES = ("easy", "medium", "hard")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text}")
    return value


def register(subparsers) -> None:
    from detector.train import DetectorConfig

    defaults = DetectorConfig()
    train = subparsers.add_parser(
        "train",
        help="train a detector into a new run directory (or continue one)",
        description="Train a real-vs-fake detector with Adam and cross-entropy, keeping the epoch with the lowest "
        "validation loss, then evaluate it on the test split. Writes runs/NNNNN-detector-<name>/ with config.json, "
        "history.csv, model.keras, checkpoints/, plots/, metrics.json and report.md.",
    )
    # Options default to None so that, with --resume, only the ones given are checked against the run.
    train.add_argument(
        "--data", metavar="DIR", help=f"real-vs-fake image folder, or 'synth' for SynthFaces (default: {defaults.data})"
    )
    train.add_argument("--model", help=f"architecture; see `gan-lab detector models` (default: {defaults.model})")
    train.add_argument("--size", type=positive_int, help=f"input side in pixels (default: {defaults.size})")
    train.add_argument("--head", choices=HEADS, help=f"output head (default: {defaults.head})")
    train.add_argument("--epochs", type=positive_int, help=f"most epochs to train (default: {defaults.epochs})")
    train.add_argument("--batch-size", type=positive_int, help=f"images per step (default: {defaults.batch_size})")
    train.add_argument(
        "--learning-rate", type=float, help=f"Adam's initial learning rate (default: {defaults.learning_rate})"
    )
    train.add_argument(
        "--patience",
        type=positive_int,
        help=f"epochs without a lower validation loss before stopping (default: {defaults.patience})",
    )
    train.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        help="training steps per epoch (default: one pass over the training split)",
    )
    train.add_argument(
        "--crop",
        choices=("resize", "crop"),
        help=f"fit other image sizes by stretching (resize) or the centred square (crop) (default: {defaults.crop})",
    )
    train.add_argument("--augment", action="store_true", default=None, help="random flips, rotations, shifts and zooms")
    train.add_argument(
        "--blur-probability", type=_fraction, metavar="P", help="blur a training image with probability P"
    )
    train.add_argument(
        "--jpeg-probability",
        type=_fraction,
        metavar="P",
        help="re-compress a training image as JPEG with probability P",
    )
    train.add_argument(
        "--weights",
        help="transfer models: 'imagenet' (from the local Keras cache, never downloaded), a weights file, "
        f"or 'none' to train from scratch (default: {defaults.weights})",
    )
    train.add_argument(
        "--unfreeze", type=int, metavar="N", help="transfer models: train the backbone's top N layers (default: 0)"
    )
    train.add_argument(
        "--synth-n", type=positive_int, help=f"with --data synth: images in total (default: {defaults.synth_n})"
    )
    train.add_argument(
        "--difficulty",
        dest="synth_difficulty",
        choices=DIFFICULTIES,
        help=f"with --data synth: how subtle the fakes are (default: {defaults.synth_difficulty})",
    )
    train.add_argument("--seed", type=int, help=f"random seed (default: {defaults.seed})")
    train.add_argument("--name", help="run directory suffix (default: <model>-<size>px)")
    add_runs_dir(train)
    train.add_argument("--resume", metavar="RUN_DIR", help="continue this interrupted detector run at its next epoch")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=run_train)

    models = subparsers.add_parser(
        "models",
        help="list the detector architectures and their parameter counts",
        description="Build every registered architecture (transfer backbones without weights, so nothing is "
        "downloaded) and print its parameter counts at the given input size.",
    )
    models.add_argument("--size", type=positive_int, default=64, help="input side in pixels (default: 64)")
    models.add_argument("--head", choices=HEADS, default="probability", help="output head (default: probability)")
    models.set_defaults(handler=run_models)


def _given_options(args: argparse.Namespace) -> dict:
    from detector.train import DetectorConfig

    names = {field.name for field in dataclasses.fields(DetectorConfig)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def run_train(args: argparse.Namespace) -> int:
    from detector.evaluate import format_table
    from detector.runs import config_from_dict, read_json, require_run_dir
    from detector.train import RESUME_CHECKED, DetectorConfig, train_detector

    given = _given_options(args)
    if args.resume:
        # The run's own options, with the given ones on top, so a contradiction is reported.
        run_dir = require_run_dir(args.resume, "detector")
        config = config_from_dict(DetectorConfig, {**read_json(run_dir / "config.json"), **given})
        ignored = sorted(set(given) - set(RESUME_CHECKED))
        if ignored:
            options = ", ".join(
                "--" + {"synth_difficulty": "difficulty"}.get(name, name).replace("_", "-") for name in ignored
            )
            print(f"gan-lab: note: {options} ignored with --resume; the run's config.json decides", file=sys.stderr)
    else:
        config = DetectorConfig(**given)
    run_dir = train_detector(config, runs_dir=args.runs_dir, resume=args.resume, progress=not args.quiet)
    metrics = read_json(run_dir / "metrics.json")
    print(format_table(metrics))
    print(f"Run directory: {run_dir}")
    return 0


def parameter_counts(size: int = 64, head: str = "probability") -> list[dict]:
    """Each registered architecture's name and parameter counts at `size` px (None where it cannot be built)."""
    import keras

    from detector.models import MODELS, TRANSFER_MODELS, build_model

    rows = []
    for name in MODELS:
        options = {"weights": None} if name in TRANSFER_MODELS else {}
        try:
            model = build_model(name, size=size, head=head, **options)
        except ValueError as error:  # an input too small for a backbone
            rows.append({"model": name, "parameters": None, "trainable": None, "note": str(error)})
            continue
        trainable = sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
        note = "frozen backbone, ImageNet weights from the local cache" if name in TRANSFER_MODELS else ""
        rows.append({"model": name, "parameters": int(model.count_params()), "trainable": trainable, "note": note})
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = parameter_counts(args.size, args.head)
    print(f"Detector architectures at {args.size} px, {args.head} head:")
    print(f"{'model':<12} {'parameters':>12} {'trainable':>12}  notes")
    for row in rows:
        if row["parameters"] is None:
            print(f"{row['model']:<12} {'-':>12} {'-':>12}  {row['note']}")
        else:
            print(f"{row['model']:<12} {row['parameters']:>12,} {row['trainable']:>12,}  {row['note']}")
    return 0

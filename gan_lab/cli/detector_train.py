"""`gan-lab detector train | models`: train a detector into a run directory, list the architectures."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from detector import HEADS
from gan_lab.cli.common import positive_int
from gan_lab.cli.options import ResumableRunOptions

TRAIN_DESCRIPTION = (
    "Train a real-vs-fake detector with Adam and cross-entropy, keeping the epoch with the lowest "
    "validation loss, then evaluate it on the test split. Writes runs/NNNNN-detector-<name>/ with config.json, "
    "history.csv, model.keras, checkpoints/, plots/, metrics.json and report.md. --fakes-from RUN_DIR@EPOCHS "
    "adds fresh fakes of those GAN epochs to the training split (the hardening loop's mixed data set)."
)


@dataclasses.dataclass
class TrainOptions(ResumableRunOptions):
    """Where the run goes, how it talks, which run it continues, and the GAN fakes it trains on besides."""

    # GAN epochs whose fakes join the training split, as RUN_DIR@EPOCHS (e.g. runs/00003-gan-x@4,8,12
    # or @all); give several for several runs. They come from the hardening latent stream, so the
    # stress test never scores them, and are written once as PNGs under RUNS_DIR/fakes/.
    fakes_from: tuple[str, ...] = ()
    fakes_n: int = 500  # with --fakes-from: fakes per GAN epoch
    # Train one run per seed, "0,1,2" or "0 1 2" (names end in -seedN), to give the stress test's
    # verdicts a spread over training seeds: `gan-lab stress --detector FIRST --seed-runs OTHERS...`
    seeds: tuple[str, ...] = ()


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        add_help=False,  # the options, --help included, come from DetectorConfig
        help="train a detector into a new run directory (or continue one)",
    )
    train.set_defaults(handler=run_train, takes_rest=True)

    models = subparsers.add_parser(
        "models",
        help="list the detector architectures and their parameter counts",
        description="Build every registered architecture (transfer backbones without weights, so nothing is "
        "downloaded) and print its parameter counts at the given input size.",
    )
    models.add_argument("--size", type=positive_int, default=64, help="input side in pixels (default: 64)")
    models.add_argument("--head", choices=HEADS, default="probability", help="output head (default: probability)")
    models.set_defaults(handler=run_models)


def run_train(args: argparse.Namespace) -> int:
    from detector.base.errors import LabError
    from detector.base.runs import read_json
    from detector.inference.evaluate import format_table
    from detector.training.train import DetectorConfig, train_detector
    from gan_lab.cli.options import parse_run_command

    config, run = parse_run_command(
        DetectorConfig,
        args.rest,
        "gan-lab detector train",
        TRAIN_DESCRIPTION,
        kind="detector",
        options_class=TrainOptions,
    )
    if run.fakes_from:
        if run.resume:
            raise LabError("--fakes-from starts a new run; a resumed run trains on the fakes its config.json names")
        folders = gan_fakes_folders(run.fakes_from, run.fakes_n, config.seed, Path(run.runs_dir) / "fakes", run.quiet)
        config = dataclasses.replace(config, extra_fakes=(*config.extra_fakes, *folders))
    if run.seeds:
        return _train_seeds(config, run)
    run_dir = train_detector(config, runs_dir=run.runs_dir, resume=run.resume, progress=not run.quiet)
    if run_dir is None:  # another worker of a multiworker cluster: the chief wrote the run
        return 0
    print(format_table(read_json(run_dir / "metrics.json")))
    print(f"Run directory: {run_dir}")
    return 0


SEED_SUMMARY_KEYS = ("accuracy", "accuracy_at_threshold", "average_precision", "roc_auc", "eer")


def seed_summary(metrics: list[dict]) -> list[str]:
    """Lines of each test figure's mean ± standard deviation (ddof 1) and range over runs of several seeds."""
    import numpy as np

    lines = []
    for key in SEED_SUMMARY_KEYS:
        values = [float(each[key]) for each in metrics if isinstance(each.get(key), (int, float))]
        if len(values) == len(metrics):
            lines.append(
                f"  {key:<22} {np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}  ({min(values):.4f}-{max(values):.4f})"
            )
    return lines


def _train_seeds(config, run: TrainOptions) -> int:
    """One run per seed of `run.seeds`, then the spread of their test figures and the stress command for all."""
    from detector.base.errors import LabError
    from detector.base.runs import read_json
    from detector.training.train import train_detector

    try:
        seeds = list(dict.fromkeys(int(part) for text in run.seeds for part in str(text).split(",") if part.strip()))
    except ValueError:
        raise LabError(f"--seeds takes integers such as 0,1,2. Received: {' '.join(run.seeds)}") from None
    if run.resume:
        raise LabError("--seeds starts one new run per seed; resume each run on its own with --resume RUN_DIR")
    if len(seeds) < 2:
        raise LabError(f"--seeds takes at least two different seeds, such as 0 1 2. Received: {list(run.seeds)}")
    name = config.name or f"{config.model}-{config.size}px"
    run_dirs = []
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=seed, name=f"{name}-seed{seed}")
        run_dir = train_detector(seeded, runs_dir=run.runs_dir, progress=not run.quiet)
        if run_dir is None:  # another worker of a multiworker cluster
            continue
        run_dirs.append(run_dir)
        print(f"Run directory (seed {seed}): {run_dir}")
    if not run_dirs:
        return 0
    print(f"Test figures over seeds {', '.join(map(str, seeds))} (mean ± standard deviation, range):")
    print("\n".join(seed_summary([read_json(run_dir / "metrics.json") for run_dir in run_dirs])))
    print(
        f"Stress all of them: gan-lab stress --detector {run_dirs[0]} --seed-runs "
        f"{' '.join(map(str, run_dirs[1:]))} --gan GAN_RUN"
    )
    return 0


def gan_fakes_folders(specs, n: int, seed: int, out_root: Path, quiet: bool = False) -> list[str]:
    """A folder of hardening-stream fakes for each RUN_DIR@EPOCHS in `specs` (written once, then reused)."""
    from detector.base.errors import LabError
    from gan_lab.gan.checkpoints import require_gan_run
    from gan_lab.stress.harden import write_hardening_fakes
    from gan_lab.stress.inputs import select_epochs, split_gan_option

    if not isinstance(n, int) or n < 1:
        raise LabError(f"--fakes-n must be a positive integer. Received: {n!r}")
    folders = []
    for spec in specs:
        path, epochs = split_gan_option(spec)
        gan_dir, checkpoints = require_gan_run(path)
        chosen = select_epochs(epochs, list(checkpoints), option=f"--fakes-from {spec}")
        if not quiet:
            print(f"Fakes from {gan_dir.name}, epochs {chosen}: {n} per epoch")
        folders.append(str(write_hardening_fakes(gan_dir, chosen, n, seed, out_root)))
    return folders


def parameter_counts(size: int = 64, head: str = "probability") -> list[dict]:
    """Each registered architecture's name and parameter counts at `size` px (None where it cannot be built)."""
    import keras

    from detector.models.zoo import MODELS, TRANSFER_MODELS, build_model

    rows = []
    for name in MODELS:
        options = {"weights": None} if name in TRANSFER_MODELS else {}
        try:
            model = build_model(name, size=size, head=head, **options)
        except ValueError as error:  # an input too small for a backbone
            rows.append({"model": name, "parameters": None, "trainable": None, "note": str(error)})
            continue
        trainable = sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
        note = (
            "frozen backbone, ImageNet weights from the Keras cache (downloaded once)"
            if name in TRANSFER_MODELS
            else ""
        )
        rows.append({"model": name, "parameters": int(model.count_params()), "trainable": trainable, "note": note})
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = parameter_counts(args.size, args.head)
    print(f"Detector architectures at {args.size} px, {args.head} head:")
    width = max(len("model"), *(len(row["model"]) for row in rows))
    print(f"{'model':<{width}} {'parameters':>12} {'trainable':>12}  notes")
    for row in rows:
        if row["parameters"] is None:
            print(f"{row['model']:<{width}} {'-':>12} {'-':>12}  {row['note']}")
        else:
            print(f"{row['model']:<{width}} {row['parameters']:>12,} {row['trainable']:>12,}  {row['note']}")
    return 0

"""`gan-lab data synth` and `gan-lab data inspect`: make a SynthFaces folder, look at any data folder."""

from __future__ import annotations

import argparse

from gan_lab.cli.common import add_seed, positive_int

# The same tuple as detector.data.synthfaces.DIFFICULTIES, spelled out so `--help` needs no imports.
DIFFICULTIES = ("easy", "medium", "hard")


def split_fractions(text: str) -> tuple[float, float, float]:
    """Parse 'train,valid,test' fractions such as 0.8,0.1,0.1."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three comma-separated fractions like 0.8,0.1,0.1, got {text!r}"
        ) from None
    if len(values) != 3 or any(value < 0 for value in values) or abs(sum(values) - 1.0) > 1e-6 or values[0] <= 0:
        raise argparse.ArgumentTypeError(
            f"expected three non-negative fractions summing to 1 (train > 0), got {text!r}"
        )
    return values


def register(subparsers) -> None:
    synth = subparsers.add_parser(
        "synth",
        help="Write a SynthFaces real-vs-fake folder",
        description=(
            "Render procedural faces (real) and artifact-bearing faces (fake) into "
            "OUT/{train,valid,test}/{real,fake}/*.png with OUT/metadata.csv; the same seed writes the same files."
        ),
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    synth.add_argument(
        "--n", type=positive_int, default=1000, help="images in total, half real, half fake (default: 1000)"
    )
    synth.add_argument("--size", type=positive_int, default=64, help="image side in pixels (default: 64)")
    synth.add_argument(
        "--difficulty",
        choices=DIFFICULTIES,
        default="medium",
        help="how subtle the fakes' artifacts are (default: medium)",
    )
    synth.add_argument(
        "--split",
        type=split_fractions,
        default=(0.8, 0.1, 0.1),
        metavar="TRAIN,VALID,TEST",
        help="fractions (default: 0.8,0.1,0.1)",
    )
    synth.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_seed(synth)
    synth.set_defaults(handler=_synth)

    inspect = subparsers.add_parser(
        "inspect",
        help="Count, measure and sample a data folder",
        description=(
            "Recognise the folder's layout (140k {train,valid,test}/{real,fake}, ciplab training_real/training_fake, "
            "real/ + fake/, or real images only), print counts per split and class, image sizes and modes, flag "
            "class imbalance, and save a bar chart and a sample grid per class."
        ),
    )
    inspect.add_argument("folder", metavar="DIR", help="the data folder")
    inspect.add_argument(
        "--out", metavar="DIR", default=None, help="where to write the chart and grids (default: DIR/_inspect)"
    )
    inspect.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    inspect.add_argument(
        "--size", type=positive_int, default=64, help="the model input side; images under half of it are flagged"
    )
    add_seed(inspect)
    inspect.set_defaults(handler=_inspect)


def _synth(args) -> int:
    from detector.base.errors import LabError
    from detector.data.datasets import SPLIT_NAMES
    from detector.data.images import is_image_file
    from detector.data.synthfaces import write_dataset

    try:
        out = write_dataset(
            args.out,
            n=args.n,
            size=args.size,
            seed=args.seed,
            difficulty=args.difficulty,
            split=args.split,
            progress=args.progress,
        )
    except LabError:
        raise
    except ValueError as error:  # an option out of range: show it as a usage problem, not a traceback
        raise LabError(f"data synth: {error}") from None
    print(f"Wrote SynthFaces ({args.difficulty}, {args.size} px, seed {args.seed}) to {out}")
    for name in SPLIT_NAMES:
        counts = {}
        for class_name in ("real", "fake"):
            folder = out / name / class_name
            counts[class_name] = sum(1 for path in folder.iterdir() if is_image_file(path)) if folder.is_dir() else 0
        print(f"  {name:<6} {counts['real']:>6} real {counts['fake']:>6} fake")
    print(f"  metadata: {out / 'metadata.csv'}")
    return 0


def _inspect(args) -> int:
    from detector.data.inspect import format_inspection, inspect_folder

    result = inspect_folder(args.folder, args.out, seed=args.seed, progress=args.progress, size=args.size)
    print(format_inspection(result))
    return 0

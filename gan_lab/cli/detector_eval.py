"""`gan-lab detector evaluate | predict | explain`: test-split metrics, scoring files, heatmaps."""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.data.images import FIT_MODES
from gan_lab.cli.common import positive_int

FIT_DESCRIPTIONS = {"resize": "stretched to the model's input", "crop": "centre-cropped to a square"}


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="test-split metrics, plots and report for a detector run",
        description="Choose the threshold on the validation split, then measure the test split. "
        "Writes metrics.json, test_scores.csv, plots/ and report.md.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a detector run directory")
    evaluate.add_argument(
        "--data",
        metavar="DIR",
        help="evaluate on this image folder instead (results go to RUN_DIR/evaluations/<folder name>/)",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=run_evaluate)

    predict = subparsers.add_parser(
        "predict",
        help="score image files, folders or globs with a detector run",
        description="Print P(fake) and a Real/Fake verdict (at the run's threshold) per image and write a CSV.",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR", help="a detector run directory")
    predict.add_argument(
        "paths", metavar="PATH", nargs="+", help="image files, folders (searched recursively) or quoted globs"
    )
    predict.add_argument(
        "--out", metavar="CSV", help="where to write the CSV (default: RUN_DIR/predictions/predictions-N.csv)"
    )
    _add_crop(predict)
    add_faces(predict, default="none")
    predict.add_argument("--batch-size", type=positive_int, default=64, help="images per model call (default: 64)")
    predict.set_defaults(handler=run_predict)

    explain = subparsers.add_parser(
        "explain",
        help="activation heatmaps and Grad-CAM for one image",
        description="Save per-layer activation maps and a Grad-CAM overlay for IMAGE as PNGs.",
    )
    explain.add_argument("run_dir", metavar="RUN_DIR", help="a detector run directory")
    explain.add_argument("image", metavar="IMAGE", help="an image file")
    explain.add_argument("--out", metavar="DIR", help="output folder (default: RUN_DIR/explanations/<image name>/)")
    _add_crop(explain)
    explain.set_defaults(handler=run_explain)


def add_faces(parser: argparse.ArgumentParser, default: str, allow_none: bool = True) -> None:
    """--faces and --face-margin, spelled the same by `detector predict`, `serve` and `video`."""
    from detector.data.faces import DEFAULT_MARGIN, FACE_FINDERS

    parser.add_argument(
        "--faces",
        choices=(*FACE_FINDERS, "none") if allow_none else FACE_FINDERS,
        default=default,
        help="find the face in each image and classify its square crop: mtcnn (finds turned, tilted and small "
        "faces too) or haar (OpenCV's cascade, frontal faces)"
        + ("; none classifies whole images" if allow_none else "")
        + f" (default: {default})",
    )
    parser.add_argument(
        "--face-margin",
        type=_margin,
        default=DEFAULT_MARGIN,
        help=f"around a found face, this share of its side on each side (default: {DEFAULT_MARGIN})",
    )


def _margin(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a margin of at least 0 (a share of the face's side), got {text}")
    return value


def faces_option(args: argparse.Namespace) -> str | None:
    return None if args.faces == "none" else args.faces


def _add_crop(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--crop",
        choices=FIT_MODES,
        help="fit images of another shape by stretching (resize) or taking the centred square (crop) "
        "(default: as the run was trained, its config.json's crop)",
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from detector.inference.evaluate import evaluate_run, format_table

    metrics = evaluate_run(args.run_dir, data=args.data, progress=not args.quiet)
    print(format_table(metrics))
    print(f"Wrote metrics.json, test_scores.csv, plots/ and report.md to {metrics['out_dir']}")
    return 0


def _default_predictions_path(run_dir: Path) -> Path:
    folder = run_dir / "predictions"
    numbers = [
        int(p.stem.rsplit("-", 1)[-1]) for p in folder.glob("predictions-*.csv") if p.stem.rsplit("-", 1)[-1].isdigit()
    ]
    return folder / f"predictions-{max(numbers, default=0) + 1:04d}.csv"


def run_predict(args: argparse.Namespace) -> int:
    import warnings

    from detector.inference.predict import SYNTHFACES_WARNING, load_detector, predict_paths, write_predictions_csv

    detector = load_detector(args.run_dir)
    faces = faces_option(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are in the table and counted below
        rows = predict_paths(
            detector,
            args.paths,
            batch_size=args.batch_size,
            crop=args.crop,
            progress=True,
            faces=faces,
            margin=args.face_margin,
        )
    width = min(70, max(len("file"), *(len(row["file"]) for row in rows)))
    fit = FIT_DESCRIPTIONS[detector.fit_mode(args.crop)]
    seen = f"the largest face ({faces}) or, with none found, the whole image, {fit}" if faces else f"images {fit}"
    face_header = f"  {'face (x y w h)':<17}" if faces else ""
    print(f"{'file':<{width}}  {'P(fake)':>7}{face_header}  verdict (threshold {detector.threshold:.3f}; {seen})")
    for row in rows:
        p_fake = "" if row["p_fake"] is None else f"{row['p_fake']:.3f}"
        face = f"  {row.get('face', ''):<17}" if faces else ""
        print(f"{row['file']:<{width}}  {p_fake:>7}{face}  {row['verdict']}")
    if detector.trained_on_synthfaces:
        print(SYNTHFACES_WARNING)
    out = Path(args.out) if args.out else _default_predictions_path(detector.run_dir)
    write_predictions_csv(rows, out)
    failed = sum(row["p_fake"] is None for row in rows)
    fakes = sum(row["verdict"] == "Fake" for row in rows)
    print(f"{len(rows) - failed} scored ({fakes} fake), {failed} failed. Wrote {out}")
    return 1 if failed == len(rows) else 0


def run_explain(args: argparse.Namespace) -> int:
    from detector.inference.explain import explain_image

    written = explain_image(args.run_dir, args.image, out_dir=args.out, crop=args.crop)
    for path in written:
        print(path)
    print(f"Wrote {len(written)} images to {written[0].parent}")
    return 0

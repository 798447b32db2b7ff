"""`gan-lab detector import | export`: outside models (ONNX, SavedModel, .keras) in, lab detectors out."""

from __future__ import annotations

import argparse

from gan_lab.cli.common import add_runs_dir, positive_int

IMPORT_DESCRIPTION = (
    "Make a detector run (runs/NNNNN-detector-NAME/) from an ONNX file, a TF SavedModel folder or a .keras file, "
    "so that every scoring path (predict, evaluate, stress, serve, video) takes it. The adaptor options say how the "
    "model takes pixels and what it returns; they go to the run's config.json, with the model copied in and a "
    "short report.md card."
)
EXPORT_DESCRIPTION = (
    "Write a lab detector as ONNX or a TF SavedModel that runs with no lab code: NHWC float32 pixels in [0, 1] "
    "at the run's size in, P(fake) of shape [N, 1] out."
)


def register(subparsers) -> None:
    from detector.models.interchange import EXPORT_FORMATS, LAYOUTS, NORMALIZATIONS, OUTPUTS

    imported = subparsers.add_parser(
        "import", help="make a detector run from an outside model", description=IMPORT_DESCRIPTION
    )
    imported.add_argument("model", metavar="MODEL", help="a .onnx file, a SavedModel folder or a .keras file")
    imported.add_argument("--name", default="", help="run directory suffix (default: the model file's name)")
    imported.add_argument("--size", type=positive_int, required=True, help="the model's input side in pixels")
    imported.add_argument("--layout", choices=LAYOUTS, default="nhwc", help="input layout (PyTorch's is nchw)")
    imported.add_argument(
        "--normalize",
        choices=NORMALIZATIONS,
        default="unit",
        help="unit: [0, 1]; byte: [0, 255]; symmetric: [-1, 1]; imagenet: (x - mean) / std on [0, 1], RGB",
    )
    imported.add_argument(
        "--output",
        choices=OUTPUTS,
        default="probability",
        help="logit or probability of fake (one per image), or softmax (several; name the fake one with --fake-index)",
    )
    imported.add_argument(
        "--fake-index", type=int, default=None, metavar="K", help="with --output softmax: the fake output"
    )
    threshold = imported.add_mutually_exclusive_group()
    threshold.add_argument("--threshold", type=float, default=0.5, help="decision threshold on P(fake) (default: 0.5)")
    threshold.add_argument(
        "--calibrate", metavar="DATA_DIR", help="pick the threshold on this real/fake folder's validation split"
    )
    imported.add_argument("--crop", choices=("resize", "crop"), default="resize", help="how other shapes are fitted")
    imported.add_argument("--seed", type=int, default=0, help="the calibration folder's split seed (default: 0)")
    add_runs_dir(imported)
    imported.add_argument("--quiet", action="store_true", help="no progress bar")
    imported.set_defaults(handler=run_import)

    export = subparsers.add_parser(
        "export", help="write a lab detector as ONNX or a SavedModel", description=EXPORT_DESCRIPTION
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="a detector run directory")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True, dest="export_format", help="what to write")
    export.add_argument("--out", required=True, metavar="PATH", help="the file (.onnx) or folder (SavedModel) to write")
    export.set_defaults(handler=run_export)


def run_import(args: argparse.Namespace) -> int:
    from detector.inference.imported import ImportConfig, import_detector

    config = ImportConfig(
        model=args.model,
        size=args.size,
        layout=args.layout,
        normalize=args.normalize,
        output=args.output,
        fake_index=args.fake_index,
        threshold=args.threshold,
        calibrate=args.calibrate,
        crop=args.crop,
        seed=args.seed,
        name=args.name,
    )
    run_dir = import_detector(config, runs_dir=args.runs_dir, progress=not args.quiet)
    print(f"Run directory: {run_dir} (card: {run_dir / 'report.md'})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from detector.inference.imported import export_detector

    path = export_detector(args.run_dir, args.export_format, args.out)
    print(f"Wrote {path}")
    return 0

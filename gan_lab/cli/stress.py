"""`gan-lab stress`: score a detector on fresh fakes from every epoch of a GAN run."""

from __future__ import annotations

DESCRIPTION = (
    "For each saved GAN epoch, generate N fresh fakes (never the training grid), score them "
    "with the detector and with that epoch's discriminator, against real test images the GAN "
    "never trained on; every rate, AP and ROC-AUC with its 95% interval; FID and KID in "
    "InceptionV3 features, MTCNN's face-found rate, KID as the detector sees them; robustness "
    "sweeps (JPEG, blur, rescaling, noise) and power spectra. Several --detectors, --gans "
    "RUN_DIR@EPOCHS and --fakes DIR give a generalisation matrix. Writes results.csv, "
    "matrix.csv, plots and report.md to a new runs/NNNNN-stress-<name>/ directory."
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stress",
        add_help=False,  # the options, --help included, come from StressConfig
        help="Stress-test detectors on fresh fakes from each GAN epoch and other fake sources",
    )
    parser.set_defaults(handler=_stress, takes_rest=True)


def _stress(args) -> int:
    from gan_lab.cli.options import parse_run_command
    from gan_lab.stress.inputs import StressConfig
    from gan_lab.stress.run import run_stress

    config, run = parse_run_command(StressConfig, args.rest, "gan-lab stress", DESCRIPTION)
    run_dir = run_stress(config, runs_dir=run.runs_dir, progress=not run.quiet)
    print(f"Stress run: {run_dir}\nReport: {run_dir / 'report.md'}")
    return 0

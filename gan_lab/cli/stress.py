"""`gan-lab stress`: score a detector on fresh fakes from every epoch of a GAN run."""

from __future__ import annotations

from gan_lab.cli.common import add_runs_dir, add_seed, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stress",
        help="Stress-test a detector on fresh fakes from each GAN epoch",
        description=(
            "For each saved GAN epoch, generate N fresh fakes (never the training grid), score them "
            "with the detector and with that epoch's discriminator, against the detector's real test "
            "images; add KID, robustness sweeps (JPEG, blur, rescaling, noise) and power spectra, and "
            "write results.csv, plots and report.md to a new runs/NNNNN-stress-<name>/ directory."
        ),
    )
    parser.add_argument("--detector", required=True, metavar="RUN_DIR", help="a detector run directory")
    parser.add_argument("--gan", required=True, metavar="RUN_DIR", help="a GAN run directory")
    parser.add_argument("--epochs", default="all", help="'all' (default) or comma-separated GAN epochs, e.g. 1,5,10")
    parser.add_argument(
        "--n", type=positive_int, default=256, help="fakes per epoch, and real test images (default: 256)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="generation and scoring batch (default: 256)"
    )
    parser.add_argument("--no-sweeps", dest="sweeps", action="store_false", help="skip the robustness sweeps")
    parser.add_argument(
        "--export-fakes", metavar="DIR", help="also write the fakes as PNGs in the detector's folder layout"
    )
    parser.add_argument(
        "--harden", action="store_true", help="fine-tune a copy of the detector on extra fakes and score it too"
    )
    parser.add_argument(
        "--harden-epochs", default=None, help="GAN epochs whose fakes hardening trains on (default: all scored)"
    )
    parser.add_argument(
        "--harden-fine-tune-epochs", type=positive_int, default=1, help="fine-tuning epochs (default: 1)"
    )
    parser.add_argument("--name", default="", help="a name for the run directory")
    add_seed(parser)
    add_runs_dir(parser)
    parser.set_defaults(handler=_stress)


def _stress(args) -> int:
    from gan_lab.stress import StressConfig, run_stress

    config = StressConfig(
        detector=args.detector,
        gan=args.gan,
        epochs=args.epochs,
        n=args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        sweeps=args.sweeps,
        export_fakes=args.export_fakes,
        harden=args.harden,
        harden_epochs=args.harden_epochs,
        harden_fine_tune_epochs=args.harden_fine_tune_epochs,
        name=args.name,
    )
    run_dir = run_stress(config, runs_dir=args.runs_dir)
    print(f"Stress run: {run_dir}\nReport: {run_dir / 'report.md'}")
    return 0

"""Which detector generalises: each architecture trained on one fake source, scored on sources it never saw.

    .venv/bin/python benchmarks/bench_detectors.py --size 64 --n 2000 --epochs 6 [--gans RUN@EPOCH ...]

Every model (default: cnn3, npr, highpass and mobilenetv2 from scratch, `--weights none`) trains
on SynthFaces at medium difficulty (`--n` images, seed 0) with the lab's own training, then
scores fresh images (seed 1, `--eval-n` per class): SynthFaces fakes at each difficulty, the
medium ones re-compressed as JPEG (quality 50) and blurred (sigma 1), and the fakes of any GAN
runs given (`--gans RUN@EPOCH`, fresh latents), each against fresh real SynthFaces treated the
same way. A cell is balanced accuracy at the model's validation threshold and AP, each with its
95% bootstrap interval. Figures on SynthFaces are SynthFaces figures: they say nothing of real
GAN faces.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIFFICULTIES = ("easy", "medium", "hard")


def _train(model: str, data: Path, runs: Path, args) -> tuple[object, float]:
    from detector.inference.predict import load_detector
    from detector.models.zoo import TRANSFER_MODELS
    from detector.training.train import DetectorConfig, train_detector

    options = {"weights": None} if model in TRANSFER_MODELS else {}
    config = DetectorConfig(
        data=str(data),
        model=model,
        size=args.size,
        epochs=args.epochs,
        name=model,
        seed=0,
        tensorboard=False,
        **options,
    )
    start = time.perf_counter()
    run_dir = train_detector(config, runs_dir=runs, progress=False)
    return load_detector(run_dir), time.perf_counter() - start


def _sources(args) -> dict[str, tuple[object, object]]:
    """Source name -> (real pixels, fake pixels), float32 in [0, 1], none of them seen in training."""
    import numpy as np

    from detector.data.synthfaces import render_faces
    from gan_lab.stress.perturb import perturb

    def faces(fake: bool, difficulty: str = "medium"):
        pixels, _ = render_faces(args.eval_n, size=args.size, seed=1, fake=fake, difficulty=difficulty)
        return np.asarray(pixels, dtype=np.float32) / 255.0

    real = faces(False)
    sources = {f"SynthFaces {difficulty}": (real, faces(True, difficulty)) for difficulty in DIFFICULTIES}
    medium = sources["SynthFaces medium"][1]
    sources["medium, JPEG q50"] = (perturb(real, "jpeg", 50, seed=1), perturb(medium, "jpeg", 50, seed=2))
    sources["medium, blur sigma 1"] = (perturb(real, "blur", 1.0, seed=1), perturb(medium, "blur", 1.0, seed=2))
    for text in args.gans:
        sources[f"GAN {Path(text.split('@')[0]).name}@{text.split('@')[-1]}"] = (real, _gan_fakes(text, args))
    return sources


def _gan_fakes(text: str, args):
    from gan_lab.gan.checkpoints import load_generator
    from gan_lab.gan.latents import SCORING_STREAM, seeded_latents
    from gan_lab.gan.sample import generate

    run, _, epoch = text.rpartition("@")
    generator = load_generator(run, int(epoch))
    latents = seeded_latents(1, int(epoch), args.eval_n, int(generator.input_shape[-1]), SCORING_STREAM)
    return generate(generator, latents, 64)


def _cell(detector, real, fake, seed: int) -> str:
    from gan_lab.stress.epoch_metrics import detection_figures

    figures = detection_figures(detector.score(fake), detector.score(real), detector.threshold, seed)
    return (
        f"{figures['balanced_accuracy']:.3f} [{figures['balanced_accuracy_low']:.2f}, "
        f"{figures['balanced_accuracy_high']:.2f}] / {figures['average_precision']:.3f} "
        f"[{figures['average_precision_low']:.2f}, {figures['average_precision_high']:.2f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=2000, help="training SynthFaces (medium), half real, half fake")
    parser.add_argument("--eval-n", type=int, default=300, help="fresh images per class of each held-out source")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--models", default="cnn3,npr,highpass,mobilenetv2")
    parser.add_argument("--gans", nargs="*", default=[], help="GAN runs' epochs as held-out fake sources: RUN@EPOCH")
    args = parser.parse_args()

    from detector.data.synthfaces import write_dataset

    with tempfile.TemporaryDirectory() as folder:
        data = write_dataset(Path(folder) / "train", n=args.n, size=args.size, seed=0, difficulty="medium")
        sources = _sources(args)
        print(
            f"trained on SynthFaces medium ({args.n} images, {args.size} px, {args.epochs} epochs); "
            f"scored on {args.eval_n} fresh images per class; cells: balanced accuracy [95%] / AP [95%]"
        )
        print("| model | train s | " + " | ".join(sources) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in sources) + " |")
        for model in args.models.split(","):
            detector, seconds = _train(model, Path(data), Path(folder) / "runs", args)
            cells = [_cell(detector, real, fake, seed) for seed, (real, fake) in enumerate(sources.values())]
            print(f"| {model} | {seconds:.0f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

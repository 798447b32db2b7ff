"""Training jobs the scaling tests run in fresh processes (a strategy must exist before TensorFlow starts).

    python tests/detector/training/scaling_jobs.py mirrored RUNS_DIR        # default vs 2 logical CPUs, GAN and detector; JSON out
    python tests/detector/training/scaling_jobs.py worker RUNS_DIR KIND [--resume RUN_DIR --epochs N]   # one worker of TF_CONFIG's cluster

Each prints one JSON line, prefixed with "RESULT ", for the test to read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

TWO_DEVICES = ("/cpu:0", "/cpu:1")
STRATEGIES = (("default", None), ("mirrored", TWO_DEVICES))
# The mirrored comparison's GANs take the lazy R1 penalty (on steps 1, 3, 5, ...), so its
# tf.cond runs under both strategies.
LAZY_R1 = dict(r1_gamma=1.0, r1_interval=2)


def gan_config(**options):
    from gan_lab.gan.train import GanConfig

    base = dict(size=32, epochs=2, steps_per_epoch=3, batch_size=16, synth_n=120, diversity_n=8, grid_size=4)
    return GanConfig(**{**base, **options})


def detector_config(**options):
    from detector.training.train import DetectorConfig

    base = dict(size=32, epochs=2, steps_per_epoch=3, batch_size=16, synth_n=120, bn_recalibration=32)
    return DetectorConfig(**{**base, **options})


def history(run_dir) -> list[dict]:
    import csv

    with open(Path(run_dir) / "history.csv", newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def stress_scores(runs: dict, devices) -> list[float]:
    """P(fake) of ten fresh fakes of the run's GAN, generated and scored in batches of 4 across the replicas."""
    import numpy as np

    from detector.inference.predict import load_detector
    from detector.training.scaling import Scaling
    from gan_lab.gan.checkpoints import load_discriminator, load_generator
    from gan_lab.gan.train import GanConfig
    from gan_lab.stress.run import build_fused_scorer, generate_and_score

    scaling = Scaling.of(GanConfig(strategy="mirrored" if devices else "default", devices=devices))
    with scaling.scope():
        detector = load_detector(runs["detector_dir"])
        generator, discriminator = load_generator(runs["gan_dir"]), load_discriminator(runs["gan_dir"])
    scorer = build_fused_scorer(
        generator, detector.model, detector.feature_layer(), discriminator, strategy=scaling.strategy
    )
    latents = np.random.default_rng(0).standard_normal((10, 128)).astype(np.float32)
    generated = generate_and_score(scorer, latents, detector.head, batch_size=4)
    return [float(value) for value in generated.p_fake]


def refusals(runs_dir: Path) -> list[str]:
    """The errors of a global batch two replicas cannot share, and of mixed_float16 on two replicas."""
    from detector.base.errors import LabError
    from gan_lab.gan.train import train_gan

    messages = []
    for options in (dict(batch_size=15), dict(precision="mixed_float16")):
        try:
            train_gan(gan_config(strategy="mirrored", devices=TWO_DEVICES, **options), runs_dir=runs_dir)
        except LabError as error:
            messages.append(str(error))
    return messages


def mirrored(runs_dir: Path) -> dict:
    """Default strategy vs MirroredStrategy over two logical CPUs: histories, then a resumed mirrored run."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from detector.training.train import train_detector
    from gan_lab.gan.checkpoints import load_generator
    from gan_lab.gan.train import train_gan

    result = {}
    for strategy, devices in STRATEGIES:
        options = dict(strategy=strategy, devices=devices, name=strategy)
        gan_dir = train_gan(gan_config(**options, **LAZY_R1), runs_dir=runs_dir, progress=False)
        detector_dir = train_detector(detector_config(**options), runs_dir=runs_dir, progress=False)
        result[strategy] = {
            "gan": history(gan_dir),
            "detector": history(detector_dir),
            "gan_dir": str(gan_dir),
            "detector_dir": str(detector_dir),
        }
    result["refused"] = refusals(runs_dir / "refused")
    # The default run's models, scored on one device and on two.
    result["stress_p_fake"] = {strategy: stress_scores(result["default"], devices) for strategy, devices in STRATEGIES}
    gan_dir = result["mirrored"]["gan_dir"]
    result["generator_output"] = list(load_generator(gan_dir).output_shape)
    resumed = gan_config(strategy="mirrored", devices=TWO_DEVICES, name="mirrored", epochs=3, **LAZY_R1)
    train_gan(resumed, resume=gan_dir)
    result["resumed_gan"] = history(gan_dir)
    return result


def worker(runs_dir: Path, kind: str, resume: str | None, epochs: int) -> dict:
    """One worker of the cluster in TF_CONFIG training a small `kind` run with strategy multiworker."""
    from detector.training.train import train_detector
    from gan_lab.gan.train import train_gan

    train, config = {
        "gan": (train_gan, gan_config),
        "detector": (train_detector, detector_config),
    }[kind]
    run_dir = train(config(strategy="multiworker", epochs=epochs, name="cluster"), runs_dir=runs_dir, resume=resume)
    return {"run_dir": None if run_dir is None else str(run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=("mirrored", "worker"))
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("kind", nargs="?", default="gan")
    parser.add_argument("--resume")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if args.job == "mirrored":
        result = mirrored(args.runs_dir)
    else:
        result = worker(args.runs_dir, args.kind, args.resume, args.epochs)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

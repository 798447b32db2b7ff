"""Step time of detector and GAN training with no strategy, MirroredStrategy on one device, and on two.

    .venv/bin/python benchmarks/bench_distribute.py --size 64 --batch-size 64 --steps 20

The machine's CPU is split into two logical devices (as the tests do), so "two devices" here
shares the same cores and shows the cost of splitting a step, not a speed-up; on a machine
with two GPUs the same command shows the speed-up. The figure to watch is the one-device
overhead of the strategy (mirrored on one device against no strategy), which should stay
under 10%. Each row times fit() on a fixed in-memory batch (reading images is not timed):
its second epoch, so without one-off tracing.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SETUPS = (("no strategy", "default", None), ("mirrored, 1 device", "mirrored", ("/cpu:0",)))
TWO = ("mirrored, 2 devices", "mirrored", ("/cpu:0", "/cpu:1"))


def _detector(scaling, size: int, jit: bool):
    import keras

    from detector.models.zoo import build_model
    from detector.training.train import loss_for_head, metrics_for_head

    with scaling.scope():
        model = build_model("cnn3", size, head="probability")
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=loss_for_head("probability"),
            metrics=metrics_for_head("probability"),
            jit_compile=jit,
        )
    return model


def _gan(scaling, config):
    from gan_lab.gan.dcgan import build_discriminator, build_generator
    from gan_lab.gan.train import make_dcgan

    with scaling.scope():
        generator, discriminator = build_generator(size=config.size), build_discriminator("cnn3", config.size)
        return make_dcgan(generator, discriminator, config, total_steps=config.epochs * config.steps_per_epoch)


def _seconds_per_step(scaling, model, batch, steps: int) -> float:
    import tensorflow as tf
    from timing import epoch_timer

    timer = epoch_timer()
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    scaling.fit(model, dataset, epochs=2, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    return timer.seconds[-1] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    parser.add_argument("--jit", action="store_true", help="compile the steps with XLA")
    args = parser.parse_args()

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    from detector.training.scaling import Scaling
    from gan_lab.gan.train import GanConfig, check_config

    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, args.size, args.size, 3), dtype=np.float32)
    labels = (np.arange(args.batch_size) % 2).astype(np.float32)
    rows = []
    for title, strategy, devices in (*SETUPS, TWO):
        config = check_config(
            GanConfig(
                size=args.size,
                batch_size=args.batch_size,
                strategy=strategy,
                devices=devices,
                precision=args.precision,
                jit=args.jit,
            )
        )
        scaling = Scaling.of(config)
        keras.utils.set_random_seed(0)
        detector = _seconds_per_step(scaling, _detector(scaling, args.size, args.jit), (images, labels), args.steps)
        gan = _seconds_per_step(scaling, _gan(scaling, config), (images, labels), args.steps)
        rows.append((title, detector, gan))
        print(f"  {title}: done", flush=True)

    base = rows[0]
    print(
        f"\nTraining step time, {args.size} px, global batch {args.batch_size}, {args.precision}"
        f"{', XLA' if args.jit else ''}, {args.steps} timed steps (CPU split into 2 logical devices)"
    )
    print(f"{'setup':<22} {'detector s/step':>16} {'vs none':>8} {'GAN s/step':>11} {'vs none':>8}")
    for title, detector, gan in rows:
        print(f"{title:<22} {detector:>16.3f} {detector / base[1] - 1:>+8.1%} {gan:>11.3f} {gan / base[2] - 1:>+8.1%}")
    one = rows[1]
    worst = max(one[1] / base[1], one[2] / base[2]) - 1
    print(f"one-device overhead of the strategy: {worst:+.1%} at worst (target: under +10%)")


if __name__ == "__main__":
    main()

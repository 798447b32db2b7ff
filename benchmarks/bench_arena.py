"""What the arena's step costs beside a plain GAN step: the frozen detector's forward and backward pass.

    .venv/bin/python benchmarks/bench_arena.py [--size 64] [--batch-size 64] [--steps 20] [--model cnn3]

A DCGAN (the lab's generator, its cnn3 discriminator) and the same networks in an ArenaGAN
with a `--model` detector (untrained: the cost does not depend on its weights) fit the same
random "real" batches; each is warmed up (tracing) and then timed over `--steps` steps,
alternating twice. Prints seconds per step and the arena's cost as a multiple of the plain
step's (goal: under 1.5x).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _gan(arena: bool, size: int, model: str):
    import keras

    from detector.models.zoo import build_model
    from gan_lab.arena.model import ArenaGAN
    from gan_lab.gan.dcgan import DCGAN, build_discriminator, build_generator

    keras.utils.set_random_seed(0)
    generator, discriminator = build_generator(size=size), build_discriminator("cnn3", size)
    if arena:
        gan = ArenaGAN(generator, discriminator, build_model(model, size=size), "probability", weight=1.0, seed=0)
    else:
        gan = DCGAN(generator, discriminator, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, 0.5), g_optimizer=keras.optimizers.Adam(2e-4, 0.5))
    return gan


def seconds_per_step(gan, dataset, steps: int) -> float:
    start = time.perf_counter()
    gan.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return (time.perf_counter() - start) / steps


def main() -> None:
    import numpy as np
    import tensorflow as tf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", default="cnn3", help="the detector the arena's generator evades")
    args = parser.parse_args()
    reals = np.random.default_rng(0).uniform(size=(args.batch_size * 4, args.size, args.size, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(reals).batch(args.batch_size, drop_remainder=True).repeat()
    gans = {"plain GAN step": _gan(False, args.size, args.model), "arena step": _gan(True, args.size, args.model)}
    for gan in gans.values():
        seconds_per_step(gan, dataset, 2)  # trace and warm up
    timings = {name: [] for name in gans}
    for _ in range(2):
        for name, gan in gans.items():
            timings[name].append(seconds_per_step(gan, dataset, args.steps))
    plain = min(timings["plain GAN step"])
    print(f"\n{args.size} px, batch {args.batch_size}, detector {args.model}, best of 2 x {args.steps} steps:")
    for name, values in timings.items():
        print(f"{name:<16} {min(values):.3f} s/step  ({', '.join(f'{value:.3f}' for value in values)})")
    print(f"arena / plain    {min(timings['arena step']) / plain:.2f}x  (goal: under 1.5x)")


if __name__ == "__main__":
    main()

"""DCGAN training step time: `fit()` against the same step as a bare tf.function, and the CPU's utilisation.

    .venv/bin/python benchmarks/bench_gan.py --size 64 --batch-size 64

Three ways to run one step (a discriminator update on a batch of fakes and reals, then a
generator update) on the same models and a fixed in-memory batch, so reading images is not
timed: `fit()` on a repeated data set (what `gan-lab gan train` does; its best epoch, so
without fit()'s one-off setup), `DCGAN.train_step`
wrapped in a tf.function and called directly, and a bare tf.function written out by hand
with no metrics. Utilisation divides the step's floating-point work, counted layer by layer
from the models' shapes, by its time and by a float32 matmul's rate measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one image's forward pass through the convolutions and dense layers."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            _, height, width, channels = layer.input.shape
            total += 2 * height * width * layer.kernel_size[0] * layer.kernel_size[1] * channels * layer.filters
        elif isinstance(layer, layers.Conv2D):
            _, height, width, _ = layer.output.shape
            channels = layer.input.shape[-1]
            total += 2 * height * width * layer.kernel_size[0] * layer.kernel_size[1] * channels * layer.filters
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def step_flops(generator_flops: int, discriminator_flops: int, batch_size: int) -> int:
    """Work of one GAN step; a backward pass costs about twice its forward pass (input and weight gradients).

    Discriminator step: generator forward (B), discriminator forward and backward on 2B.
    Generator step: generator forward and backward (B), discriminator forward and
    input-gradient pass on B, no discriminator weight gradients.
    """
    discriminator_step = generator_flops + 2 * 3 * discriminator_flops
    generator_step = 3 * generator_flops + 2 * discriminator_flops
    return batch_size * (discriminator_step + generator_step)


def timed_steps(function, steps: int, repeats: int) -> float:
    """Best seconds per step over `repeats` runs of `function(steps)`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(steps)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def matmul_rate(n: int, repeats: int) -> float:
    """Best float32 FLOP/s of an n x n matmul (the CPU's practical peak for dense work)."""
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    multiply = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    multiply(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        multiply(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed run (default: 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per method; the best counts (default: 2)")
    parser.add_argument("--discriminator", default="cnn3")
    parser.add_argument("--preset", default=None, help="generator preset, e.g. seed128 (with --size 128)")
    parser.add_argument("--r1-gamma", type=float, default=0.0, help="R1 penalty weight in DCGAN's step (default: 0)")
    parser.add_argument(
        "--r1-interval",
        type=int,
        default=16,
        help="steps between R1 penalties; give --steps a multiple of it for its average cost (default: 16)",
    )
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: default)")
    parser.add_argument(
        "--startup-lines",
        choices=("held-back", "shown"),
        default="held-back",
        help="TensorFlow's C++ start-up lines: held back while it loads, as gan-lab does, or shown (default: held-back)",
    )
    args = parser.parse_args(argv)
    if args.startup_lines == "held-back":
        from detector.base.console import quiet_tensorflow_startup

        quiet_tensorflow_startup()

    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from gan_lab.gan.dcgan import DCGAN, build_discriminator, build_generator

    keras.utils.set_random_seed(0)
    generator = build_generator(size=args.size, preset=args.preset)
    discriminator = build_discriminator(args.discriminator, args.size)
    gan = DCGAN(
        generator, discriminator, label_noise=0.05, seed=0, r1_gamma=args.r1_gamma, r1_interval=args.r1_interval
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    )
    batch = args.batch_size
    latent_dim = int(generator.input_shape[-1])
    real = tf.constant(np.random.default_rng(0).random((batch, args.size, args.size, 3), dtype=np.float32))
    labels = tf.zeros((batch,))
    dataset = tf.data.Dataset.from_tensors((real, labels)).repeat()

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    def fit_seconds_per_step(steps, repeats):
        """Best epoch of one fit() call: steady state, without fit()'s one-off setup."""
        timer = EpochTimes()
        timer.seconds = []
        gan.fit(dataset, steps_per_epoch=steps, epochs=repeats, shuffle=False, verbose=0, callbacks=[timer])
        return min(timer.seconds) / steps

    def run_fit(steps):
        gan.fit(dataset, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)

    train_step = tf.function(gan.train_step)

    def run_train_step(steps):
        for _ in range(steps):
            logs = train_step((real, labels))
        float(logs["d_loss"])

    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    d_optimizer, g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)

    @tf.function
    def bare_step(real):
        latents = tf.random.normal((batch, latent_dim))
        fakes = generator(latents, training=True)
        targets = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
        targets += 0.05 * tf.random.uniform(tf.shape(targets)) * (1.0 - 2.0 * targets)
        with tf.GradientTape() as tape:
            d_loss = loss(targets, discriminator(tf.concat([fakes, real], axis=0), training=False))
        d_optimizer.apply_gradients(
            zip(tape.gradient(d_loss, discriminator.trainable_variables), discriminator.trainable_variables)
        )
        latents = tf.random.normal((batch, latent_dim))
        with tf.GradientTape() as tape:
            fakes = generator(latents, training=True)
            g_loss = loss(tf.zeros((batch, 1)), discriminator(fakes, training=False))
        g_optimizer.apply_gradients(
            zip(tape.gradient(g_loss, generator.trainable_variables), generator.trainable_variables)
        )
        return d_loss + g_loss

    def run_bare(steps):
        for _ in range(steps):
            result = bare_step(real)
        float(result)

    methods = (("fit()", run_fit), ("train_step as tf.function", run_train_step), ("bare tf.function", run_bare))
    started = time.perf_counter()
    for _, function in methods:  # trace and warm up, untimed
        function(1)
    warm_up = time.perf_counter() - started
    times = {"fit()": fit_seconds_per_step(args.steps, args.repeats)}
    times.update({name: timed_steps(function, args.steps, args.repeats) for name, function in methods[1:]})
    peak = matmul_rate(args.matmul_size, repeats=5)

    g_flops, d_flops = forward_flops(generator), forward_flops(discriminator)
    work = step_flops(g_flops, d_flops, batch)
    print(
        f"DCGAN {args.size} px, batch {batch}: generator {generator.count_params():,} parameters "
        f"({g_flops / 1e6:.0f} MFLOP per image forward), {args.discriminator} discriminator "
        f"{discriminator.count_params():,} parameters ({d_flops / 1e6:.0f} MFLOP per image forward)"
    )
    print(
        f"work per step: {work / 1e9:.1f} GFLOP; {tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads"
    )
    print(f"matmul peak ({args.matmul_size}x{args.matmul_size} float32): {peak / 1e9:.0f} GFLOP/s")
    print(f"TensorFlow start-up lines: {args.startup_lines}")
    if args.r1_gamma:
        print(
            f"R1 penalty: gamma {args.r1_gamma:g} every {args.r1_interval} steps in DCGAN's step (the bare one has none)"
        )
    print(f"tracing and warm-up: {warm_up:.1f} s; best of {args.repeats} x {args.steps} steps:")
    print(f"{'method':<28} {'s/step':>7} {'images/s':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for name, seconds in times.items():
        print(
            f"{name:<28} {seconds:>7.3f} {batch / seconds:>9.1f} {work / seconds / 1e9:>8.1f} {work / seconds / peak:>8.0%}"
        )
    print(f"fit() overhead over the bare step: {times['fit()'] / times['bare tf.function'] - 1:+.1%}")


if __name__ == "__main__":
    main()

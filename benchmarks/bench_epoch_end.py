"""What a run waits for around its epochs: fit()'s return after training, and the progress GIF's write.

    .venv/bin/python benchmarks/bench_epoch_end.py                       # about 10 minutes
    .venv/bin/python benchmarks/bench_epoch_end.py --gan-run runs/00003-gan-quickstart-64px

fit() return: a small model fits the lab's training pipeline (`detector.data.datasets.make_dataset`,
cached, shuffled, repeated) for about `--seconds` (a sleep per batch stands in for the
model's work), and the time from its last callback to fit() returning is printed for each
trial, as the lab builds pipelines (tf.data autotuning off) and with autotuning on. With it
on, the iterator's destruction waits for the tuning thread's next wake-up, up to a minute.

GIF: with `--gan-run`, the write after each epoch of that run's samples/ grids, one
`ProgressGif` kept over the run (as training does) against a new one per epoch (every frame
read and palettised again).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def fit_return_seconds(split, size: int, autotune: bool, seconds: float, seed: int) -> float:
    """Seconds from fit()'s on_train_end to its return, on the lab's pipeline with autotuning as given."""
    import keras
    import tensorflow as tf

    from detector.data.datasets import make_dataset

    dataset = make_dataset(split, size=size, batch_size=32, cache=True, shuffle=True, repeat=True, seed=seed)
    if autotune:
        options = tf.data.Options()
        options.autotune.enabled = True
        dataset = dataset.with_options(options)
    pause = 0.2
    steps = max(1, int(seconds / pause / 5))

    class Clock(keras.callbacks.Callback):
        ended = 0.0

        def on_train_batch_end(self, batch, logs=None):
            time.sleep(pause)

        def on_train_end(self, logs=None):
            self.ended = time.monotonic()

    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, strides=4),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    clock = Clock()
    model.fit(dataset, epochs=5, steps_per_epoch=steps, shuffle=False, callbacks=[clock], verbose=0)
    return time.monotonic() - clock.ended


def gif_seconds(samples: list, out: str) -> tuple[float, float]:
    """(seconds, kept over the run; seconds, a new writer each epoch) for one write per epoch."""
    from gan_lab.gan.sample import ProgressGif

    kept = ProgressGif()
    start = time.perf_counter()
    for epoch in range(1, len(samples) + 1):
        kept.write(samples[:epoch], out)
    kept_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for epoch in range(1, len(samples) + 1):
        ProgressGif().write(samples[:epoch], out)
    return kept_seconds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="fits per setting (default: 3)")
    parser.add_argument("--seconds", type=float, default=90, help="about how long each fit runs (default: 90)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=1000, help="SynthFaces images to write (default: 1000)")
    parser.add_argument("--gan-run", help="a GAN run directory whose samples/ grids to write as a GIF")
    args = parser.parse_args()

    from detector.data.datasets import index_folder
    from detector.data.synthfaces import write_dataset
    from gan_lab.gan.sample import sample_epochs

    with tempfile.TemporaryDirectory() as scratch:
        root = write_dataset(os.path.join(scratch, "faces"), n=args.n, size=args.size, seed=0, progress=False)
        split = index_folder(root).splits["train"]
        print(
            f"fit() of about {args.seconds:.0f} s on {len(split.paths)} cached images; seconds from its end to its return:"
        )
        for autotune in (False, True):
            waits = [fit_return_seconds(split, args.size, autotune, args.seconds, seed) for seed in range(args.trials)]
            label = "tf.data autotuning on " if autotune else "as the lab builds it  "
            print(f"  {label} " + "  ".join(f"{wait:6.2f}" for wait in waits))
        if args.gan_run:
            samples = list(sample_epochs(os.path.join(args.gan_run, "samples")).values())
            kept, fresh = gif_seconds(samples, os.path.join(scratch, "progress.gif"))
            print(
                f"progress.gif after each of {len(samples)} epochs: {kept:.2f} s kept over the run, {fresh:.2f} s anew"
            )


if __name__ == "__main__":
    main()

"""Which generator makes faces a face detector believes, for the same minutes of training?

    .venv/bin/python benchmarks/bench_gan_quality.py --budget 240 --size 64

Every variant trains on the same SynthFaces real images (one data set, one seed) for the
same wall-clock budget, in epochs of the quickstart's 100 steps (and at most the default's steps,
rounded up to whole epochs: see below), then draws `--n` fresh samples (never the training grid).
Each is scored by the share of samples in which MTCNN finds a face, beside the same share for the
real images; by the face Fréchet distance (face FD: the Fréchet distance between face descriptors,
MTCNN O-Net's last hidden layer, of the samples and of `--n` real images, ± one standard deviation
over bootstrap resamples of both sets: the sampling's spread only, not the seed's or the step's),
whose floor is the reals' own row: two disjoint halves of the reals against each other; and by KID
in InceptionV3 features where the Inception weights are in the Keras cache (offline without them
the column says so).

The variants: the lab's default (transposed convolutions, spectral normalisation of the
discriminator's kernels, a generator learning rate twice the discriminator's, EMA generator)
read through its EMA and through its raw generator, the other upsampling kinds, the default
without spectral normalisation, without the faster generator and without both, the R1 penalty
on the discriminator, both learning rates eased down over the second half or the last quarter
of the run, differentiable augmentation, longer EMAs (a longer half-life, or a larger share of
the images shown so far as its cap, which is what binds in a short run), and the keras-io face
DCGAN (Conv 64/128/128 discriminator; Dense 8x8x128 and ConvT 128/256/512 generator; Adam 1e-4)
as the reference row. A variant that changes only the EMA trains as the default does (the EMA
does not feed back), so its raw generator's row is the default's training at that variant's step
count: how far the face FD moves along one training in the few steps by which budgets differ.

A ramp-down needs the run's length in steps: the default trains first, and the steps it fits
in the budget, rounded up to whole epochs, are every other variant's planned length (a faster
variant stops there; the budget still stops a slower one part-way down its ramp).
`--variants R1 nearest` trains only the variants so named (and the default, which sets the
pace); `--no-reference` skips the last row.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STEPS_PER_EPOCH = 100  # the quickstart's epoch
BOOTSTRAP = 50  # resamples for the face FD's spread
EMA_ONLY = {"ema_kimg", "ema_rampup"}  # options that leave training as it is
PACE = "default: transpose, spectral norm in D, G 4e-4, EMA"  # trains first; its steps are the others' planned length
VARIANTS = {
    PACE: {},
    "nearest resize, EMA": {"upsampling": "nearest"},
    "pixelshuffle, EMA": {"upsampling": "pixelshuffle"},
    "no spectral norm, one rate (D = G = 2e-4), EMA": {"spectral_norm": False, "g_learning_rate": 2e-4},
    "no spectral norm, G 4e-4, EMA": {"spectral_norm": False},
    "spectral norm, one rate (G 2e-4), EMA": {"g_learning_rate": 2e-4},
    "R1 penalty (gamma 1, every 16 steps), EMA": {"r1_gamma": 1.0},
    "R1 penalty (gamma 1, every step), EMA": {"r1_gamma": 1.0, "r1_interval": 1},
    "rates eased down over the second half, EMA": {"lr_rampdown": 0.5},
    "rates eased down over the last quarter, EMA": {"lr_rampdown": 0.25},
    "DiffAugment (colour, translation, cutout), EMA": {"augment": ("color", "translation", "cutout")},
    "EMA half-life 20 kimg": {"ema_kimg": 20.0},
    "EMA ramp-up 0.1 (half-life up to a tenth of the images shown)": {"ema_rampup": 0.1},
    "EMA ramp-up 0.25 (half-life up to a quarter of the images shown)": {"ema_rampup": 0.25},
    "rates eased down over the last quarter, EMA ramp-up 0.1": {"lr_rampdown": 0.25, "ema_rampup": 0.1},
}


def _time_budget(seconds: float):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stop training once `seconds` of wall-clock time have passed (checked after every step)."""

        def on_train_begin(self, logs=None):
            self.started = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.started > seconds:
                self.model.stop_training = True

    return TimeBudget()


def _keras_io_models(size: int):
    """The keras-io face DCGAN (examples/generative/dcgan_overriding_train_step.py), its discriminator with a logit."""
    import keras
    from keras import layers

    discriminator = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(64, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2D(128, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2D(128, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1),
        ],
        name="keras_io_discriminator",
    )
    start = size // 8
    generator = keras.Sequential(
        [
            keras.Input((128,)),
            layers.Dense(start * start * 128),
            layers.Reshape((start, start, 128)),
            layers.Conv2DTranspose(128, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2DTranspose(256, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2DTranspose(512, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2D(3, 5, padding="same", activation="sigmoid"),
        ],
        name="keras_io_generator",
    )
    return generator, discriminator


def _train_reference(data: Path, size: int, batch_size: int, budget: float, seed: int):
    import keras

    from detector.data.datasets import index_folder, make_dataset
    from gan_lab.gan.dcgan import DCGAN

    keras.utils.set_random_seed(seed)
    generator, discriminator = _keras_io_models(size)
    gan = DCGAN(generator, discriminator, label_noise=0.05, seed=seed)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-4), g_optimizer=keras.optimizers.Adam(1e-4))
    split = index_folder(data, real_only=True, seed=seed).splits["train"]
    dataset = make_dataset(split, size=size, batch_size=batch_size, shuffle=True, seed=seed, repeat=True, cache=True)
    gan.fit(dataset, epochs=10_000, steps_per_epoch=STEPS_PER_EPOCH, callbacks=[_time_budget(budget)], verbose=0)
    return generator, int(gan.g_optimizer.iterations)


def _bootstrap_std(statistic, first, second, seed: int) -> float:
    """The spread of `statistic(first, second)` over resamples (with replacement) of both sets' rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = [
        statistic(first[rng.integers(len(first), size=len(first))], second[rng.integers(len(second), size=len(second))])
        for _ in range(BOOTSTRAP)
    ]
    return float(np.std(values, ddof=1))


def _scorer(reals, finder, descriptor, inception):
    """score(pixels) -> the row's measures against `reals`, whose descriptors and features are taken once."""
    from gan_lab.metrics.fid import frechet_feature_distance
    from gan_lab.metrics.kid import kernel_inception_distance

    real_faces = descriptor(reals)
    real_features = None if inception is None else inception.features(reals)

    def score(pixels) -> dict:
        fake_faces = descriptor(pixels)
        row = {
            "face_found": float(finder.found(pixels).mean()),
            "face_fd": frechet_feature_distance(real_faces, fake_faces),
            "face_fd_std": _bootstrap_std(frechet_feature_distance, real_faces, fake_faces, seed=0),
        }
        if inception is not None:
            row["kid"] = kernel_inception_distance(real_features, inception.features(pixels))[0]
        return row

    return score


def _variant_rows(variants: dict, data: Path, work: Path, args, score, latents) -> list[dict]:
    """Train each variant for the budget (the pace variant first: its steps are the others' planned length), then
    score its fresh samples: a row per variant, and one for the raw generator where that is the default's."""
    from detector.base.runs import read_json
    from gan_lab.gan.checkpoints import list_checkpoints, load_generator
    from gan_lab.gan.sample import generate
    from gan_lab.gan.train import GanConfig, train_gan

    rows = []
    planned_epochs = 10_000  # until the pace variant has trained: the budget alone stops it
    for name, options in variants.items():
        config = GanConfig(
            data=str(data),
            size=args.size,
            batch_size=args.batch_size,
            epochs=planned_epochs,
            steps_per_epoch=STEPS_PER_EPOCH,
            seed=args.seed,
            name="quality",
            tensorboard=False,
            faces_n=0,  # scored once, at the end
            **options,
        )
        run_dir = train_gan(config, runs_dir=work / "runs", progress=False, callbacks=[_time_budget(args.budget)])
        last = max(list_checkpoints(run_dir))
        steps = read_json(list_checkpoints(run_dir)[last] / "state.json")["g_iterations"]
        if name == PACE:
            planned_epochs = max(1, math.ceil(steps / STEPS_PER_EPOCH))
        # An EMA-only variant trains as the default does: its raw generator is the default's at its step count.
        raw_too = name == PACE or set(options) <= EMA_ONLY
        for label, raw in (("", False), (" (raw generator)", True)) if raw_too else (("", False),):
            generator = load_generator(run_dir, raw=raw)
            rows.append({"variant": name + label, "steps": steps, **score(generate(generator, latents))})
        print(f"  {name}: done", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0, help="training seconds per variant")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=256, help="samples (and real images) scored per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="*", help="train only the variants whose names contain one of these")
    parser.add_argument("--no-reference", action="store_true", help="leave out the keras-io reference row")
    args = parser.parse_args()
    variants = {
        name: options
        for name, options in VARIANTS.items()
        if name == PACE or not args.variants or any(part in name for part in args.variants)
    }

    from detector.data.datasets import class_images, index_folder
    from detector.data.synthfaces import write_dataset
    from gan_lab.gan.latents import SAMPLE_STREAM, seeded_latents
    from gan_lab.gan.sample import generate
    from gan_lab.metrics.faces import FaceDescriptor, FaceFinder
    from gan_lab.metrics.inception import load_inception

    work = Path(tempfile.mkdtemp(prefix="bench-gan-quality-"))
    print(f"runs under {work}", flush=True)
    data = write_dataset(work / "faces", n=2000, size=args.size, seed=args.seed, progress=False)
    index = index_folder(data, real_only=True, seed=args.seed)
    # Two disjoint halves: samples are compared with the first, the second gives the reals' own distance.
    both = class_images(index, "train", 0, args.size, "resize", 2 * args.n, seed=args.seed)
    reals, other_reals = both[: args.n], both[args.n :]
    finder, descriptor = FaceFinder(), FaceDescriptor()
    inception, note = load_inception(download=False)
    latents = seeded_latents(args.seed, 1, args.n, 128, SAMPLE_STREAM)
    score = _scorer(reals, finder, descriptor, inception)
    rows = [{"variant": "real training images (other half)", "steps": "", **score(other_reals)}]
    rows += _variant_rows(variants, data, work, args, score, latents)
    if not args.no_reference:
        generator, steps = _train_reference(data, args.size, args.batch_size, args.budget, args.seed)
        rows.append(
            {
                "variant": "keras-io face DCGAN (reference)",
                "steps": steps,
                **score(generate(generator, latents)),
            }
        )

    print(
        f"\nGAN quality for {args.budget:.0f} s of training each, {args.size} px SynthFaces, batch {args.batch_size}, "
        f"seed {args.seed}, {args.n} samples per row (MTCNN face-found rate; face FD in O-Net descriptors, "
        "± 1 SD over bootstrap resamples, sampling only; the reals' own row its floor; KID in Inception features)"
    )
    width = max(len(row["variant"]) for row in rows)
    print(f"{'variant':<{width}} {'steps':>6} {'face found':>10} {'face FD':>14} {'KID':>8}")
    for row in rows:
        kid = f"{row['kid']:.4f}" if "kid" in row else "n/a"
        face_fd = f"{row['face_fd']:.3f} ± {row['face_fd_std']:.3f}"
        print(f"{row['variant']:<{width}} {row['steps']!s:>6} {row['face_found']:>10.1%} {face_fd:>14} {kid:>8}")
    if inception is None:
        print(f"KID: {note}")


if __name__ == "__main__":
    main()

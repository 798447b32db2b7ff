"""Images per second: the detector.data.datasets tf.data pipeline (with and without augmentation) vs a plain PIL + numpy loop.

    python benchmarks/bench_data.py                 # writes a small SynthFaces folder to a temp dir
    python benchmarks/bench_data.py --data DIR      # any real-vs-fake folder

Every figure is the mean over full passes of the training split after one warm-up pass (files in the OS cache,
graphs traced), measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def plain_loop(paths, size, crop, batch_size):
    """The baseline: decode, convert, fit and stack batches one file at a time."""
    import numpy as np

    from detector.data.images import fit_image, open_rgb

    count = 0
    for start in range(0, len(paths), batch_size):
        batch = np.stack([fit_image(open_rgb(path), size, mode=crop) for path in paths[start : start + batch_size]])
        count += len(batch)
    return count


def pipeline_pass(dataset):
    return sum(int(images.shape[0]) for images, _ in dataset)


def timed(passes, function, *args):
    function(*args)  # warm-up
    start = time.perf_counter()
    count = sum(function(*args) for _ in range(passes))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a data folder (default: write SynthFaces to a temp dir)")
    parser.add_argument("--n", type=int, default=1000, help="SynthFaces images to write (default: 1000)")
    parser.add_argument("--size", type=int, default=64, help="SynthFaces side and model input size (default: 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", default="resize", choices=("resize", "crop"))
    parser.add_argument("--passes", type=int, default=3, help="timed passes per figure (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from detector.data.augment import build_augmentation
    from detector.data.datasets import index_folder, make_dataset

    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        root = args.data
        if root is None:
            from detector.data.synthfaces import write_dataset

            start = time.perf_counter()
            root = write_dataset(
                os.path.join(scratch, "faces"), n=args.n, size=args.size, seed=args.seed, progress=False
            )
            print(f"wrote {args.n} SynthFaces images ({args.size} px) in {time.perf_counter() - start:.1f} s")
        train = index_folder(root, seed=args.seed).splits["train"]
        print(
            f"{len(train.paths)} training images from {root}, {os.cpu_count()} CPU cores, batch {args.batch_size}, crop={args.crop}"
        )
        options = dict(size=args.size, batch_size=args.batch_size, crop=args.crop, shuffle=True, seed=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = [
                (
                    "plain PIL + numpy loop",
                    timed(args.passes, plain_loop, train.paths, args.size, args.crop, args.batch_size),
                ),
                ("make_dataset", timed(args.passes, pipeline_pass, make_dataset(train, **options))),
                (
                    "make_dataset + augmentation (flip, rotation, shift, zoom)",
                    timed(
                        args.passes,
                        pipeline_pass,
                        make_dataset(train, augment=build_augmentation(seed=args.seed), **options),
                    ),
                ),
                (
                    "make_dataset + augmentation + blur 0.5 + JPEG 0.5",
                    timed(
                        args.passes,
                        pipeline_pass,
                        make_dataset(
                            train,
                            augment=build_augmentation(seed=args.seed, blur_probability=0.5, jpeg_probability=0.5),
                            **options,
                        ),
                    ),
                ),
                (
                    "make_dataset, cache=True (2nd pass from memory)",
                    timed(args.passes, pipeline_pass, make_dataset(train, cache=True, **options)),
                ),
            ]
    baseline = rows[0][1]
    for name, rate in rows:
        print(f"{name:<60}{rate:>9.0f} images/s  ({rate / baseline:.2f}x)")


if __name__ == "__main__":
    main()

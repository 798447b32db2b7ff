"""Batched detector scoring (`Detector.score`) against a per-image loop, in images per second.

    python benchmarks/bench_predict.py --images 512 --size 64 --model cnn3

The baseline calls `model.predict` once per image, as a naive loop over files would;
"per-image graph" calls the same compiled graph once per image, separating the cost of
`predict`'s per-call setup from the gain of batching itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _timed(function, repeats: int) -> float:
    """Best wall time of `repeats` runs (the best is least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="images scored by the batched path (default: 512)")
    parser.add_argument(
        "--loop-images", type=int, default=64, help="images scored by the per-image loops (default: 64)"
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", default="cnn3")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from detector.base.runs import atomic_save_model, write_json
    from detector.inference.predict import load_detector
    from detector.models.zoo import build_model

    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "00001-detector-bench"
        run_dir.mkdir()
        atomic_save_model(build_model(args.model, size=args.size), run_dir / "model.keras")
        write_json(
            run_dir / "config.json", {"model": args.model, "head": "probability", "size": args.size, "crop": "resize"}
        )
        detector = load_detector(run_dir)
    detector.batch_size = args.batch_size
    rng = np.random.default_rng(0)
    images = rng.random((args.images, args.size, args.size, 3), dtype=np.float32)
    loop_images = images[: args.loop_images]

    # Warm up each path once so tracing is not timed.
    detector.score(images[:2])
    detector.model.predict(images[:1], verbose=0)

    batched = _timed(lambda: detector.score(images), args.repeats)
    graph_loop = _timed(lambda: [detector.score(image[None]) for image in loop_images], args.repeats)
    predict_loop = _timed(
        lambda: [detector.model.predict(image[None], verbose=0) for image in loop_images], args.repeats
    )

    same = np.allclose(
        detector.score(loop_images), [detector.score(image[None])[0] for image in loop_images], atol=1e-5
    )
    print(f"model {args.model}, {args.size} px, batch size {args.batch_size}, best of {args.repeats}")
    print(f"{'method':<32} {'images':>7} {'seconds':>8} {'images/s':>9}")
    for name, count, seconds in (
        ("model.predict per image", len(loop_images), predict_loop),
        ("compiled graph per image", len(loop_images), graph_loop),
        ("Detector.score batched", len(images), batched),
    ):
        print(f"{name:<32} {count:>7} {seconds:>8.3f} {count / seconds:>9.1f}")
    print(
        f"speed-up of batched over model.predict per image: {(len(images) / batched) / (len(loop_images) / predict_loop):.1f}x"
    )
    print(f"batched and per-image scores agree: {same}")


if __name__ == "__main__":
    main()

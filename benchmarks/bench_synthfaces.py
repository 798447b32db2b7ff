"""Images per second: SynthFaces rendering (vectorised over a batch) vs one image per call, and writing a folder.

    python benchmarks/bench_synthfaces.py                # 64 px, 1024 images per figure
    python benchmarks/bench_synthfaces.py --size 128 --n 512

Run with one core (e.g. `taskset -c 0` or OMP_NUM_THREADS=1) for the per-core figure. The baseline
renders the same faces one call per image, which is what a per-image renderer costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    from detector.data.synthfaces import render_faces, write_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="images per figure (default: 1024)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--difficulty", default="medium")
    args = parser.parse_args()

    render_faces(8, size=args.size, difficulty=args.difficulty)  # warm-up: imports, first allocations

    def rate(function) -> float:
        start = time.perf_counter()
        count = function()
        return count / (time.perf_counter() - start)

    def batched() -> int:
        half = args.n // 2
        render_faces(half, size=args.size, seed=1, difficulty=args.difficulty)
        render_faces(half, size=args.size, seed=1, fake=True, difficulty=args.difficulty)
        return 2 * half

    def one_at_a_time() -> int:
        count = max(2, args.n // 8)  # the slow path, fewer images so the run stays short
        for index in range(count):
            render_faces(1, size=args.size, seed=index, fake=index % 2 == 1, difficulty=args.difficulty)
        return count

    def written() -> int:
        with tempfile.TemporaryDirectory() as folder:
            write_dataset(
                Path(folder) / "faces", n=args.n, size=args.size, seed=1, difficulty=args.difficulty, progress=False
            )
        return args.n

    print(f"SynthFaces {args.size} px, {args.difficulty}")
    print(f"  render_faces, one image per call : {rate(one_at_a_time):8.0f} images/s (baseline)")
    print(f"  render_faces, batched            : {rate(batched):8.0f} images/s")
    print(f"  write_dataset (PNG files + csv)   : {rate(written):8.0f} images/s")


if __name__ == "__main__":
    main()

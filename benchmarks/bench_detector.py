"""Detector training and inference speed in images/s, as a fraction of this machine's fp32 matmul peak.

    python benchmarks/bench_detector.py                      # cnn3 at 64 and 128 px, about 2 minutes
    python benchmarks/bench_detector.py --sizes 64 --model small_cnn

Model FLOPs are counted from the convolution and dense layers (2 x multiply-adds per image
forward, 3 x that for a training step: forward, and backward for inputs and weights);
activations, pooling and BatchNorm are left out, so utilisation is a slight underestimate.
The peak is measured in the same run with large float32 `tf.matmul`s.

Training runs `model.fit` on images already in memory (the data pipeline is measured by
bench_data.py). Prediction compares `predict_paths` (batched, the lab's path) on a folder of
PNGs with a loop calling `model.predict` once per file, as a naive script would.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _best_time(function, repeats: int) -> float:
    """Best wall time of `repeats` runs (the best is least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-multiply throughput in FLOP/s."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32, seed=0)
    b = tf.random.uniform((n, n), dtype=tf.float32, seed=1)
    multiply = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    multiply(a, b).numpy()  # trace and warm up
    seconds = _best_time(lambda: multiply(a, b).numpy(), repeats)
    return 2.0 * n**3 / seconds


def forward_flops(model) -> float:
    """FLOPs of one image through the model's convolution and dense layers (2 x multiply-adds)."""
    import keras

    multiply_adds = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            multiply_adds += forward_flops(layer) / 2
        elif isinstance(layer, keras.layers.SeparableConv2D):
            height, width, channels = layer.output.shape[1:]
            inputs = layer.input.shape[-1] * layer.depth_multiplier
            multiply_adds += height * width * inputs * (int(np.prod(layer.kernel_size)) + channels)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            height, width, channels = layer.output.shape[1:]
            multiply_adds += height * width * channels * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            height, width, channels = layer.output.shape[1:]
            multiply_adds += (
                height * width * channels * int(np.prod(layer.kernel_size)) * layer.input.shape[-1] // layer.groups
            )
        elif isinstance(layer, keras.layers.Dense):
            multiply_adds += int(layer.input.shape[-1]) * layer.units
    return 2.0 * multiply_adds


def training_rate(model_name: str, size: int, batch_size: int, steps: int, seed: int = 0) -> float:
    """Images per second of `model.fit` on in-memory batches, after a warm-up epoch."""
    import keras
    import tensorflow as tf

    from detector.models.zoo import build_model
    from detector.training.train import loss_for_head, metrics_for_head

    keras.utils.set_random_seed(seed)
    model = build_model(model_name, size=size)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=loss_for_head("probability"),
        metrics=metrics_for_head("probability"),
    )
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size * 4, size, size, 3), dtype=np.float32)
    labels = (np.arange(len(images)) % 2).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).repeat().prefetch(2)

    from timing import epoch_timer

    timer = epoch_timer()
    # Epoch 0 traces the step function; the best of the others is timed.
    model.fit(dataset, epochs=3, steps_per_epoch=steps, shuffle=False, callbacks=[timer], verbose=0)
    return steps * batch_size / min(timer.seconds[1:])


def _detector(model_name: str, size: int, folder: Path):
    from detector.base.runs import atomic_save_model, write_json
    from detector.inference.predict import load_detector
    from detector.models.zoo import build_model

    run_dir = folder / f"00001-detector-bench-{size}"
    run_dir.mkdir()
    atomic_save_model(build_model(model_name, size=size), run_dir / "model.keras")
    write_json(run_dir / "config.json", {"model": model_name, "head": "probability", "size": size, "crop": "resize"})
    return load_detector(run_dir)


def inference_rate(detector, images: int, repeats: int) -> float:
    """Images per second of Detector.score on in-memory pixels (batches of detector.batch_size)."""
    pixels = np.random.default_rng(0).random((images, detector.size, detector.size, 3), dtype=np.float32)
    detector.score(pixels[:2])  # trace
    return images / _best_time(lambda: detector.score(pixels), repeats)


def folder_rates(detector, folder: Path, loop_images: int, repeats: int) -> tuple[float, float, int]:
    """(predict_paths images/s, per-file model.predict images/s, files) on a folder of PNGs."""
    import warnings

    from detector.data.images import fit_image, load_rgb
    from detector.inference.predict import predict_paths

    files = sorted(folder.rglob("*.png"))
    predict_paths(detector, files[:2])  # warm up
    batched = len(files) / _best_time(lambda: predict_paths(detector, folder, crop="resize"), repeats)

    def per_file():
        for path in files[:loop_images]:
            pixels = fit_image(load_rgb(path), detector.size, mode="resize")
            detector.model.predict(pixels[None], verbose=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector.model.predict(np.zeros((1, detector.size, detector.size, 3), np.float32), verbose=0)
        loop = min(loop_images, len(files)) / _best_time(per_file, repeats)
    return batched, loop, len(files)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn3")
    parser.add_argument("--sizes", default="64,128", help="comma-separated input sizes (default: 64,128)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size (default: 32)")
    parser.add_argument("--train-steps", type=int, default=20, help="training steps per timed epoch (default: 20)")
    parser.add_argument("--images", type=int, default=512, help="images scored in memory per size (default: 512)")
    parser.add_argument(
        "--folder-images", type=int, default=256, help="PNG files in the prediction folder (default: 256)"
    )
    parser.add_argument(
        "--loop-images", type=int, default=48, help="files scored one model.predict at a time (default: 48)"
    )
    parser.add_argument(
        "--matmul-size", type=int, default=2048, help="side of the square matrices for the peak (default: 2048)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings (default: 3)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    import tensorflow as tf

    from detector.data.synthfaces import write_dataset
    from detector.models.zoo import build_model

    started = time.perf_counter()
    peak = matmul_peak(args.matmul_size, args.repeats)
    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores; fp32 matmul peak "
        f"({args.matmul_size}x{args.matmul_size}): {peak / 1e9:.1f} GFLOP/s"
    )
    print()
    header = (
        f"{'model':<8} {'px':>4}  {'MFLOP/img':>9}  {'train img/s':>11} {'util':>5}  {'infer img/s':>11} {'util':>5}"
    )
    print(header)
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        temporary = Path(temporary)
        for size in sizes:
            flops = forward_flops(build_model(args.model, size=size))
            train = training_rate(args.model, size, args.batch_size, args.train_steps)
            detector = _detector(args.model, size, temporary)
            infer = inference_rate(detector, args.images, args.repeats)
            rows.append((size, detector))
            print(
                f"{args.model:<8} {size:>4}  {flops / 1e6:>9.1f}  {train:>11.1f} {3 * flops * train / peak:>5.1%}  "
                f"{infer:>11.1f} {flops * infer / peak:>5.1%}",
                flush=True,
            )
        print()
        print(f"Scoring a folder of {args.folder_images} PNGs (decoding included):")
        print(f"{'px':>4}  {'predict_paths img/s':>19}  {'model.predict per file img/s':>28}  {'speed-up':>8}")
        for size, detector in rows:
            folder = write_dataset(
                temporary / f"faces-{size}", n=args.folder_images, size=min(size, 256), seed=0, progress=False
            )
            batched, loop, files = folder_rates(detector, folder, args.loop_images, args.repeats)
            print(f"{size:>4}  {batched:>19.1f}  {loop:>28.1f}  {batched / loop:>7.1f}x")
    print()
    print(f"Total {time.perf_counter() - started:.0f} s. Training utilisation counts 3 x forward FLOPs per image.")


if __name__ == "__main__":
    main()

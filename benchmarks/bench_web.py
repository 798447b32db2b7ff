"""The upload page's server under load: latency and throughput of ordinary uploads, memory under the worst ones.

    python benchmarks/bench_web.py [--run RUN_DIR] [--requests 200] [--clients 4]

First the lab's pages: a runs folder of 100 runs (25 copies of a `--preset tiny` quickstart's
four), the index and a stress page requested one at a time (p50 and p95; goal: p95 under 200 ms).
Then the upload page, served as `gan-lab serve` serves it (waitress, MTCNN, default limits) on
127.0.0.1: ordinary uploads (a 512x600 portrait JPEG) from `--clients` client
threads, with MTCNN and as whole photos (p50 and p95 latency, requests per second); and 8
uploads at once of the worst image the server accepts (a 16-bit PNG of the most pixels the
decode cap allows), with the server's peak RSS growth. Without --run, an untrained cnn3 at 64 px
is used (its speed is a trained one's).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

WORST_AT_ONCE = 8


def _photo():
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return Image.open(io.BytesIO(handle.read())).convert("RGB")


def _encode(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _worst_upload(max_decode_mb: float) -> bytes:
    """The portrait as a 16-bit PNG of the most pixels `max_decode_mb` accepts (3 bytes a pixel as RGB)."""
    from PIL import Image

    from gan_lab.apps.web import MB, RGB_BYTES

    pixels = int(max_decode_mb * MB) // RGB_BYTES
    photo = _photo().convert("L")
    height = math.isqrt(pixels * photo.height // photo.width)
    grey = np.asarray(photo.resize((pixels // height, height), Image.Resampling.BILINEAR), dtype=np.uint16)
    return _encode(Image.fromarray(grey * 257), "PNG")


def _post(url: str, data: bytes, name: str, faces: str) -> int:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="faces"\r\n\r\n{faces}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _ordinary(url: str, requests: int, clients: int, faces: str) -> None:
    photo = _encode(_photo(), "JPEG", quality=90)
    latencies = []

    def classify(index: int) -> int:
        started = time.perf_counter()
        status = _post(url, photo, f"hopper-{index}.jpg", faces)
        latencies.append(time.perf_counter() - started)
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(classify, range(requests)))
    elapsed = time.perf_counter() - started
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    ok = statuses.count(200)
    print(f"{faces:<8} {requests:>8} {ok:>5} {p50:>8.0f} {p95:>8.0f} {requests / elapsed:>8.1f}")


def _worst(url: str, max_decode_mb: float) -> None:
    import psutil

    data = _worst_upload(max_decode_mb)
    process = psutil.Process()
    start = peak = process.memory_info().rss
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(WORST_AT_ONCE) as pool:
        statuses = list(pool.map(lambda index: _post(url, data, f"worst-{index}.png", "mtcnn"), range(WORST_AT_ONCE)))
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    print(
        f"{WORST_AT_ONCE} uploads at once of a {len(data) / 2**20:.1f} MB 16-bit PNG ({max_decode_mb:g} MB decoded): "
        f"statuses {sorted(statuses)}, {elapsed:.1f} s, peak RSS growth {(peak - start) / 2**20:.0f} MB"
    )


def _untrained_run(folder: str) -> Path:
    from detector.base.runs import atomic_save_model, write_json
    from detector.models.zoo import build_model

    run_dir = Path(folder) / "00001-detector-bench"
    run_dir.mkdir()
    atomic_save_model(build_model("cnn3", size=64), run_dir / "model.keras")
    write_json(run_dir / "config.json", {"model": "cnn3", "head": "probability", "size": 64, "crop": "crop"})
    return run_dir


def _lab_runs(folder: str, copies: int) -> Path:
    """A runs folder of `copies` x 4 runs: a `--preset tiny` quickstart's detector, GAN, stress and quickstart runs."""
    from detector.base.runs import list_runs
    from gan_lab.apps.quickstart import QuickstartConfig, run_quickstart

    made = Path(folder) / "made"
    run_quickstart(QuickstartConfig(preset="tiny"), runs_dir=made, progress=False)
    runs = Path(folder) / "lab-runs"
    runs.mkdir()
    number = 0
    for _ in range(copies):
        for path in list_runs(made):
            number += 1
            shutil.copytree(path, runs / f"{number:05d}-{path.name.split('-', 1)[1]}")
    return runs


def _lab_pages(base: str, runs: Path, requests: int) -> None:
    """p50 and p95 of the index and of a stress page, one request at a time."""
    from detector.base.runs import list_runs

    stress = list_runs(runs, "stress")[-1].name
    print(f"the lab over {len(list_runs(runs))} runs")
    print(f"{'page':<12} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, path in (("index", "/lab/"), ("stress page", f"/lab/runs/{stress}/")):
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=60) as response:
                response.read()
            times.append(time.perf_counter() - start)
        times.sort()
        p50, p95 = times[len(times) // 2], times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
        print(f"{name:<12} {requests:>8} {1000 * p50:>8.1f} {1000 * p95:>8.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="detector run directory (default: an untrained cnn3 at 64 px)")
    parser.add_argument("--requests", type=int, default=200, help="ordinary uploads per face-finding choice")
    parser.add_argument("--clients", type=int, default=4, help="client threads sending them (default: 4)")
    parser.add_argument("--lab-copies", type=int, default=25, help="copies of a tiny quickstart's 4 runs for the lab")
    parser.add_argument("--lab-requests", type=int, default=100, help="requests per lab page (default: 100)")
    args = parser.parse_args(argv)

    from gan_lab.apps.web import MAX_CONCURRENT, MAX_DECODE_MB, create_app, production_server

    logging.getLogger("waitress").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        lab = production_server(create_app(None, runs_dir=_lab_runs(folder, args.lab_copies)), "127.0.0.1", 0)
        lab_thread = threading.Thread(target=lab.run, daemon=True)
        lab_thread.start()
        try:
            _lab_pages(f"http://127.0.0.1:{lab.effective_port}", Path(folder) / "lab-runs", args.lab_requests)
        finally:
            lab.close()
            lab_thread.join(timeout=30)
        run_dir = Path(args.run) if args.run else _untrained_run(folder)
        http = production_server(create_app(run_dir, runs_dir=run_dir.parent, faces="mtcnn"), "127.0.0.1", 0)
        thread = threading.Thread(target=http.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{http.effective_port}/api/predict"
        try:
            for faces in ("mtcnn", "none"):  # warm up: the model, MTCNN and their compiled graphs
                _post(url, _encode(_photo(), "JPEG"), "warm-up.jpg", faces)
            print(
                f"{run_dir.name}, {os.cpu_count()} CPUs, {MAX_CONCURRENT} uploads decoded at once, {args.clients} clients"
            )
            print(f"{'faces':<8} {'requests':>8} {'200s':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
            for faces in ("mtcnn", "none"):
                _ordinary(url, args.requests, args.clients, faces)
            _worst(url, MAX_DECODE_MB)
        finally:
            http.close()
            thread.join(timeout=30)


if __name__ == "__main__":
    main()

"""The real server under load, on 127.0.0.1: the worst uploads it accepts, at once, and many ordinary ones.

The server runs in a process of its own, as `gan-lab serve` does, so that its memory is
measured apart from what the rest of the test session left in this one.
"""

import io
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import matplotlib.cbook
import numpy as np
import psutil
import pytest
from PIL import Image

from gan_lab.apps.web import MAX_CONCURRENT, MAX_DECODE_MB, MB, RGB_BYTES

# The bound: eight of the worst uploads at once may grow the server by this much.
MAX_GROWTH_MB = 500
WORST_AT_ONCE = 8
ORDINARY_REQUESTS = 200
CLIENT_THREADS = 4
REQUEST_TIMEOUT_SECONDS = 120
SERVER_START_SECONDS = 300

# The app as `gan-lab serve` makes it (malloc arenas capped, MTCNN, default limits), on werkzeug's
# threaded server; it prints its port, then serves until it is terminated.
SERVE = """
import sys
from pathlib import Path
from werkzeug.serving import make_server
from gan_lab.apps.web import create_app, limit_allocator_arenas

assert limit_allocator_arenas()
run = Path(sys.argv[1])
http = make_server("127.0.0.1", 0, create_app(run, runs_dir=run.parent, faces="mtcnn"), threaded=True)
print(http.server_port, flush=True)
http.serve_forever()
"""


def _photo() -> Image.Image:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return Image.open(io.BytesIO(handle.read())).convert("RGB")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def worst_upload() -> bytes:
    """The portrait as a 16-bit PNG of the most pixels the default cap accepts (about 2 MB of file).

    16-bit grey is the costliest mode to convert (no JPEG draft scaling applies), and a real
    face keeps MTCNN busy through all three of its stages.
    """
    pixels = int(MAX_DECODE_MB * MB) // RGB_BYTES
    photo = _photo().convert("L")
    height = math.isqrt(pixels * photo.height // photo.width)
    grey = np.asarray(photo.resize((pixels // height, height), Image.Resampling.BILINEAR), dtype=np.uint16)
    return _encode(Image.fromarray(grey * 257), "PNG")


def post(url: str, data: bytes, name: str, faces: str | None = None) -> tuple[int, dict]:
    """POST `data` as the form field "file" (and `faces`, if given) to `url`; the status and the JSON answer."""
    boundary = uuid.uuid4().hex
    field = f'--{boundary}\r\nContent-Disposition: form-data; name="faces"\r\n\r\n{faces}\r\n' if faces else ""
    body = (
        (
            f'{field}--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class PeakRss:
    """A process's peak resident memory above where it was at the start, sampled every few ms."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / MB


@pytest.fixture(scope="module")
def server(tmp_path_factory, detector_run):
    """(URL of /api/predict, server process id) of the app served in a process of its own."""
    run = shutil.copytree(detector_run, tmp_path_factory.mktemp("load-runs") / "00001-detector-tiny")
    log = tmp_path_factory.mktemp("server-log") / "stderr.txt"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(run)], stdout=subprocess.PIPE, stderr=stderr, env=os.environ.copy()
        )
    try:
        port = _read_port(process, log)
        url = f"http://127.0.0.1:{port}/api/predict"
        assert post(url, _encode(_photo(), "JPEG"), "warm-up.jpg")[0] == 200  # loads the model and MTCNN
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def _read_port(process: subprocess.Popen, log) -> int:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline().decode()), daemon=True)
    reader.start()
    reader.join(SERVER_START_SECONDS)
    if not found or not found[0].strip().isdigit():
        process.kill()
        raise AssertionError(f"the server did not start: {log.read_text(errors='replace')[-2000:]}")
    return int(found[0])


def test_eight_worst_uploads_at_once_stay_under_500_mb(server):
    url, pid = server
    data = worst_upload()
    with PeakRss(pid) as memory, ThreadPoolExecutor(WORST_AT_ONCE) as pool:
        answers = list(pool.map(lambda index: post(url, data, f"worst-{index}.png"), range(WORST_AT_ONCE)))
    print(f"{WORST_AT_ONCE} uploads of {len(data) / MB:.1f} MB at once: peak RSS growth {memory.growth_mb:.0f} MB")
    assert memory.growth_mb < MAX_GROWTH_MB
    classified = [answer for status, answer in answers if status == 200]
    busy = [answer for status, answer in answers if status == 503]
    assert len(classified) + len(busy) == WORST_AT_ONCE, answers
    # Those that waited too long for a turn were told so, by name; at least one batch was classified.
    assert len(classified) >= MAX_CONCURRENT and all(a["verdict"] in ("Real", "Fake") for a in classified)
    assert all("busy" in a["error"] and a["error"].count("worst-") == 1 for a in busy)


def test_two_hundred_ordinary_requests_all_succeed(server):
    url, _ = server
    photo = _encode(_photo(), "JPEG", quality=90)
    latencies = []

    def classify(index: int) -> int:
        started = time.perf_counter()
        # Whole photos, so that the test takes seconds: MTCNN's cost is benchmarks/bench_web.py's to report.
        status, answer = post(url, photo, f"hopper-{index}.jpg", faces="none")
        latencies.append(time.perf_counter() - started)
        assert answer.get("file") == f"hopper-{index}.jpg", answer
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        statuses = list(pool.map(classify, range(ORDINARY_REQUESTS)))
    elapsed = time.perf_counter() - started
    p50, p95 = np.percentile(latencies, [50, 95])
    print(
        f"{ORDINARY_REQUESTS} requests: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, {len(statuses) / elapsed:.1f}/s"
    )
    assert statuses == [200] * ORDINARY_REQUESTS

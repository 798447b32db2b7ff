"""Whatever is uploaded to POST /api/predict, the answer is a verdict or a 4xx JSON error naming the file."""

import io
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gan_lab.apps.web import create_app

# A small decoded-memory cap (about 17,000 RGB pixels), so that the generated sizes cross it:
# some uploads are refused from their header, large JPEGs are decoded at a reduced scale.
MAX_DECODE_MB = 0.05
NAMES = ("face.png", "photo.jpg", "upload.bin", "x.tiff")
# Every format the lab reads, in the modes each can hold, odd ones included.
FORMAT_MODES = [
    ("PNG", mode)
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")  # I;16: 16-bit grey
] + [
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("BMP", "1"),
    ("BMP", "L"),
    ("BMP", "P"),
    ("BMP", "RGB"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
    ("GIF", "P"),
    ("GIF", "L"),
    ("TIFF", "1"),
    ("TIFF", "LA"),
    ("TIFF", "CMYK"),
    ("TIFF", "I;16"),
    ("TIFF", "I"),
    ("TIFF", "F"),
    ("TIFF", "YCbCr"),
]
# PIL warns about the damage it skips over in mutated files; the answer is what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _encode(fmt: str, mode: str, width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    # Smooth noise rather than white noise: PNG and TIFF stay small, JPEG and WebP have structure to lose.
    small = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    image = image.convert("L").convert(mode) if mode in ("I;16", "I", "F") else image.convert(mode)
    buffer = io.BytesIO()
    options = {"save_all": True, "append_images": [image.rotate(90)]} if fmt == "GIF" else {}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


VALID = [_encode(fmt, mode, 41, 37, index) for index, (fmt, mode) in enumerate(FORMAT_MODES)]


@pytest.fixture(scope="module")
def client(tmp_path_factory, detector_run):
    run = shutil.copytree(detector_run, tmp_path_factory.mktemp("fuzz-runs") / "00001-detector-tiny")
    return create_app(run, runs_dir=run.parent, max_decode_mb=MAX_DECODE_MB).test_client()


def _check_answer(client, data: bytes, name: str) -> None:
    """A 200 with a verdict, or a 4xx with a JSON error naming the file: anything else fails the test."""
    response = client.post("/api/predict", data={"file": (io.BytesIO(data), name)})
    assert response.is_json, response.get_data(as_text=True)[:500]
    answer = response.json
    if response.status_code == 200:
        assert answer["file"] == name
        assert answer["verdict"] in ("Real", "Fake") and 0.0 <= answer["p_fake"] <= 1.0
    else:
        assert 400 <= response.status_code < 500, answer
        assert name in answer["error"], answer


@pytest.mark.parametrize(
    "fmt,mode,data",
    [pytest.param(fmt, mode, data, id=f"{fmt}-{mode}") for (fmt, mode), data in zip(FORMAT_MODES, VALID, strict=True)],
)
def test_every_format_and_odd_mode_is_classified(client, fmt, mode, data):
    response = client.post("/api/predict", data={"file": (io.BytesIO(data), "face.img")})
    assert response.status_code == 200, response.json


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=4096), st.sampled_from(NAMES))
def test_random_bytes_get_a_clear_4xx(client, data, name):
    _check_answer(client, data, name)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)), max_size=8),
    st.one_of(st.just(0), st.integers(1, 4096)),  # often whole, so that damage in the pixel data gets through
    st.sampled_from(NAMES),
)
def test_mutated_and_truncated_images_get_a_verdict_or_a_clear_4xx(client, original, flips, cut, name):
    data = bytearray(original)
    for position, value in flips:
        # Spread over the file: hypothesis favours small numbers, which would all land in the header.
        data[position * 2_654_435_761 % len(data)] = value
    _check_answer(client, bytes(data[: max(1, len(data) - cut)]), name)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FORMAT_MODES),
    # Slivers, around the model's 32 px, larger, and past the decode cap (some JPEGs are decoded smaller).
    st.one_of(st.integers(1, 4), st.integers(30, 80), st.integers(100, 400), st.integers(1000, 3000)),
    st.one_of(st.integers(1, 4), st.integers(30, 80), st.integers(100, 400)),
    st.booleans(),
    st.integers(0, 1000),
)
def test_odd_sizes_and_modes_get_a_verdict_or_a_clear_4xx(client, format_mode, width, height, transpose, seed):
    if transpose:
        width, height = height, width
    _check_answer(client, _encode(*format_mode, width, height, seed), "face.png")

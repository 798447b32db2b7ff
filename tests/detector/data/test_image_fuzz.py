"""Whatever bytes arrive, the image loader answers with RGB pixels or a LabError naming the file."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from detector.base.errors import LabError
from detector.data.images import decoded_bytes, fit_image, open_rgb

NAME = "upload.bin"
# PIL warns about the damage it skips over in mutated files; the answer is what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _encoded(mode: str, width: int, height: int, fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


VALID = [
    _encoded(mode, 23, 17, fmt, index)
    for index, (mode, fmt) in enumerate(
        [("RGB", "PNG"), ("L", "JPEG"), ("P", "GIF"), ("RGBA", "WEBP"), ("1", "BMP"), ("CMYK", "TIFF"), ("I;16", "PNG")]
    )
]


def _answer(data: bytes):
    """Pixels or a LabError naming the file: anything else is a failure of the test."""
    try:
        image = open_rgb(data, NAME, max_bytes=4_000_000)
    except LabError as error:
        assert NAME in str(error)
        return None
    assert image.mode == "RGB"
    pixels = fit_image(image, 16, mode="resize", name=NAME)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.float32
    assert np.all((pixels >= 0) & (pixels <= 1))
    return pixels


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_anything_but_a_lab_error(data):
    _answer(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 4096),
)
def test_mutated_and_truncated_images_never_escape(original, flips, cut):
    data = bytearray(original)
    for position, value in flips:
        data[position % len(data)] = value
    _answer(bytes(data[: max(1, len(data) - cut)]))


@pytest.mark.parametrize(
    "data", VALID, ids=["png-rgb", "jpeg-l", "gif-p", "webp-rgba", "bmp-1", "tiff-cmyk", "png-i16"]
)
def test_every_format_and_mode_the_lab_reads_decodes(data):
    assert _answer(data) is not None


def test_formats_outside_the_list_are_refused_without_parsing():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(LabError, match=f"{NAME} is not an image the lab reads"):
        open_rgb(eps, NAME)
    ico = io.BytesIO()
    Image.new("RGB", (16, 16)).save(ico, format="ICO")
    with pytest.raises(LabError, match="is not an image the lab reads"):
        open_rgb(ico.getvalue(), NAME)


def test_decoded_memory_is_capped_and_large_jpegs_are_decoded_smaller():
    png = _encoded("I;16", 400, 300, "PNG", 1)
    with Image.open(io.BytesIO(png)) as header:
        assert decoded_bytes(header) == 400 * 300 * 2
    with pytest.raises(LabError, match=r"upload.bin is 400x300 I;16 pixels.*over the limit"):
        open_rgb(png, NAME, max_bytes=100_000)
    jpeg = _encoded("RGB", 800, 800, "JPEG", 2)
    image = open_rgb(jpeg, NAME, max_bytes=800 * 800 * 3 // 10)  # the decoder scales by 1/2, 1/4 or 1/8
    assert image.width * image.height * 3 <= 800 * 800 * 3 // 10 and image.width >= 100

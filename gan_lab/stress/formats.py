"""The same format for both classes: fakes stored as the reals are before anything scores them.

Real test images come from 8-bit files, often JPEG; a generator's fakes are float pixels. A
detector can learn that difference instead of the faces, and a stress test that scores float
fakes against decoded JPEG reals measures it. So, by default ("auto"), fakes are quantised to 8
bits and, when the reals are JPEG files, encoded as JPEG at the reals' quality (read from their
quantisation tables) and decoded again, before the detector, the discriminator, Inception and
MTCNN see them. "float" keeps the old behaviour, "png" quantises only, "jpeg" encodes at
`--fake-jpeg-quality` (or the reals' quality).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Literal

from detector.base.errors import LabError

FakeFormat = Literal["auto", "float", "png", "jpeg"]
FAKE_FORMATS = ("auto", "float", "png", "jpeg")
# Real files whose format and quality are read to choose the fakes'.
FORMAT_SAMPLE = 64


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How fakes are stored before scoring: as float pixels, as 8-bit pixels, or as 8-bit JPEG at a quality."""

    kind: Literal["float", "png", "jpeg"]
    jpeg_quality: int | None = None
    source: str = ""  # where the choice came from, for the report

    def describe(self) -> str:
        if self.kind == "float":
            return "as the generator's float pixels (not stored as the reals are)"
        if self.kind == "png":
            return "quantised to 8 bits, as a PNG stores them"
        return f"quantised to 8 bits and encoded as JPEG at quality {self.jpeg_quality}, then decoded"

    def __call__(self, pixels):
        """The pixels (a float tensor or array in [0, 1], (N, H, W, 3)) as this format stores them; a tensor."""
        import tensorflow as tf

        pixels = tf.clip_by_value(tf.convert_to_tensor(pixels, tf.float32), 0.0, 1.0)
        if self.kind == "float":
            return pixels
        pixels = tf.round(pixels * 255.0) / 255.0
        if self.kind == "png":
            return pixels
        quality = int(self.jpeg_quality)
        return tf.map_fn(
            lambda image: tf.image.adjust_jpeg_quality(image, quality),
            pixels,
            fn_output_signature=tf.TensorSpec(pixels.shape[1:], tf.float32),
        )


def _reals_quality(paths: list[str]) -> tuple[int | None, str]:
    """(the most common JPEG quality among a sample of the real files, or None when most are not JPEG, a note)."""
    from detector.data.images import jpeg_quality

    sample = paths[:: max(1, len(paths) // FORMAT_SAMPLE)][:FORMAT_SAMPLE]
    qualities = [jpeg_quality(path) for path in sample]
    found = [quality for quality in qualities if quality is not None]
    if len(found) * 2 <= len(sample):
        return None, f"{len(sample) - len(found)} of {len(sample)} sampled real files are not JPEG"
    quality, count = Counter(found).most_common(1)[0]
    return quality, f"{count} of {len(sample)} sampled real files are JPEG at quality {quality}"


def resolve_encoding(fake_format: str, jpeg_quality: int | None, real_paths: list[str], jit: bool = False) -> Encoding:
    """The fakes' encoding for a stress run, chosen from the option and the real files; LabError for a bad choice."""
    if fake_format not in FAKE_FORMATS:
        raise LabError(f"fake_format must be one of {FAKE_FORMATS}. Received: fake_format={fake_format!r}")
    if jpeg_quality is not None and (isinstance(jpeg_quality, bool) or not 1 <= int(jpeg_quality) <= 100):
        raise LabError(f"fake_jpeg_quality must be a whole number in [1, 100]. Received: {jpeg_quality!r}")
    if fake_format in ("float", "png"):
        return Encoding(fake_format, source=f"--fake-format {fake_format}")
    reals_quality, note = _reals_quality(real_paths)
    if jpeg_quality is not None:
        encoding = Encoding("jpeg", int(jpeg_quality), f"--fake-jpeg-quality {int(jpeg_quality)} ({note})")
    elif reals_quality is not None:
        encoding = Encoding("jpeg", reals_quality, f"the reals' quality: {note}")
    elif fake_format == "jpeg":
        raise LabError(f"--fake-format jpeg needs --fake-jpeg-quality: {note}, so no quality can be read from them")
    else:
        return Encoding("png", source=f"the reals are stored losslessly: {note}")
    if jit and fake_format == "auto":
        return Encoding("png", source=f"{note}, but --jit cannot compile JPEG encoding: quantised only")
    if jit:
        raise LabError(
            "--jit cannot compile JPEG encoding (a CPU-only TensorFlow op): leave --jit off, or pass --fake-format png"
        )
    return encoding

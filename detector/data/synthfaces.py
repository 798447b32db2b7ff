"""SynthFaces: procedural face portraits (real) and artifact-bearing faces (fake), rendered offline with numpy.

Real faces vary in head shape, skin tone, hair, eyes, brows, nose, mouth, ears, glasses, earrings,
background, lighting and pose, then get sensor noise and JPEG compression like a photo. Fakes come
from the same renderer and carry a subset of the tell-tale signs detectors find in GAN faces
(see ARTIFACTS); `difficulty` sets how many and how strong.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image

from detector import CLASS_NAMES, FAKE, REAL
from detector.base.errors import LabError
from detector.base.runs import atomic_write_text, make_folder

# How subtle the fakes are: how many tell-tale signs each carries, and how strongly.
Difficulty = Literal["easy", "medium", "hard"]
DIFFICULTIES = get_args(Difficulty)
ARTIFACTS = ("upsampling", "eye_mismatch", "accessory_asymmetry", "background_smear", "smooth_skin")
SPLIT_NAMES = ("train", "valid", "test")
MIN_SIZE, MAX_SIZE = 32, 256
# Chunks of about 1 MB per float32 plane: large enough to vectorise, small enough to stay in cache.
CHUNK_PIXELS = 64 * 64 * 64

# Per difficulty: probability that a fake carries each artifact, and the range of its strength.
_ARTIFACT_PROBABILITY = {
    "easy": {
        "upsampling": 0.8,
        "eye_mismatch": 0.55,
        "accessory_asymmetry": 0.4,
        "background_smear": 0.5,
        "smooth_skin": 0.55,
    },
    "medium": {
        "upsampling": 0.9,
        "eye_mismatch": 0.45,
        "accessory_asymmetry": 0.3,
        "background_smear": 0.45,
        "smooth_skin": 0.55,
    },
    "hard": {
        "upsampling": 0.5,
        "eye_mismatch": 0.35,
        "accessory_asymmetry": 0.25,
        "background_smear": 0.3,
        "smooth_skin": 0.35,
    },
}
_STRENGTH_RANGE = {"easy": (0.75, 1.0), "medium": (0.55, 0.85), "hard": (0.15, 0.4)}

_SKIN_TONES = np.array(
    [
        [0.97, 0.85, 0.76],
        [0.91, 0.73, 0.60],
        [0.80, 0.60, 0.45],
        [0.66, 0.45, 0.31],
        [0.47, 0.31, 0.21],
        [0.33, 0.21, 0.14],
    ],
    dtype=np.float32,
)
_HAIR_COLOURS = np.array(
    [
        [0.07, 0.05, 0.04],
        [0.20, 0.12, 0.07],
        [0.38, 0.24, 0.13],
        [0.80, 0.64, 0.38],
        [0.55, 0.22, 0.09],
        [0.68, 0.66, 0.64],
        [0.12, 0.09, 0.08],
    ],
    dtype=np.float32,
)
_IRIS_COLOURS = np.array(
    [
        [0.36, 0.21, 0.09],
        [0.22, 0.12, 0.06],
        [0.28, 0.48, 0.75],
        [0.30, 0.52, 0.30],
        [0.52, 0.42, 0.18],
        [0.50, 0.56, 0.62],
    ],
    dtype=np.float32,
)
_METAL_COLOURS = np.array([[0.90, 0.75, 0.30], [0.80, 0.80, 0.82], [0.85, 0.45, 0.35]], dtype=np.float32)
_FRAME_COLOURS = np.array(
    [[0.08, 0.08, 0.08], [0.35, 0.20, 0.10], [0.70, 0.65, 0.55], [0.15, 0.20, 0.45]], dtype=np.float32
)
_SMEAR_COLOURS = np.array(
    [
        [0.85, 0.30, 0.30],
        [0.30, 0.70, 0.35],
        [0.30, 0.40, 0.85],
        [0.90, 0.80, 0.30],
        [0.75, 0.35, 0.80],
        [0.95, 0.95, 0.95],
    ],
    dtype=np.float32,
)
_SPLIT_IDS = {name: index for index, name in enumerate(SPLIT_NAMES)}
_UNIFORMS = 64  # uniform numbers drawn per image for its face; fixed so each index column keeps its meaning
_ARTIFACT_UNIFORMS = 24


# --------------------------------------------------------------------------- argument checks


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}. Received: size={size!r}")
    return int(size)


def _check_difficulty(difficulty) -> str:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}. Received: difficulty={difficulty!r}")
    return difficulty


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- drawing helpers


def _smooth(distance, pixel):
    """Antialiased coverage of a shape whose signed distance (negative inside) is `distance`."""
    return np.clip(0.5 - distance / pixel, 0.0, 1.0)


def _ellipse(x, y, centre_x, centre_y, radius_x, radius_y, pixel):
    radius = np.sqrt(((x - centre_x) / radius_x) ** 2 + ((y - centre_y) / radius_y) ** 2)
    return _smooth((radius - 1.0) * np.minimum(radius_x, radius_y), pixel)


def _paint(image, alpha, colour):
    """Composite `colour` over `image` with coverage `alpha` (in place).

    Only the rows and columns some image of the batch covers are touched: most layers (eyes,
    nostrils, earrings) are small, and this is where rendering spends its time.
    """
    alpha = np.broadcast_to(alpha, image.shape[:3])
    covered = alpha > 0
    rows, columns = np.flatnonzero(covered.any(axis=(0, 2))), np.flatnonzero(covered.any(axis=(0, 1)))
    if rows.size == 0:
        return image
    window = (slice(None), slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    colour = np.broadcast_to(colour, image.shape)[window]
    target = image[window]
    difference = colour - target
    difference *= alpha[window][..., None]
    target += difference
    return image


def _row_window(condition):
    """The slice of rows where `condition` [n, size, size] holds for some image of the batch."""
    rows = np.flatnonzero(condition.any(axis=(0, 2)))
    return slice(int(rows[0]), int(rows[-1]) + 1) if rows.size else slice(0, 0)


def _column(values):
    """Per-image values as [n, 1, 1] for broadcasting over the pixel grid."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


def _colour(values):
    return np.asarray(values, dtype=np.float32)[:, None, None, :]


def _pick(palette, uniform):
    return palette[np.minimum((uniform * len(palette)).astype(int), len(palette) - 1)]


def _box_blur(images, radius):
    """Mean over a (2 radius + 1)^2 window, edges replicated; vectorised over the batch."""
    padded = np.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    size = images.shape[1]
    width = 2 * radius + 1
    rows = sum(padded[:, offset : offset + size] for offset in range(width)) / width
    return sum(rows[:, :, offset : offset + size] for offset in range(width)) / width


# --------------------------------------------------------------------------- per-image randomness


def _image_generators(keys):
    """One generator per image from (seed, split id, class, index), so batching never changes a face."""
    return [np.random.default_rng([int(part) for part in key]) for key in keys]


def _draw_artifacts(uniforms, fake, difficulty):
    """Strengths [n, len(ARTIFACTS)] (0 when absent) from each image's artifact uniforms."""
    strengths = np.zeros((len(uniforms), len(ARTIFACTS)), dtype=np.float32)
    if not fake:
        return strengths
    probability = np.array([_ARTIFACT_PROBABILITY[difficulty][name] for name in ARTIFACTS])
    low, high = _STRENGTH_RANGE[difficulty]
    count = len(ARTIFACTS)
    present = uniforms[:, :count] < probability
    # A fake with no artifact drawn gets the one whose draw came closest to being included.
    closest = np.argmin(uniforms[:, :count] / probability, axis=1)
    present[np.arange(len(uniforms)), closest] = True
    strengths[present] = (low + (high - low) * uniforms[:, count : 2 * count])[present]
    return strengths


# --------------------------------------------------------------------------- the renderer


def _skin_tone(uniform):
    """Skin colours [n, 3] blended between neighbouring tones, so tones vary continuously."""
    position = uniform * 5
    return (
        _SKIN_TONES[np.minimum(position.astype(int), 4)] * (1 - (position % 1))[:, None]
        + _SKIN_TONES[np.minimum(position.astype(int) + 1, 5)] * (position % 1)[:, None]
    )


def _jpeg_round_trip(pixels, quality):
    """`pixels` saved as JPEG at `quality` and decoded again."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


@dataclass
class _Band:
    """Views of the rows that eyes, brows and glasses can reach; drawing on them draws on the whole image."""

    x: np.ndarray
    y: np.ndarray
    head: np.ndarray
    image: np.ndarray
    mask: np.ndarray


class _FaceChunk:
    """One chunk of faces, drawn layer by layer from the back on a shared float canvas."""

    def __init__(self, keys, size, fake, difficulty):
        self.generators = _image_generators(keys)
        self.n, self.size = len(keys), size
        # All uniforms are drawn up front (the noise comes last), so steps may read them in any order.
        face_uniforms = np.stack([generator.random(_UNIFORMS) for generator in self.generators]).astype(np.float32)
        self.artifact_uniforms = np.stack([generator.random(_ARTIFACT_UNIFORMS) for generator in self.generators])
        self.strengths = _draw_artifacts(self.artifact_uniforms, fake, difficulty)
        self.upsampling, self.eye_mismatch, self.accessory, self.smear, self.smoothed_skin = (
            self.strengths[:, k] for k in range(len(ARTIFACTS))
        )
        self.U = face_uniforms.T  # U[k] is the k-th uniform of every image
        self.pixel = 2.0 / size
        coordinates = (np.arange(size, dtype=np.float32) + 0.5) * self.pixel - 1.0
        self.X = coordinates[None, None, :]
        self.Y = coordinates[None, :, None]

    def uniform(self, k, low, high):
        """The k-th uniform of every image scaled to [low, high), as [n, 1, 1]."""
        return _column(low + (high - low) * self.U[k])

    def render(self):
        """Draw every layer; returns uint8 images [n, size, size, 3] and artifact strengths [n, A]."""
        # Back to front: each layer covers the ones before it, so this order is part of the picture.
        self.image = self._draw_background()
        self._fake_background_smear()
        self._place_head()
        self._draw_back_hair()
        self._draw_body()
        self._draw_ears()
        self._draw_head()
        self._draw_cheeks()
        self._draw_nose()
        self._draw_mouth()
        self._place_eyes()
        for side in (-1.0, 1.0):
            sclera = self._draw_eye(side)
            self._draw_lid_and_brow(side)
            self.band.mask *= 1.0 - sclera  # the whites get no skin texture or smoothing
        self._draw_hair_cap()
        self._choose_accessories()
        self._draw_glasses()
        self._draw_earrings()
        self._light_scene()
        skin_mask = np.clip(self.skin_mask, 0.0, 1.0)
        smoothing = self._fake_smooth_skin(skin_mask)
        self._fake_upsampling()
        return self._add_noise_and_jpeg(skin_mask, smoothing), self.strengths

    def _draw_background(self):
        """A gradient between two muted colours with a soft low-frequency wave."""
        U, X, Y, uniform = self.U, self.X, self.Y, self.uniform
        grey = _column(U[0] * 0.6 + 0.25)[..., None]
        colour_a = 0.55 * grey + 0.45 * _colour(np.stack([U[1], U[2], U[3]], axis=1))
        colour_b = 0.55 * grey + 0.45 * _colour(np.stack([U[4], U[5], U[6]], axis=1))
        angle = uniform(7, 0.0, 2 * np.pi)
        ramp = np.clip(0.5 + 0.5 * (np.cos(angle) * X + np.sin(angle) * Y), 0.0, 1.0)[..., None]
        image = colour_a * (1.0 - ramp) + colour_b * ramp
        image = image * (1.0 + 0.05 * np.sin(uniform(8, 1.0, 3.0) * X + uniform(9, 0.0, 6.3) + 2.0 * Y))[..., None]
        return image.astype(np.float32)

    def _fake_background_smear(self):
        """Fake: smeared, swirling colour blobs in the background (occluded by the person drawn on top)."""
        X, Y, smear = self.X, self.Y, self.smear
        smeared = np.flatnonzero(smear > 0)  # artifacts are computed only for the images that carry them
        if not smeared.size:
            return
        chosen = self.artifact_uniforms[smeared]
        blob_colour = _colour(_pick(_SMEAR_COLOURS, chosen[:, 10]))
        blobs = self.image[smeared]
        for blob in range(2):
            bx = _column(np.where(chosen[:, 11 + blob] < 0.5, -0.75, 0.75) + 0.15 * (chosen[:, 13 + blob] - 0.5))
            by = _column(-0.7 + 1.1 * chosen[:, 15 + blob])
            swirl = np.sin(7.0 * (X - bx) + 5.0 * (Y - by) + 3.0 * _column(chosen[:, 17]))
            distance = ((X - bx) / 0.32) ** 2 + ((Y - by) / 0.18) ** 2 + 0.6 * (X - bx) * (Y - by) / 0.05
            alpha = np.exp(-np.abs(distance)) * (0.75 + 0.25 * swirl) * _column(0.85 * smear[smeared])
            _paint(blobs, alpha.astype(np.float32), blob_colour)
        self.image[smeared] = blobs

    def _place_head(self):
        """Pose (head centre, size, roll, yaw), skin and hair colours and the light's side."""
        uniform = self.uniform
        self.centre_x, self.centre_y = uniform(10, -0.08, 0.08), uniform(11, -0.06, 0.06)
        self.a = a = uniform(12, 0.44, 0.52)
        self.b = a * uniform(13, 1.18, 1.34)
        roll = uniform(14, -0.14, 0.14)
        self.yaw = uniform(15, -1.0, 1.0)
        dx, dy = self.X - self.centre_x, self.Y - self.centre_y
        self.hx = np.cos(roll) * dx + np.sin(roll) * dy
        self.hy = -np.sin(roll) * dx + np.cos(roll) * dy
        self.feature_x = self.hx - self.yaw * a * 0.1  # facial features turn with the head, the outline does not
        self.skin = _colour(_skin_tone(self.U[16]))
        self.hair = _colour(_pick(_HAIR_COLOURS, self.U[17]))
        self.light = uniform(18, -1.0, 1.0)

    def _draw_back_hair(self):
        """Long hair falls behind the shoulders, parted below the chin so it never reads as a beard."""
        a, b, hx, hy, pixel, uniform = self.a, self.b, self.hx, self.hy, self.pixel, self.uniform
        long_hair = _column(self.U[26] < 0.45)
        hair_length = uniform(27, 0.9, 1.55)
        back_hair = _ellipse(
            hx,
            hy,
            0.0,
            -0.15 * b + 0.5 * (hair_length - 1.0) * b,
            a * uniform(28, 1.15, 1.32),
            b * (0.5 + 0.55 * hair_length),
            pixel,
        )
        back_hair = back_hair * (1.0 - _smooth(np.maximum(np.abs(hx) - a * 0.62, b * 0.55 - hy), pixel * 3))
        _paint(self.image, back_hair * long_hair, self.hair * 0.8)

    def _draw_body(self):
        """Shoulders and clothes, then the neck."""
        a, b, hx, hy, pixel, uniform = self.a, self.b, self.hx, self.hy, self.pixel, self.uniform
        U, X, Y = self.U, self.X, self.Y
        clothes = _colour(0.2 + 0.7 * np.stack([U[19], U[20], U[21]], axis=1) * U[22][:, None])
        torso = _ellipse(
            X, Y, self.centre_x * 0.5, self.centre_y + b + uniform(23, 0.7, 0.85), uniform(24, 1.0, 1.3), 0.68, pixel
        )
        _paint(self.image, torso, clothes * (1.0 + 0.12 * self.light * X)[..., None])
        neck_width = a * uniform(25, 0.38, 0.48)
        neck = _smooth(np.abs(hx) - neck_width, pixel) * _smooth(np.abs(hy - (b + 0.35) / 2) - (b + 0.35) / 2, pixel)
        neck_shade = np.clip(0.72 + 0.28 * (hy - b * 0.7) / 0.35, 0.72, 1.0)[..., None]
        _paint(self.image, neck, self.skin * 0.88 * neck_shade)

    def _draw_ears(self):
        """Ears sit half behind the head's outline."""
        a, hx, hy, pixel, skin = self.a, self.hx, self.hy, self.pixel, self.skin
        self.ear_y = ear_y = self.b * self.uniform(29, -0.02, 0.1)
        for side in (-1.0, 1.0):
            ear_x = side * a * 0.96 + self.yaw * a * 0.04
            ear = _ellipse(hx, hy, ear_x, ear_y, a * 0.14, a * 0.25, pixel)
            _paint(self.image, ear, skin * 0.9)
            inner = _ellipse(hx, hy, ear_x + side * a * 0.02, ear_y, a * 0.06, a * 0.14, pixel)
            _paint(self.image, 0.5 * inner, skin * 0.65)

    def _draw_head(self):
        """Head: an egg (narrower jaw), shaded towards the edges and by the light; it starts the skin mask."""
        a, hx, pixel = self.a, self.hx, self.pixel
        jaw = self.uniform(30, 0.15, 0.4)
        py = self.hy / self.b
        width = a * (1.0 - jaw * np.clip(py, 0.0, 1.0) ** 2)
        head_radius = np.sqrt((hx / width) ** 2 + py**2)
        self.head = _smooth((head_radius - 1.0) * a, pixel)
        shading = 1.02 + 0.14 * self.light * hx / a - 0.22 * np.clip(head_radius, 0, 1) ** 4
        _paint(self.image, self.head, self.skin * shading[..., None])
        self.skin_mask = self.head.copy()

    def _draw_cheeks(self):
        """Cheeks: a faint warm blush."""
        a, b, pixel = self.a, self.b, self.pixel
        for side in (-1.0, 1.0):
            cheek = 0.18 * _ellipse(self.feature_x, self.hy, side * a * 0.5, b * 0.25, a * 0.2, a * 0.14, pixel * 6)
            _paint(self.image, cheek * self.head, _colour(np.tile([[0.85, 0.45, 0.45]], (self.n, 1))))

    def _draw_nose(self):
        """Nose: shading on the side away from the light, nostrils, a highlight on the tip."""
        a, hy, feature_x, pixel, image = self.a, self.hy, self.feature_x, self.pixel, self.image
        nose_tip = self.b * self.uniform(31, 0.26, 0.34)
        nose_side = -np.sign(self.light + 1e-6)
        ridge = _smooth(np.abs(feature_x - nose_side * a * 0.09) - a * 0.03, pixel * 2) * _smooth(
            np.abs(hy - nose_tip * 0.55) - nose_tip * 0.5, pixel * 2
        )
        image *= (1.0 - 0.18 * ridge * self.head)[..., None]
        for side in (-1.0, 1.0):
            nostril = _ellipse(feature_x, hy, side * a * 0.075, nose_tip + a * 0.03, a * 0.045, a * 0.025, pixel)
            image *= (1.0 - 0.45 * nostril)[..., None]
        tip = 0.25 * _ellipse(feature_x, hy, 0.0, nose_tip - a * 0.03, a * 0.06, a * 0.05, pixel * 2)
        _paint(image, tip, self.skin * 1.12)

    def _draw_mouth(self):
        """Mouth: lips between two curves, a darker line between them, corners lifted by a smile."""
        a, hy, feature_x, pixel, uniform = self.a, self.hy, self.feature_x, self.pixel, self.uniform
        skin, head = self.skin, self.head
        mouth_y = self.b * uniform(32, 0.5, 0.58)
        mouth_width = a * uniform(33, 0.26, 0.36)
        smile = a * uniform(34, -0.02, 0.07)
        across = np.clip(1.0 - (feature_x / mouth_width) ** 2, 0.0, 1.0)
        line = mouth_y - smile * (1.0 - across)
        upper = a * uniform(35, 0.04, 0.07) * np.sqrt(across)
        lower = a * uniform(36, 0.06, 0.1) * np.sqrt(across)
        inside = np.where(hy < line, line - hy - upper, hy - line - lower)
        lips = _smooth(np.maximum(inside, np.abs(feature_x) - mouth_width), pixel) * head
        lip_colour = (
            skin * 0.72 + _colour(np.tile([[0.30, 0.06, 0.08]], (self.n, 1))) * uniform(37, 0.4, 1.0)[..., None]
        )
        _paint(self.image, lips, lip_colour)
        mouth_line = _smooth(np.maximum(np.abs(hy - line) - pixel * 0.4, np.abs(feature_x) - mouth_width * 0.95), pixel)
        _paint(self.image, 0.8 * mouth_line * head, skin * 0.35)

    def _place_eyes(self):
        """Eye and brow shapes, iris colours, and the band of rows that eyes, brows and glasses reach."""
        a, b, hy, pixel, uniform, U = self.a, self.b, self.hy, self.pixel, self.uniform, self.U
        self.eye_x = a * uniform(38, 0.34, 0.42)
        self.eye_y = eye_y = b * uniform(39, -0.1, 0.02)
        self.eye_rx = eye_rx = a * uniform(40, 0.15, 0.19)
        self.eye_ry = eye_rx * uniform(41, 0.48, 0.62)
        self.gaze = eye_rx * uniform(42, -0.25, 0.25)
        self.iris_colour = _colour(_pick(_IRIS_COLOURS, U[43]))
        # Fake: the right eye's iris takes another colour, its pupil another size, its catch-light moves.
        self.other_iris = _colour(_pick(_IRIS_COLOURS, (U[43] + 0.35 + 0.3 * self.artifact_uniforms[:, 5]) % 1.0))
        self.iris_mismatch = _column(self.eye_mismatch)
        self.pupil_ratio = uniform(44, 0.36, 0.48)
        self.pupil_sign = _column(np.where(self.artifact_uniforms[:, 6] < 0.5, -1.0, 1.0))
        self.brow_thickness = brow_thickness = a * uniform(45, 0.035, 0.06)
        self.brow_arch = uniform(46, 0.5, 2.0)
        self.brow_height = brow_height = self.eye_ry + a * uniform(47, 0.08, 0.14)
        # Drawing only on the band of rows these features can reach skips most of the image.
        band_top = eye_y - np.maximum(brow_height + brow_thickness, eye_rx * 1.65) - 2 * pixel
        band_bottom = eye_y + eye_rx * 1.65 + 2 * pixel
        band = _row_window((hy > band_top) & (hy < band_bottom))
        self.band = _Band(
            x=self.feature_x[:, band],
            y=hy[:, band],
            head=self.head[:, band],
            image=self.image[:, band],
            mask=self.skin_mask[:, band],
        )

    def _draw_eye(self, side):
        """Sclera, iris, pupil and a catch-light towards the light; returns the sclera's coverage."""
        band, n, pixel, eye_y, mismatch = self.band, self.n, self.pixel, self.eye_y, self.iris_mismatch
        right = side > 0
        centre = side * self.eye_x
        sclera = _ellipse(band.x, band.y, centre, eye_y, self.eye_rx, self.eye_ry, pixel) * band.head
        _paint(band.image, sclera, _colour(np.tile([[0.94, 0.93, 0.90]], (n, 1))))
        iris_radius = self.eye_ry * 1.05
        iris = _ellipse(band.x, band.y, centre + self.gaze, eye_y, iris_radius, iris_radius, pixel) * sclera
        iris_colour = self.iris_colour
        colour = iris_colour + mismatch[..., None] * (self.other_iris - iris_colour) if right else iris_colour
        _paint(band.image, iris, colour)
        pupil_radius = iris_radius * self.pupil_ratio * ((1.0 + 0.7 * mismatch * self.pupil_sign) if right else 1.0)
        pupil = _ellipse(band.x, band.y, centre + self.gaze, eye_y, pupil_radius, pupil_radius, pixel) * sclera
        _paint(band.image, pupil, _colour(np.tile([[0.03, 0.02, 0.02]], (n, 1))))
        glint_x = centre + self.gaze - 0.4 * iris_radius * np.sign(self.light + 1e-6)
        glint_y = eye_y - 0.4 * iris_radius
        if right:
            glint_x = glint_x + mismatch * 0.9 * iris_radius * np.sign(self.light + 1e-6)
            glint_y = glint_y + mismatch * 0.7 * iris_radius
        glint = _ellipse(band.x, band.y, glint_x, glint_y, iris_radius * 0.3, iris_radius * 0.3, pixel) * sclera
        _paint(band.image, glint * (1.0 - (0.8 * mismatch if right else 0.0)), _colour(np.ones((n, 3))))
        return sclera

    def _draw_lid_and_brow(self, side):
        """The upper lid over one eye, then the brow above it."""
        band, pixel, eye_y, eye_rx, eye_ry = self.band, self.pixel, self.eye_y, self.eye_rx, self.eye_ry
        centre = side * self.eye_x
        lid = _ellipse(band.x, band.y, centre, eye_y, eye_rx * 1.12, eye_ry * 1.35, pixel) - _ellipse(
            band.x, band.y, centre, eye_y + eye_ry * 0.12, eye_rx * 1.02, eye_ry * 1.1, pixel
        )
        lid = np.clip(lid, 0.0, 1.0) * _smooth(band.y - eye_y, pixel) * band.head
        _paint(band.image, 0.85 * lid, self.skin * 0.3)
        brow_across = (band.x - centre) / (eye_rx * 1.3)
        brow_curve = eye_y - self.brow_height + self.brow_arch * self.a * 0.05 * brow_across**2
        brow = _smooth(
            np.maximum(
                np.abs(band.y - brow_curve) - self.brow_thickness * (1.0 - 0.4 * np.abs(brow_across)),
                (np.abs(brow_across) - 1.0) * eye_rx,
            ),
            pixel,
        )
        _paint(band.image, 0.9 * brow * band.head, self.hair * 0.9)

    def _draw_hair_cap(self):
        """Hair on top: a cap a little larger than the head, down to a hairline with sideburns and a parting."""
        a, b, hx, hy, pixel, uniform = self.a, self.b, self.hx, self.hy, self.pixel, self.uniform
        volume = uniform(48, 1.04, 1.14)
        hairline = -b * uniform(49, 0.28, 0.52) + b * 0.25 * (hx / a) ** 2 + b * uniform(50, -0.12, 0.12) * hx / a
        hairline = hairline + b * 0.7 * np.clip((np.abs(hx) / a - 0.72) / 0.28, 0.0, 1.0)
        cap_radius = np.sqrt((hx / (a * volume)) ** 2 + ((hy + b * 0.04) / (b * volume)) ** 2)
        cap = _smooth(np.maximum((cap_radius - 1.0) * a, hy - hairline), pixel)
        cap = cap * _column(self.U[51] > 0.06)  # a few people are bald
        # Strands fan out from the crown (a cheap stand-in for the angle around it).
        fan = hx / (np.abs(hy + b * 1.3) + b * 0.2)
        strands = 1.0 + 0.1 * np.sin(uniform(52, 20.0, 36.0) * fan + uniform(53, 0, 6.3))
        sheen = 1.0 + 0.25 * np.exp(
            -(((hx + self.light * a * 0.35) / (a * 0.3)) ** 2 + ((hy + b * 0.75) / (b * 0.25)) ** 2)
        )
        _paint(self.image, cap, self.hair * (strands * sheen)[..., None])
        self.skin_mask *= 1.0 - cap

    def _choose_accessories(self):
        """Who wears glasses and earrings; a fake's mismatched accessory is added if the person has none."""
        accessory = self.accessory
        self.accessory_glasses = (accessory > 0) & (self.artifact_uniforms[:, 7] < 0.5)
        self.wears_glasses = (self.U[54] < 0.22) | self.accessory_glasses
        self.has_earrings = (self.U[55] < 0.28) | ((accessory > 0) & ~self.accessory_glasses)

    def _draw_glasses(self):
        """Glasses: two frames, a bridge and arms to the ears; fakes may get frames that disagree."""
        a, band, n, pixel, uniform = self.a, self.band, self.n, self.pixel, self.uniform
        eye_x, eye_y, eye_rx = self.eye_x, self.eye_y, self.eye_rx
        glasses_mismatch = _column(np.where(self.accessory_glasses | self.wears_glasses, self.accessory, 0.0))
        frame_colour = _colour(_pick(_FRAME_COLOURS, self.U[56]))
        other_frame = _colour(_pick(_FRAME_COLOURS, (self.U[56] + 0.5) % 1.0))
        frame_thickness = a * uniform(57, 0.025, 0.045)
        frame_rx, frame_ry = eye_rx * 1.55, eye_rx * uniform(58, 1.0, 1.3)
        glasses = _column(self.wears_glasses)
        for side in (-1.0, 1.0):
            right = side > 0
            centre = side * eye_x
            ry = frame_ry * ((1.0 - 0.35 * glasses_mismatch) if right else 1.0)
            thickness = frame_thickness * ((1.0 + 1.2 * glasses_mismatch) if right else 1.0)
            ring_radius = np.sqrt(((band.x - centre) / frame_rx) ** 2 + ((band.y - eye_y) / ry) ** 2)
            ring = _smooth(np.abs(ring_radius - 1.0) * np.minimum(frame_rx, ry) - thickness * 0.5, pixel)
            colour = (
                frame_colour + glasses_mismatch[..., None] * (other_frame - frame_colour) if right else frame_colour
            )
            lens = 0.18 * _smooth((ring_radius - 1.0) * ry, pixel) * glasses
            _paint(band.image, lens, _colour(np.tile([[0.75, 0.85, 0.95]], (n, 1))))
            _paint(band.image, ring * glasses, colour)
            arm_start, arm_end = centre + side * frame_rx, side * a * 0.98
            arm = _smooth(np.abs(band.y - eye_y + frame_ry * 0.2) - thickness * 0.5, pixel) * _smooth(
                np.abs(band.x - (arm_start + arm_end) / 2) - np.abs(arm_end - arm_start) / 2, pixel
            )
            arm_strength = (1.0 - glasses_mismatch) if right else 1.0  # a fake may lose one arm
            _paint(band.image, arm * glasses * arm_strength, frame_colour)
            band.mask *= 1.0 - ring * glasses
        bridge = _smooth(np.abs(band.y - eye_y + frame_ry * 0.3) - frame_thickness * 0.5, pixel) * _smooth(
            np.abs(band.x) - (eye_x - frame_rx), pixel
        )
        _paint(band.image, bridge * glasses, frame_colour)

    def _draw_earrings(self):
        """Earrings hang below the lobes; a fake may wear two that differ or only one."""
        a, ear_y, pixel, U = self.a, self.ear_y, self.pixel, self.U
        # They reach from 0.2 a to 0.7 a below the ears: only those rows are drawn.
        earring_band = _row_window((self.hy > ear_y + a * 0.15) & (self.hy < ear_y + a * 0.8 + 2 * pixel))
        ring_hx, ring_y, ring_image = self.hx[:, earring_band], self.hy[:, earring_band], self.image[:, earring_band]
        metal = _colour(_pick(_METAL_COLOURS, U[59]))
        other_metal = _colour(_pick(_METAL_COLOURS, (U[59] + 0.4) % 1.0))
        earring_radius = a * self.uniform(60, 0.05, 0.08)
        earring_mismatch = _column(
            np.where(self.has_earrings, self.accessory, 0.0) * (~self.accessory_glasses | (U[55] < 0.28))
        )
        earrings = _column(self.has_earrings)
        for side in (-1.0, 1.0):
            right = side > 0
            ear_x = side * a * 0.97 + self.yaw * a * 0.04
            radius = earring_radius * ((1.0 + 0.9 * earring_mismatch) if right else 1.0)
            drop = ear_y + a * 0.3 + radius
            earring = _ellipse(
                ring_hx, ring_y, ear_x, drop, radius, radius * (1.0 + 0.6 * earring_mismatch if right else 1.0), pixel
            )
            colour = metal + earring_mismatch[..., None] * (other_metal - metal) if right else metal
            lost = (1.0 - 0.6 * earring_mismatch * self.pupil_sign.clip(0, 1)) if right else 1.0
            highlight = _ellipse(
                ring_hx, ring_y, ear_x - radius * 0.3, drop - radius * 0.3, radius * 0.4, radius * 0.4, pixel
            )
            _paint(ring_image, earring * earrings * lost, colour * (1.0 + 0.3 * highlight)[..., None])

    def _light_scene(self):
        """Lighting: exposure and colour temperature of the whole scene."""
        exposure = self.uniform(61, 0.85, 1.12)[..., None]
        warmth = self.uniform(62, -0.05, 0.05)[..., None]
        self.image = self.image * exposure * (1.0 + warmth * np.array([1.0, 0.0, -1.0], dtype=np.float32))

    def _fake_smooth_skin(self, skin_mask):
        """Fake: over-smooth skin, the face blurred and its pores gone; returns the smoothing [n, size, size, 1]."""
        smoothing = (_column(self.smoothed_skin) * skin_mask)[..., None]
        smoothed = np.flatnonzero(self.smoothed_skin > 0)
        if smoothed.size:
            blurred = _box_blur(self.image[smoothed], max(1, self.size // 32))
            self.image[smoothed] += smoothing[smoothed] * (blurred - self.image[smoothed])
        return smoothing

    def _fake_upsampling(self):
        """Fake: the periodic fingerprint of stride-2 transposed convolutions, stronger in bright areas."""
        size, upsampling = self.size, self.upsampling
        upsampled = np.flatnonzero(upsampling > 0)
        if not upsampled.size:
            return
        kernel = (self.artifact_uniforms[upsampled, 19:23] - 0.5).reshape(-1, 2, 2)
        kernel = kernel - kernel.mean(axis=(1, 2), keepdims=True)
        kernel = kernel / (np.abs(kernel).max(axis=(1, 2), keepdims=True) + 1e-6)
        pattern = np.tile(kernel, (1, size // 2 + 1, size // 2 + 1))[:, :size, :size].astype(np.float32)
        luminance = self.image[upsampled].mean(axis=-1, keepdims=True)
        self.image[upsampled] += (_column(0.09 * upsampling[upsampled]) * pattern)[..., None] * (0.4 + luminance)

    def _add_noise_and_jpeg(self, skin_mask, smoothing):
        """Sensor noise and skin texture (absent where the skin was smoothed), then JPEG, image by image."""
        size = self.size
        noise_level = self.uniform(63, 0.008, 0.022)[..., None]
        texture_level = (0.012 * (1.0 - smoothing[..., 0]) * skin_mask)[..., None]
        noise_damping = 1.0 - 0.8 * smoothing
        output = np.empty((self.n, size, size, 3), dtype=np.uint8)
        for index, generator in enumerate(self.generators):
            noise = generator.standard_normal((size, size, 4), dtype=np.float32)
            pixels = self.image[index] + noise_level[index] * noise_damping[index] * noise[..., :3]
            pixels = pixels + texture_level[index] * noise[..., 3:]
            pixels = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
            output[index] = _jpeg_round_trip(pixels, int(72 + generator.integers(0, 24)))
        return output


def _render_chunk(keys, size, fake, difficulty):
    """Render one chunk of faces; returns uint8 images, artifact strengths [n, A]."""
    return _FaceChunk(keys, size, fake, difficulty).render()


def _render_keys(keys, size, fake, difficulty):
    chunk = max(1, CHUNK_PIXELS // (size * size))
    images, strengths = [], []
    for start in range(0, len(keys), chunk):
        chunk_images, chunk_strengths = _render_chunk(keys[start : start + chunk], size, fake, difficulty)
        images.append(chunk_images)
        strengths.append(chunk_strengths)
    return images, strengths


def _metadata(strengths, fake, difficulty):
    label = FAKE if fake else REAL
    return [
        {
            "label": label,
            "class_name": CLASS_NAMES[label],
            "difficulty": difficulty,
            "artifacts": {name: round(float(value), 4) for name, value in zip(ARTIFACTS, row) if value > 0},
        }
        for row in strengths
    ]


def render_faces(n: int, size: int = 64, seed: int = 0, fake: bool = False, difficulty: str = "medium"):
    """Render `n` faces as uint8 [n, size, size, 3] and one metadata dict per face (label, artifacts)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer. Received: n={n!r}")
    size, seed, difficulty = _check_size(size), _check_seed(seed), _check_difficulty(difficulty)
    label = FAKE if fake else REAL
    keys = [(seed, _SPLIT_IDS["train"], label, index) for index in range(int(n))]
    images, strengths = _render_keys(keys, size, bool(fake), difficulty)
    if not images:
        return np.zeros((0, size, size, 3), dtype=np.uint8), []
    strengths = np.concatenate(strengths)
    return np.concatenate(images), _metadata(strengths, bool(fake), difficulty)


# --------------------------------------------------------------------------- data set folders


def _split_counts(per_class: int, split) -> list[int]:
    """Images per split for one class; a split with a non-zero fraction always gets at least one."""
    cuts = np.rint(np.cumsum(split)[:2] * per_class).astype(int)
    counts = [int(cuts[0]), int(cuts[1] - cuts[0]), int(per_class - cuts[1])]
    for index in (1, 2):
        if split[index] > 0 and counts[index] == 0 and counts[0] > 1:
            counts[index], counts[0] = 1, counts[0] - 1
    return counts


def _check_split(split) -> tuple[float, float, float]:
    try:
        values = tuple(float(value) for value in split)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or any(value < 0 for value in values) or not np.isclose(sum(values), 1.0) or values[0] <= 0:
        raise ValueError(
            f"split must be three non-negative fractions (train, valid, test) summing to 1 with train > 0. Received: split={split!r}"
        )
    return values


def _png_bytes(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_dataset(
    out,
    n: int = 1000,
    size: int = 64,
    seed: int = 0,
    difficulty: str = "medium",
    split=(0.8, 0.1, 0.1),
    progress: bool = True,
) -> Path:
    """Write `n` faces (half real, half fake) to `out/{train,valid,test}/{real,fake}/*.png` and `out/metadata.csv`."""
    size, seed, difficulty = _check_size(size), _check_seed(seed), _check_difficulty(difficulty)
    split = _check_split(split)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2 * len(SPLIT_NAMES):
        raise ValueError(
            f"n must be an integer of at least {2 * len(SPLIT_NAMES)} (half real, half fake). Received: n={n!r}"
        )
    per_class = int(n) // 2
    counts = _split_counts(per_class, split)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabError(f"{out} already exists and is not an empty folder; choose a new output folder")
    make_folder(out, "--out")

    jobs = [(split_name, label, count) for split_name, count in zip(SPLIT_NAMES, counts) for label in (REAL, FAKE)]
    bar = None
    if progress:
        from detector.base.console import progress_bar

        bar = progress_bar(total=2 * per_class, unit="image", desc="SynthFaces")
    rows = []
    try:
        for split_name, label, count in jobs:
            class_name = CLASS_NAMES[label]
            folder = out / split_name / class_name
            folder.mkdir(parents=True, exist_ok=True)
            keys = [(seed, _SPLIT_IDS[split_name], label, index) for index in range(count)]
            chunk = max(1, CHUNK_PIXELS // (size * size))
            for start in range(0, count, chunk):
                images, strengths = _render_chunk(keys[start : start + chunk], size, label == FAKE, difficulty)
                for offset, (pixels, row) in enumerate(zip(images, strengths)):
                    name = f"{class_name}_{start + offset:06d}.png"
                    (folder / name).write_bytes(_png_bytes(pixels))
                    relative = f"{split_name}/{class_name}/{name}"
                    rows.append(
                        [relative, split_name, label, class_name, difficulty] + [f"{value:.4f}" for value in row]
                    )
                if bar is not None:
                    bar.update(len(images))
    finally:
        if bar is not None:
            bar.close()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "split", "label", "class_name", "difficulty", *ARTIFACTS])
    writer.writerows(rows)
    atomic_write_text(out / "metadata.csv", buffer.getvalue())
    return out


def read_metadata(root) -> list[dict]:
    """The rows of `root/metadata.csv` as dicts (label as int, artifact strengths as floats)."""
    path = Path(root) / "metadata.csv"
    if not path.is_file():
        raise LabError(f"{path} not found: is {root} a SynthFaces folder?")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = int(row["label"])
        for name in ARTIFACTS:
            row[name] = float(row[name])
    return rows


def ensure_synthfaces(cache_root, n: int, size: int, seed: int, difficulty: str = "medium") -> Path:
    """`cache_root/synthfaces-{size}px-n{n}-seed{seed}-{difficulty}/`, written first if missing."""
    size, seed, difficulty = _check_size(size), _check_seed(seed), _check_difficulty(difficulty)
    cache_root = Path(cache_root)
    target = cache_root / f"synthfaces-{size}px-n{n}-seed{seed}-{difficulty}"
    if (target / "metadata.csv").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place, so an interrupted run leaves no half-written set.
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache_root))
    try:
        write_dataset(temporary / "faces", n=n, size=size, seed=seed, difficulty=difficulty, progress=True)
        try:
            os.rename(temporary / "faces", target)
        except OSError:
            if not (target / "metadata.csv").is_file():  # another process finished the same set first
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def resolve_data(
    data, runs_dir="runs", size: int = 64, n: int = 2000, seed: int = 0, difficulty: str = "medium"
) -> Path:
    """ "synth" means the cached SynthFaces set under `runs_dir/synthfaces`; anything else is a folder that must exist."""
    if isinstance(data, str) and data == "synth":
        return ensure_synthfaces(Path(runs_dir) / "synthfaces", n=n, size=size, seed=seed, difficulty=difficulty)
    path = Path(data)
    if not path.exists():
        raise LabError(f"Data folder not found: {path} (use a folder of images or 'synth')")
    return path

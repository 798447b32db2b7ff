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
from pathlib import Path

import numpy as np
from PIL import Image

from detector import CLASS_NAMES, FAKE, REAL
from detector.errors import LabError
from detector.runs import atomic_write_text

DIFFICULTIES = ("easy", "medium", "hard")
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


def _render_chunk(keys, size, fake, difficulty):
    """Render one chunk of faces; returns uint8 images, artifact strengths [n, A]."""
    generators = _image_generators(keys)
    n = len(keys)
    face_uniforms = np.stack([generator.random(_UNIFORMS) for generator in generators]).astype(np.float32)
    artifact_uniforms = np.stack([generator.random(_ARTIFACT_UNIFORMS) for generator in generators])
    strengths = _draw_artifacts(artifact_uniforms, fake, difficulty)
    upsampling, eye_mismatch, accessory, smear, smooth_skin = (strengths[:, k] for k in range(len(ARTIFACTS)))
    U = face_uniforms.T  # U[k] is the k-th uniform of every image

    def uniform(k, low, high):
        return _column(low + (high - low) * U[k])

    pixel = 2.0 / size
    coordinates = (np.arange(size, dtype=np.float32) + 0.5) * pixel - 1.0
    X = coordinates[None, None, :]
    Y = coordinates[None, :, None]

    # Background: a gradient between two muted colours with a soft low-frequency wave.
    grey = _column(U[0] * 0.6 + 0.25)[..., None]
    colour_a = 0.55 * grey + 0.45 * _colour(np.stack([U[1], U[2], U[3]], axis=1))
    colour_b = 0.55 * grey + 0.45 * _colour(np.stack([U[4], U[5], U[6]], axis=1))
    angle = uniform(7, 0.0, 2 * np.pi)
    ramp = np.clip(0.5 + 0.5 * (np.cos(angle) * X + np.sin(angle) * Y), 0.0, 1.0)[..., None]
    image = colour_a * (1.0 - ramp) + colour_b * ramp
    image = image * (1.0 + 0.05 * np.sin(uniform(8, 1.0, 3.0) * X + uniform(9, 0.0, 6.3) + 2.0 * Y))[..., None]
    image = image.astype(np.float32)

    # Fake: smeared, swirling colour blobs in the background (occluded by the person drawn on top).
    smeared = np.flatnonzero(smear > 0)  # artifacts are computed only for the images that carry them
    if smeared.size:
        chosen = artifact_uniforms[smeared]
        blob_colour = _colour(_pick(_SMEAR_COLOURS, chosen[:, 10]))
        blobs = image[smeared]
        for blob in range(2):
            bx = _column(np.where(chosen[:, 11 + blob] < 0.5, -0.75, 0.75) + 0.15 * (chosen[:, 13 + blob] - 0.5))
            by = _column(-0.7 + 1.1 * chosen[:, 15 + blob])
            swirl = np.sin(7.0 * (X - bx) + 5.0 * (Y - by) + 3.0 * _column(chosen[:, 17]))
            distance = ((X - bx) / 0.32) ** 2 + ((Y - by) / 0.18) ** 2 + 0.6 * (X - bx) * (Y - by) / 0.05
            alpha = np.exp(-np.abs(distance)) * (0.75 + 0.25 * swirl) * _column(0.85 * smear[smeared])
            _paint(blobs, alpha.astype(np.float32), blob_colour)
        image[smeared] = blobs

    # Pose: head centre, size, roll; features slide sideways with a small yaw.
    centre_x, centre_y = uniform(10, -0.08, 0.08), uniform(11, -0.06, 0.06)
    a = uniform(12, 0.44, 0.52)
    b = a * uniform(13, 1.18, 1.34)
    roll = uniform(14, -0.14, 0.14)
    yaw = uniform(15, -1.0, 1.0)
    dx, dy = X - centre_x, Y - centre_y
    hx = np.cos(roll) * dx + np.sin(roll) * dy
    hy = -np.sin(roll) * dx + np.cos(roll) * dy

    skin = _colour(
        _SKIN_TONES[np.minimum((U[16] * 5).astype(int), 4)] * (1 - (U[16] * 5 % 1))[:, None]
        + _SKIN_TONES[np.minimum((U[16] * 5).astype(int) + 1, 5)] * (U[16] * 5 % 1)[:, None]
    )
    hair = _colour(_pick(_HAIR_COLOURS, U[17]))
    light = uniform(18, -1.0, 1.0)

    # Long hair falls behind the shoulders, parted below the chin so it never reads as a beard.
    long_hair = _column(U[26] < 0.45)
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
    _paint(image, back_hair * long_hair, hair * 0.8)

    # Shoulders and clothes, then the neck.
    clothes = _colour(0.2 + 0.7 * np.stack([U[19], U[20], U[21]], axis=1) * U[22][:, None])
    torso = _ellipse(X, Y, centre_x * 0.5, centre_y + b + uniform(23, 0.7, 0.85), uniform(24, 1.0, 1.3), 0.68, pixel)
    _paint(image, torso, clothes * (1.0 + 0.12 * light * X)[..., None])
    neck_width = a * uniform(25, 0.38, 0.48)
    neck = _smooth(np.abs(hx) - neck_width, pixel) * _smooth(np.abs(hy - (b + 0.35) / 2) - (b + 0.35) / 2, pixel)
    neck_shade = np.clip(0.72 + 0.28 * (hy - b * 0.7) / 0.35, 0.72, 1.0)[..., None]
    _paint(image, neck, skin * 0.88 * neck_shade)

    # Ears sit half behind the head's outline.
    ear_y = b * uniform(29, -0.02, 0.1)
    for side in (-1.0, 1.0):
        ear_x = side * a * 0.96 + yaw * a * 0.04
        ear = _ellipse(hx, hy, ear_x, ear_y, a * 0.14, a * 0.25, pixel)
        _paint(image, ear, skin * 0.9)
        _paint(image, 0.5 * _ellipse(hx, hy, ear_x + side * a * 0.02, ear_y, a * 0.06, a * 0.14, pixel), skin * 0.65)

    # Head: an egg (narrower jaw), shaded towards the edges and by the light.
    jaw = uniform(30, 0.15, 0.4)
    py = hy / b
    width = a * (1.0 - jaw * np.clip(py, 0.0, 1.0) ** 2)
    head_radius = np.sqrt((hx / width) ** 2 + py**2)
    head = _smooth((head_radius - 1.0) * a, pixel)
    shading = 1.02 + 0.14 * light * hx / a - 0.22 * np.clip(head_radius, 0, 1) ** 4
    _paint(image, head, skin * shading[..., None])
    skin_mask = head.copy()

    feature_x = hx - yaw * a * 0.1  # facial features turn with the head, the outline does not
    # Cheeks: a faint warm blush.
    for side in (-1.0, 1.0):
        cheek = 0.18 * _ellipse(feature_x, hy, side * a * 0.5, b * 0.25, a * 0.2, a * 0.14, pixel * 6)
        _paint(image, cheek * head, _colour(np.tile([[0.85, 0.45, 0.45]], (n, 1))))

    # Nose: shading on the side away from the light, nostrils, a highlight on the tip.
    nose_tip = b * uniform(31, 0.26, 0.34)
    nose_side = -np.sign(light + 1e-6)
    ridge = _smooth(np.abs(feature_x - nose_side * a * 0.09) - a * 0.03, pixel * 2) * _smooth(
        np.abs(hy - nose_tip * 0.55) - nose_tip * 0.5, pixel * 2
    )
    image *= (1.0 - 0.18 * ridge * head)[..., None]
    for side in (-1.0, 1.0):
        nostril = _ellipse(feature_x, hy, side * a * 0.075, nose_tip + a * 0.03, a * 0.045, a * 0.025, pixel)
        image *= (1.0 - 0.45 * nostril)[..., None]
    tip = 0.25 * _ellipse(feature_x, hy, 0.0, nose_tip - a * 0.03, a * 0.06, a * 0.05, pixel * 2)
    _paint(image, tip, skin * 1.12)

    # Mouth: lips between two curves, a darker line between them, corners lifted by a smile.
    mouth_y = b * uniform(32, 0.5, 0.58)
    mouth_width = a * uniform(33, 0.26, 0.36)
    smile = a * uniform(34, -0.02, 0.07)
    across = np.clip(1.0 - (feature_x / mouth_width) ** 2, 0.0, 1.0)
    line = mouth_y - smile * (1.0 - across)
    upper = a * uniform(35, 0.04, 0.07) * np.sqrt(across)
    lower = a * uniform(36, 0.06, 0.1) * np.sqrt(across)
    inside = np.where(hy < line, line - hy - upper, hy - line - lower)
    lips = _smooth(np.maximum(inside, np.abs(feature_x) - mouth_width), pixel) * head
    lip_colour = skin * 0.72 + _colour(np.tile([[0.30, 0.06, 0.08]], (n, 1))) * uniform(37, 0.4, 1.0)[..., None]
    _paint(image, lips, lip_colour)
    mouth_line = _smooth(np.maximum(np.abs(hy - line) - pixel * 0.4, np.abs(feature_x) - mouth_width * 0.95), pixel)
    _paint(image, 0.8 * mouth_line * head, skin * 0.35)

    # Eyes: sclera, iris, pupil, a catch-light towards the light; then the upper lid and the brow.
    eye_x = a * uniform(38, 0.34, 0.42)
    eye_y = b * uniform(39, -0.1, 0.02)
    eye_rx = a * uniform(40, 0.15, 0.19)
    eye_ry = eye_rx * uniform(41, 0.48, 0.62)
    gaze = eye_rx * uniform(42, -0.25, 0.25)
    iris_colour = _colour(_pick(_IRIS_COLOURS, U[43]))
    # Fake: the right eye's iris takes another colour, its pupil another size, its catch-light moves.
    other_iris = _colour(_pick(_IRIS_COLOURS, (U[43] + 0.35 + 0.3 * artifact_uniforms[:, 5]) % 1.0))
    mismatch = _column(eye_mismatch)
    pupil_ratio = uniform(44, 0.36, 0.48)
    pupil_sign = _column(np.where(artifact_uniforms[:, 6] < 0.5, -1.0, 1.0))
    brow_thickness = a * uniform(45, 0.035, 0.06)
    brow_arch = uniform(46, 0.5, 2.0)
    brow_height = eye_ry + a * uniform(47, 0.08, 0.14)
    # Eyes, brows and glasses are drawn on the band of rows they can reach, a fraction of the image.
    band_top = eye_y - np.maximum(brow_height + brow_thickness, eye_rx * 1.65) - 2 * pixel
    band_bottom = eye_y + eye_rx * 1.65 + 2 * pixel
    band = _row_window((hy > band_top) & (hy < band_bottom))
    band_x, band_y, band_head = feature_x[:, band], hy[:, band], head[:, band]
    band_image, band_mask = image[:, band], skin_mask[:, band]
    eye_shapes = []
    for side in (-1.0, 1.0):
        right = side > 0
        centre = side * eye_x
        sclera = _ellipse(band_x, band_y, centre, eye_y, eye_rx, eye_ry, pixel) * band_head
        _paint(band_image, sclera, _colour(np.tile([[0.94, 0.93, 0.90]], (n, 1))))
        iris_radius = eye_ry * 1.05
        iris = _ellipse(band_x, band_y, centre + gaze, eye_y, iris_radius, iris_radius, pixel) * sclera
        colour = iris_colour + mismatch[..., None] * (other_iris - iris_colour) if right else iris_colour
        _paint(band_image, iris, colour)
        pupil_radius = iris_radius * pupil_ratio * ((1.0 + 0.7 * mismatch * pupil_sign) if right else 1.0)
        pupil = _ellipse(band_x, band_y, centre + gaze, eye_y, pupil_radius, pupil_radius, pixel) * sclera
        _paint(band_image, pupil, _colour(np.tile([[0.03, 0.02, 0.02]], (n, 1))))
        glint_x = centre + gaze - 0.4 * iris_radius * np.sign(light + 1e-6)
        glint_y = eye_y - 0.4 * iris_radius
        if right:
            glint_x = glint_x + mismatch * 0.9 * iris_radius * np.sign(light + 1e-6)
            glint_y = glint_y + mismatch * 0.7 * iris_radius
        glint = _ellipse(band_x, band_y, glint_x, glint_y, iris_radius * 0.3, iris_radius * 0.3, pixel) * sclera
        _paint(band_image, glint * (1.0 - (0.8 * mismatch if right else 0.0)), _colour(np.ones((n, 3))))
        lid = _ellipse(band_x, band_y, centre, eye_y, eye_rx * 1.12, eye_ry * 1.35, pixel) - _ellipse(
            band_x, band_y, centre, eye_y + eye_ry * 0.12, eye_rx * 1.02, eye_ry * 1.1, pixel
        )
        lid = np.clip(lid, 0.0, 1.0) * _smooth(band_y - eye_y, pixel) * band_head
        _paint(band_image, 0.85 * lid, skin * 0.3)
        brow_across = (band_x - centre) / (eye_rx * 1.3)
        brow_curve = eye_y - brow_height + brow_arch * a * 0.05 * brow_across**2
        brow = _smooth(
            np.maximum(
                np.abs(band_y - brow_curve) - brow_thickness * (1.0 - 0.4 * np.abs(brow_across)),
                (np.abs(brow_across) - 1.0) * eye_rx,
            ),
            pixel,
        )
        _paint(band_image, 0.9 * brow * band_head, hair * 0.9)
        eye_shapes.append((centre, sclera))
        band_mask *= 1.0 - sclera

    # Hair on top: a cap a little larger than the head, down to a hairline with sideburns and a parting.
    volume = uniform(48, 1.04, 1.14)
    hairline = -b * uniform(49, 0.28, 0.52) + b * 0.25 * (hx / a) ** 2 + b * uniform(50, -0.12, 0.12) * hx / a
    hairline = hairline + b * 0.7 * np.clip((np.abs(hx) / a - 0.72) / 0.28, 0.0, 1.0)
    cap_radius = np.sqrt((hx / (a * volume)) ** 2 + ((hy + b * 0.04) / (b * volume)) ** 2)
    cap = _smooth(np.maximum((cap_radius - 1.0) * a, hy - hairline), pixel)
    cap = cap * _column(U[51] > 0.06)  # a few people are bald
    # Strands fan out from the crown (a cheap stand-in for the angle around it).
    fan = hx / (np.abs(hy + b * 1.3) + b * 0.2)
    strands = 1.0 + 0.1 * np.sin(uniform(52, 20.0, 36.0) * fan + uniform(53, 0, 6.3))
    sheen = 1.0 + 0.25 * np.exp(-(((hx + light * a * 0.35) / (a * 0.3)) ** 2 + ((hy + b * 0.75) / (b * 0.25)) ** 2))
    _paint(image, cap, hair * (strands * sheen)[..., None])
    skin_mask *= 1.0 - cap

    # Glasses: two frames, a bridge and arms to the ears; fakes may get frames that disagree.
    wears_glasses = U[54] < 0.22
    has_earrings = U[55] < 0.28
    accessory_glasses = (accessory > 0) & (artifact_uniforms[:, 7] < 0.5)
    wears_glasses = wears_glasses | accessory_glasses
    has_earrings = has_earrings | ((accessory > 0) & ~accessory_glasses)
    glasses_mismatch = _column(np.where(accessory_glasses | wears_glasses, accessory, 0.0))
    frame_colour = _colour(_pick(_FRAME_COLOURS, U[56]))
    other_frame = _colour(_pick(_FRAME_COLOURS, (U[56] + 0.5) % 1.0))
    frame_thickness = a * uniform(57, 0.025, 0.045)
    frame_rx, frame_ry = eye_rx * 1.55, eye_rx * uniform(58, 1.0, 1.3)
    glasses = _column(wears_glasses)
    for side in (-1.0, 1.0):
        right = side > 0
        centre = side * eye_x
        ry = frame_ry * ((1.0 - 0.35 * glasses_mismatch) if right else 1.0)
        thickness = frame_thickness * ((1.0 + 1.2 * glasses_mismatch) if right else 1.0)
        ring_radius = np.sqrt(((band_x - centre) / frame_rx) ** 2 + ((band_y - eye_y) / ry) ** 2)
        ring = _smooth(np.abs(ring_radius - 1.0) * np.minimum(frame_rx, ry) - thickness * 0.5, pixel)
        colour = frame_colour + glasses_mismatch[..., None] * (other_frame - frame_colour) if right else frame_colour
        _paint(
            band_image,
            0.18 * _smooth((ring_radius - 1.0) * ry, pixel) * glasses,
            _colour(np.tile([[0.75, 0.85, 0.95]], (n, 1))),
        )
        _paint(band_image, ring * glasses, colour)
        arm_start, arm_end = centre + side * frame_rx, side * a * 0.98
        arm = _smooth(np.abs(band_y - eye_y + frame_ry * 0.2) - thickness * 0.5, pixel) * _smooth(
            np.abs(band_x - (arm_start + arm_end) / 2) - np.abs(arm_end - arm_start) / 2, pixel
        )
        arm_strength = (1.0 - glasses_mismatch) if right else 1.0  # a fake may lose one arm
        _paint(band_image, arm * glasses * arm_strength, frame_colour)
        band_mask *= 1.0 - ring * glasses
    bridge = _smooth(np.abs(band_y - eye_y + frame_ry * 0.3) - frame_thickness * 0.5, pixel) * _smooth(
        np.abs(band_x) - (eye_x - frame_rx), pixel
    )
    _paint(band_image, bridge * glasses, frame_colour)

    # Earrings hang below the lobes; a fake may wear two that differ or only one.
    # They reach from 0.2 a to 0.7 a below the ears: only those rows are drawn.
    earring_band = _row_window((hy > ear_y + a * 0.15) & (hy < ear_y + a * 0.8 + 2 * pixel))
    ring_hx, ring_y, ring_image = hx[:, earring_band], hy[:, earring_band], image[:, earring_band]
    metal = _colour(_pick(_METAL_COLOURS, U[59]))
    other_metal = _colour(_pick(_METAL_COLOURS, (U[59] + 0.4) % 1.0))
    earring_radius = a * uniform(60, 0.05, 0.08)
    earring_mismatch = _column(np.where(has_earrings, accessory, 0.0) * (~accessory_glasses | (U[55] < 0.28)))
    earrings = _column(has_earrings)
    for side in (-1.0, 1.0):
        right = side > 0
        ear_x = side * a * 0.97 + yaw * a * 0.04
        radius = earring_radius * ((1.0 + 0.9 * earring_mismatch) if right else 1.0)
        drop = ear_y + a * 0.3 + radius
        earring = _ellipse(
            ring_hx, ring_y, ear_x, drop, radius, radius * (1.0 + 0.6 * earring_mismatch if right else 1.0), pixel
        )
        colour = metal + earring_mismatch[..., None] * (other_metal - metal) if right else metal
        coverage = earring * earrings * ((1.0 - 0.6 * earring_mismatch * pupil_sign.clip(0, 1)) if right else 1.0)
        _paint(
            ring_image,
            coverage,
            colour
            * (
                1.0
                + 0.3
                * _ellipse(
                    ring_hx, ring_y, ear_x - radius * 0.3, drop - radius * 0.3, radius * 0.4, radius * 0.4, pixel
                )
            )[..., None],
        )

    # Lighting: exposure and colour temperature of the whole scene.
    exposure = uniform(61, 0.85, 1.12)[..., None]
    warmth = uniform(62, -0.05, 0.05)[..., None]
    image = image * exposure * (1.0 + warmth * np.array([1.0, 0.0, -1.0], dtype=np.float32))

    # Fake: over-smooth skin, the face blurred and its pores gone.
    skin_mask = np.clip(skin_mask, 0.0, 1.0)
    smoothing = (_column(smooth_skin) * skin_mask)[..., None]
    smoothed = np.flatnonzero(smooth_skin > 0)
    if smoothed.size:
        blurred = _box_blur(image[smoothed], max(1, size // 32))
        image[smoothed] += smoothing[smoothed] * (blurred - image[smoothed])

    # Fake: the periodic fingerprint of stride-2 transposed convolutions, stronger in bright areas.
    upsampled = np.flatnonzero(upsampling > 0)
    if upsampled.size:
        kernel = (artifact_uniforms[upsampled, 19:23] - 0.5).reshape(-1, 2, 2)
        kernel = kernel - kernel.mean(axis=(1, 2), keepdims=True)
        kernel = kernel / (np.abs(kernel).max(axis=(1, 2), keepdims=True) + 1e-6)
        pattern = np.tile(kernel, (1, size // 2 + 1, size // 2 + 1))[:, :size, :size].astype(np.float32)
        luminance = image[upsampled].mean(axis=-1, keepdims=True)
        image[upsampled] += (_column(0.09 * upsampling[upsampled]) * pattern)[..., None] * (0.4 + luminance)

    # Sensor noise and skin texture (absent where the skin was smoothed), then JPEG, image by image.
    noise_level = uniform(63, 0.008, 0.022)[..., None]
    texture_level = (0.012 * (1.0 - smoothing[..., 0]) * skin_mask)[..., None]
    noise_damping = 1.0 - 0.8 * smoothing
    output = np.empty((n, size, size, 3), dtype=np.uint8)
    for index, generator in enumerate(generators):
        noise = generator.standard_normal((size, size, 4), dtype=np.float32)
        pixels = image[index] + noise_level[index] * noise_damping[index] * noise[..., :3]
        pixels = pixels + texture_level[index] * noise[..., 3:]
        pixels = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(72 + generator.integers(0, 24)))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            output[index] = np.asarray(decoded.convert("RGB"))
    return output, strengths


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

    jobs = [(split_name, label, count) for split_name, count in zip(SPLIT_NAMES, counts) for label in (REAL, FAKE)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=2 * per_class, unit="image", desc="SynthFaces")
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

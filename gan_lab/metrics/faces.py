"""Does a face detector find a face? MTCNN (the `mtcnn` package, weights inside its wheel) on a batch of images.

The share of images in which MTCNN finds a face is a quality figure a reader of a face GAN
understands at once, and it does not depend on the detector under test.
"""

from __future__ import annotations

import numpy as np

# MTCNN's own defaults (P-Net, R-Net and O-Net, minimum face 20 px); images smaller than this
# are enlarged first, since P-Net's 12 px window needs a few pyramid levels to see a face.
MIN_IMAGE_SIZE = 64
BATCH_SIZE = 64


class FaceFinder:
    """MTCNN with its default thresholds; `found(pixels)` says per image whether it holds a face."""

    def __init__(self):
        from mtcnn import MTCNN

        self.detector = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")

    def found(self, pixels: np.ndarray) -> np.ndarray:
        """Boolean (N,): whether MTCNN finds at least one face, for float32 RGB pixels in [0, 1] (N, S, S, 3)."""
        import tensorflow as tf

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"pixels must be RGB images of shape (N, H, W, 3). Received: pixels.shape={pixels.shape}")
        if min(pixels.shape[1:3]) < MIN_IMAGE_SIZE:
            scale = MIN_IMAGE_SIZE / min(pixels.shape[1:3])
            shape = (round(pixels.shape[1] * scale), round(pixels.shape[2] * scale))
            pixels = np.asarray(tf.image.resize(pixels, shape, method="bilinear"))
        images = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        found = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = list(images[start : start + BATCH_SIZE])
            faces = self.detector.detect_faces(batch)
            found.extend(len(per_image) > 0 for per_image in faces)
        return np.asarray(found, dtype=bool)

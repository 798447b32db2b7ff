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


# O-Net's input side and the normalisation MTCNN gives it.
DESCRIPTOR_SIZE = 48
DESCRIPTOR_BATCH = 256


class FaceDescriptor:
    """A 256-number description of a face: MTCNN O-Net's last hidden layer (fc5, PReLU) on the whole image.

    O-Net was trained to tell faces from non-faces and to place five landmarks on 48 px crops, so
    this layer encodes a face's layout (pose, where the eyes, nose and mouth sit) rather than its
    identity. The lab's images are face crops already, so each is read whole, resized to 48 px.
    The Fréchet distance between two sets of these (`face_frechet_distance`) is the face-layout
    counterpart of FID: how far a GAN's faces are from real ones as faces, not as pictures.
    """

    def __init__(self):
        from mtcnn.network.onet import ONet
        from mtcnn.utils.tensorflow import load_weights

        onet = ONet()
        onet.build()
        onet.set_weights(load_weights("onet.lz4"))
        self._onet = onet

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 256) float64 descriptors of float32 RGB pixels in [0, 1] (N, H, W, 3)."""
        import tensorflow as tf

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"pixels must be RGB images of shape (N, H, W, 3). Received: pixels.shape={pixels.shape}")
        onet, out = self._onet, []
        for start in range(0, len(pixels), DESCRIPTOR_BATCH):
            batch = tf.image.resize(pixels[start : start + DESCRIPTOR_BATCH], (DESCRIPTOR_SIZE, DESCRIPTOR_SIZE))
            x = (tf.round(batch * 255.0) - 127.5) / 128.0
            for layer in (onet.conv1, onet.prelu1, onet.maxpool1, onet.conv2, onet.prelu2, onet.maxpool2):
                x = layer(x)
            for layer in (onet.conv3, onet.prelu3, onet.maxpool3, onet.conv4, onet.prelu4, onet.permute):
                x = layer(x)
            out.append(np.asarray(onet.prelu5(onet.fc5(onet.flatten(x))), dtype=np.float64))
        return np.concatenate(out) if out else np.zeros((0, 256))


def face_frechet_distance(descriptor: FaceDescriptor, real: np.ndarray, fake: np.ndarray) -> float:
    """The Fréchet distance between the Gaussians of two image sets' face descriptors."""
    from gan_lab.metrics.fid import frechet_feature_distance

    return frechet_feature_distance(descriptor(real), descriptor(fake))

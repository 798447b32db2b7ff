"""Quality measures that do not depend on the detector: InceptionV3 features for FID/KID, MTCNN's face-found test.

Each is optional and bounded: the Inception features and the face test run on up to
`inception_n` and `faces_n` images per epoch (and of the reals), so a long run stays within
its time. When the Inception weights are not available offline, the probe says so once and
its columns stay empty; the run goes on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass
class QualityProbe:
    """The loaded measures and what to say about them."""

    inception: Any = None  # gan_lab.metrics.inception.InceptionFeatures, or None
    faces: Any = None  # gan_lab.metrics.faces.FaceFinder, or None
    inception_n: int = 0
    faces_n: int = 0
    notes: dict[str, str] = dataclasses.field(default_factory=dict)  # "inception", "faces" -> a sentence

    def inception_features(self, pixels: np.ndarray) -> np.ndarray | None:
        """Pool features of the first inception_n images (they are already in random order), or None."""
        if self.inception is None or self.inception_n < 2:
            return None
        return self.inception(pixels[: self.inception_n])

    def faces_found(self, pixels: np.ndarray) -> np.ndarray | None:
        """Per image of the first faces_n: whether MTCNN finds a face; None without the face test."""
        if self.faces is None or self.faces_n < 1:
            return None
        return self.faces.found(pixels[: self.faces_n])


def open_probe(
    inception: bool, faces: bool, inception_n: int, faces_n: int, download: bool = True, inception_weights=None
) -> QualityProbe:
    """Load what is asked for; a measure that cannot be loaded is left out with a note, never an error.

    inception_weights: a weights file for InceptionV3 instead of the Keras cache's (see `load_inception`).
    """
    probe = QualityProbe(inception_n=inception_n, faces_n=faces_n)
    if inception:
        from gan_lab.metrics.inception import load_inception

        probe.inception, probe.notes["inception"] = load_inception(download=download, weights=inception_weights)
    else:
        probe.notes["inception"] = "FID and KID in InceptionV3 features were not asked for (--no-inception)"
    if faces:
        try:
            from gan_lab.metrics.faces import FaceFinder

            probe.faces = FaceFinder()
            probe.notes["faces"] = f"MTCNN (the mtcnn package, default thresholds) on up to {faces_n} images each"
        except ImportError as error:
            probe.notes["faces"] = f"no face-found rate: the mtcnn package is not installed ({error})"
    else:
        probe.notes["faces"] = "the face-found rate was not asked for (--no-faces)"
    return probe

import numpy as np

from detector.data.synthfaces import render_faces
from gan_lab.metrics.faces import FaceFinder


def test_mtcnn_finds_faces_in_portraits_and_none_in_noise():
    finder = FaceFinder()
    faces, _ = render_faces(12, size=64, seed=0)
    noise = np.random.default_rng(0).random((12, 32, 32, 3)).astype("float32")
    found = finder.found(faces.astype("float32") / 255.0)
    assert found.shape == (12,) and found.mean() >= 0.75
    assert not finder.found(noise).any()
    assert not finder.found(np.full((4, 64, 64, 3), 0.5, dtype="float32")).any()

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


def test_face_descriptors_are_o_nets_own_and_their_distance_orders_faces_before_noise():
    from gan_lab.metrics.faces import FaceDescriptor, face_frechet_distance

    descriptor = FaceDescriptor()
    faces = render_faces(600, size=48, seed=0)[0].astype("float32") / 255.0
    features = descriptor(faces[:8])
    assert features.shape == (8, 256)
    # The descriptor is O-Net's last hidden layer: its face head on it gives O-Net's own face score.
    own = descriptor._onet((np.round(faces[:8] * 255.0) - 127.5) / 128.0)[2]
    np.testing.assert_allclose(np.asarray(descriptor._onet.fc6_3(features.astype("float32"))), own, atol=1e-5)

    floor = face_frechet_distance(descriptor, faces[:300], faces[300:])
    blurred_noise = np.clip(faces[300:] * 0.3 + 0.7 * np.random.default_rng(1).random(faces[300:].shape), 0, 1)
    assert floor < 0.5 * face_frechet_distance(descriptor, faces[:300], blurred_noise.astype("float32"))
    assert face_frechet_distance(descriptor, faces[:300], faces[:300]) < 1e-6

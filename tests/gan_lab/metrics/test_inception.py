import numpy as np
import pytest

from gan_lab.metrics import inception
from gan_lab.metrics.inception import WEIGHTS_FILE, load_inception, weights_path


def test_weights_written_under_the_keras_cache_name_are_the_ones_loaded(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert weights_path() == tmp_path / "keras" / "models" / WEIGHTS_FILE
    keras.utils.set_random_seed(1)
    written = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg")
    weights_path().parent.mkdir(parents=True)
    written.save(weights_path())  # a .h5 name: Keras' legacy HDF5 layout, as the published file is
    extractor, note = load_inception(download=False)
    assert extractor is not None and extractor.weights == weights_path()
    assert not extractor.published and "not Keras' published" in note
    assert "comparable only with figures made with the same weights" in note and "MD5 " in note
    # A file of the user's own (--inception-weights) instead of the cache's, named with its MD5.
    own = tmp_path / "converted-2015-12-05.weights.h5"
    written.save_weights(own)
    extractor, note = load_inception(download=False, weights=own)
    assert extractor.weights == own and str(own) in note and inception._md5(own) in note
    assert load_inception(weights=tmp_path / "missing.h5") == (
        None,
        f"the InceptionV3 weights file {tmp_path / 'missing.h5'} (--inception-weights) does not exist",
    )
    pixels = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    features = extractor(pixels, batch_size=2)
    assert features.shape == (3, 2048)
    resized = keras.ops.image.resize(pixels, (299, 299), interpolation="bilinear", antialias=True)
    np.testing.assert_allclose(features, np.asarray(written(resized * 2.0 - 1.0)), rtol=1e-4, atol=1e-4)


def test_without_the_file_offline_there_is_no_model_and_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    extractor, note = load_inception(download=False)
    assert extractor is None and str(weights_path()) in note

    def offline(weights):
        if weights == "imagenet":
            raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")
        raise AssertionError("nothing to build without weights")

    monkeypatch.setattr(inception, "_build", offline)
    extractor, note = load_inception(download=True)
    assert extractor is None and "download failed" in note and "URL fetch failure" in note


def test_a_broken_weights_file_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    weights_path().parent.mkdir(parents=True)
    weights_path().write_bytes(b"not an HDF5 file")
    extractor, note = load_inception(download=False)
    assert extractor is None and "could not be loaded" in note


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 32, 32, 1)])
def test_features_refuse_images_that_are_not_rgb(shape, tmp_path):
    extractor = inception.InceptionFeatures(model=None, weights=tmp_path, published=False)
    with pytest.raises(ValueError, match="RGB"):
        extractor(np.zeros(shape, dtype="float32"))

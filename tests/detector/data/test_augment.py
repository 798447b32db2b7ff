import numpy as np
import pytest
from PIL import Image

from detector.data.augment import RandomJpegQuality, RandomPerImageGaussianBlur, build_augmentation
from detector.data.datasets import index_folder, make_dataset

SIZE = 16


def checkerboard(count: int = 4, size: int = SIZE) -> np.ndarray:
    """Images with the highest possible pixel-level detail, where blur and JPEG show most."""
    board = (np.indices((size, size)).sum(axis=0) % 2).astype(np.float32)
    return np.repeat(board[None, :, :, None], 3, axis=3).repeat(count, axis=0) * 0.8 + 0.1


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    rng = np.random.default_rng(0)
    for class_name in ("real", "fake"):
        folder = root / class_name
        folder.mkdir()
        for index in range(6):
            pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            pixels[:, :10] = 0  # a left/right asymmetry, so a flip always shows
            Image.fromarray(pixels).save(folder / f"{index}.png")
    return index_folder(root, split=(1.0, 0.0, 0.0)).splits["train"]


def collect(dataset) -> np.ndarray:
    return np.concatenate([images.numpy() for images, _ in dataset])


def test_augmentation_changes_training_batches_only(train_split):
    plain = collect(make_dataset(train_split, size=SIZE, batch_size=4))
    augmentation = build_augmentation(seed=0, blur_probability=0.5, jpeg_probability=0.5)
    augmented = collect(make_dataset(train_split, size=SIZE, batch_size=4, augment=augmentation))
    assert augmented.shape == plain.shape == (12, SIZE, SIZE, 3)
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0
    assert np.abs(augmented - plain).mean() > 0.01
    np.testing.assert_array_equal(np.asarray(augmentation(plain, training=False)), plain)
    # The evaluation pipeline of the same split is untouched by having built an augmentation.
    np.testing.assert_array_equal(collect(make_dataset(train_split, size=SIZE, batch_size=4)), plain)


def test_augmentation_is_seeded(train_split):
    def run(seed):
        augmentation = build_augmentation(seed=seed, blur_probability=0.5, jpeg_probability=0.5)
        return collect(make_dataset(train_split, size=SIZE, batch_size=4, shuffle=True, seed=0, augment=augmentation))

    first, again, other = run(1), run(1), run(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_blur_and_jpeg_layers():
    images = checkerboard()
    blurred = np.asarray(RandomPerImageGaussianBlur(probability=1.0, seed=0)(images, training=True))
    assert blurred.shape == images.shape
    assert blurred.std() < 0.5 * images.std()  # the fine pattern is smoothed away
    assert blurred.min() >= 0.0 and blurred.max() <= 1.0
    np.testing.assert_array_equal(
        np.asarray(RandomPerImageGaussianBlur(probability=0.0, seed=0)(images, training=True)), images
    )
    compressed = np.asarray(RandomJpegQuality(probability=1.0, quality_range=(10, 20), seed=0)(images, training=True))
    assert compressed.shape == images.shape
    assert np.abs(compressed - images).mean() > 0.02
    assert compressed.min() >= 0.0 and compressed.max() <= 1.0
    np.testing.assert_array_equal(
        np.asarray(RandomJpegQuality(probability=1.0, seed=0)(images, training=False)), images
    )


def test_layers_survive_a_model_save(tmp_path):
    import keras

    augmentation = build_augmentation(seed=0, blur_probability=0.3, jpeg_probability=0.2)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), augmentation])
    model.save(tmp_path / "augment.keras")
    loaded = keras.saving.load_model(tmp_path / "augment.keras")
    blur = loaded.get_layer("augmentation").get_layer("blur")
    assert isinstance(blur, RandomPerImageGaussianBlur) and blur.probability == pytest.approx(0.3)
    assert loaded.get_layer("augmentation").get_layer("jpeg").probability == pytest.approx(0.2)


def test_all_off_is_identity_and_bad_arguments_are_named():
    images = checkerboard()
    off = build_augmentation(flip=False, rotation=0, shift=0, zoom=0)
    np.testing.assert_array_equal(np.asarray(off(images, training=True)), images)
    with pytest.raises(ValueError, match="Received: blur_probability=1.5"):
        build_augmentation(blur_probability=1.5)
    with pytest.raises(ValueError, match="Received: rotation=-0.1"):
        build_augmentation(rotation=-0.1)
    with pytest.raises(ValueError, match="Received: kernel_size=4"):
        RandomPerImageGaussianBlur(kernel_size=4)


def test_blur_matches_a_reference_gaussian_per_image():
    images = np.random.default_rng(0).random((3, 12, 10, 3)).astype(np.float32)
    blurred = np.asarray(
        RandomPerImageGaussianBlur(probability=1.0, sigma_range=(1.0, 1.0), seed=0)(images, training=True)
    )
    kernel = np.exp(-0.5 * np.arange(-3, 4) ** 2.0)
    kernel /= kernel.sum()
    padded = np.pad(images, [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect")
    horizontal = sum(kernel[offset] * padded[:, :, offset : offset + 10] for offset in range(7))
    expected = sum(kernel[offset] * horizontal[:, offset : offset + 12] for offset in range(7))
    np.testing.assert_allclose(blurred, expected, atol=1e-5)


def test_blur_draws_sigma_per_image_and_keeps_edges_bright():
    blur = RandomPerImageGaussianBlur(probability=1.0, sigma_range=(0.5, 3.0), seed=0)
    blurred = np.asarray(blur(checkerboard(count=8), training=True))
    # Identical inputs come out blurred by different amounts.
    assert np.unique(blurred.std(axis=(1, 2, 3)).round(4)).size > 1
    # A flat image stays flat up to its border: no dark frame from zero padding.
    flat = np.full((2, SIZE, SIZE, 3), 0.5, dtype=np.float32)
    np.testing.assert_allclose(np.asarray(blur(flat, training=True)), flat, atol=1e-6)


def test_pipeline_augments_exactly_like_calling_the_layers_in_order(train_split):
    plain = [images.numpy() for images, _ in make_dataset(train_split, size=SIZE, batch_size=4)]
    in_pipeline = build_augmentation(seed=5, blur_probability=0.5, jpeg_probability=0.5)
    by_hand = build_augmentation(seed=5, blur_probability=0.5, jpeg_probability=0.5)
    streamed = collect(make_dataset(train_split, size=SIZE, batch_size=4, augment=in_pipeline))
    expected = np.concatenate([np.clip(np.asarray(by_hand(batch, training=True)), 0.0, 1.0) for batch in plain])
    np.testing.assert_allclose(streamed, expected, atol=1e-6)

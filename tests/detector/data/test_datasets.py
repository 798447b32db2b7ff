import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.data.datasets import (
    DatasetIndex,
    Split,
    UnreadableImageWarning,
    index_folder,
    load_images,
    make_dataset,
)

SIZE = 16


def write_image(path: Path, value: int = 0, mode: str = "RGB", size=(24, 20), fmt: str | None = None) -> Path:
    """A flat image of grey level `value` in the given PIL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        image = Image.new("RGB", size, (value, value, value))
    elif mode == "L":
        image = Image.new("L", size, value)
    elif mode == "RGBA":
        image = Image.new("RGBA", size, (value, value, value, 255))
    elif mode == "P":
        image = Image.new("RGB", size, (value, value, value)).convert("P")
    elif mode == "CMYK":
        image = Image.new("CMYK", size, (0, 0, 0, 255 - value))
    else:
        raise ValueError(mode)
    image.save(path, format=fmt)
    return path


def fill_class(folder: Path, count: int, value: int, prefix: str = "img") -> list[Path]:
    return [write_image(folder / f"{prefix}_{index:03d}.png", value) for index in range(count)]


def pixels_and_labels(split: Split, **options):
    images, labels = [], []
    for batch_images, batch_labels in make_dataset(split, size=SIZE, batch_size=4, **options):
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture
def layout_140k(tmp_path):
    root = tmp_path / "download"
    base = root / "real_vs_fake" / "real-vs-fake"
    for split, count in (("train", 6), ("valid", 2), ("test", 3)):
        fill_class(base / split / "real", count, 10)
        fill_class(base / split / "fake", count, 240)
    (root / "train.csv").write_text("id,label\n")
    return root


def test_140k_layout_is_found_two_levels_down(layout_140k):
    index = index_folder(layout_140k)
    assert isinstance(index, DatasetIndex)
    assert index.layout == "140k"
    assert index.root == layout_140k / "real_vs_fake" / "real-vs-fake"
    assert {name: len(split) for name, split in index.splits.items()} == {"train": 12, "valid": 4, "test": 6}
    test = index.splits["test"]
    for path, label in zip(test.paths, test.labels):
        assert label == (1 if "/fake/" in path else 0)


def test_labels_follow_folder_names_not_alphabetical_order(tmp_path):
    # "fake" sorts before "real", so alphabetical label assignment would make fake 0.
    fill_class(tmp_path / "real", 10, 0)
    fill_class(tmp_path / "fake", 10, 255)
    index = index_folder(tmp_path)
    assert index.layout == "real_fake"
    images, labels = pixels_and_labels(index.splits["train"])
    means = images.mean(axis=(1, 2, 3))
    assert np.all(means[labels == 0] < 0.01) and np.all(means[labels == 1] > 0.99)
    assert set(labels) == {0.0, 1.0}


def test_plain_layout_split_is_stratified_seeded_and_disjoint(tmp_path):
    fill_class(tmp_path / "real", 20, 0)
    fill_class(tmp_path / "fake", 10, 255)
    index = index_folder(tmp_path, split=(0.6, 0.2, 0.2), seed=3)
    counts = {name: split.counts() for name, split in index.splits.items()}
    assert counts == {"train": {"real": 12, "fake": 6}, "valid": {"real": 4, "fake": 2}, "test": {"real": 4, "fake": 2}}
    all_paths = [path for split in index.splits.values() for path in split.paths]
    assert len(all_paths) == len(set(all_paths)) == 30
    again = index_folder(tmp_path, split=(0.6, 0.2, 0.2), seed=3)
    other = index_folder(tmp_path, split=(0.6, 0.2, 0.2), seed=4)
    assert again.splits["test"].paths == index.splits["test"].paths
    assert other.splits["test"].paths != index.splits["test"].paths


def test_ciplab_layout_nested(tmp_path):
    base = tmp_path / "real_and_fake_face"
    for index in range(10):
        write_image(base / "training_real" / f"real_{index:05d}.jpg", 20)
    for index, level in enumerate(["easy", "mid", "hard"] * 3):
        write_image(base / "training_fake" / f"{level}_{index}_1110.jpg", 230)
    index = index_folder(tmp_path, seed=0)
    assert index.layout == "ciplab" and index.root == base
    total = {"real": 0, "fake": 0}
    for split in index.splits.values():
        for name, count in split.counts().items():
            total[name] += count
        for path, label in zip(split.paths, split.labels):
            assert label == (1 if "training_fake" in path else 0)
    assert total == {"real": 10, "fake": 9}


def test_real_only_accepts_a_flat_folder_and_drops_fakes(tmp_path, layout_140k):
    flat = tmp_path / "celebs"
    fill_class(flat, 10, 100)
    (flat / "readme.txt").write_text("not an image")
    index = index_folder(flat, real_only=True)
    assert index.layout == "real_only"
    assert sum(len(split) for split in index.splits.values()) == 10
    only_real = index_folder(layout_140k, real_only=True)
    assert only_real.layout == "140k"
    assert all(not np.any(split.labels) and len(split) for split in only_real.splits.values())
    with pytest.raises(LabError, match="no real-vs-fake layout"):
        index_folder(flat)


def test_modes_extensions_and_ignored_files(tmp_path):
    real, fake = tmp_path / "real", tmp_path / "fake"
    fill_class(real, 2, 0)
    write_image(real / "gray.JPG", 0, mode="L", fmt="JPEG")
    write_image(real / "palette.png", 0, mode="P")
    write_image(fake / "rgba.PNG", 255, mode="RGBA")
    write_image(fake / "cmyk.jpeg", 255, mode="CMYK", fmt="JPEG")
    write_image(fake / "image.bmp", 255)
    write_image(fake / "image.webp", 255)
    write_image(real / ".hidden.png", 255)
    (real / "notes.txt").write_text("hello")
    index = index_folder(tmp_path, split=(1.0, 0.0, 0.0))
    train = index.splits["train"]
    assert sorted(Path(path).name for path in train.paths) == sorted(
        ["img_000.png", "img_001.png", "gray.JPG", "palette.png", "rgba.PNG", "cmyk.jpeg", "image.bmp", "image.webp"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every one of these files must decode without a warning
        images, labels = pixels_and_labels(train)
    assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == np.float32
    means = images.mean(axis=(1, 2, 3))
    assert np.all(means[labels == 0] < 0.05) and np.all(means[labels == 1] > 0.95)


def test_broken_files_are_skipped_with_one_warning_each(tmp_path):
    good = fill_class(tmp_path / "real", 5, 0) + fill_class(tmp_path / "fake", 5, 255)
    data = good[0].read_bytes()
    truncated = tmp_path / "real" / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "fake" / "empty.jpg"
    empty.write_bytes(b"")
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    dataset = make_dataset(split, size=SIZE, batch_size=3, shuffle=True, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = sum(len(images) for images, _ in dataset)
        second = sum(len(images) for images, _ in dataset)
    assert first == second == len(good)
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, UnreadableImageWarning)]
    assert sum(str(truncated) in message for message in messages) == 1
    assert sum(str(empty) in message for message in messages) == 1
    assert messages.count("Skipped 2 unreadable images in this pass over the data") == 2
    # Read again elsewhere (as validation or recalibration do): counted again, not named again.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels, _, _ = load_images(split, SIZE)
    assert len(pixels) == len(good)
    messages = [str(warning.message) for warning in caught]
    assert not any(str(truncated) in message or str(empty) in message for message in messages)
    assert "Skipped 2 unreadable images in this pass over the data" in messages


def test_load_images_keeps_readable_files_and_their_labels(tmp_path):
    paths = fill_class(tmp_path / "real", 3, 0) + fill_class(tmp_path / "fake", 2, 255)
    broken = tmp_path / "fake" / "broken.png"
    broken.write_bytes(b"not a png")
    split = Split(
        paths=[str(path) for path in paths[:3]] + [str(broken)] + [str(path) for path in paths[3:]],
        labels=np.array([0, 0, 0, 1, 1, 1]),
    )
    with pytest.warns(UnreadableImageWarning) as caught:
        images, labels, kept = load_images(split, SIZE)
    assert [str(warning.message) for warning in caught][-1] == "Skipped 1 unreadable image in this pass over the data"
    assert sum(str(broken) in str(warning.message) for warning in caught) == 1
    assert images.shape == (5, SIZE, SIZE, 3)
    assert labels.tolist() == [0, 0, 0, 1, 1] and str(broken) not in kept
    images, labels, kept = load_images([str(path) for path in paths], SIZE, limit=2)
    assert images.shape == (2, SIZE, SIZE, 3) and labels is None and kept == [str(paths[0]), str(paths[1])]


def test_pipeline_matches_load_images_and_is_seeded(tmp_path):
    for index in range(6):
        write_image(tmp_path / "real" / f"r{index}.png", 10 * index, size=(40, 20))
        write_image(tmp_path / "fake" / f"f{index}.png", 255 - 10 * index, size=(20, 40))
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    for crop in ("resize", "crop"):
        streamed, _ = pixels_and_labels(split, crop=crop)
        loaded, _, _ = load_images(split, SIZE, crop=crop)
        np.testing.assert_array_equal(streamed, loaded)
    first, _ = pixels_and_labels(split, shuffle=True, seed=1)
    again, _ = pixels_and_labels(split, shuffle=True, seed=1)
    other, _ = pixels_and_labels(split, shuffle=True, seed=2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    cached, _ = pixels_and_labels(split, shuffle=True, seed=1, cache=True)
    assert sorted(cached.mean(axis=(1, 2, 3))) == pytest.approx(sorted(first.mean(axis=(1, 2, 3))))


def test_center_crop_keeps_the_middle(tmp_path):
    wide = Image.new("RGB", (60, 20), (255, 255, 255))
    wide.paste((0, 0, 0), (20, 0, 40, 20))  # black middle square, white sides
    (tmp_path / "real").mkdir()
    wide.save(tmp_path / "real" / "wide.png")
    cropped, _, _ = load_images([str(tmp_path / "real" / "wide.png")], SIZE, crop="crop")
    resized, _, _ = load_images([str(tmp_path / "real" / "wide.png")], SIZE, crop="resize")
    assert cropped.mean() < 0.05 and resized.mean() > 0.5


def test_batches_repeat_and_drop_remainder(tmp_path):
    fill_class(tmp_path / "real", 5, 0)
    fill_class(tmp_path / "fake", 5, 255)
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    sizes = [len(images) for images, _ in make_dataset(split, size=SIZE, batch_size=4, drop_remainder=True)]
    assert sizes == [4, 4]
    repeated = make_dataset(split, size=SIZE, batch_size=4, repeat=True, shuffle=True)
    assert sum(len(images) for images, _ in repeated.take(5)) == 20


def test_pipelines_start_no_autotuning_thread(tmp_path):
    """tf.data's tuning thread can hold up the end of a fit() for up to a minute: every pipeline is built without it."""
    fill_class(tmp_path / "real", 3, 0)
    fill_class(tmp_path / "fake", 3, 255)
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    for options in (dict(), dict(cache=True, shuffle=True, repeat=True)):
        dataset = make_dataset(split, size=SIZE, batch_size=4, **options)
        assert dataset.options().autotune.enabled is False
        assert sum(len(images) for images, _ in dataset.take(2)) > 0


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(LabError, match="not found: .*missing"):
        index_folder(tmp_path / "missing")
    a_file = write_image(tmp_path / "photo.png")
    with pytest.raises(LabError, match="photo.png is not a folder"):
        index_folder(a_file)
    plain = tmp_path / "plain"
    fill_class(plain / "real", 3, 0)
    (plain / "fake").mkdir()
    (plain / "fake" / "notes.txt").write_text("no images here")
    with pytest.raises(LabError, match=r"plain/fake has no images"):
        index_folder(plain)
    only_real = tmp_path / "only_real"
    fill_class(only_real / "real", 3, 0)
    with pytest.raises(LabError, match=r"Missing class folder: .*only_real/fake"):
        index_folder(only_real)
    assert index_folder(only_real, real_only=True).layout == "real_fake"
    nested = tmp_path / "nested"
    fill_class(nested / "train" / "real", 2, 0)
    (nested / "train" / "fake").mkdir()
    fill_class(nested / "valid" / "real", 2, 0)
    with pytest.raises(LabError, match=r"nested/train/fake has no images"):
        index_folder(nested)
    fill_class(nested / "train" / "fake", 2, 0)
    with pytest.raises(LabError, match=r"Missing class folder: .*nested/valid/fake"):
        index_folder(nested)
    (nested / "valid" / "fake").mkdir()
    # An empty class in valid or test leaves a one-class split to evaluate on, with a warning.
    with pytest.warns(UserWarning, match=r"nested/valid/fake has no images"):
        index = index_folder(nested)
    assert index.splits["valid"].counts() == {"real": 2, "fake": 0}


def test_bad_arguments(tmp_path):
    fill_class(tmp_path / "real", 2, 0)
    fill_class(tmp_path / "fake", 2, 0)
    with pytest.raises(ValueError, match="Received: split="):
        index_folder(tmp_path, split=(0.5, 0.1, 0.1))
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    with pytest.raises(ValueError, match="Received: crop="):
        make_dataset(split, size=SIZE, crop="squash")
    with pytest.raises(LabError, match="empty split"):
        make_dataset(Split(paths=[], labels=np.zeros(0)), size=SIZE)


def test_native_png_path_gives_the_same_pixels_as_pil(tmp_path):
    rng = np.random.default_rng(0)
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    noise = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(noise).save(real / "rgb.png")  # takes the native path
    Image.fromarray(noise[:, :, 0]).save(real / "gray.png")  # native too
    Image.fromarray(noise).convert("P").save(real / "palette.png")
    rgba = np.dstack([noise, rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)])
    Image.fromarray(rgba).save(fake / "rgba.png")  # alpha is composited on white by PIL
    Image.fromarray(noise[:, :, 0].astype(np.uint16) * 257).save(fake / "deep.png")
    rotated = Image.fromarray(noise)
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees
    rotated.save(fake / "rotated.png", exif=exif)
    Image.fromarray(noise).resize((SIZE * 2, SIZE)).save(fake / "wide.png")
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    streamed, labels = pixels_and_labels(split)
    loaded, loaded_labels, _ = load_images(split, SIZE)
    np.testing.assert_array_equal(streamed, loaded)
    np.testing.assert_array_equal(labels, loaded_labels)
    by_name = dict(zip([Path(path).name for path in split.paths], loaded))
    assert np.allclose(by_name["rotated.png"], np.rot90(noise / 255.0, k=-1), atol=1e-6)


def test_corrupt_png_data_behind_a_valid_header_does_not_stop_the_pass(tmp_path):
    good = fill_class(tmp_path / "real", 3, 0) + fill_class(tmp_path / "fake", 3, 255)
    data = bytearray((tmp_path / "real" / "img_000.png").read_bytes())
    Image.new("RGB", (SIZE, SIZE)).save(tmp_path / "fake" / "exact.png")
    corrupt = bytearray((tmp_path / "fake" / "exact.png").read_bytes())
    corrupt[45:-12] = bytes(len(corrupt) - 57)  # zero the compressed data, keep header and IEND
    (tmp_path / "fake" / "exact.png").write_bytes(bytes(corrupt))
    truncated = bytes(data[: len(data) // 2])
    (tmp_path / "real" / "cut.png").write_bytes(truncated)
    split = index_folder(tmp_path, split=(1.0, 0.0, 0.0)).splits["train"]
    with pytest.warns(UnreadableImageWarning) as caught:
        images, _ = pixels_and_labels(split)
    assert len(images) == len(good)
    assert any("cut.png" in str(warning.message) for warning in caught)


def test_a_symlink_loop_is_read_once_with_a_warning_and_fakes_never_count_as_real(tmp_path):
    from detector.data.datasets import DataLayoutWarning

    fill_class(tmp_path / "data" / "real", 6, 10)
    fill_class(tmp_path / "data" / "fake", 6, 200)
    (tmp_path / "data" / "real" / "loop").symlink_to("..")  # real/loop -> data/, fakes included
    (tmp_path / "data" / "real" / "again").symlink_to(".")  # real/again -> real/ itself
    (tmp_path / "data" / "real" / "stolen.png").symlink_to("../fake/img_000.png")
    with pytest.warns(DataLayoutWarning) as caught:
        index = index_folder(tmp_path / "data", split=(1.0, 0.0, 0.0))
    train = index.splits["train"]
    assert train.counts() == {"real": 6, "fake": 6}
    real_paths = [
        Path(path).relative_to(tmp_path / "data") for path, label in zip(train.paths, train.labels) if label == 0
    ]
    assert all(path.parts[0] == "real" and len(path.parts) == 2 for path in real_paths)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "real/loop" in messages and "real/again" in messages and "stolen.png" in messages


def test_a_file_under_two_names_counts_once_and_one_under_both_labels_not_at_all(tmp_path):
    from detector.data.datasets import DataLayoutWarning

    fill_class(tmp_path / "data" / "real", 4, 10)
    fill_class(tmp_path / "data" / "fake", 4, 200)
    (tmp_path / "data" / "real" / "twin.png").symlink_to("img_000.png")
    outside = write_image(tmp_path / "elsewhere" / "shared.png", 90)
    (tmp_path / "data" / "real" / "shared.png").symlink_to(outside)
    (tmp_path / "data" / "fake" / "shared.png").symlink_to(outside)
    with pytest.warns(DataLayoutWarning, match="both as real and as fake"):
        train = index_folder(tmp_path / "data", split=(1.0, 0.0, 0.0)).splits["train"]
    assert train.counts() == {"real": 4, "fake": 4}


def test_a_directory_link_outside_the_data_set_is_followed_and_named(tmp_path):
    from detector.data.datasets import DataLayoutWarning

    fill_class(tmp_path / "data" / "fake", 3, 200)
    fill_class(tmp_path / "data" / "real", 2, 10)
    fill_class(tmp_path / "celeb", 3, 30)
    (tmp_path / "data" / "real" / "celeb").symlink_to(tmp_path / "celeb")
    with pytest.warns(DataLayoutWarning, match="outside"):
        train = index_folder(tmp_path / "data", split=(1.0, 0.0, 0.0)).splits["train"]
    assert train.counts() == {"real": 5, "fake": 3}


def test_extra_fakes_join_the_training_split_only_once_each_and_never_as_reals(tmp_path, layout_140k):
    from detector.data.datasets import with_extra_fakes

    index = index_folder(layout_140k)
    extra = fill_class(tmp_path / "gan-fakes", 4, 200)
    (tmp_path / "gan-fakes" / "again.png").symlink_to(extra[0])  # one file under two names counts once
    grown = with_extra_fakes(index, [str(tmp_path / "gan-fakes")])
    assert grown.splits["train"].counts() == {"real": 6, "fake": 6 + 4}
    assert grown.splits["valid"] == index.splits["valid"] and grown.splits["test"] == index.splits["test"]
    assert {str(path) for path in extra} <= set(grown.splits["train"].paths)

    real_file = index.splits["train"].paths[0]
    (tmp_path / "mislabelled").mkdir()
    (tmp_path / "mislabelled" / "x.png").symlink_to(real_file)
    with pytest.raises(LabError, match="holds it as real"):
        with_extra_fakes(index, [str(tmp_path / "mislabelled")])
    with pytest.raises(LabError, match="extra fakes folder not found: .*nowhere"):
        with_extra_fakes(index, [str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabError, match="empty has no images"):
        with_extra_fakes(index, [str(tmp_path / "empty")])

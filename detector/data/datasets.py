"""Index real-vs-fake image folders and stream them as tf.data pipelines (real = 0, fake = 1)."""

from __future__ import annotations

import os
import struct
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from detector import FAKE, REAL
from detector.base.errors import LabError
from detector.data.images import FIT_MODES, fit_image, is_image_file, open_rgb

SPLIT_NAMES = ("train", "valid", "test")
LAYOUTS = ("140k", "ciplab", "real_fake", "real_only")
# Folder names map to labels explicitly, so alphabetical order ("fake" < "real") never decides a label.
CLASS_FOLDERS = {"real": REAL, "fake": FAKE}
CIPLAB_FOLDERS = {"training_real": REAL, "training_fake": FAKE}
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "test": "test",
}
# The Kaggle 140k download nests its folders two levels down (real_vs_fake/real-vs-fake/).
SEARCH_DEPTH = 3


class DataLayoutWarning(UserWarning):
    """A link or file in an image folder that the index leaves out, or follows outside the data set."""


class UnreadableImageWarning(UserWarning):
    """An image file was skipped because it could not be decoded."""


@dataclass
class Split:
    """Image paths and their labels (0 real, 1 fake), in the same order."""

    paths: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        labels = np.asarray(self.labels)
        return {"real": int(np.sum(labels == REAL)), "fake": int(np.sum(labels == FAKE))}


@dataclass
class DatasetIndex:
    """Every image of a data folder, split into train/valid/test."""

    root: Path
    layout: str
    splits: dict[str, Split]


# --------------------------------------------------------------------------- indexing


def _children(folder: Path) -> dict[str, Path]:
    """Visible sub-folders by lower-case name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        raise LabError(f"Cannot read folder {folder}: {error}") from None
    return {
        entry.name.lower(): Path(entry.path)
        for entry in entries
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=True)
    }


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _follow(link: str, start: str, root: str, seen: set[str]) -> bool:
    """Whether to walk into a directory link, warning (once, naming it) about any that is not followed.

    A link back into the walk (a loop, or an ancestor), or sideways into another class or
    split of the same data set, would count images twice or under the wrong label.
    """
    target = os.path.realpath(link)
    if target in seen or _within(start, target):
        reason = "it loops back into a folder already read"
    elif _within(target, root) and not _within(target, start):
        reason = "it leads into another folder of this data set, whose images have their own label"
    elif not _within(target, root):
        warnings.warn(f"Following {link} -> {target}, outside {root}", DataLayoutWarning, stacklevel=4)
        return True
    else:
        return True
    warnings.warn(f"Not following {link} -> {target}: {reason}", DataLayoutWarning, stacklevel=4)
    return False


def _list_images(folder: Path, skip: tuple[str, ...] = (), root: Path | None = None) -> list[str]:
    """Image files under `folder` (recursively, hidden entries and `skip` folder names left out), sorted.

    Each directory is read once, whatever links lead to it; each file is counted once,
    however many names it has; a file link into another folder of `root` (the data set) is
    left out, as in `_follow`.
    """
    start = os.path.realpath(folder)
    root = os.path.realpath(root or folder)
    seen, found = {start}, {}
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        kept = []
        for name in sorted(subdirectories):
            path = os.path.join(directory, name)
            if name.startswith(".") or name.lower() in skip:
                continue
            if os.path.islink(path) and not _follow(path, start, root, seen):
                continue
            seen.add(os.path.realpath(path))
            kept.append(name)
        subdirectories[:] = kept
        for name in files:
            path = os.path.join(directory, name)
            target = os.path.realpath(path)
            if not is_image_file(name) or target in found:
                continue
            if os.path.islink(path) and _within(target, root) and not _within(target, start):
                warnings.warn(
                    f"Leaving out {path} -> {target}: it is an image of another folder of this data set",
                    DataLayoutWarning,
                    stacklevel=2,
                )
                continue
            found[target] = path
    return sorted(found.values())


def _class_images(folder: Path | None, description: str, root: Path | None = None) -> list[str]:
    if folder is None:
        raise LabError(f"Missing class folder: {description}")
    paths = _list_images(folder, root=root)
    if not paths:
        raise LabError(f"Class folder {folder} has no images (.jpg .jpeg .png .bmp .webp)")
    return paths


def _check_split_ratio(split) -> np.ndarray:
    ratio = np.asarray(split, dtype=np.float64)
    if ratio.shape != (3,) or np.any(ratio < 0) or not np.isclose(ratio.sum(), 1.0) or ratio[0] <= 0:
        raise ValueError(
            "split must be three non-negative fractions (train, valid, test) summing to 1 with train > 0. "
            f"Received: split={split!r}"
        )
    return ratio


def _without_shared_files(per_class: dict[int, list[str]]) -> dict[int, list[str]]:
    """Leave out files that stand under both labels (through links): neither label can be trusted."""
    real = {os.path.realpath(path) for path in per_class.get(REAL, [])}
    shared = real & {os.path.realpath(path) for path in per_class.get(FAKE, [])}
    if not shared:
        return per_class
    warnings.warn(
        f"Leaving out {len(shared)} file(s) found both as real and as fake, e.g. {sorted(shared)[0]}",
        DataLayoutWarning,
        stacklevel=3,
    )
    return {
        label: [path for path in paths if os.path.realpath(path) not in shared] for label, paths in per_class.items()
    }


def _make_split(per_class: dict[int, list[str]]) -> Split:
    per_class = _without_shared_files(per_class)
    paths, labels = [], []
    for label in (REAL, FAKE):
        paths.extend(per_class.get(label, []))
        labels.extend([label] * len(per_class.get(label, [])))
    return Split(paths=paths, labels=np.asarray(labels, dtype=np.int64))


def _split_by_ratio(per_class: dict[int, list[str]], ratio: np.ndarray, seed: int) -> dict[str, Split]:
    """Stratified seeded split: each class is shuffled and cut at the same fractions."""
    parts = {name: {} for name in SPLIT_NAMES}
    for label, paths in per_class.items():
        order = np.random.default_rng([seed, label]).permutation(len(paths))
        shuffled = [paths[index] for index in order]
        cuts = np.rint(np.cumsum(ratio)[:2] * len(paths)).astype(int)
        pieces = (shuffled[: cuts[0]], shuffled[cuts[0] : cuts[1]], shuffled[cuts[1] :])
        for name, piece in zip(SPLIT_NAMES, pieces):
            parts[name][label] = sorted(piece)
    return {name: _make_split(parts[name]) for name in SPLIT_NAMES}


def _find_layout(root: Path) -> tuple[str, Path] | None:
    """The first recognised layout, searching `root` and then breadth-first a few levels down."""
    level = [root]
    for _ in range(SEARCH_DEPTH + 1):
        next_level = []
        for folder in level:
            children = _children(folder)
            split_folders = [path for name, path in children.items() if name in SPLIT_ALIASES]
            if any(set(_children(path)) & set(CLASS_FOLDERS) for path in split_folders):
                return "140k", folder
            if set(children) & set(CIPLAB_FOLDERS):
                return "ciplab", folder
            if set(children) & set(CLASS_FOLDERS):
                return "real_fake", folder
            next_level.extend(path for name, path in children.items() if not name.startswith("_"))
        level = next_level
    return None


def _index_140k(folder: Path, real_only: bool) -> dict[str, Split]:
    folder_root = folder
    children = _children(folder)
    split_folders = {}
    for name, path in children.items():
        if name in SPLIT_ALIASES:
            split_folders.setdefault(SPLIT_ALIASES[name], path)
    if "train" not in split_folders:
        raise LabError(f"{folder} has {'/'.join(sorted(split_folders))} folders but no train/ folder")
    splits = {}
    for name in SPLIT_NAMES:
        if name not in split_folders:
            splits[name] = _make_split({})
            continue
        class_folders = _children(split_folders[name])
        per_class = {}
        for class_name, label in CLASS_FOLDERS.items():
            if real_only and label == FAKE:
                continue
            folder = class_folders.get(class_name)
            if name == "train" or folder is None:
                per_class[label] = _class_images(folder, f"{split_folders[name] / class_name}", root=folder_root)
                continue
            # A one-class valid or test split is still worth evaluating on (e.g. fakes only): warn, don't refuse.
            per_class[label] = _list_images(folder, root=folder_root)
            if not per_class[label]:
                warnings.warn(f"Class folder {folder} has no images; the {name} split has one class only", stacklevel=3)
        splits[name] = _make_split(per_class)
    return splits


def index_folder(
    root: str | os.PathLike,
    *,
    real_only: bool = False,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> DatasetIndex:
    """Find the images of a real-vs-fake folder and split them into train/valid/test.

    Recognised below `root`: `{train,valid,test}/{real,fake}` (140k Real and Fake Faces,
    SynthFaces), `training_real/` + `training_fake/` (ciplab) and `real/` + `fake/`; the
    last two are split by `split` with `seed`, stratified by class. With `real_only=True`
    only real images are kept, and a folder of images without class folders is accepted.
    """
    ratio = _check_split_ratio(split)
    root = Path(root)
    if not root.exists():
        raise LabError(f"Data folder not found: {root}")
    if not root.is_dir():
        raise LabError(f"{root} is not a folder; give the folder that holds the images")
    found = _find_layout(root)
    if found is None:
        if not real_only:
            raise LabError(
                f"{root} has no real-vs-fake layout: expected {{train,valid,test}}/{{real,fake}}/, "
                "training_real/ + training_fake/, or real/ + fake/ folders"
            )
        # Everything under root is real, except folders that clearly hold fakes.
        paths = _list_images(root, skip=("fake", "training_fake", "_inspect"))
        if not paths:
            raise LabError(f"{root} has no images (.jpg .jpeg .png .bmp .webp)")
        return DatasetIndex(root=root, layout="real_only", splits=_split_by_ratio({REAL: paths}, ratio, seed))
    layout, folder = found
    if layout == "140k":
        splits = _index_140k(folder, real_only)
    else:
        names = CIPLAB_FOLDERS if layout == "ciplab" else CLASS_FOLDERS
        children = _children(folder)
        per_class = {}
        for name, label in names.items():
            if real_only and label == FAKE:
                continue
            per_class[label] = _class_images(children.get(name), f"{folder / name}", root=folder)
        splits = _split_by_ratio(_without_shared_files(per_class), ratio, seed)
    return DatasetIndex(root=folder, layout=layout, splits=splits)


# --------------------------------------------------------------------------- decoding


def decode_image(path: str, size: int, crop: str = "resize") -> np.ndarray:
    """One image file as float32 RGB [size, size, 3] in [0, 1]; LabError naming it if unreadable."""
    image = open_rgb(path)
    return fit_image(image, size, mode=crop, name=path)


class _SkipReport:
    """Counts the unreadable files of one pass, and warns once per file in the whole process.

    Training reads a file in several places (the training pipeline, validation, BatchNorm
    recalibration, the collapse watch); the user hears about each bad file once. Thread-safe
    because the decoder runs in parallel.
    """

    _named: set[str] = set()  # every file any report has warned about
    _lock = threading.Lock()

    def __init__(self):
        self.warned: set[str] = set()

    def file(self, path: str, error: Exception) -> None:
        with self._lock:
            if path in self.warned:
                return
            self.warned.add(path)
            if path in self._named:
                return
            self._named.add(path)
        reason = str(error) if path in str(error) else f"{path}: {error}"
        warnings.warn(f"Skipping unreadable image {reason}", UnreadableImageWarning, stacklevel=2)

    @staticmethod
    def total(count) -> np.int64:
        count = int(count)
        warnings.warn(
            f"Skipped {count} unreadable image{'s' if count != 1 else ''} in this pass over the data",
            UnreadableImageWarning,
            stacklevel=2,
        )
        return np.int64(count)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _is_plain_png(contents, size: int):
    """True (a tf.bool) for a complete 8-bit grey or RGB PNG of exactly size x size without EXIF.

    TensorFlow decodes those to exactly the pixels the PIL path gives, without the Python
    round trip; everything else (other modes, other sizes, EXIF rotation, truncation) takes the
    PIL path, which converts modes, fits the size and names unreadable files.
    """
    import tensorflow as tf

    def check():
        def part(start, length):
            return tf.strings.substr(contents, start, length)

        length = tf.strings.length(contents)
        checks = [
            tf.equal(part(0, 8), _PNG_SIGNATURE),
            tf.equal(part(12, 4), b"IHDR"),
            tf.equal(part(16, 8), struct.pack(">II", size, size)),
            tf.equal(part(24, 1), b"\x08"),
            tf.logical_or(tf.equal(part(25, 1), b"\x00"), tf.equal(part(25, 1), b"\x02")),
            tf.equal(part(length - 12, 12), _PNG_END),
            # Byte search by splitting: regular expressions expect UTF-8 and miss chunks in binary data.
            tf.equal(tf.size(tf.strings.split(contents, sep="eXIf")), 1),
        ]
        return tf.reduce_all(tf.stack(checks))

    return tf.cond(tf.strings.length(contents) >= 57, check, lambda: tf.constant(False))


def _check_arguments(size, batch_size, crop) -> None:
    if not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"size must be a positive integer. Received: size={size!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if crop not in FIT_MODES:
        raise ValueError(f"crop must be one of {FIT_MODES}. Received: crop={crop!r}")


class _Decoder:
    """Decodes one data set's files inside tf.data: plain PNGs natively, everything else through PIL."""

    def __init__(self, size: int, crop: str, report: _SkipReport):
        self.size, self.crop, self.report = size, crop, report

    def _decode(self, path: bytes):
        path = path.decode("utf-8")
        if not path:  # the end-of-pass marker
            return np.zeros((self.size, self.size, 3), np.float32), False
        try:
            return decode_image(path, self.size, self.crop), True
        except Exception as error:  # any failure is this one file's problem (e.g. PIL's DecompressionBombError)
            self.report.file(path, error)
            return np.zeros((self.size, self.size, 3), np.float32), False

    def _with_pil(self, path):
        import tensorflow as tf

        pixels, ok = tf.numpy_function(self._decode, [path], [tf.float32, tf.bool], stateful=False)
        pixels.set_shape((self.size, self.size, 3))
        ok.set_shape(())
        return pixels, ok

    def _natively(self, contents):
        import tensorflow as tf

        pixels = tf.cast(tf.io.decode_png(contents, channels=3), tf.float32) / 255.0
        return tf.ensure_shape(pixels, (self.size, self.size, 3)), tf.constant(True)

    def __call__(self, path, label):
        """(pixels, label, readable) for one (path, label) element."""
        import tensorflow as tf

        is_png = tf.strings.regex_full_match(path, r"(?i).*\.png")
        contents = tf.cond(is_png, lambda: tf.io.read_file(path), lambda: tf.constant(b""))
        pixels, ok = tf.cond(
            _is_plain_png(contents, self.size),
            lambda: self._natively(contents),
            lambda: self._with_pil(path),
        )
        return pixels, label, ok


def _count_skipped(skipped, element):
    """A running count of unreadable files, reported and reset at each end-of-pass marker."""
    import tensorflow as tf

    pixels, label, ok = element
    is_marker = label < 0
    skipped = skipped + tf.cast(tf.logical_and(tf.logical_not(ok), tf.logical_not(is_marker)), tf.int64)
    skipped = tf.cond(
        tf.logical_and(is_marker, skipped > 0),
        lambda: tf.zeros_like(tf.numpy_function(_SkipReport.total, [skipped], tf.int64, stateful=True)),
        lambda: tf.where(is_marker, tf.zeros_like(skipped), skipped),
    )
    return skipped, (pixels, label, ok)


def _is_readable(pixels, label, ok):
    return ok


def _without_flag(pixels, label, ok):
    return pixels, label


def _augmented(dataset, augment):
    """Batches passed through the augmentation layers (training only), clipped to [0, 1]."""
    import tensorflow as tf

    from detector.data.augment import staged_layers

    layers = staged_layers(augment)
    if layers is None:

        def augment_batch(images, labels):
            return tf.clip_by_value(augment(images, training=True), 0.0, 1.0), labels

        return dataset.map(augment_batch)

    # Random draws advance the layers' seeded state, so they happen one batch at a time in
    # order; the image transforms, the costly part, then run in parallel.
    def draw_transformations(images, labels):
        return images, labels, tuple(layer.get_random_transformation(images, training=True) for layer in layers)

    def apply_transformations(images, labels, transformations):
        for layer, transformation in zip(layers, transformations):
            images = layer.transform_images(images, transformation, training=True)
        return tf.clip_by_value(images, 0.0, 1.0), labels

    return dataset.map(draw_transformations).map(
        apply_transformations, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def _split_arrays(split: Split) -> tuple[list[str], np.ndarray]:
    paths = [os.fspath(path) for path in split.paths]
    if not paths:
        raise LabError("Cannot make a data set from an empty split: it has no images")
    labels = np.asarray(split.labels, dtype=np.float32)
    if labels.shape != (len(paths),):
        raise ValueError(
            f"split.labels must have one label per path. Received: labels of shape {labels.shape} for {len(paths)} paths"
        )
    return paths, labels


def _passes(elements, count: int, seed: int, shuffle: bool, repeat: bool, then):
    """`then` of `elements` for one pass, or endless passes with `repeat` (before batching, so batches
    stay full across pass boundaries), each pass shuffled anew. Every iterator of a repeated data set
    starts the same sequence of orders: under a tf.distribute strategy Keras starts one iterator to
    build the model before the one it trains on, and the run must not depend on that."""
    import tensorflow as tf

    if not shuffle:
        return then(elements).repeat() if repeat else then(elements)
    if not repeat:  # iterated once per epoch: a new order each time
        return then(elements.shuffle(count, seed=seed, reshuffle_each_iteration=True))

    def endless(_):  # run anew for each iterator, with a new shuffle (and its seed state) each time
        return then(elements.shuffle(count, seed=seed, reshuffle_each_iteration=True)).repeat()

    return tf.data.Dataset.from_tensors(0).flat_map(endless)


def make_dataset(
    split: Split,
    *,
    size: int,
    batch_size: int = 32,
    crop: str = "resize",
    shuffle: bool = False,
    augment=None,
    cache: bool | str = False,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
):
    """Stream a split as batches of (float32 images [B, size, size, 3] in [0, 1], float32 labels [B]).

    Files are decoded in parallel and never all held in memory (unless `cache=True`; a
    string caches to that file). `augment` (a Keras layer or model, e.g. from
    `detector.data.augment.build_augmentation`) is applied to training batches only, so pass it
    for the training split alone. An unreadable file is skipped with one warning naming
    it and a count at the end of the pass.
    """
    import tensorflow as tf

    _check_arguments(size, batch_size, crop)
    paths, labels = _split_arrays(split)
    files = tf.data.Dataset.from_tensor_slices((paths, labels))
    decoder = _Decoder(int(size), crop, _SkipReport())

    def decoded(files):
        marker = tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(-1.0)))
        images = files.concatenate(marker).map(decoder, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        # A safety net for the native PNG path only (a file deleted since indexing, corrupt PNG data
        # behind an intact header): TensorFlow logs the error and the element is dropped.
        images = images.ignore_errors(log_warning=True)
        images = images.scan(tf.constant(0, tf.int64), _count_skipped)
        return images.filter(_is_readable).map(_without_flag)

    if cache:
        images = decoded(files).cache(cache if isinstance(cache, str) else "")
        dataset = _passes(images, len(paths), seed, shuffle, repeat, lambda images: images)
    else:  # shuffle the file names, decode in that order
        dataset = _passes(files, len(paths), seed, shuffle, repeat, decoded)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None:
        dataset = _augmented(dataset, augment)
    return prefetched(dataset)


def prefetched(dataset):
    """`dataset` with batches prepared ahead, its parallel steps on up to one thread per core.

    tf.data's autotuning is off: its tuning thread can hold up the end of every fit() for up to
    a minute while the iterator it tunes waits for it (TensorFlow 2.21, measured 0 to 49 s at
    random; the test suite ran in two thirds of the time without it). The prefetch buffer still
    sizes itself.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def load_images(
    split_or_paths: Split | list,
    size: int,
    crop: str = "resize",
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Decode a small set into memory: (float32 [N, size, size, 3], labels or None, kept paths).

    Unreadable files are skipped with a warning naming each; `limit` keeps the first
    `limit` readable images.
    """
    _check_arguments(size, 1, crop)
    if isinstance(split_or_paths, Split):
        paths, labels = list(split_or_paths.paths), np.asarray(split_or_paths.labels)
    else:
        paths, labels = list(split_or_paths), None
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0. Received: limit={limit!r}")
    images, kept, kept_labels = [], [], []
    report = _SkipReport()
    for index, path in enumerate(paths):
        if limit is not None and len(images) >= limit:
            break
        path = os.fspath(path)
        try:
            images.append(decode_image(path, size, crop))
        except Exception as error:  # any failure is this one file's problem, as in make_dataset
            report.file(path, error)
            continue
        kept.append(path)
        if labels is not None:
            kept_labels.append(labels[index])
    if len(report.warned):
        report.total(len(report.warned))
    pixels = np.stack(images) if images else np.zeros((0, size, size, 3), np.float32)
    return pixels, (np.asarray(kept_labels, dtype=np.int64) if labels is not None else None), kept


# --------------------------------------------------------------------------- a run's splits


def run_index(config, source: str | os.PathLike = "config.json") -> DatasetIndex:
    """The data index of a detector run, split exactly as its training split it.

    config: the run's resolved options, as a DetectorConfig or its config.json dict.
    source: what to name in the error when the data folder is not on this machine.
    The run's `extra_fakes` folders join its training split as fakes (never valid or test).
    """
    values = config if isinstance(config, dict) else vars(config)
    root = values.get("data")
    if not root or not Path(root).is_dir():
        raise LabError(f"{source}: the run's data folder {root!r} is not on this machine")
    split = values.get("split") or (0.8, 0.1, 0.1)
    index = index_folder(root, split=tuple(split), seed=int(values.get("seed", 0)))
    return with_extra_fakes(index, values.get("extra_fakes") or (), source)


def with_extra_fakes(index: DatasetIndex, folders, source: str | os.PathLike = "extra_fakes") -> DatasetIndex:
    """`index` with every image under `folders` added to its training split as a fake.

    A file the data set already holds (under any name) is not added twice; a file the data set
    holds as real is refused, since its label would be ambiguous.
    """
    if not folders:
        return index
    held = {
        os.path.realpath(path): label
        for split in index.splits.values()
        for path, label in zip(split.paths, split.labels)
    }
    extra = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise LabError(f"{source}: extra fakes folder not found: {folder}")
        for path in _class_images(Path(folder), f"extra fakes {folder}"):
            target = os.path.realpath(path)
            if held.get(target) == REAL:
                raise LabError(f"{path} is among the extra fakes but the data set holds it as real")
            if target not in held:
                held[target] = FAKE
                extra.append(path)
    train = index.splits["train"]
    splits = dict(index.splits)
    splits["train"] = Split(
        paths=[*train.paths, *extra], labels=np.concatenate([train.labels, np.full(len(extra), FAKE, np.int64)])
    )
    return replace(index, splits=splits)


def class_images(
    index: DatasetIndex,
    split: str,
    label: int,
    size: int,
    crop: str,
    limit: int | None,
    seed: int | None = None,
) -> np.ndarray:
    """Up to `limit` readable images of one class from one split, float32 pixels.

    seed: draw them in a seeded random order; None keeps the split's (sorted) order.
    """
    if split not in index.splits:
        return np.zeros((0, size, size, 3), dtype=np.float32)
    chosen = index.splits[split]
    paths = [path for path, value in zip(chosen.paths, np.asarray(chosen.labels)) if int(value) == label]
    if seed is not None:
        paths = [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]
    pixels, _, _ = load_images(paths, size, crop=crop, limit=limit)
    return np.asarray(pixels, dtype=np.float32)

"""Look at a data folder before training on it: counts, image sizes and modes, imbalance, samples."""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from detector import CLASS_NAMES
from detector.base.errors import LabError
from detector.base.runs import atomic_write_bytes, write_json
from detector.data.datasets import SPLIT_NAMES, index_folder
from detector.data.images import fit_image, image_grid, open_rgb, save_png

# A class more than this many times larger than the other is flagged.
IMBALANCE_RATIO = 1.5
# ... and by at least this many images: a tiny split one or two images apart is rounding, not imbalance.
IMBALANCE_MIN_DIFFERENCE = 3
GRID_IMAGES = 16
GRID_TILE = 64
INSPECT_FOLDER = "_inspect"


def _damage(path: str, image: Image.Image) -> str | None:
    """What is wrong with a file whose header reads, or None: a truncated or corrupt body."""
    try:
        if image.format == "JPEG":
            with open(path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(path) - 64))
                if b"\xff\xd9" not in handle.read():  # no end-of-image marker: the file was cut short
                    return "truncated JPEG (no end-of-image marker)"
        else:
            image.verify()  # checksums and structure, without decoding the pixels
    except Exception as error:  # PIL raises many types for damaged data
        return f"damaged {image.format or 'image'} data ({error})"
    return None


def _read_headers(
    paths: list[str], min_side: int, progress: bool = False
) -> tuple[Counter, Counter, Counter, dict[str, str], list[str]]:
    """Sizes, modes and formats from file headers; unreadable or damaged files and images too small, each named."""
    sizes, modes, formats, unreadable, small = Counter(), Counter(), Counter(), {}, []
    if progress:
        from detector.base.console import progress_bar

        paths = progress_bar(paths, unit="file", desc="Reading headers")
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height, mode, file_format = image.width, image.height, image.mode, image.format
                damage = _damage(path, image)
        except Exception as error:  # any failure is this file's: PIL raises many types
            unreadable[path] = str(error)
            continue
        if damage:
            unreadable[path] = damage
            continue
        sizes[f"{width}x{height}"] += 1
        modes[mode] += 1
        formats[file_format or "unknown"] += 1
        if min(width, height) < min_side:
            small.append(f"{path}: {width}x{height}")
    return sizes, modes, formats, unreadable, small


def _imbalance(counts: dict[str, dict[str, int]]) -> list[str]:
    notes = []
    for name, by_class in counts.items():
        real, fake = by_class.get("real", 0), by_class.get("fake", 0)
        if real + fake == 0:
            continue
        if min(real, fake) == 0:
            notes.append(f"{name}: {real} real vs {fake} fake (a class is missing)")
        elif max(real, fake) / min(real, fake) > IMBALANCE_RATIO and abs(real - fake) >= IMBALANCE_MIN_DIFFERENCE:
            notes.append(f"{name}: {real} real vs {fake} fake (ratio {max(real, fake) / min(real, fake):.2f})")
    return notes


def _bar_chart(counts: dict[str, dict[str, int]], title: str) -> bytes:
    from matplotlib.figure import Figure

    splits = [name for name in SPLIT_NAMES if name in counts]
    positions = np.arange(len(splits))
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_subplot()
    width = 0.38
    for offset, class_name, color in ((-width / 2, "real", "tab:blue"), (width / 2, "fake", "tab:red")):
        values = [counts[name].get(class_name, 0) for name in splits]
        bars = axes.bar(positions + offset, values, width, label=class_name, color=color)
        axes.bar_label(bars, fontsize=8)
    axes.set_xticks(positions, splits)
    axes.set_ylabel("images")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _sample_grid(paths: list[str], seed: int) -> np.ndarray | None:
    """Up to GRID_IMAGES readable images, chosen with `seed`, tiled into one picture."""
    order = np.random.default_rng(seed).permutation(len(paths))
    tiles = []
    for index in order:
        if len(tiles) == GRID_IMAGES:
            break
        try:
            tiles.append(fit_image(open_rgb(paths[index]), GRID_TILE, mode="crop"))
        except LabError:
            continue
    return image_grid(np.stack(tiles)) if tiles else None


def inspect_folder(
    root: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    size: int = 64,
) -> dict:
    """Count, measure and sample a data folder; write a bar chart, sample grids and inspect.json to `out_dir`.

    out_dir defaults to `root/_inspect`. Folders without real and fake classes are inspected as real-only.
    size: the model input side the data is meant for; images under half of it are flagged.
    """
    root = Path(root)
    try:
        index = index_folder(root, seed=seed)
    except LabError as error:
        if "no real-vs-fake layout" not in str(error):
            raise
        index = index_folder(root, real_only=True, seed=seed)
    out_dir = Path(out_dir) if out_dir is not None else root / INSPECT_FOLDER

    counts: dict[str, dict[str, int]] = {}
    by_class: dict[str, list[str]] = {name: [] for name in CLASS_NAMES}
    for name, split in index.splits.items():
        counts[name] = split.counts()
        for path, label in zip(split.paths, np.asarray(split.labels)):
            by_class[CLASS_NAMES[int(label)]].append(path)
    counts["total"] = {name: len(paths) for name, paths in by_class.items()}
    all_paths = by_class["real"] + by_class["fake"]
    sizes, modes, formats, unreadable, small = _read_headers(all_paths, max(1, size // 2), progress)

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_bytes(out_dir / "counts.png", _bar_chart(counts, f"{index.root.name} ({index.layout})"))]
    for class_name, paths in by_class.items():
        grid = _sample_grid(paths, seed) if paths else None
        if grid is not None:
            written.append(save_png(out_dir / f"samples_{class_name}.png", grid))
    result = {
        "root": str(index.root),
        "layout": index.layout,
        "split_from_folders": index.layout == "140k",
        "counts": counts,
        "sizes": dict(sizes.most_common()),
        "modes": dict(modes.most_common()),
        "formats": dict(formats.most_common()),
        "unreadable": list(unreadable),
        "unreadable_reasons": unreadable,
        "too_small": small,
        "model_size": size,
        "imbalance": _imbalance(counts) if index.layout != "real_only" else [],
        "out_dir": str(out_dir),
        "files": [str(path) for path in written],
    }
    written.append(write_json(out_dir / "inspect.json", result))
    result["files"] = [str(path) for path in written]
    return result


def format_inspection(result: dict) -> str:
    """The inspection as a short plain-text report."""
    lines = [f"{result['root']}  (layout: {result['layout']})"]
    source = "from folders" if result["split_from_folders"] else "seeded split (seed decides which files)"
    lines.append(f"  {'split':<8}{'real':>9}{'fake':>9}    [{source}]")
    for name, by_class in result["counts"].items():
        lines.append(f"  {name:<8}{by_class.get('real', 0):>9}{by_class.get('fake', 0):>9}")
    top_sizes = list(result["sizes"].items())[:5]
    more = len(result["sizes"]) - len(top_sizes)
    lines.append(
        "  sizes:   "
        + ", ".join(f"{size} ({count})" for size, count in top_sizes)
        + (f", +{more} more" if more > 0 else "")
    )
    lines.append("  modes:   " + ", ".join(f"{mode} ({count})" for mode, count in result["modes"].items()))
    lines.append("  formats: " + ", ".join(f"{name} ({count})" for name, count in result["formats"].items()))
    if result["unreadable"]:
        lines.append(f"  unreadable or damaged: {len(result['unreadable'])} file(s), skipped in training:")
        reasons = result.get("unreadable_reasons", {})
        lines.extend(f"    {path}: {reasons.get(path, 'unreadable')}" for path in result["unreadable"])
    if result.get("too_small"):
        lines.append(
            f"  far smaller than the {result['model_size']} px model input: {len(result['too_small'])} image(s), "
            "upscaled in training:"
        )
        lines.extend(f"    {entry}" for entry in result["too_small"])
    for note in result["imbalance"]:
        lines.append(f"  class imbalance: {note}")
    if not result["imbalance"] and result["layout"] != "real_only":
        lines.append(f"  class balance: ok (real and fake within {IMBALANCE_RATIO}x in every split)")
    lines.append(f"Wrote {len(result['files'])} files to {result['out_dir']}:")
    lines.extend(f"  {path}" for path in result["files"])
    return "\n".join(lines)

"""Numbered run directories, atomic writes and run configs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from detector.errors import LabError

RUN_KINDS = ("detector", "gan", "stress", "quickstart")
_RUN_NAME = re.compile(r"^(\d{5})-([a-z]+)(?:-(.*))?$")


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-.")
    return slug[:60] or "run"


def create_run_dir(kind: str, name: str = "", runs_dir: str | os.PathLike = "runs") -> Path:
    """Create `runs_dir/NNNNN-<kind>-<name>/` with the next free number and return it."""
    if kind not in RUN_KINDS:
        raise ValueError(f"kind must be one of {RUN_KINDS}. Received: kind={kind!r}")
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-{_slug(name)}" if name else ""
    while True:
        numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _RUN_NAME.match(p.name))]
        run_dir = runs_dir / f"{max(numbers, default=0) + 1:05d}-{kind}{suffix}"
        try:
            run_dir.mkdir()  # fails if a concurrent run took the number: try the next
        except FileExistsError:
            continue
        for sub in ("checkpoints", "plots"):
            (run_dir / sub).mkdir()
        return run_dir


def list_runs(runs_dir: str | os.PathLike = "runs", kind: str | None = None) -> list[Path]:
    """Run directories under `runs_dir`, oldest first, optionally of one kind."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = []
    for path in sorted(runs_dir.iterdir()):
        match = _RUN_NAME.match(path.name)
        if match and path.is_dir() and (kind is None or match.group(2) == kind):
            runs.append(path)
    return runs


def require_run_dir(run_dir: str | os.PathLike, kind: str | None = None) -> Path:
    """Check that `run_dir` is a run directory (of `kind`) with a config.json."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LabError(f"Run directory not found: {run_dir}")
    if not (run_dir / "config.json").is_file():
        raise LabError(f"{run_dir} is not a run directory: it has no config.json")
    if kind is not None:
        match = _RUN_NAME.match(run_dir.name)
        if match and match.group(2) != kind:
            raise LabError(f"{run_dir} is a {match.group(2)} run, not a {kind} run")
    return run_dir


def _temporary_sibling(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):  # numpy array
        return value.tolist()
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write `obj` (dicts, lists, dataclasses, numpy values) as indented JSON."""
    return atomic_write_text(path, json.dumps(_to_jsonable(obj), indent=2, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise LabError(f"File not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise LabError(f"{path} is not valid JSON: {error}") from None


def config_from_dict(cls: type, values: dict) -> Any:
    """Build the dataclass `cls` from a dict, ignoring keys it does not know."""
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in values.items() if key in names})


def atomic_save_model(model, path: str | os.PathLike) -> Path:
    """Save a Keras model as `.keras` so that an interrupted save never leaves a broken file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Model files end in .keras. Received: path={path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path, suffix=".keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_history(path: str | os.PathLike) -> list[dict]:
    """The rows of a history.csv as dicts: "epoch" an int, every other column a float (nan if empty).

    A missing file is an empty history: a run interrupted before its first epoch has none.
    """
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "epoch" not in reader.fieldnames:
            raise LabError(f"{path} is not a training history: it has no 'epoch' column")
        rows = []
        for row in reader:
            try:
                epoch = int(row["epoch"])
            except (TypeError, ValueError):
                raise LabError(f"{path}: row {len(rows) + 2} has epoch={row['epoch']!r}, not an integer") from None
            rows.append({"epoch": epoch, **{key: _number(value) for key, value in row.items() if key != "epoch"}})
    return rows


def write_history(path: str | os.PathLike, rows: list[dict], columns: tuple = ("epoch",)) -> Path:
    """Write history rows as CSV, atomically: `columns` first (those present), then any other key sorted."""
    names = [column for column in columns if any(column in row for row in rows)]
    names += sorted({key for row in rows for key in row} - set(names))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (int(value) if key == "epoch" else repr(float(value))) for key, value in row.items()})
    return atomic_write_text(path, buffer.getvalue())

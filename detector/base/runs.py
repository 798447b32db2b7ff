"""Numbered run directories, atomic writes and run configs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from detector.base.errors import LabError
from detector.base.failpoints import failpoint

RUN_KINDS = ("detector", "gan", "stress", "arena", "quickstart")
_RUN_NAME = re.compile(r"^(\d{5})-([a-z]+)(?:-(.*))?$")


def is_number(value) -> bool:
    """A finite int or float that is not a bool (as a recorded figure must be to be shown or used)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


def make_folder(path: str | os.PathLike, option: str = "") -> Path:
    """Create `path` (and its parents); LabError naming it and the reason when that is not possible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LabError(f"Cannot create the folder {option + ' ' if option else ''}{path}: {error.strerror}") from None
    return path


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_sibling(path: Path, suffix: str = "") -> Path:
    """A new hidden file beside `path`, named `.<stem>.<random>.tmp<suffix>` (what `remove_stale` removes)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    # mkstemp makes owner-only files; a run's files follow the umask like any other file the user writes.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


def _sync_to_disk(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk: a rename survives a power cut only after both."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():  # some file systems cannot sync a folder; a file that will not sync is an error
            raise
    finally:
        os.close(fd)


def _replace_durably(tmp: Path, path: Path) -> None:
    """Sync `tmp`, then rename it over `path`: after a power cut `path` holds the old bytes or the new, never a hole.

    The folder is not synced here (a folder sync per image made writing PNGs about 40% slower); `commit_epoch`
    syncs its folders once per epoch, which is where a rename must not be lost.
    """
    _sync_to_disk(tmp)
    failpoint("atomic-write")
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        tmp.write_bytes(data)
        _replace_durably(tmp, path)
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
        _replace_durably(tmp, path)
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

    A missing or empty file is an empty history: a run interrupted before its first epoch has none.
    """
    path = Path(path)
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
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
    # Without rows, the header alone: the file still reads back as a (empty) history.
    names = [column for column in columns if not rows or any(column in row for row in rows)]
    names += sorted({key for row in rows for key in row} - set(names))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (int(value) if key == "epoch" else repr(float(value))) for key, value in row.items()})
    return atomic_write_text(path, buffer.getvalue())


# --------------------------------------------------------------------------- epoch commits

_EPOCH_FOLDER = re.compile(r"^epoch-(\d{4,})$")
# What `_temporary_sibling` and `commit_epoch` leave when interrupted: `.<stem>.<random>.tmp[.suffix]`
# and `.epoch-NNNN.<random>.partial`; nothing a user names would look like that.
_STALE_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$|^\.epoch-\d{4,}\.[A-Za-z0-9_]{8}\.partial$")
EPOCH_STATE = "state.json"
EPOCH_HISTORY = "history.csv"


def commit_epoch(run_dir: str | os.PathLike, epoch: int, write_files, state: dict, rows: list[dict], columns) -> Path:
    """Make an epoch's state visible in one step: checkpoints/epoch-NNNN/ appears complete or not at all.

    write_files(folder) writes the models into a hidden folder; history.csv (every row up to
    this epoch) and state.json follow, and one rename publishes the lot. A crash at any
    point leaves the previous epoch as the run's last, plus a hidden folder `remove_stale`
    clears.
    """
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"epoch-{epoch:04d}"
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=folder))
    partial.chmod(0o777 & ~_umask())
    try:
        write_files(partial)
        failpoint("epoch-files-written")
        write_history(partial / EPOCH_HISTORY, rows, columns)
        write_json(partial / EPOCH_STATE, state)
        for path in (*sorted(partial.rglob("*")), partial):
            _sync_to_disk(path)
        failpoint("epoch-before-commit")
        if target.exists():  # an epoch beyond the last complete one, left by an earlier attempt
            shutil.rmtree(target)
        os.replace(partial, target)
        _sync_to_disk(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    failpoint("epoch-committed")
    return target


def committed_epochs(run_dir: str | os.PathLike, required: tuple[str, ...] = (EPOCH_STATE,)) -> dict[int, Path]:
    """The run's committed epochs, epoch -> checkpoints/epoch-NNNN folder, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _EPOCH_FOLDER.match(path.name)
        if match and path.is_dir() and all((path / name).is_file() for name in required):
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def remove_stale(run_dir: str | os.PathLike, completed: int) -> list[Path]:
    """Remove what an interrupted run left: hidden temporary files and folders, and epochs after `completed`."""
    run_dir = Path(run_dir)
    removed = []
    for path in sorted(run_dir.rglob(".*")):
        if _STALE_NAME.match(path.name):
            removed.append(path)
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir():
        for path in checkpoints.iterdir():
            match = _EPOCH_FOLDER.match(path.name)
            if match and int(match.group(1)) > completed:
                removed.append(path)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


def publish_history(run_dir: str | os.PathLike, epoch_folder: Path | None, columns) -> Path:
    """history.csv of the run: the committed epoch's copy (the header alone before the first epoch)."""
    rows = read_history(epoch_folder / EPOCH_HISTORY) if epoch_folder is not None else []
    path = Path(run_dir) / EPOCH_HISTORY
    if not path.is_file() or read_history(path) != rows:  # a finished run resumed again is left untouched
        write_history(path, rows, columns)
    failpoint("history-published")
    return path


def publish_file(source: Path, target: Path) -> Path:
    """Put a committed file at `target` in one step (a hard link where the file system allows, else a copy)."""
    if target.is_file() and (os.path.samefile(source, target) or target.read_bytes() == source.read_bytes()):
        return target
    tmp = _temporary_sibling(target, suffix=target.suffix)
    tmp.unlink()
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        _replace_durably(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target

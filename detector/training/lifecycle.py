"""The life of a training run, the same for detector and GAN runs: check the options, start, resume.

    config = check_options(config)                      # each kind's own checks, with `refuse`
    config, source = resolve_data(config, runs_dir)      # "synth" -> a rendered SynthFaces folder
    run_dir = start_run_dir("gan", config, extra)        # runs/NNNNN-gan-<name>/config.json
    config = resume_config(run_dir, recorded, given)     # the run's options, refusing contradictions

A run directory is created only after the options, the data and the models have been
checked, so a bad option leaves nothing behind. A process trains a run only while it holds
the run's lock (`claim_run`, inside `run_claims`): a second process resuming a run that is
still training is refused before it touches a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import IO, Any, NoReturn

try:
    import fcntl
except ImportError:  # Windows: runs are not locked
    fcntl = None

from detector.base.errors import LabError
from detector.base.failpoints import failpoint
from detector.base.runs import create_run_dir, is_number, read_json, require_run_dir, write_json  # noqa: F401 (is_number: lifecycle.is_number)

# Decoded training images are kept in memory when they fit in this.
CACHE_LIMIT_BYTES = 1 << 30
# Options a resumed run takes from the caller: more epochs extend a finished run.
RESUME_CHANGEABLE = ("epochs",)
# In a run directory: the file a training process locks (the system drops the lock when it exits).
LOCK_FILE = ".lock"


def is_int(value) -> bool:
    """An int that is not a bool (True is an int to Python, never an epoch count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def refuse(config, option: str, expected: str) -> NoReturn:
    """Raise the one error every bad option gets: its name, what it must be, what it was."""
    raise LabError(f"{option} must be {expected}. Received: {option}={getattr(config, option)!r}")


def require_positive(config, *options: str) -> None:
    for option in options:
        if not is_int(getattr(config, option)) or getattr(config, option) < 1:
            refuse(config, option, "a positive integer")


def require_seed(config) -> None:
    if not is_int(config.seed) or config.seed < 0:
        refuse(config, "seed", "a non-negative integer")


def require_choice(config, option: str, choices) -> None:
    if getattr(config, option) not in choices:
        refuse(config, option, f"one of {tuple(choices)}")


def require_steps(config) -> None:
    if config.steps_per_epoch is not None and (not is_int(config.steps_per_epoch) or config.steps_per_epoch < 1):
        refuse(config, "steps_per_epoch", "None or a positive integer")


def fits_in_memory(images: int, size: int) -> bool:
    """Whether `images` decoded float32 RGB images of `size` px fit in CACHE_LIMIT_BYTES."""
    return images * size * size * 3 * 4 <= CACHE_LIMIT_BYTES


def say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def resolve_data(config, runs_dir) -> tuple[Any, str]:
    """(config with `data` an absolute folder, the data as given); "synth" renders SynthFaces under runs_dir."""
    from detector.data.synthfaces import resolve_data as resolve

    try:
        data = resolve(
            config.data,
            runs_dir,
            size=config.size,
            n=config.synth_n,
            seed=config.seed,
            difficulty=config.synth_difficulty,
        )
    except LabError:
        raise
    except ValueError as error:  # SynthFaces renders 32 to 256 px only
        raise LabError(f"Cannot make SynthFaces for this run: {error}") from None
    return dataclasses.replace(config, data=os.fspath(Path(data).resolve())), os.fspath(config.data)


# The runs claimed in each open `run_claims` block, innermost last: lock file -> its open, locked handle.
_claims: list[dict[Path, IO]] = []


@contextlib.contextmanager
def run_claims():
    """The block in which a process trains: every run claimed inside it is released when it ends."""
    held: dict[Path, IO] = {}
    _claims.append(held)
    try:
        yield
    finally:
        _claims.remove(held)
        for handle in held.values():
            handle.close()  # closing the file drops its lock


def claim_run(run_dir: Path) -> None:
    """Lock `run_dir` until the innermost `run_claims` block ends; LabError if a training holds it already."""
    if not _claims:
        raise RuntimeError("claim_run() is only called inside a run_claims() block")
    if fcntl is None:
        return
    lock = Path(run_dir) / LOCK_FILE
    try:
        handle = open(lock, "a")
    except OSError:  # a read-only run: nothing here can write it either, so there is nothing to guard
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held per open file: a second call here fails too
    except BlockingIOError:
        handle.close()
        raise LabError(
            f"{run_dir} is being trained elsewhere (its {LOCK_FILE} is locked by a running training); "
            "let that finish or stop it, then resume"
        ) from None
    except OSError:  # a file system without locks
        handle.close()
        return
    _claims[-1][lock] = handle


def is_being_trained(run_dir: Path) -> bool:
    """Whether a running training holds `run_dir`'s lock (read-only: the run is not touched)."""
    if fcntl is None:
        return False
    try:
        handle = open(Path(run_dir) / LOCK_FILE)
    except OSError:  # no lock file: never trained here, or a read-only copy
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # a file system without locks
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def start_run_dir(kind: str, config, runs_dir, extra: dict) -> Path:
    """Create the run directory, claim it and write config.json: every option resolved, then `extra` facts."""
    run_dir = create_run_dir(kind, config.name, runs_dir)
    claim_run(run_dir)
    write_json(run_dir / "config.json", {**dataclasses.asdict(config), **extra})
    failpoint("config-written")
    return run_dir


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what is committed is kept, and `run_dir` says where to resume from."""

    def __init__(self, run_dir: Path):
        super().__init__(f"interrupted; completed epochs are saved in {run_dir}")
        self.run_dir = Path(run_dir)


@contextlib.contextmanager
def interruptible(run_dir: Path):
    """Turn Ctrl-C inside the block into RunInterrupted naming the run (the outermost run, when nested)."""
    try:
        yield
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir) from None


def recorded_config(run_dir, kind: str, config_class: type) -> tuple[Path, Any, dict]:
    """(run_dir, the run's config as `config_class`, config.json as a dict) of an existing run."""
    run_dir = require_run_dir(run_dir, kind)
    record = read_json(run_dir / "config.json")
    names = {field.name for field in dataclasses.fields(config_class)}
    # An option the run's version did not have takes the value that version behaved as, not today's default.
    values = {**getattr(config_class, "ABSENT", {}), **record}
    return run_dir, config_class(**{key: value for key, value in values.items() if key in names}), record


def _agrees(name: str, given, recorded, record: dict) -> bool:
    if given == recorded or given is None or given == "":  # None and "" mean "as resolved at the start"
        return True
    if isinstance(given, (list, tuple)) and isinstance(recorded, (list, tuple)):
        return list(given) == list(recorded)
    if name == "data":
        return given == record.get("data_source") or Path(given).resolve() == Path(recorded).resolve()
    if name == "precision" and given == "auto":  # what the run resolved it to when it started
        return True
    return False


def resume_config(run_dir: Path, recorded, record: dict, given=None, changeable=RESUME_CHANGEABLE):
    """The run's own config with the `changeable` options of `given`; LabError listing every option that contradicts it.

    `given` is checked as resolved as `recorded` was. The command line hands in the run's own
    config with the user's options on top, so each difference is an option the user gave.
    """
    if given is None:
        return recorded
    contradictions = [
        f"{field.name}={getattr(given, field.name)!r} (the run has {getattr(recorded, field.name)!r})"
        for field in dataclasses.fields(recorded)
        if field.name not in changeable
        # An option newer than the run, left at its default, says nothing about the run.
        and not (field.name not in record and getattr(given, field.name) == field.default)
        and not _agrees(field.name, getattr(given, field.name), getattr(recorded, field.name), record)
    ]
    if contradictions:
        raise LabError(
            f"Cannot resume {run_dir} with options it was not trained with: {', '.join(contradictions)}. "
            + (f"Only {', '.join(changeable)} may change; " if changeable else "")
            + "start a new run for the others"
        )
    return dataclasses.replace(recorded, **{name: getattr(given, name) for name in changeable})


def update_recorded(run_dir: Path, record: dict, config, changeable) -> None:
    """Rewrite config.json when a resumed run changed `changeable` options (a new total of epochs, say)."""

    def as_json(value):
        return list(value) if isinstance(value, tuple) else value

    updated = {**record, **{name: as_json(getattr(config, name)) for name in changeable}}
    if updated != record:
        write_json(run_dir / "config.json", updated)


def require_data_here(run_dir: Path, config) -> None:
    if not Path(config.data).is_dir():
        raise LabError(f"Cannot resume {run_dir}: its data folder {config.data} is not on this machine")

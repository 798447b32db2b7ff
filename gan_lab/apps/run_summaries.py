"""What the browser lab says of a run at a glance: its kind, whether it is finished, and its headline figure.

Read from the run's own files only (config.json, metrics.json, history.csv, results.json,
checkpoints/, the training lock), so a run that is still training shows its latest epoch.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from detector.base.errors import LabError
from detector.base.runs import RUN_KINDS, list_runs, read_history, read_json
from detector.training.lifecycle import is_being_trained
from gan_lab.gan.checkpoints import list_checkpoints
from gan_lab.gan.report import best_faces_epoch

FINISHED, TRAINING, INTERRUPTED = "finished", "training", "interrupted"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    name: str
    kind: str
    path: Path
    status: str  # FINISHED, TRAINING or INTERRUPTED (resumable for detector, GAN, arena and quickstart runs)
    headline: str  # one line: the figure a reader wants first
    imported: bool = False


def read_record(path: Path) -> dict | list | None:
    """A run's JSON file, or None when it is missing or unreadable (a page shows what there is)."""
    try:
        return read_json(path) if path.is_file() else None
    except LabError:
        return None


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _interval(row: dict, key: str) -> str:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return f"{_percent(row.get(key))} [{_percent(low)}, {_percent(high)}]"
    return _percent(row.get(key))


def _unfinished(path: Path) -> str:
    return TRAINING if is_being_trained(path) else INTERRUPTED


def _detector(path: Path, config: dict) -> tuple[str, str]:
    metrics = read_record(path / "metrics.json") or {}
    if "accuracy" not in metrics:
        status = FINISHED if "imported" in config else _unfinished(path)
        return status, "not evaluated yet" if "imported" not in config else "imported, not evaluated"
    accuracy, ap = metrics.get("accuracy"), metrics.get("average_precision")
    figures = f"test accuracy {accuracy:.3f}" if isinstance(accuracy, (int, float)) else "test accuracy –"
    if isinstance(ap, (int, float)):
        figures += f", AP {ap:.3f}"
    return FINISHED, figures


def _gan(path: Path, config: dict) -> tuple[str, str]:
    try:
        rows = read_history(path / "history.csv")
    except (LabError, OSError):
        rows = []
    epochs = sorted(list_checkpoints(path))
    wanted = config.get("epochs")
    status = FINISHED if epochs and isinstance(wanted, int) and epochs[-1] >= wanted else _unfinished(path)
    if not rows:
        return status, "no epoch finished yet"
    last, best = rows[-1], best_faces_epoch(rows)
    text = f"epoch {last['epoch']}"
    if best is not None:
        text += f": faces found {_percent(last.get('faces_found'))} (best {_percent(best['faces_found'])} at epoch {best['epoch']})"
    return status, text


def _stress(path: Path, config: dict) -> tuple[str, str]:
    results = read_record(path / "results.json")
    if not isinstance(results, list) or not (path / "report.md").is_file():
        return INTERRUPTED, "no results (the run stopped before its report)"
    epochs = [row for row in results if row.get("kind") == "epoch" and row.get("detector") == "original"]
    if not epochs:
        return FINISHED, "no epoch rows"
    last = epochs[-1]
    return FINISHED, f"fakes caught at epoch {last['epoch']}: {_interval(last, 'detection_rate')}"


def _arena(path: Path, config: dict) -> tuple[str, str]:
    evasion = read_record(path / "evasion.json")
    if not isinstance(evasion, dict) or not (path / "report.md").is_file():
        return _unfinished(path), "no results yet (resumable: gan-lab arena --resume RUN_DIR)"

    def reading(result) -> str:
        result = result if isinstance(result, dict) else {}
        if not result.get("evaded"):
            return f"held {result.get('last_kimg', 0):.2f} kimg"
        return f"evaded at {result['kimg']:.2f} kimg"

    headline = (
        f"against the detector: {reading(evasion.get('arena'))}; plain continuation: {reading(evasion.get('plain'))}"
    )
    rounds = evasion.get("rounds") or []
    if len(rounds) > 1 and isinstance(rounds[-1], dict):
        headline += f"; hardened, round {rounds[-1].get('round')}: {reading(rounds[-1].get('arena'))}"
    return FINISHED, headline


def _quickstart(path: Path, config: dict) -> tuple[str, str]:
    if (path / "report.md").is_file():
        return FINISHED, "report.md links its detector, GAN and stress runs"
    state = read_record(path / "state.json") or {}
    done = [step for step in ("detector", "gan", "stress") if state.get(f"{step}_complete")]
    return INTERRUPTED, f"steps done: {', '.join(done) or 'none'} (resumable)"


_SUMMARISE = {"detector": _detector, "gan": _gan, "stress": _stress, "arena": _arena, "quickstart": _quickstart}


def summarise(path: Path, kind: str) -> RunSummary:
    config = read_record(path / "config.json")
    config = config if isinstance(config, dict) else {}
    status, headline = _SUMMARISE[kind](path, config)
    return RunSummary(path.name, kind, path, status, headline, imported="imported" in config)


def run_kind(path: Path) -> str | None:
    """The kind in a run directory's name (`NNNNN-<kind>-...`), or None."""
    parts = path.name.split("-")
    return parts[1] if len(parts) > 1 and parts[0].isdigit() and parts[1] in RUN_KINDS else None


def all_runs(runs_dir: Path) -> dict[str, list[RunSummary]]:
    """Every run under runs_dir by kind, newest first."""
    return {kind: [summarise(path, kind) for path in reversed(list_runs(runs_dir, kind))] for kind in RUN_KINDS}

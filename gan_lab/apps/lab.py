"""The lab in a browser: every run under the runs folder, its pictures and verdicts, and two runs side by side.

    /lab                          the index: every run by kind, newest first, its status and headline
    /lab/runs/<run>/              a run's page (detector, GAN, stress or quickstart)
    /lab/runs/<run>/<file>        a picture or record of the run (PNG, GIF, JPEG, CSV, JSON, Markdown)
    /lab/compare?a=<run>&b=<run>  two runs of one kind side by side (two stress runs: one plot)

Only runs listed under the runs folder are served, and only files inside them: any other
name is a 404. Reports are rendered with their raw HTML escaped and only relative or http(s)
links kept, and every lab page forbids scripts (Content-Security-Policy).
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory
from markupsafe import Markup

from detector.base.errors import LabError
from detector.base.runs import list_runs, read_history
from gan_lab.apps.run_summaries import all_runs, read_record, run_kind, summarise

RUNS_DIR_KEY = "gan_lab_runs_dir"
# What a run's files may be served as; anything else is a 404.
FILE_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/plain",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The per-epoch figures two stress runs are drawn against each other in.
COMPARED_FIGURES = (("detection_rate", "fakes caught"), ("reals_called_fake", "reals called fake"))

lab = Blueprint("lab", __name__, url_prefix="/lab")


@lab.after_request
def _no_scripts(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _runs_dir() -> Path:
    return Path(current_app.config[RUNS_DIR_KEY])


def _run(name: str) -> Path:
    """The run directory called `name` under the runs folder, else 404 (no other path is ever served)."""
    for path in list_runs(_runs_dir()):
        if path.name == name:
            return path
    abort(404)


def _page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


# --------------------------------------------------------------------------- reports


_LINK = re.compile(r'(href|src)="([^"]*)"')
_SIBLING_REPORT = re.compile(r"^\.\./([^/]+)/report\.md$")


def _safe_link(match: re.Match) -> str:
    attribute, target = match.group(1), html.unescape(match.group(2))
    sibling = _SIBLING_REPORT.match(target)
    if sibling:  # another run's report: its page
        target = f"../{sibling.group(1)}/"
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", target)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        target = "#"
    return f'{attribute}="{html.escape(target, quote=True)}"'


def render_report(text: str) -> Markup:
    """A run's report.md as HTML: raw HTML in it escaped, links kept only when relative or http(s)."""
    import markdown

    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    rendered = markdown.markdown(escaped, extensions=["tables"], output_format="html")
    return Markup(_LINK.sub(_safe_link, rendered))


def _report(path: Path) -> Markup | None:
    report = path / "report.md"
    if not report.is_file():
        return None
    return render_report(report.read_text(encoding="utf-8", errors="replace"))


# --------------------------------------------------------------------------- pages


@lab.get("/")
def index():
    runs = all_runs(_runs_dir())
    return _page("lab_index.html", runs=runs, runs_dir=str(_runs_dir()))


def _pictures(path: Path, folder: str) -> list[str]:
    where = path / folder
    if not where.is_dir():
        return []
    return [f"{folder}/{picture.name}" for picture in sorted(where.iterdir()) if picture.suffix == ".png"]


def _detector_context(path: Path) -> dict:
    metrics = read_record(path / "metrics.json")
    metrics = metrics if isinstance(metrics, dict) else {}
    rows = []
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "ece", "threshold"):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            low, high = metrics.get(f"{key}_low"), metrics.get(f"{key}_high")
            interval = (
                f"[{low:.3f}, {high:.3f}]" if isinstance(low, (int, float)) and isinstance(high, (int, float)) else ""
            )
            rows.append((key, f"{value:.3f}", interval))
    return {"metric_rows": rows, "pictures": _pictures(path, "plots")}


def _gan_context(path: Path) -> dict:
    samples = sorted((path / "samples").glob("epoch-*.png")) if (path / "samples").is_dir() else []
    epochs = [int(sample.stem.split("-")[-1]) for sample in samples]
    asked = request.args.get("epoch", type=int)
    shown = asked if asked in epochs else (epochs[-1] if epochs else None)
    try:
        rows = read_history(path / "history.csv")
    except (LabError, OSError):
        rows = []
    from gan_lab.gan.report import best_faces_epoch

    best = best_faces_epoch(rows)
    extras = [name for name in ("progress.gif", "reals.png", "plots/losses.png") if (path / name).is_file()]
    return {"epochs": epochs, "shown": shown, "best": best, "extras": extras}


def _stress_context(path: Path) -> dict:
    return {"pictures": _pictures(path, "plots")}


_CONTEXTS = {
    "detector": _detector_context,
    "gan": _gan_context,
    "stress": _stress_context,
    "arena": _stress_context,  # its plots and report, as a stress run's
    "quickstart": lambda _: {},
}


@lab.get("/runs/<run>/")
def run_page(run: str):
    path = _run(run)
    kind = run_kind(path)
    summary = summarise(path, kind)
    others = [other.name for other in reversed(list_runs(_runs_dir(), kind)) if other.name != run]
    return _page("lab_run.html", summary=summary, report=_report(path), others=others, **_CONTEXTS[kind](path))


@lab.get("/runs/<run>/<path:filename>")
def run_file(run: str, filename: str):
    path = _run(run)
    mimetype = FILE_TYPES.get(Path(filename).suffix.lower())
    if mimetype is None:
        abort(404)
    # send_from_directory refuses any path that leaves the run's folder (404).
    return send_from_directory(path, filename, mimetype=mimetype, max_age=0)


# --------------------------------------------------------------------------- two runs


def _png_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _stress_rows(path: Path) -> list[dict]:
    rows = read_record(path / "results.json")
    rows = rows if isinstance(rows, list) else []
    return [row for row in rows if row.get("kind") == "epoch" and row.get("detector") == "original"]


def stress_comparison(paths: list[Path]) -> str:
    """Fakes caught and reals called fake per GAN epoch of two stress runs, with their 95% bands, as a PNG URI."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    axes = figure.subplots(1, len(COMPARED_FIGURES))
    for panel, (key, title) in zip(axes, COMPARED_FIGURES):
        for path in paths:
            rows = _stress_rows(path)
            epochs = [row["epoch"] for row in rows]
            line = panel.plot(epochs, [row.get(key) for row in rows], marker="o", label=path.name)[0]
            if all(f"{key}_low" in row for row in rows):
                lows = [row[f"{key}_low"] for row in rows]
                highs = [row[f"{key}_high"] for row in rows]
                panel.fill_between(epochs, lows, highs, color=line.get_color(), alpha=0.2)
        panel.set(xlabel="GAN epoch", ylabel="share", title=title, ylim=(0, 1))
        panel.legend(fontsize=7)
    return _png_uri(figure)


def gan_comparison(paths: list[Path]) -> str:
    """Faces found per epoch of two GAN runs, as a PNG URI."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    panel = figure.subplots()
    for path in paths:
        try:
            rows = read_history(path / "history.csv")
        except (LabError, OSError):
            rows = []
        panel.plot(
            [row["epoch"] for row in rows], [row.get("faces_found") for row in rows], marker="o", label=path.name
        )
    panel.set(xlabel="epoch", ylabel="faces found", title="Faces found in fresh EMA samples", ylim=(0, 1))
    panel.legend(fontsize=7)
    return _png_uri(figure)


@lab.get("/compare")
def compare():
    names = [request.args.get("a", ""), request.args.get("b", "")]
    paths = [_run(name) for name in names]
    kinds = {run_kind(path) for path in paths}
    if len(kinds) != 1:
        message = f"{names[0]} and {names[1]} are runs of different kinds; compare two of one kind."
        return _page("error.html", 400, title="Not comparable", message=message)
    kind = kinds.pop()
    plot = {"stress": stress_comparison, "gan": gan_comparison}.get(kind)
    columns = [{"summary": summarise(path, kind), **_CONTEXTS[kind](path)} for path in paths]
    return _page("lab_compare.html", kind=kind, columns=columns, plot=plot(paths) if plot else None)

"""A small web page that classifies an uploaded face with a detector run and shows its Grad-CAM.

`create_app(run_dir)` returns a Flask app; `gan-lab serve RUN_DIR` runs it. The face in the
photo is found (MTCNN by default, `detector.data.faces`) and its crop classified, as `detector
predict --faces` and the video tool do; with no face found the whole photo is. Uploads are
decoded from memory and never written to disk; answers carry images as data URIs.

Limits, so that hostile uploads cannot take the server down: an upload is at most `max_upload_mb`
of file, only READ_FORMATS are decoded, and its decoded pixels may take at most `max_decode_mb`
(checked from the header before decoding); at most `max_concurrent` uploads are decoded and
classified at once, the rest wait SLOT_WAIT_SECONDS for a turn and then get 503. Switching the run
(POST /runs changes the page for every user) is only accepted from this site's own pages.
"""

from __future__ import annotations

import base64
import ctypes
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from PIL import Image
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.utils import secure_filename

from detector.base.errors import LabError
from detector.base.runs import list_runs, read_json, require_run_dir
from detector.data.faces import DEFAULT_MARGIN, FACE_FINDERS, PHOTO_FACE_FINDER
from detector.data.images import READ_FORMATS, decoded_bytes, open_rgb
from detector.training.lifecycle import is_number
from gan_lab.apps.lab import RUNS_DIR_KEY, lab

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc")
UPLOAD_FIELD = "file"
# The uploaded photo is shown scaled down to this many pixels on its longer side.
DISPLAY_SIDE = 384
MB = 1024 * 1024
# A few MB of PNG can hold a billion pixels. The memory an upload's decoded pixels may take, counted
# from its header as width x height x the bytes per pixel of its mode, or of the RGB every upload
# becomes (RGB_BYTES) when that is more; JPEGs over it are decoded at 1/2, 1/4 or 1/8 scale if that fits.
# 16 MB is 5.6 megapixels of RGB (2736x2048), plenty for a face the model sees at 32 to 256 px;
# photos from cameras are JPEGs, decoded smaller. Converting and classifying costs several times
# the decoded size (MTCNN the most, about 15 bytes a pixel): at 16 MB, eight of the worst uploads
# at once grow the server by about 300 MB (with `limit_allocator_arenas`; tests/gan_lab/apps/test_web_load.py).
MAX_DECODE_MB = 16
RGB_BYTES = 3
# How many uploads are decoded and classified at once (the model and face finder still take one at a
# time), and how long the others wait for a turn before they get a 503 rather than pile up in memory.
MAX_CONCURRENT = 2
SLOT_WAIT_SECONDS = 10
RETRY_AFTER_SECONDS = 5
# Where create_app keeps the app's state, for the views to find through current_app.
REGISTRY_KEY = "gan_lab_detectors"
WORKERS_KEY = "gan_lab_upload_workers"
MAX_UPLOAD_KEY = "GAN_LAB_MAX_UPLOAD_MB"
MAX_DECODE_KEY = "GAN_LAB_MAX_DECODE_MB"
FACES_FIELD = "faces"
# The box of the face that was classified, drawn on the upload as shown (RGB).
FACE_BOX_COLOUR = (0, 230, 90)


class _InMemoryRequest(Flask.request_class):
    """Keep uploaded files in memory (bounded by MAX_CONTENT_LENGTH), never in a temporary file."""

    def _get_file_stream(self, *args, **kwargs):
        return io.BytesIO()


class DetectorRegistry:
    """The detector runs the page can use, loaded on first use and kept loaded."""

    def __init__(
        self, run_dir: str | os.PathLike | None, runs_dir: str | os.PathLike, faces: str | None, margin: float
    ):
        self.runs_dir = Path(runs_dir)
        if run_dir is None:  # the newest detector run under runs_dir, if there is one
            newest = list_runs(self.runs_dir, "detector")[-1:]
            run_dir = newest[0] if newest else None
        self.initial = None if run_dir is None else require_run_dir(run_dir, "detector").resolve()
        self.current = None if self.initial is None else self.initial.name
        self.faces = faces
        self.margin = margin
        self._loaded: dict[Path, object] = {}
        self._finders: dict[str, object] = {}
        # Keras models are shared by the server's threads: load and predict one request at a time.
        self.lock = threading.Lock()

    def runs(self) -> dict[str, Path]:
        """Run name -> run directory for every detector run under runs_dir, plus the initial one."""
        runs = {path.name: path.resolve() for path in list_runs(self.runs_dir, "detector")}
        if self.initial is not None:
            runs[self.initial.name] = self.initial
        return dict(sorted(runs.items()))

    def path(self, name: str) -> Path:
        runs = self.runs()
        if name not in runs:
            raise LabError(f"No detector run named {name!r} under {self.runs_dir}")
        return runs[name]

    def select(self, name: str) -> None:
        require_run_dir(self.path(name), "detector")
        self.current = name

    def is_loaded(self, name: str) -> bool:
        return self.runs().get(name) in self._loaded

    def get(self, name: str | None = None):
        """The loaded detector for run `name` (the selected one by default). Call under `lock`."""
        from detector.inference.predict import load_detector

        if (name or self.current) is None:
            raise LabError(f"No detector run under {self.runs_dir} yet: train or import one (gan-lab detector ...)")
        path = self.path(name or self.current)
        if path not in self._loaded:
            self._loaded[path] = load_detector(path)
        return self._loaded[path]

    def finder(self, name: str | None):
        """The face finder `name` ("haar", "mtcnn"), made on first use and kept; None for none. Call under `lock`."""
        from detector.data.faces import face_finder

        if name is None:
            return None
        if name not in self._finders:
            self._finders[name] = face_finder(name)
        return self._finders[name]


def _data_uri(pixels: np.ndarray) -> str:
    """A uint8 or [0, 1] float RGB array as a PNG data URI."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _display_copy(image: Image.Image, face: dict | None = None) -> Image.Image:
    """The upload scaled down for the page, with the classified face's crop drawn as a box."""
    from PIL import ImageDraw

    shown = image.copy()
    shown.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.Resampling.LANCZOS)
    if face is not None:
        scale = shown.width / image.width
        left, top, width, height = (value * scale for value in face["crop"])
        line = max(2, round(shown.width / 150))
        outline = [left, top, left + width - 1, top + height - 1]
        ImageDraw.Draw(shown).rectangle(outline, outline=FACE_BOX_COLOUR, width=line)
    return shown


def _read_upload() -> tuple[str, bytes]:
    """The uploaded file's sanitised name and bytes, or a LabError for a missing or empty upload."""
    upload = request.files.get(UPLOAD_FIELD)
    if upload is None or not upload.filename:
        raise LabError(f"No file uploaded: send the image in the form field {UPLOAD_FIELD!r}")
    # The name is only ever displayed, never used as a path.
    name = secure_filename(upload.filename) or "upload"
    data = upload.read()
    if not data:
        raise LabError(f"{name} is empty")
    return name, data


def _decode_upload(data: bytes, name: str, max_bytes: int) -> Image.Image:
    """The upload as RGB; refused from its header alone when its decoded pixels would take more than `max_bytes`."""
    try:
        with Image.open(io.BytesIO(data), formats=READ_FORMATS) as header:
            width, height, mode, is_jpeg = header.width, header.height, header.mode, header.format == "JPEG"
            native = decoded_bytes(header)
    except Image.DecompressionBombError:
        raise LabError(f"{name} has more pixels than can be decoded safely. Send a smaller image") from None
    except Exception:  # not an image the lab reads: open_rgb words that error
        return open_rgb(data, name, max_bytes=max_bytes)
    needed = max(native, width * height * RGB_BYTES)
    # The JPEG decoder can skip detail, down to 1/8 of each side: open_rgb picks the scale.
    if needed > max_bytes and not (is_jpeg and needed / 64 <= max_bytes):
        raise LabError(
            f"{name} is {width}x{height} {mode} pixels: {needed / MB:.3g} MB decoded, "
            f"over the limit of {max_bytes / MB:.3g} MB. Send a smaller image"
        )
    # open_rgb counts the file's own mode; scaled so that the RGB image fits max_bytes too.
    return open_rgb(data, name, max_bytes=max_bytes * native // max(1, needed))


# glibc's malloc gives threads arenas of their own and keeps what they free there, so a threaded
# server's memory grows with the threads that ever decoded an image. Two arenas hold it down:
# eight of the worst uploads at once grew the server by 515 MB with glibc's default and by 292 MB
# with two (tests/gan_lab/apps/test_web_load.py, on 2 CPU cores).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number for MALLOC_ARENA_MAX (glibc's malloc.h)


def limit_allocator_arenas(count: int = MALLOC_ARENAS) -> bool:
    """Cap this process's glibc malloc arenas at `count`, as MALLOC_ARENA_MAX does; False where libc is another."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, count))
    except (OSError, AttributeError):
        return False


class ServerBusy(Exception):
    """Every upload worker stayed busy for the wait allowed: answered with 503."""


class UploadWorkers:
    """At most `count` uploads decoded and classified at once, always in the same `count` threads.

    The server runs each request in a thread of its own; were uploads decoded there, the memory
    one frees would stay with the allocator arena of a thread that has ended, and the server
    would grow by far more than the uploads hold at once (eight of the worst uploads at once, as
    whole photos: 590 MB in the request threads, 350 MB in two workers).
    """

    def __init__(self, count: int, wait_seconds: float):
        self.slots = threading.BoundedSemaphore(count)
        self.pool = ThreadPoolExecutor(count, thread_name_prefix="gan-lab-upload")
        self.wait_seconds = wait_seconds

    def run(self, name: str, function, *args):
        """`function(*args)` in a worker once one is free within `wait_seconds`; else ServerBusy naming the upload."""
        if not self.slots.acquire(timeout=self.wait_seconds):
            raise ServerBusy(f"The server is busy with other uploads; {name} was not read. Try again in a moment")
        try:
            return self.pool.submit(function, *args).result()
        finally:
            self.slots.release()


def _cross_site_reason() -> str | None:
    """Why this request may not change state: it does not come from this site (None when it does).

    A same-origin check rather than a CSRF token: browsers send Origin (or Referer) with form posts
    and no other site can forge them, so there is no token to keep, render or expire, and the runs
    page keeps working across server restarts. A request with neither cannot be told from a forged
    one, so it is refused too; curl can send `-H "Origin: http://HOST:PORT"`.
    """
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return "names no Origin or Referer"
    if urlsplit(source).netloc.lower() != request.host.lower():  # an Origin of "null" has no host
        return f"comes from {source}"
    return None


def _load_metrics(run_dir: Path) -> tuple[dict, str | None]:
    """The test metrics of a run, and a note when there are none to show."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}, "not evaluated yet (no metrics.json)"
    try:
        metrics = read_json(path)
    except LabError as error:
        return {}, str(error)
    if not isinstance(metrics, dict):
        return {}, f"{path.name} does not hold a JSON object"
    return metrics, None


def _format_number(value) -> str:
    if is_number(value):
        return f"{value:.3f}"
    return "–"


# The views; create_app registers them on every app it makes, whose state they find through current_app.
pages = Blueprint("web", __name__)


def create_app(
    run_dir: str | os.PathLike | None,
    runs_dir: str | os.PathLike = "runs",
    max_upload_mb: float = 10,
    faces: str | None = None,
    face_margin: float = DEFAULT_MARGIN,
    max_decode_mb: float = MAX_DECODE_MB,
    max_concurrent: int = MAX_CONCURRENT,
    slot_wait_seconds: float = SLOT_WAIT_SECONDS,
) -> Flask:
    """The lab's Flask app: the upload page classifying with `run_dir` until the user picks another run
    (None: the newest detector run under runs_dir), and the lab's pages of every run (`gan_lab.apps.lab`).

    faces: how the face in a photo is found unless a request says otherwise (its form field
    "faces": "mtcnn", "haar" or "none"): "mtcnn", "haar", or None for whole photos. `serve`
    and `gan-lab serve` use "mtcnn" (PHOTO_FACE_FINDER).
    max_decode_mb, max_concurrent, slot_wait_seconds: see MAX_DECODE_MB, MAX_CONCURRENT, SLOT_WAIT_SECONDS.
    """
    for option, value in (("max_upload_mb", max_upload_mb), ("max_decode_mb", max_decode_mb)):
        if not value > 0:
            raise ValueError(f"{option} must be positive. Received: {option}={value!r}")
    if not (isinstance(max_concurrent, int) and max_concurrent >= 1):
        raise ValueError(
            f"max_concurrent must be an integer of at least 1. Received: max_concurrent={max_concurrent!r}"
        )
    if not slot_wait_seconds >= 0:
        raise ValueError(f"slot_wait_seconds must be at least 0. Received: slot_wait_seconds={slot_wait_seconds!r}")
    if faces is not None and faces not in FACE_FINDERS:
        raise ValueError(f"faces must be None or one of {FACE_FINDERS}. Received: faces={faces!r}")
    if not face_margin >= 0:
        raise ValueError(f"face_margin must be at least 0. Received: face_margin={face_margin!r}")
    registry = DetectorRegistry(run_dir, runs_dir, faces, face_margin)
    app = Flask(__name__)
    app.request_class = _InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 1024 * 1024)
    app.config[MAX_UPLOAD_KEY] = max_upload_mb
    app.config[MAX_DECODE_KEY] = max_decode_mb
    app.extensions[REGISTRY_KEY] = registry
    app.extensions[WORKERS_KEY] = UploadWorkers(max_concurrent, slot_wait_seconds)
    app.jinja_env.filters["number"] = _format_number
    app.config[RUNS_DIR_KEY] = os.fspath(runs_dir)
    app.context_processor(page_context)  # every page's template, the lab's too
    app.register_blueprint(pages)
    app.register_blueprint(lab)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _registry() -> DetectorRegistry:
    return current_app.extensions[REGISTRY_KEY]


def page_context() -> dict:
    """What every page's template reads: the run in use, the upload limits, the face finders."""
    registry = _registry()
    return {
        "current_run": registry.current or "none yet",
        "max_upload_mb": current_app.config[MAX_UPLOAD_KEY],
        "max_decode_mb": current_app.config[MAX_DECODE_KEY],
        "read_formats": READ_FORMATS,
        "face_finders": FACE_FINDERS,
        "faces": registry.faces or "none",
    }


def _page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


def _faces_choice(registry: DetectorRegistry) -> str | None:
    """The face finder this request asks for (form field "faces"), else the app's."""
    choice = request.form.get(FACES_FIELD)
    if choice is None or choice == "":
        return registry.faces
    if choice != "none" and choice not in FACE_FINDERS:
        raise LabError(f"{FACES_FIELD} must be one of {', '.join((*FACE_FINDERS, 'none'))}. Received: {choice!r}")
    return None if choice == "none" else choice


def _classify(for_page: bool) -> dict:
    """Score the upload's face (or the whole photo) with the selected run; for the page, also its figures."""
    name, data = _read_upload()
    registry = _registry()
    faces = _faces_choice(registry)
    max_bytes = int(current_app.config[MAX_DECODE_KEY] * MB)
    workers = current_app.extensions[WORKERS_KEY]
    return workers.run(name, _classify_upload, registry, name, data, faces, max_bytes, for_page)


def _classify_upload(
    registry: DetectorRegistry, name: str, data: bytes, faces: str | None, max_bytes: int, for_page: bool
) -> dict:
    from detector.inference.predict import SYNTHFACES_WARNING

    image = _decode_upload(data, name, max_bytes)
    with registry.lock:
        run = registry.current
        detector = registry.get(run)
        finder = registry.finder(faces)
        pixels, found = detector.prepare_photo(image, finder, registry.margin, name=name)
        p_fake = float(detector.score(pixels[np.newaxis])[0])
        result = {
            "file": name,
            "p_fake": p_fake,
            "verdict": detector.verdict(p_fake),
            "threshold": float(detector.threshold),
            "run": run,
            "faces": faces,
            "face": found.get("face"),
            "faces_found": found.get("faces_found"),
            "note": found.get("note"),
            "trained_on_synthfaces": detector.trained_on_synthfaces,
            "warning": SYNTHFACES_WARNING if detector.trained_on_synthfaces else None,
        }
        if not for_page:
            return result
        result.update(_gradcam_overlay(detector, pixels))
    result.update(_page_figures(image, pixels, detector.size, detector.crop, result["face"]))
    return result


def _gradcam_overlay(detector, pixels: np.ndarray) -> dict:
    """Grad-CAM over the model's input; a model Grad-CAM cannot handle gets a note, the verdict stands."""
    from detector.inference.explain import gradcam, gradient_model, overlay

    try:
        model, model_input = gradient_model(detector)
        return {"overlay_uri": _data_uri(overlay(pixels, gradcam(model, model_input(pixels))))}
    except LabError as error:
        return {"gradcam_error": str(error)}


def _page_figures(image: Image.Image, pixels: np.ndarray, size: int, crop: str, face: dict | None) -> dict:
    return {
        "image_uri": _data_uri(np.asarray(_display_copy(image, face))),
        "input_uri": _data_uri(pixels),
        "size": size,
        "crop": crop,
        "original_size": "{}x{}".format(*image.size),
    }


@pages.get("/")
def index():
    return _page("index.html")


@pages.post("/")
def predict_page():
    try:
        result = _classify(for_page=True)
    except LabError as error:
        return _page("index.html", 400, error=str(error))
    except ServerBusy as busy:
        body, status = _page("index.html", 503, error=str(busy))
        return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return _page("index.html", result=result)


@pages.post("/api/predict")
def predict_api():
    try:
        result = _classify(for_page=False)
    except LabError as error:
        return jsonify(error=str(error)), 400
    except ServerBusy as busy:
        return jsonify(error=str(busy)), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return jsonify(result)


def _run_row(registry: DetectorRegistry, name: str, path: Path) -> dict:
    """What the runs page shows of one run: its test metrics (or why there are none), plots and model."""
    metrics, note = _load_metrics(path)
    plots_dir = path / "plots"
    plots = sorted(p.name for p in plots_dir.glob("*.png") if p.is_file()) if plots_dir.is_dir() else []
    try:
        config = read_json(path / "config.json")
    except LabError:
        config = {}
    return {
        "name": name,
        "metrics": metrics,
        "note": note,
        "plots": plots,
        "model": config.get("model", "?"),
        "size": config.get("size", "?"),
        "loaded": registry.is_loaded(name),
    }


@pages.get("/runs")
def runs_page():
    registry = _registry()
    rows = [_run_row(registry, name, path) for name, path in registry.runs().items()]
    return _page("runs.html", runs=rows, metric_names=METRIC_NAMES, runs_dir=str(registry.runs_dir))


@pages.post("/runs")
def select_run():
    registry = _registry()
    reason = _cross_site_reason()
    if reason is not None:
        message = (
            f"Switching the detector for every user is only accepted from this site's own runs page "
            f"(http://{request.host}/runs); this request {reason}."
        )
        return _page("error.html", 403, title="Refused: not from this site", message=message)
    name = request.form.get("run", "")
    if name not in registry.runs():
        message = f"No detector run named {name!r} under {registry.runs_dir}"
        return _page("error.html", 404, title="Unknown run", message=message)
    try:
        registry.select(name)
    except LabError as error:
        return _page("error.html", 400, title="Cannot use that run", message=str(error))
    return redirect(url_for("web.index"), code=303)


@pages.get("/runs/<run>/plots/<path:filename>")
def plot(run: str, filename: str):
    try:
        run_dir = _registry().path(run)
    except LabError:
        abort(404)
    if not filename.lower().endswith(".png"):
        abort(404)
    # send_from_directory refuses any path that leaves the plots folder (404).
    return send_from_directory(run_dir / "plots", filename, mimetype="image/png")


def _too_large(error: RequestEntityTooLarge):
    limit = current_app.config[MAX_UPLOAD_KEY]
    message = f"The upload is larger than the limit of {limit:g} MB; send a smaller image."
    if request.path.startswith("/api/"):
        return jsonify(error=message), 413
    return _page("index.html", 413, error=message)


def _http_error(error: HTTPException):
    if request.path.startswith("/api/"):
        return jsonify(error=error.description), error.code
    return _page("error.html", error.code, title=error.name, message=error.description)


def serve(
    run_dir: str | os.PathLike | None,
    host: str = "127.0.0.1",
    port: int = 5000,
    runs_dir: str | os.PathLike = "runs",
    max_upload_mb: float = 10,
    faces: str | None = PHOTO_FACE_FINDER,
    face_margin: float = DEFAULT_MARGIN,
    max_decode_mb: float = MAX_DECODE_MB,
    max_concurrent: int = MAX_CONCURRENT,
    debug: bool = False,
) -> None:
    """Load the detector and the face finder, then serve the lab until interrupted.

    Waitress serves it (a production WSGI server, pure Python); debug: Flask's development server.
    """
    from detector.inference.predict import SYNTHFACES_WARNING

    limit_allocator_arenas()
    app = create_app(
        run_dir,
        runs_dir=runs_dir,
        max_upload_mb=max_upload_mb,
        faces=faces,
        face_margin=face_margin,
        max_decode_mb=max_decode_mb,
        max_concurrent=max_concurrent,
    )
    registry = app.extensions[REGISTRY_KEY]
    if registry.current is not None:
        with registry.lock:
            detector = registry.get()  # a broken run fails here, before the server starts
            registry.finder(faces)
        if detector.trained_on_synthfaces:
            print(SYNTHFACES_WARNING)
    print(
        f"Serving the lab of {runs_dir} on http://{host}:{port}/lab and the upload page on http://{host}:{port}/ "
        f"(detector: {registry.current or 'none yet'}; Ctrl-C stops)",
        flush=True,
    )
    if debug:
        app.run(host=host, port=port, threaded=True, debug=True, use_reloader=False)
        return
    production_server(app, host, port, max_concurrent).run()


def production_server(app: Flask, host: str, port: int, max_concurrent: int = MAX_CONCURRENT):
    """A waitress server for `app` (port 0: a free one, in `.effective_port`); `.run()` serves until closed.

    Classification stays bounded by the app's own slots (max_concurrent); the extra threads serve pages.
    """
    import waitress

    return waitress.create_server(app, host=host, port=port, threads=max_concurrent + 4, ident="gan-lab")

import base64
import io
import json
import shutil
import tempfile

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.base.runs import read_json, write_json
from detector.data.images import save_png
from gan_lab.apps.web import create_app

ANSWER_FACE_FIELDS = {"faces", "face", "faces_found", "note", "trained_on_synthfaces", "warning"}
# What a browser sends with a form on the page itself (the test client's host is localhost).
SAME_ORIGIN = {"Origin": "http://localhost"}
# Where the face is in grace_hopper.jpg: its centre.
HOPPER_FACE_CENTRE = (262, 220)


def _photo() -> Image.Image:
    """A real photograph shipped with matplotlib (512x600)."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return Image.open(io.BytesIO(handle.read())).convert("RGB")


def _encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _upload(data: bytes, name: str):
    return {"file": (io.BytesIO(data), name)}


def _decode_data_uri(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :])))


@pytest.fixture(scope="module")
def web_runs(tmp_path_factory, detector_run):
    """Two copies of the tiny detector run: as trained, and one whose threshold 0 calls everything Fake."""
    runs_dir = tmp_path_factory.mktemp("web-runs")
    first = shutil.copytree(detector_run, runs_dir / "00001-detector-tiny")
    second = shutil.copytree(detector_run, runs_dir / "00002-detector-always-fake")
    metrics = read_json(first / "metrics.json")
    write_json(second / "metrics.json", {**metrics, "threshold": 0.0})
    save_png(first / "plots" / "extra.png", np.zeros((8, 8, 3), dtype=np.uint8))
    (first / "plots" / "notes.txt").write_text("not a plot")
    return runs_dir, first, second


@pytest.fixture(scope="module")
def client(web_runs):
    """The page as `gan-lab serve` makes it: faces found with MTCNN."""
    runs_dir, first, _ = web_runs
    return create_app(first, runs_dir=runs_dir, faces="mtcnn").test_client()


@pytest.fixture(scope="module")
def detector_size(web_runs):
    return read_json(web_runs[1] / "config.json")["size"]


@pytest.mark.parametrize(
    "name,encode",
    [
        ("hopper.jpg", lambda photo: _encode(photo, "JPEG", quality=90)),
        ("hopper.png", lambda photo: _encode(photo, "PNG")),
        ("hopper-rgba.png", lambda photo: _encode(photo.convert("RGBA"), "PNG")),
        ("hopper-gray.jpg", lambda photo: _encode(photo.convert("L"), "JPEG")),
        ("hopper-wide.png", lambda photo: _encode(photo.resize((900, 300)), "PNG")),
    ],
)
def test_api_classifies_every_kind_of_image(client, web_runs, name, encode):
    response = client.post("/api/predict", data=_upload(encode(_photo()), name))
    assert response.status_code == 200, response.json
    answer = response.json
    assert set(answer) == {"file", "p_fake", "verdict", "threshold", "run"} | ANSWER_FACE_FIELDS
    assert answer["file"] == name
    assert 0.0 <= answer["p_fake"] <= 1.0
    assert answer["verdict"] == ("Fake" if answer["p_fake"] >= answer["threshold"] else "Real")
    assert answer["threshold"] == read_json(web_runs[1] / "metrics.json")["threshold"]
    assert answer["run"] == "00001-detector-tiny"


def test_same_photo_in_other_formats_scores_alike(client):
    photo = _photo()
    encodings = {
        "a.png": _encode(photo, "PNG"),
        "a.bmp": _encode(photo, "BMP"),
        "a.webp": _encode(photo, "WEBP", lossless=True),
    }
    scores = [client.post("/api/predict", data=_upload(data, name)).json["p_fake"] for name, data in encodings.items()]
    # Lossless encodings of one photo are the same pixels, so the same score.
    assert max(scores) - min(scores) < 1e-5


def test_page_shows_verdict_image_and_gradcam(client, detector_size):
    response = client.post(
        "/", data=_upload(_encode(_photo(), "JPEG"), "hopper.jpg"), content_type="multipart/form-data"
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="verdict"' in html and ("Real</h2>" in html or "Fake</h2>" in html)
    assert "P(fake) =" in html
    uris = [part.split('"')[0] for part in html.split('src="')[1:] if part.startswith("data:")]
    assert len(uris) == 3  # upload, detector input, Grad-CAM overlay
    upload, model_input, gradcam = (_decode_data_uri(uri) for uri in uris)
    assert max(upload.size) <= 384 and upload.size[1] > upload.size[0]  # the portrait photo, scaled down
    assert model_input.size == (detector_size, detector_size)
    assert gradcam.size == (detector_size, detector_size) and gradcam.mode == "RGB"


def test_too_small_image_is_refused(client, detector_size):
    tiny = _encode(_photo().resize((detector_size - 1, detector_size + 10)), "PNG")
    response = client.post("/api/predict", data=_upload(tiny, "tiny.png"))
    assert response.status_code == 400
    assert "tiny.png" in response.json["error"] and "smaller than the model's input" in response.json["error"]
    page = client.post("/", data=_upload(tiny, "tiny.png"))
    assert page.status_code == 400 and "smaller than the model" in page.get_data(as_text=True)


def test_image_over_the_decode_cap_is_refused_from_its_header(web_runs, monkeypatch):
    from PIL import ImageFile

    runs_dir, first, _ = web_runs
    client = create_app(first, runs_dir=runs_dir, max_decode_mb=0.08).test_client()  # 83,886 bytes
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.size) or load(image))
    # 200x150 of 16-bit grey is 60,000 bytes as read, but 90,000 as the RGB the detector reads.
    response = client.post("/api/predict", data=_upload(_encode(Image.new("I;16", (200, 150)), "PNG"), "deep.png"))
    assert response.status_code == 400 and decoded == []
    assert response.json["error"] == (
        "deep.png is 200x150 I;16 pixels: 0.0858 MB decoded, over the limit of 0.08 MB. Send a smaller image"
    )
    rgba = client.post("/api/predict", data=_upload(_encode(Image.new("RGBA", (150, 150)), "PNG"), "alpha.png"))
    assert rgba.status_code == 400 and "alpha.png is 150x150 RGBA pixels" in rgba.json["error"]
    page = client.post("/", data=_upload(_encode(Image.new("RGB", (200, 200)), "BMP"), "big.bmp"))
    assert page.status_code == 400 and "over the limit of 0.08 MB" in page.get_data(as_text=True)
    assert decoded == []
    fits = client.post("/api/predict", data=_upload(_encode(Image.new("L", (160, 160)), "PNG"), "fits.png"))
    assert fits.status_code == 200, fits.json
    assert set(decoded) == {(160, 160)}  # only the image within the cap was decoded


def test_large_jpeg_is_decoded_at_a_reduced_scale_to_fit_the_cap(web_runs):
    runs_dir, first, _ = web_runs
    client = create_app(first, runs_dir=runs_dir, max_decode_mb=0.08).test_client()
    photo = _encode(_photo(), "JPEG", quality=90)  # 512x600 RGB: 0.92 MB decoded, 1/16 of it at quarter scale
    page = client.post("/", data=_upload(photo, "hopper.jpg"), content_type="multipart/form-data")
    assert page.status_code == 200 and "hopper.jpg</code>, 128x150 px" in page.get_data(as_text=True)
    huge = _encode(Image.new("RGB", (1600, 1600)), "JPEG")  # 7.3 MB decoded: over the cap even at 1/8 scale
    response = client.post("/api/predict", data=_upload(huge, "huge.jpg"))
    assert response.status_code == 400 and "huge.jpg is 1600x1600 RGB pixels" in response.json["error"]


def test_decompression_bombs_are_refused(client, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL's own guard, for images far over any cap
    response = client.post("/api/predict", data=_upload(_encode(Image.new("L", (30, 30)), "PNG"), "bomb.png"))
    assert (
        response.status_code == 400 and "bomb.png has more pixels than can be decoded safely" in response.json["error"]
    )


def test_formats_the_lab_does_not_read_are_refused(client):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n"
    response = client.post("/api/predict", data=_upload(eps, "face.eps"))
    assert response.status_code == 400
    assert response.json["error"] == "face.eps is not an image the lab reads (JPEG, PNG, BMP, WEBP, GIF, TIFF)"
    ico = client.post("/api/predict", data=_upload(_encode(_photo().resize((64, 64)), "ICO"), "face.ico"))
    assert ico.status_code == 400 and "face.ico is not an image the lab reads" in ico.json["error"]


def test_uploads_wait_for_a_free_slot_then_get_503_busy(web_runs):
    from gan_lab.apps.web import WORKERS_KEY

    runs_dir, first, _ = web_runs
    app = create_app(first, runs_dir=runs_dir, max_concurrent=2, slot_wait_seconds=0.2)
    client = app.test_client()
    slots = app.extensions[WORKERS_KEY].slots
    data = _encode(_photo(), "PNG")
    assert slots.acquire(timeout=1) and slots.acquire(timeout=1)  # two uploads in progress elsewhere
    try:
        response = client.post("/api/predict", data=_upload(data, "hopper.png"))
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.json["error"] == (
            "The server is busy with other uploads; hopper.png was not read. Try again in a moment"
        )
        page = client.post("/", data=_upload(data, "hopper.png"))
        assert page.status_code == 503 and "The server is busy" in page.get_data(as_text=True)
        slots.release()  # one finishes: the next upload gets its turn
        assert client.post("/api/predict", data=_upload(data, "hopper.png")).status_code == 200
    finally:
        slots.release()
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # every slot was given back
    assert not slots.acquire(blocking=False)


def test_not_an_image_is_refused(client):
    response = client.post("/api/predict", data=_upload(b"name,label\nface,real\n", "faces.csv"))
    assert response.status_code == 400
    assert response.json["error"] == "faces.csv is not an image the lab reads (JPEG, PNG, BMP, WEBP, GIF, TIFF)"


def test_truncated_image_is_refused(client):
    data = _encode(_photo(), "JPEG", quality=95)
    response = client.post("/api/predict", data=_upload(data[: len(data) // 2], "cut.jpg"))
    assert response.status_code == 400
    assert "cut.jpg could not be decoded" in response.json["error"]


def test_missing_or_empty_upload_is_refused(client):
    response = client.post("/api/predict", data={"other": "x"})
    assert response.status_code == 400 and "form field 'file'" in response.json["error"]
    response = client.post("/api/predict", data=_upload(b"", "empty.png"))
    assert response.status_code == 400 and response.json["error"] == "empty.png is empty"
    page = client.post("/", data={})
    assert page.status_code == 400 and "No file uploaded" in page.get_data(as_text=True)


def test_upload_names_are_sanitised_and_escaped(client):
    data = _encode(_photo(), "PNG")
    response = client.post("/api/predict", data=_upload(data, "../../etc/<b>passwd</b>.png"))
    assert response.status_code == 200
    assert response.json["file"] == "etc_bpasswd_b.png"
    page = client.post("/", data=_upload(b"junk", "<script>alert(1)</script>.png")).get_data(as_text=True)
    assert "<script>alert" not in page


def test_too_large_upload_gets_413(web_runs):
    runs_dir, first, _ = web_runs
    client = create_app(first, runs_dir=runs_dir, max_upload_mb=0.05).test_client()
    data = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    response = client.post("/api/predict", data=_upload(data, "big.png"))
    assert response.status_code == 413
    assert "larger than the limit of 0.05 MB" in response.json["error"]
    page = client.post("/", data=_upload(data, "big.png"))
    assert page.status_code == 413 and "larger than the limit" in page.get_data(as_text=True)


def test_uploads_never_touch_the_disk(client, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # Werkzeug spools uploads over 500 KB to a temporary file unless told otherwise.
    large = _encode(_photo().resize((1200, 1400)), "PNG")
    assert len(large) > 600_000
    response = client.post("/api/predict", data=_upload(large, "large.png"))
    assert response.status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_runs_page_lists_runs_metrics_and_plots(client, web_runs):
    runs_dir, first, _ = web_runs
    html = client.get("/runs").get_data(as_text=True)
    assert "00001-detector-tiny" in html and "00002-detector-always-fake" in html
    metrics = read_json(first / "metrics.json")
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert f"{metrics[name]:.3f}" in html
    plots = sorted(p.name for p in (first / "plots").glob("*.png"))
    assert "extra.png" in plots
    for plot in plots:
        url = f"/runs/00001-detector-tiny/plots/{plot}"
        assert url in html
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert response.data == (first / "plots" / plot).read_bytes()


def test_plot_serving_refuses_absolute_and_relative_escapes(client, web_runs):
    _, first, second = web_runs
    save_png(second / "plots" / "other.png", np.zeros((8, 8, 3), dtype=np.uint8))
    assert client.get("/runs/00002-detector-always-fake/plots/other.png").status_code == 200
    escapes = [
        "/runs/00001-detector-tiny/plots/..%2F..%2F00002-detector-always-fake%2Fplots%2Fother.png",
        "/runs/00001-detector-tiny/plots/" + str(second / "plots" / "other.png").replace("/", "%2F"),
    ]
    for url in escapes:
        assert client.get(url, follow_redirects=True).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/runs/00001-detector-tiny/plots/../config.json",
        "/runs/00001-detector-tiny/plots/..%2Fmetrics.json",
        "/runs/00001-detector-tiny/plots/%2e%2e/%2e%2e/00002-detector-always-fake/metrics.json",
        "/runs/00001-detector-tiny/plots//etc/passwd",
        "/runs/00001-detector-tiny/plots/%2Fetc%2Fpasswd.png",
        "/runs/00001-detector-tiny/plots/notes.txt",
        "/runs/..%2F00001-detector-tiny/plots/extra.png",
        "/runs/00009-detector-missing/plots/extra.png",
    ],
)
def test_plot_serving_refuses_paths_outside_plots(client, url):
    assert client.get(url, follow_redirects=True).status_code == 404


def test_switching_runs(web_runs):
    runs_dir, first, _ = web_runs
    client = create_app(first, runs_dir=runs_dir).test_client()
    data = _upload(_encode(_photo(), "PNG"), "hopper.png")
    before = client.post("/api/predict", data=data).json
    assert before["run"] == "00001-detector-tiny"

    response = client.post("/runs", data={"run": "00002-detector-always-fake"}, headers=SAME_ORIGIN)
    assert response.status_code == 303
    assert "00002-detector-always-fake" in client.get("/").get_data(as_text=True)
    after = client.post("/api/predict", data=_upload(_encode(_photo(), "PNG"), "hopper.png")).json
    assert after["run"] == "00002-detector-always-fake"
    assert after["threshold"] == 0.0 and after["verdict"] == "Fake"
    assert after["p_fake"] == pytest.approx(before["p_fake"], abs=1e-6)  # same weights, other threshold
    assert "(loaded)" in client.get("/runs").get_data(as_text=True)

    response = client.post("/runs", data={"run": "../00001-detector-tiny"}, headers=SAME_ORIGIN)
    assert response.status_code == 404 and "No detector run named" in response.get_data(as_text=True)
    assert client.post("/api/predict", data=_upload(_encode(_photo(), "PNG"), "h.png")).json["run"] == (
        "00002-detector-always-fake"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a script, or a browser told to send neither: cannot be told from a forged request
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8080"},  # another port is another site
        {"Origin": "null"},  # a sandboxed frame or a redirect across sites
        {"Referer": "https://evil.example/localhost/runs"},
        {"Origin": "https://evil.example", "Referer": "http://localhost/runs"},  # Origin decides
    ],
    ids=["neither", "other-site", "other-port", "null-origin", "other-referer", "origin-over-referer"],
)
def test_switching_runs_from_another_site_is_refused(web_runs, headers):
    runs_dir, first, _ = web_runs
    client = create_app(first, runs_dir=runs_dir).test_client()
    response = client.post("/runs", data={"run": "00002-detector-always-fake"}, headers=headers)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Refused: not from this site" in html and "only accepted from this site&#39;s own runs page" in html
    assert 'id="current-run">00001-detector-tiny<' in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("headers", [SAME_ORIGIN, {"Referer": "http://localhost/runs"}], ids=["origin", "referer"])
def test_switching_runs_from_the_runs_page_is_accepted(web_runs, headers):
    runs_dir, first, _ = web_runs
    client = create_app(first, runs_dir=runs_dir).test_client()
    assert client.post("/runs", data={"run": "00002-detector-always-fake"}, headers=headers).status_code == 303
    assert 'id="current-run">00002-detector-always-fake<' in client.get("/").get_data(as_text=True)


def test_uploads_need_no_origin(client):
    # Uploads change nothing on the server, so `curl -F file=@face.jpg .../api/predict` keeps working.
    response = client.post("/api/predict", data=_upload(_encode(_photo(), "JPEG"), "face.jpg"))
    assert response.status_code == 200 and response.json["file"] == "face.jpg"


def test_broken_run_gives_a_clear_error(web_runs, tmp_path):
    runs_dir, first, _ = web_runs
    broken = shutil.copytree(first, tmp_path / "00003-detector-broken")
    (broken / "model.keras").write_bytes(b"not a model")
    client = create_app(broken, runs_dir=tmp_path).test_client()
    response = client.post("/api/predict", data=_upload(_encode(_photo(), "PNG"), "hopper.png"))
    assert response.status_code == 400 and "model.keras could not be loaded" in response.json["error"]


def test_api_errors_are_json(client):
    response = client.get("/api/predict")
    assert response.status_code == 405 and "error" in json.loads(response.data)


def test_create_app_checks_its_arguments(tmp_path):
    with pytest.raises(LabError, match="not found"):
        create_app(tmp_path / "missing")
    with pytest.raises(ValueError, match="max_upload_mb"):
        create_app(tmp_path, max_upload_mb=0)
    with pytest.raises(ValueError, match="max_decode_mb must be positive"):
        create_app(tmp_path, max_decode_mb=-1)
    with pytest.raises(ValueError, match="max_concurrent must be an integer of at least 1"):
        create_app(tmp_path, max_concurrent=0)


def test_serve_command_is_registered():
    from gan_lab.cli import build_parser

    args = build_parser().parse_args(["serve", "runs/00001-detector-x", "--port", "8123", "--max-mb", "2"])
    assert (args.run_dir, args.port, args.host, args.runs_dir, args.max_mb) == (
        "runs/00001-detector-x",
        8123,
        "127.0.0.1",
        "runs",
        2.0,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "run", "--port", "70000"])
    limits = build_parser().parse_args(["serve", "run", "--max-decode-mb", "8", "--max-concurrent", "3"])
    assert (limits.max_decode_mb, limits.max_concurrent) == (8.0, 3)
    defaults = build_parser().parse_args(["serve", "run"])
    assert (defaults.max_decode_mb, defaults.max_concurrent) == (16, 2)
    for bad in (["--max-decode-mb", "0"], ["--max-concurrent", "0"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "run", *bad])


def _reference_p_fake(web_runs, image: Image.Image, box=None, margin=0.25) -> float:
    """P(fake) of the face square around `box` (or of the whole image), computed without the page."""
    from detector.data.faces import crop_face
    from detector.data.images import fit_image
    from detector.inference.predict import load_detector

    detector = load_detector(web_runs[1])
    pixels = np.asarray(image)
    if box is not None:
        pixels = crop_face(pixels, box, margin)
    return float(detector.score(fit_image(pixels, detector.size, mode=detector.crop)[None])[0])


def test_api_classifies_the_face_it_found_and_says_which(client, web_runs):
    photo = _photo()
    answer = client.post("/api/predict", data=_upload(_encode(photo, "PNG"), "hopper.png")).json
    assert answer["faces"] == "mtcnn" and answer["faces_found"] == 1 and answer["note"] is None
    x, y, w, h = answer["face"]["box"]
    assert x < HOPPER_FACE_CENTRE[0] < x + w and y < HOPPER_FACE_CENTRE[1] < y + h
    left, top, side, _ = answer["face"]["crop"]
    assert left <= x and top <= y and left + side >= x + w and top + side >= y + h
    expected = _reference_p_fake(web_runs, photo, (x, y, w, h))
    assert answer["p_fake"] == pytest.approx(expected, abs=1e-5)
    # Asked to, it classifies the whole photo: another score, so the face crop was what counted.
    whole = client.post("/api/predict", data={**_upload(_encode(photo, "PNG"), "hopper.png"), "faces": "none"}).json
    assert whole["faces"] is None and whole["face"] is None
    assert whole["p_fake"] == pytest.approx(_reference_p_fake(web_runs, photo), abs=1e-5)
    assert abs(whole["p_fake"] - answer["p_fake"]) > 1e-4


def test_a_photo_without_a_face_is_classified_whole_and_says_so(client, web_runs):
    from detector.inference.predict import NO_FACE_NOTE

    wall = Image.fromarray(np.tile(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], (150, 1, 3)))
    answer = client.post("/api/predict", data=_upload(_encode(wall, "PNG"), "wall.png")).json
    assert answer["face"] is None and answer["faces_found"] == 0 and answer["note"] == NO_FACE_NOTE
    assert answer["p_fake"] == pytest.approx(_reference_p_fake(web_runs, wall), abs=1e-5)
    page = client.post("/", data=_upload(_encode(wall, "PNG"), "wall.png"), content_type="multipart/form-data")
    assert NO_FACE_NOTE in page.get_data(as_text=True)


def test_page_draws_the_square_it_classified(client):
    import re

    from gan_lab.apps.web import FACE_BOX_COLOUR

    photo = _photo()
    response = client.post("/", data=_upload(_encode(photo, "PNG"), "hopper.png"), content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    box = [int(value) for value in re.search(r'id="face-box"[^>]*>([0-9, ]+)<', html).group(1).split(", ")]
    answer = client.post("/api/predict", data=_upload(_encode(photo, "PNG"), "hopper.png")).json
    assert box == answer["face"]["box"]
    shown = np.asarray(_decode_data_uri(html.split('src="')[1].split('"')[0]).convert("RGB")).astype(int)
    green = np.all(np.abs(shown - FACE_BOX_COLOUR) < 40, axis=-1)
    scale = shown.shape[1] / photo.width
    left, top, side, _ = (round(value * scale) for value in answer["face"]["crop"])
    # The square's left and right edges are drawn in green down most of their height; the photo has no such green.
    for column in (left + 1, left + side - 2):
        assert green[top : top + side, column].mean() > 0.8
    assert green.mean() < 0.05


def test_an_unknown_face_finder_is_refused(client):
    response = client.post("/api/predict", data={**_upload(_encode(_photo(), "PNG"), "a.png"), "faces": "eyes"})
    assert response.status_code == 400 and "faces must be one of haar, mtcnn, none" in response.json["error"]


def test_synthfaces_runs_warn_on_the_page_and_in_the_json(web_runs, tmp_path):
    from detector.inference.predict import SYNTHFACES_WARNING

    runs_dir, first, _ = web_runs
    real_data = shutil.copytree(first, tmp_path / "00001-detector-real-data")
    config = read_json(real_data / "config.json")
    write_json(real_data / "config.json", {**config, "data": str(tmp_path), "data_source": str(tmp_path)})
    upload = _encode(_photo(), "PNG")
    for run, warned in ((first, True), (real_data, False)):
        client = create_app(run, runs_dir=runs_dir, faces="haar").test_client()
        answer = client.post("/api/predict", data=_upload(upload, "hopper.png")).json
        assert answer["trained_on_synthfaces"] is warned
        assert answer["warning"] == (SYNTHFACES_WARNING if warned else None)
        page = client.post("/", data=_upload(upload, "hopper.png"), content_type="multipart/form-data")
        assert ('id="warning"' in page.get_data(as_text=True)) == warned


def test_page_api_and_command_line_give_one_p_fake_for_one_photo_and_options(client, web_runs, tmp_path, capsys):
    import csv
    import re

    from gan_lab.cli import main

    photo_path = tmp_path / "hopper.png"
    _photo().save(photo_path)
    data = photo_path.read_bytes()
    for faces in ("mtcnn", "haar", "none"):
        answer = client.post("/api/predict", data={**_upload(data, "hopper.png"), "faces": faces}).json
        page = client.post(
            "/", data={**_upload(data, "hopper.png"), "faces": faces}, content_type="multipart/form-data"
        ).get_data(as_text=True)
        out = tmp_path / f"{faces}.csv"
        command = ["detector", "predict", str(web_runs[1]), str(photo_path), "--faces", faces, "--out", str(out)]
        assert main(command) == 0
        with open(out, newline="") as handle:
            [row] = list(csv.DictReader(handle))
        assert float(row["p_fake"]) == pytest.approx(answer["p_fake"], abs=1e-5), faces
        assert float(re.search(r'id="p-fake">([0-9.]+)<', page).group(1)) == pytest.approx(answer["p_fake"], abs=5e-4)
        if faces != "none":
            assert row["face"] == " ".join(str(value) for value in answer["face"]["box"])
    capsys.readouterr()

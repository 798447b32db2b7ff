"""Every path that scores an image fits it as the run's training did, so all give one P(fake).

The image is wide (96x48): a fake face on its left, a real one on its right. Stretched
whole ("resize") and centre-cropped ("crop") it is two different pictures to the model,
so a path that fitted it the other way than the run says would give another score.
"""

import base64
import io
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from detector import FAKE
from detector.base.runs import read_json, write_json
from detector.data.images import fit_image, load_rgb, open_rgb

# Scores from the same pixels through the same model differ only by float rounding.
TOLERANCE = 1e-5
# The page prints P(fake) with three decimals.
PAGE_TOLERANCE = 5e-4


@pytest.fixture(scope="module")
def runs(tmp_path_factory, detector_run):
    """The tiny detector run twice: as trained (crop="resize", the default) and told crop="crop"."""
    runs_dir = tmp_path_factory.mktemp("scoring-runs")
    resize = shutil.copytree(detector_run, runs_dir / "00001-detector-resize")
    crop = shutil.copytree(detector_run, runs_dir / "00002-detector-crop")
    assert read_json(resize / "config.json")["crop"] == "resize"
    write_json(crop / "config.json", {**read_json(crop / "config.json"), "crop": "crop"})
    return runs_dir, {"resize": resize, "crop": crop}


@pytest.fixture(scope="module")
def wide_image(tmp_path_factory, synth_root):
    """A 96x48 PNG: a fake test face on the left half, a real one on the right."""
    fake = Image.open(sorted(synth_root.glob("test/fake/*.png"))[0]).convert("RGB").resize((48, 48))
    real = Image.open(sorted(synth_root.glob("test/real/*.png"))[0]).convert("RGB").resize((48, 48))
    pixels = np.concatenate([np.asarray(fake), np.asarray(real)], axis=1)
    path = tmp_path_factory.mktemp("wide") / "fake-left-real-right.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory, synth_root, wide_image):
    """A real-vs-fake folder whose test split's only fake is the wide image."""
    root = tmp_path_factory.mktemp("wide-data")
    for folder in ("train/real", "train/fake", "test/real"):
        (root / folder).mkdir(parents=True)
        for path in sorted(synth_root.glob(f"{folder}/*.png"))[:2]:
            shutil.copy(path, root / folder / path.name)
    (root / "test" / "fake").mkdir(parents=True)
    shutil.copy(wide_image, root / "test" / "fake" / wide_image.name)
    return root


def _view(detector, path, mode):
    """The image as the model sees it when fitted with `mode`, computed here without the lab's scoring paths."""
    return fit_image(open_rgb(path), detector.size, mode=mode)


def _reference(detector, path, mode) -> float:
    return float(detector.score(_view(detector, path, mode)[None])[0])


def _upload(path):
    return {"file": (io.BytesIO(path.read_bytes()), path.name)}


def _page_results(client, path) -> tuple[float, np.ndarray, str]:
    """P(fake) the page prints, the detector input it shows, and its caption for that input."""
    response = client.post("/", data=_upload(path), content_type="multipart/form-data")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    p_fake = float(re.search(r'id="p-fake">([0-9.]+)<', html).group(1))
    uri = re.search(r'src="data:image/png;base64,([^"]+)" alt="what the detector sees"', html).group(1)
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"), dtype=np.float32) / 255.0
    caption = re.search(r"<figcaption>Detector input \(([^)]*)\)</figcaption>", html).group(1)
    return p_fake, pixels, caption


@pytest.mark.parametrize("mode", ["resize", "crop"])
def test_every_path_scores_the_runs_own_view(runs, wide_image, data_folder, mode):
    from detector.data.datasets import Split, class_images, index_folder
    from detector.inference.evaluate import score_split
    from detector.inference.explain import explain
    from detector.inference.predict import load_detector, predict_paths
    from gan_lab.apps.video import score_faces
    from gan_lab.apps.web import create_app

    runs_dir, run_dirs = runs
    detector = load_detector(run_dirs[mode])
    assert detector.crop == mode
    other = "crop" if mode == "resize" else "resize"
    expected = _reference(detector, wide_image, mode)
    # The image must tell the two views apart, or this test could not fail.
    assert abs(expected - _reference(detector, wide_image, other)) > 10 * PAGE_TOLERANCE

    [row] = predict_paths(detector, wide_image)
    assert np.isclose(row["p_fake"], expected, rtol=0, atol=TOLERANCE)
    assert np.isclose(explain(detector, open_rgb(wide_image)).p_fake, expected, rtol=0, atol=TOLERANCE)
    # The video tool scores each face crop (uint8 RGB, as cropped from the frame) this way.
    assert np.isclose(score_faces(detector, [load_rgb(wide_image)])[0], expected, rtol=0, atol=TOLERANCE)

    scores, _, paths = score_split(detector, Split(paths=[str(wide_image)], labels=np.array([FAKE])))
    assert paths == [str(wide_image)] and np.isclose(scores[0], expected, rtol=0, atol=TOLERANCE)
    index = index_folder(data_folder)
    scores, labels, _ = score_split(detector, index.splits["test"])
    [score] = scores[labels == FAKE]
    assert np.isclose(score, expected, rtol=0, atol=TOLERANCE)
    # The stress harness loads its images so.
    pixels = class_images(index, "test", FAKE, detector.size, detector.crop, limit=None)
    assert np.isclose(detector.score(pixels)[0], expected, rtol=0, atol=TOLERANCE)

    client = create_app(run_dirs[mode], runs_dir=runs_dir).test_client()
    answer = client.post("/api/predict", data=_upload(wide_image)).json
    assert answer["run"] == run_dirs[mode].name
    assert np.isclose(answer["p_fake"], expected, rtol=0, atol=TOLERANCE)
    p_fake, shown, caption = _page_results(client, wide_image)
    assert abs(p_fake - expected) <= PAGE_TOLERANCE
    np.testing.assert_array_equal(shown, _view(detector, wide_image, mode))
    assert caption.endswith(
        "centre square, as in training" if mode == "crop" else "whole image stretched, as in training"
    )


def test_an_explicit_crop_overrides_the_runs_own(runs, wide_image):
    from detector.inference.explain import explain
    from detector.inference.predict import load_detector, predict_paths

    detector = load_detector(runs[1]["resize"])
    expected = _reference(detector, wide_image, "crop")
    [row] = predict_paths(detector, wide_image, crop="crop")
    assert np.isclose(row["p_fake"], expected, rtol=0, atol=TOLERANCE)
    assert np.isclose(explain(detector, open_rgb(wide_image), crop="crop").p_fake, expected, rtol=0, atol=TOLERANCE)


def test_the_web_page_follows_the_run_it_switches_to(runs, wide_image):
    from detector.inference.predict import load_detector
    from gan_lab.apps.web import create_app

    runs_dir, run_dirs = runs
    client = create_app(run_dirs["resize"], runs_dir=runs_dir).test_client()
    switch = client.post("/runs", data={"run": run_dirs["crop"].name}, headers={"Origin": "http://localhost"})
    assert switch.status_code == 303
    answer = client.post("/api/predict", data=_upload(wide_image)).json
    expected = _reference(load_detector(run_dirs["crop"]), wide_image, "crop")
    assert answer["run"] == run_dirs["crop"].name
    assert np.isclose(answer["p_fake"], expected, rtol=0, atol=TOLERANCE)

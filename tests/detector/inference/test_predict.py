import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.base.runs import atomic_save_model, write_json
from detector.data.images import fit_image, load_rgb

SIZE = 32


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory):
    """An untrained cnn3 run directory at 32 px, made by hand (no training needed)."""
    from detector.models.zoo import build_model

    run_dir = tmp_path_factory.mktemp("runs") / "00001-detector-hand"
    run_dir.mkdir()
    model = build_model("cnn3", size=SIZE, head="probability")
    atomic_save_model(model, run_dir / "model.keras")
    write_json(
        run_dir / "config.json",
        {"model": "cnn3", "head": "probability", "size": SIZE, "crop": "resize", "data": "none"},
    )
    return run_dir


@pytest.fixture(scope="module")
def detector(hand_run):
    from detector.inference.predict import load_detector

    return load_detector(hand_run)


@pytest.fixture()
def image_folder(tmp_path):
    """Good images of several kinds, plus a too-small one and an unreadable one."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (48, 48, 4), dtype=np.uint8), mode="RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (36, 36), dtype=np.uint8), mode="L").save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)).save(folder / "wide.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"this is not a png")
    (folder / "notes.txt").write_text("not an image, ignored in folders")
    return folder


def test_load_detector_reads_the_run(hand_run, detector):
    assert (detector.size, detector.head, detector.crop, detector.threshold) == (SIZE, "probability", "resize", 0.5)
    assert detector.run_dir == hand_run and detector.config["model"] == "cnn3"


def test_load_detector_takes_the_threshold_from_metrics(hand_run, tmp_path):
    from detector.inference.predict import load_detector

    copy = tmp_path / "00002-detector-copy"
    shutil.copytree(hand_run, copy)
    write_json(copy / "metrics.json", {"accuracy": 0.9, "threshold": 0.3})
    detector = load_detector(copy)
    assert detector.threshold == pytest.approx(0.3)
    assert detector.verdict(0.31) == "Fake" and detector.verdict(0.29) == "Real"


def test_load_detector_names_what_is_missing(tmp_path):
    from detector.inference.predict import load_detector

    with pytest.raises(LabError, match="not found"):
        load_detector(tmp_path / "nowhere")
    run_dir = tmp_path / "00003-detector-empty"
    run_dir.mkdir()
    write_json(run_dir / "config.json", {"size": SIZE})
    with pytest.raises(LabError, match="no model.keras"):
        load_detector(run_dir)


def test_score_matches_the_model_and_runs_once_per_batch(detector, monkeypatch):
    from detector.models.zoo import outputs_to_p_fake

    images = np.random.default_rng(1).random((10, SIZE, SIZE, 3), dtype=np.float32)
    calls = []
    original = detector.predict_batch
    monkeypatch.setattr(detector, "predict_batch", lambda batch: calls.append(len(batch)) or original(batch))
    monkeypatch.setattr(detector, "batch_size", 4)
    scores = detector.score(images)
    assert calls == [4, 4, 2]
    expected = outputs_to_p_fake(detector.model.predict(images, verbose=0), "probability")
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores.shape == (10,) and ((scores >= 0) & (scores <= 1)).all()
    # uint8 pixels are scaled to [0, 1] first.
    np.testing.assert_allclose(detector.score((images * 255).round().astype(np.uint8)), scores, atol=0.02)


def test_models_loaded_one_after_another_score_without_retracing_warnings(caplog):
    """As the stress test scores each epoch's saved discriminator: `model.predict` on a new model each time warns."""
    import keras

    from detector.inference.predict import compiled_forward, in_batches

    images = np.random.default_rng(3).random((5, 8, 8, 3), dtype=np.float32)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for _ in range(7):
            model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
            outputs = in_batches(compiled_forward(model, 8), images, batch_size=2)
            np.testing.assert_allclose(outputs, np.asarray(model(images)), rtol=1e-5, atol=1e-6)
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]


def test_score_refuses_the_wrong_shape(detector):
    with pytest.raises(ValueError, match=r"Received: images.shape=\(2, 64, 64, 3\)"):
        detector.score(np.zeros((2, 64, 64, 3), dtype=np.float32))
    assert detector.score(np.zeros((0, SIZE, SIZE, 3), dtype=np.float32)).shape == (0,)


def test_features_are_the_penultimate_layer(detector):
    images = np.random.default_rng(2).random((3, SIZE, SIZE, 3), dtype=np.float32)
    features = detector.features(images)
    assert detector.feature_layer().name == "dropout_dense"
    assert features.shape == (3, 128)
    assert np.isfinite(features).all()


def test_predict_paths_scores_good_files_and_names_bad_ones(detector, image_folder, monkeypatch):
    from detector.inference.predict import predict_paths

    calls = []
    original = detector.score
    monkeypatch.setattr(detector, "score", lambda images: calls.append(len(images)) or original(images))
    with pytest.warns(UserWarning, match="3 of 7 paths could not be scored"):
        rows = predict_paths(
            detector, [image_folder, image_folder / "missing.png", str(image_folder / "*.jpg")], batch_size=2
        )
    by_name = {row["file"].rsplit("/", 1)[-1]: row for row in rows}
    assert set(by_name) == {"broken.png", "gray.png", "rgb.png", "rgba.png", "tiny.png", "wide.jpg", "missing.png"}
    # Four readable, large-enough images, two per model call; the glob repeats wide.jpg, scored once.
    assert calls == [2, 2]
    for name in ("rgb.png", "rgba.png", "gray.png", "wide.jpg"):
        row = by_name[name]
        assert 0.0 <= row["p_fake"] <= 1.0
        assert row["verdict"] == ("Fake" if row["p_fake"] >= detector.threshold else "Real")
    assert by_name["tiny.png"]["p_fake"] is None
    assert by_name["tiny.png"]["verdict"].startswith("error:") and "tiny.png is 20x20" in by_name["tiny.png"]["verdict"]
    assert "broken.png" in by_name["broken.png"]["verdict"] and by_name["broken.png"]["verdict"].startswith("error:")
    assert by_name["missing.png"]["verdict"] == "error: file not found"


def test_predict_paths_fits_images_as_the_run_was_trained_unless_told(detector, image_folder):
    from detector.inference.predict import predict_paths

    wide = image_folder / "wide.jpg"
    scores = {}
    for crop in ("crop", "resize"):
        [row] = predict_paths(detector, wide, crop=crop)
        scores[crop] = row["p_fake"]
        expected = detector.score(fit_image(load_rgb(wide), SIZE, mode=crop)[None])[0]
        assert row["p_fake"] == pytest.approx(expected, abs=1e-6)
    assert scores["crop"] != pytest.approx(scores["resize"], abs=1e-6)  # the two views really differ
    # By default, the run's own setting (this run's config.json says crop="resize").
    [row] = predict_paths(detector, wide)
    assert row["p_fake"] == pytest.approx(scores["resize"], abs=1e-6)
    with pytest.raises(ValueError, match=r"Received: crop='squash'"):
        predict_paths(detector, wide, crop="squash")


def test_load_detector_refuses_an_unknown_crop(hand_run, tmp_path):
    from detector.base.runs import read_json
    from detector.inference.predict import load_detector

    copy = tmp_path / "00004-detector-squash"
    shutil.copytree(hand_run, copy)
    write_json(copy / "config.json", {**read_json(hand_run / "config.json"), "crop": "squash"})
    with pytest.raises(LabError, match=r"config.json says crop='squash'"):
        load_detector(copy)


def test_prepare_refuses_small_images_unless_scaling_up(detector):
    small = np.zeros((20, 24, 3), dtype=np.uint8)
    with pytest.raises(LabError, match="face.png is 24x20 pixels, smaller than the model's input"):
        detector.prepare(small, name="face.png")
    assert detector.prepare(small, upscale=True).shape == (SIZE, SIZE, 3)


def test_cli_predict_prints_a_table_and_writes_csv(hand_run, image_folder, capsys):
    from gan_lab.cli import main

    out = image_folder.parent / "out.csv"
    assert (
        main(
            [
                "detector",
                "predict",
                str(hand_run),
                str(image_folder / "rgb.png"),
                str(image_folder / "tiny.png"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "rgb.png" in printed and "error:" in printed and f"Wrote {out}" in printed
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"].rsplit("/", 1)[-1] for row in rows] == ["rgb.png", "tiny.png"]
    assert rows[0]["verdict"] in ("Real", "Fake") and 0.0 <= float(rows[0]["p_fake"]) <= 1.0

    assert main(["detector", "predict", str(hand_run), str(image_folder), "--crop", "crop"]) == 0
    written = sorted((hand_run / "predictions").glob("*.csv"))
    printed = capsys.readouterr().out
    assert len(written) == 1 and str(written[0]) in printed
    assert "images centre-cropped to a square" in printed


def test_cli_predict_uses_the_runs_crop_unless_told(hand_run, image_folder, tmp_path, capsys):
    from gan_lab.cli import main

    wide = str(image_folder / "wide.jpg")
    scores = {}
    for name, options in (("default", []), ("resize", ["--crop", "resize"]), ("crop", ["--crop", "crop"])):
        out = tmp_path / f"{name}.csv"
        assert main(["detector", "predict", str(hand_run), wide, "--out", str(out), *options]) == 0
        with open(out, newline="") as handle:
            [row] = list(csv.DictReader(handle))
        scores[name] = float(row["p_fake"])
    assert "images stretched to the model's input" in capsys.readouterr().out
    assert scores["default"] == scores["resize"] != scores["crop"]  # this run was trained with crop="resize"
    with pytest.raises(SystemExit):
        main(["detector", "predict", str(hand_run), wide, "--crop", "squash"])


def test_cli_predict_fails_when_nothing_could_be_scored(hand_run, image_folder, capsys):
    from gan_lab.cli import main

    code = main(
        ["detector", "predict", str(hand_run), str(image_folder / "tiny.png"), "--out", str(image_folder / "x.csv")]
    )
    assert code == 1
    assert "0 scored" in capsys.readouterr().out


def _hopper() -> np.ndarray:
    """A real portrait photograph shipped with matplotlib (512x600), uint8 RGB."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


# Where the face is in grace_hopper.jpg: its centre, and roughly its side.
HOPPER_FACE_CENTRE, HOPPER_FACE_SIDE = (262, 220), 200


@pytest.mark.parametrize("faces", ["haar", "mtcnn"])
def test_a_photo_is_classified_by_its_face_cut_as_the_video_tool_cuts_it(detector, faces):
    from detector.data.faces import face_finder
    from gan_lab.apps.video import crop_face

    photo = _hopper()
    pixels, found = detector.prepare_photo(photo, face_finder(faces), margin=0.25)
    x, y, w, h = found["face"]["box"]
    assert found["faces"] == faces and found["faces_found"] == 1 and found["note"] is None
    assert x < HOPPER_FACE_CENTRE[0] < x + w and y < HOPPER_FACE_CENTRE[1] < y + h
    assert 0.6 < max(w, h) / HOPPER_FACE_SIDE < 1.5
    _, _, side, _ = found["face"]["crop"]
    assert side == round(max(w, h) * 1.5)
    # The same pixels as the video tool's crop of the same box in a BGR frame.
    video_crop = crop_face(np.ascontiguousarray(photo[..., ::-1]), (x, y, w, h), margin=0.25)
    np.testing.assert_array_equal(pixels, fit_image(video_crop, SIZE, mode="resize"))
    whole, _ = detector.prepare_photo(photo, None)
    assert not np.allclose(pixels, whole)


def test_a_photo_without_a_face_is_classified_whole_and_says_so(detector):
    from detector.data.faces import face_finder
    from detector.inference.predict import NO_FACE_NOTE

    wall = np.tile(np.linspace(0, 255, 120, dtype=np.uint8)[None, :, None], (90, 1, 3))
    pixels, found = detector.prepare_photo(wall, face_finder("mtcnn"))
    assert found == {"faces": "mtcnn", "face": None, "faces_found": 0, "note": NO_FACE_NOTE}
    np.testing.assert_array_equal(pixels, detector.prepare(wall))


def test_cli_predict_with_faces_scores_the_face_and_names_its_box(hand_run, tmp_path, capsys):
    from detector.data.faces import face_finder
    from detector.inference.predict import load_detector
    from gan_lab.cli import main

    photo = tmp_path / "hopper.png"
    Image.fromarray(_hopper()).save(photo)
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((90, 120, 3), 128, dtype=np.uint8)).save(wall)
    out = tmp_path / "faces.csv"
    assert (
        main(["detector", "predict", str(hand_run), str(photo), str(wall), "--faces", "haar", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "face (x y w h)" in printed and "none found" in printed
    with open(out, newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    detector = load_detector(hand_run)
    pixels, found = detector.prepare_photo(load_rgb(photo), face_finder("haar"))
    assert rows[str(photo)]["face"] == " ".join(str(value) for value in found["face"]["box"])
    assert float(rows[str(photo)]["p_fake"]) == pytest.approx(float(detector.score(pixels[None])[0]), abs=1e-6)
    assert rows[str(wall)]["face"] == "none found"


def test_runs_trained_on_synthfaces_say_their_verdicts_mean_nothing_for_real_photos(
    hand_run, detector_run, tmp_path, capsys
):
    from detector.base.runs import read_json
    from detector.inference.predict import SYNTHFACES_WARNING, load_detector
    from gan_lab.cli import main

    assert load_detector(detector_run).trained_on_synthfaces  # trained on a folder SynthFaces wrote
    assert not load_detector(hand_run).trained_on_synthfaces
    told_synth = tmp_path / "00001-detector-synth"
    shutil.copytree(hand_run, told_synth)
    write_json(told_synth / "config.json", {**read_json(hand_run / "config.json"), "data_source": "synth"})
    assert load_detector(told_synth).trained_on_synthfaces
    photo = tmp_path / "hopper.png"
    Image.fromarray(_hopper()).save(photo)
    for run, warned in ((told_synth, True), (hand_run, False)):
        assert main(["detector", "predict", str(run), str(photo), "--out", str(tmp_path / "p.csv")]) == 0
        assert (SYNTHFACES_WARNING in capsys.readouterr().out) == warned
    assert "mean nothing" in SYNTHFACES_WARNING

import csv
import importlib.util
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from detector.base.errors import LabError
from detector.base.runs import read_json, write_json
from detector.data.images import fit_image
from gan_lab.apps.video import IouTracker, box_iou, classify_video, crop_face, score_faces

FRAMES, WIDTH, HEIGHT = 30, 320, 240


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """30 frames of 320x240: a real photograph (matplotlib's grace_hopper.jpg) drifting over a green wall."""
    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (128, 150), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("video") / "hopper.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (WIDTH, HEIGHT))
    for index in range(FRAMES):
        frame = np.full((HEIGHT, WIDTH, 3), (90, 120, 60), dtype=np.uint8)
        left, top = 10 + 6 * index, 40 + int(20 * np.sin(index / 5))
        frame[top : top + 150, left : left + 128] = photo
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def video_run(tmp_path_factory, detector_run):
    """A private copy of the tiny detector run, so default outputs do not land in the shared one.

    Its config names a data folder that SynthFaces did not write, so no warning is drawn (see
    test_a_synthfaces_run_says_so_on_every_frame).
    """
    run = shutil.copytree(detector_run, tmp_path_factory.mktemp("video-runs") / detector_run.name)
    elsewhere = str(tmp_path_factory.mktemp("real-faces"))
    write_json(run / "config.json", {**read_json(run / "config.json"), "data": elsewhere, "data_source": elsewhere})
    return run


def _bench_faces():
    """benchmarks/bench_faces.py, for its moving clip made from a real photo."""
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_faces.py"
    spec = importlib.util.spec_from_file_location("bench_faces", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory):
    """16 frames of 640x480: the portrait moved, scaled, turned and squeezed (see benchmarks/bench_faces.py)."""
    bench = _bench_faces()
    frames = list(bench.moving_face_clip(frames=16, width=640, height=480))
    path = tmp_path_factory.mktemp("moving") / "moving.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for frame, _ in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path, [truth for _, truth in frames], bench.is_hit


def _read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _read_frame(path, index):
    capture = cv2.VideoCapture(str(path))
    for _ in range(index + 1):
        ok, frame = capture.read()
    capture.release()
    assert ok
    return frame.astype(np.int16)


def _count_frames(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    size = None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += 1
        size = frame.shape[:2]
    capture.release()
    return count, size


def test_crop_face_turns_bgr_frames_into_rgb():
    frame = np.zeros((100, 120, 3), dtype=np.uint8)
    frame[:, :, 0] = 255  # blue, in OpenCV's BGR order
    frame[:, :, 2] = 10
    crop = crop_face(frame, (40, 30, 20, 20))
    assert crop.shape == (30, 30, 3) and crop.dtype == np.uint8
    assert (crop[..., 2] == 255).all()  # blue is the last RGB channel
    assert (crop[..., 0] == 10).all()


def test_crop_face_keeps_a_margin_and_stays_inside_the_frame():
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    frame[40:60, 40:60] = 255  # the "face"
    crop = crop_face(frame, (40, 40, 20, 20), margin=0.5)
    # A 20 px face with half a face of margin each side: the face fills the middle half.
    assert crop.shape == (40, 40, 3)
    assert (crop[10:30, 10:30] == 255).all() and crop[:10].max() == 0 and crop[30:].max() == 0
    corner = crop_face(frame, (90, 90, 10, 10), margin=1.0)
    assert corner.shape == (30, 30, 3)  # moved inside the frame, not shrunk
    assert crop_face(frame, (0, 0, 90, 90), margin=0.5).shape == (100, 100, 3)  # at most the frame


def test_score_faces_fits_each_face_as_the_run_was_trained(video_run):
    from detector.inference.predict import load_detector

    detector = load_detector(video_run)
    rng = np.random.default_rng(0)
    small, large = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)
    scores = score_faces(detector, [small, large])
    # Faces smaller than the model's input are scaled up rather than refused.
    expected = detector.score(np.stack([fit_image(face, detector.size, mode=detector.crop) for face in (small, large)]))
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert score_faces(detector, []).shape == (0,)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_tracker_follows_a_moving_face_and_averages_its_last_scores():
    tracker = IouTracker(smooth=3)
    scores = [0.9, 0.1, 0.2, 0.6]
    for step, score in enumerate(scores):
        (track,) = tracker.update(step, [(10 + 2 * step, 10, 40, 40)], np.array([score]))
        assert track.track_id == 1
    assert track.smoothed == pytest.approx(np.mean(scores[-3:]))
    # A second face far away gets its own track; the first keeps its id.
    first, second = tracker.update(4, [(12, 10, 40, 40), (200, 100, 40, 40)], np.array([0.5, 0.5]))
    assert (first.track_id, second.track_id) == (1, 2)


def test_classify_video_finds_the_face_and_writes_consistent_outputs(face_video, video_run, tmp_path):
    out, csv_path = tmp_path / "annotated.mp4", tmp_path / "faces.csv"
    summary = classify_video(video_run, face_video, out=out, csv_path=csv_path, smooth=3, progress=False)
    assert summary["frames"] == FRAMES and summary["frames_classified"] == FRAMES
    assert summary["frames_with_faces"] >= 0.8 * FRAMES
    assert summary["video"] == out and summary["csv"] == csv_path
    assert _count_frames(out) == (FRAMES, (HEIGHT, WIDTH))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left

    rows = _read_rows(csv_path)
    assert list(rows[0]) == ["frame", "track", "x", "y", "w", "h", "p_fake", "p_fake_smoothed", "verdict"]
    assert len(rows) == summary["faces"] and len({row["frame"] for row in rows}) == summary["frames_with_faces"]
    threshold = summary["threshold"]
    history = defaultdict(list)
    for row in rows:
        x, y, w, h = (int(row[key]) for key in "xywh")
        assert 0 <= x and 0 <= y and x + w <= WIDTH and y + h <= HEIGHT
        p_fake, smoothed = float(row["p_fake"]), float(row["p_fake_smoothed"])
        assert 0.0 <= p_fake <= 1.0
        history[row["track"]].append(p_fake)
        assert smoothed == pytest.approx(np.mean(history[row["track"]][-3:]), abs=1e-5)
        assert row["verdict"] == ("Fake" if smoothed >= threshold else "Real")
    # The one face is one track over most of the clip.
    assert max(len(scores) for scores in history.values()) >= 0.8 * FRAMES

    # The box and label are drawn around the face: strongly changed pixels, all near the box.
    row = next(row for row in rows if row["frame"] == "15")
    changed = np.abs(_read_frame(out, 15) - _read_frame(face_video, 15)).max(axis=-1) > 80
    ys, xs = np.nonzero(changed)
    x, y, w, h = (int(row[key]) for key in "xywh")
    assert len(xs) > 2 * (w + h)
    # (the label above the box may be wider than a small box)
    assert xs.min() >= x - 3 and xs.max() <= x + max(w, 100) and ys.max() <= y + h + 3 and ys.min() >= y - 30


def test_default_outputs_go_to_the_run_and_every_skips_frames(face_video, video_run):
    summary = classify_video(video_run, str(face_video), every=3, max_frames=12, progress=False)
    assert summary["video"] == video_run / "videos" / "hopper-annotated.mp4"
    assert summary["csv"] == video_run / "videos" / "hopper.csv"
    assert summary["frames"] == 12 and summary["frames_classified"] == 4
    assert _count_frames(summary["video"])[0] == 12  # skipped frames are still in the video
    assert {int(row["frame"]) for row in _read_rows(summary["csv"])} <= {0, 3, 6, 9}


def test_bad_sources_are_named(video_run, tmp_path):
    with pytest.raises(LabError, match="Video file not found: .*missing.mp4"):
        classify_video(video_run, tmp_path / "missing.mp4", progress=False)
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(LabError, match="notes.mp4"):
        classify_video(video_run, tmp_path / "notes.mp4", out=tmp_path / "out.mp4", progress=False)
    with pytest.raises(LabError, match="camera 97"):
        classify_video(video_run, "97", out=tmp_path / "out.mp4", progress=False)
    assert not (tmp_path / "out.mp4").exists()
    with pytest.raises(LabError, match="MP4"):
        classify_video(video_run, tmp_path / "notes.mp4", out=tmp_path / "out.avi", progress=False)


def test_video_command(face_video, video_run, tmp_path, capsys):
    from gan_lab.cli import main

    out = tmp_path / "cli.mp4"
    code = main(
        ["video", str(video_run), "--source", str(face_video), "--out", str(out), "--every", "5", "--smooth", "2"]
    )
    assert code == 0 and out.is_file()
    printed = capsys.readouterr().out
    assert f"Annotated video: {out}" in printed and "hopper.csv" in printed
    assert main(["video", str(video_run), "--source", str(tmp_path / "nope.avi")]) == 2
    assert "Video file not found" in capsys.readouterr().err


def test_mtcnn_and_haar_on_a_moving_turning_face(moving_clip, video_run, tmp_path):
    path, truths, is_hit = moving_clip
    found = {}
    for faces in ("mtcnn", "haar"):
        summary = classify_video(
            video_run, path, out=tmp_path / f"{faces}.mp4", csv_path=tmp_path / f"{faces}.csv", faces=faces,
            progress=False,
        )  # fmt: skip
        assert summary["face_finder"] == faces and summary["frames"] == len(truths)
        rows = _read_rows(tmp_path / f"{faces}.csv")
        hits = {
            int(row["frame"]) for row in rows if is_hit([int(row[key]) for key in "xywh"], truths[int(row["frame"])])
        }
        found[faces] = len(hits) / len(truths)
        # Nearly every box it draws is on the face.
        assert len(hits) >= 0.8 * len({int(row["frame"]) for row in rows})
    # MTCNN follows the face through turns and sizes; the frontal-face cascade loses it when turned.
    assert found["mtcnn"] >= 0.9
    assert 0 < found["haar"] < found["mtcnn"]


def test_a_synthfaces_run_says_so_on_every_frame(face_video, detector_run, video_run, tmp_path):
    from detector.inference.predict import SYNTHFACES_WARNING

    synth_run = shutil.copytree(detector_run, tmp_path / detector_run.name)
    warned = classify_video(synth_run, face_video, out=tmp_path / "warned.mp4", max_frames=3, progress=False)
    plain = classify_video(video_run, face_video, out=tmp_path / "plain.mp4", max_frames=3, progress=False)
    assert warned["warning"] == SYNTHFACES_WARNING and plain["warning"] is None
    # A dark band with the line across the top of every frame; the rest as without it.
    for index in range(3):
        with_band, without = _read_frame(tmp_path / "warned.mp4", index), _read_frame(tmp_path / "plain.mp4", index)
        top = np.abs(with_band[:10] - without[:10]).max(axis=-1)
        assert (top > 30).mean() > 0.5
        assert np.abs(with_band[-40:] - without[-40:]).max() < 40

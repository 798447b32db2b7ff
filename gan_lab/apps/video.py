"""Classify the faces in a video or camera stream, frame by frame, with a detector run.

Faces are found by `detector.data.faces` (MTCNN or OpenCV's Haar cascade), classified in one
batch per frame, and their P(fake) averaged over the last frames of each face's track, so a
verdict does not flicker. Writes an annotated video and a CSV of per-frame results.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detector.base.errors import LabError
from detector.base.runs import atomic_write_text
from detector.data.faces import DEFAULT_MARGIN, DEFAULT_MIN_FACE, VIDEO_FACE_FINDER, face_finder, square_around

CSV_COLUMNS = ("frame", "track", "x", "y", "w", "h", "p_fake", "p_fake_smoothed", "verdict")
# BGR colours for the boxes.
REAL_COLOUR = (60, 160, 40)
FAKE_COLOUR = (40, 40, 220)


def crop_face(frame_bgr: np.ndarray, box: tuple, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The face in `box` with a margin around it, as uint8 RGB at the frame's own resolution.

    The square of `detector.data.faces.crop_face` (the web page and `detector predict --faces` cut
    the same), turned from OpenCV's BGR into the RGB every detector was trained on. Fitting
    it to the model's input is left to `score_faces`, which fits it as the run's training did.
    """
    left, top, side = square_around(box, frame_bgr.shape, margin)
    return cv2.cvtColor(frame_bgr[top : top + side, left : left + side], cv2.COLOR_BGR2RGB)


def score_faces(detector, faces: list[np.ndarray]) -> np.ndarray:
    """P(fake) of each face crop (uint8 RGB, any size), fitted to the model's input by `Detector.prepare`.

    Faces smaller than the model's input are scaled up, not refused: a face across the
    room is still a face to classify.
    """
    return np.asarray(detector.score_images(faces, upscale=True), dtype=np.float64).reshape(-1)


def box_iou(first: tuple, second: tuple) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    overlap_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    overlap_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    overlap = overlap_w * overlap_h
    union = aw * ah + bw * bh - overlap
    return overlap / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed across frames, with its recent P(fake) values."""

    track_id: int
    box: tuple
    last_seen: int
    scores: deque = field(default_factory=deque)

    @property
    def smoothed(self) -> float:
        return float(np.mean(self.scores))


class IouTracker:
    """Greedy IoU matching of each frame's boxes to the tracks of earlier frames."""

    def __init__(self, smooth: int = 5, min_iou: float = 0.3, max_missed: int = 5):
        if smooth < 1:
            raise ValueError(f"smooth must be at least 1. Received: smooth={smooth}")
        self.smooth = smooth
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: dict[int, Track] = {}
        self.next_id = 1

    def update(self, step: int, boxes: list[tuple], scores: np.ndarray) -> list[Track]:
        """Assign this step's boxes (with their P(fake)) to tracks; returns the track of each box."""
        pairs = sorted(
            (
                (box_iou(box, track.box), index, track_id)
                for index, box in enumerate(boxes)
                for track_id, track in self.tracks.items()
            ),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        for iou, index, track_id in pairs:
            if iou < self.min_iou:
                break
            if index not in assigned and track_id not in assigned.values():
                assigned[index] = track_id
        result = []
        for index, box in enumerate(boxes):
            if index in assigned:
                track = self.tracks[assigned[index]]
            else:
                track = Track(self.next_id, box, step, deque(maxlen=self.smooth))
                self.tracks[track.track_id] = track
                self.next_id += 1
            track.box, track.last_seen = box, step
            track.scores.append(float(scores[index]))
            result.append(track)
        # A face gone for a few steps is a new face when it comes back.
        self.tracks = {i: t for i, t in self.tracks.items() if step - t.last_seen <= self.max_missed}
        return result


def parse_source(source: str | int | os.PathLike) -> int | Path:
    """A camera index ("0", 0) or a video file path that exists."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return int(source)
    path = Path(source)
    if not path.is_file():
        raise LabError(f"Video file not found: {path}")
    return path


def _open_capture(source: int | Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(source if isinstance(source, int) else os.fspath(source))
    if not capture.isOpened():
        capture.release()
        if isinstance(source, int):
            raise LabError(f"Could not open camera {source}: is one connected, and free?")
        raise LabError(f"Could not open video {source}: OpenCV cannot read this file")
    return capture


def _draw_warning(frame: np.ndarray, text: str) -> None:
    """`text` on a dark band across the top of the frame, in as many lines as its width needs."""
    scale = max(0.4, frame.shape[1] / 1400)
    words, lines = text.split(), [""]
    for word in words:
        candidate = f"{lines[-1]} {word}".strip()
        if cv2.getTextSize(candidate, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > frame.shape[1] - 12 and lines[-1]:
            lines.append(word)
        else:
            lines[-1] = candidate
    line_height = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] + 8
    band = frame[: line_height * len(lines) + 6]
    band[:] = (band * 0.35).astype(frame.dtype)
    for number, line in enumerate(lines):
        position = (6, line_height * (number + 1))
        cv2.putText(frame, line, position, cv2.FONT_HERSHEY_SIMPLEX, scale, (80, 220, 255), 1, cv2.LINE_AA)


def _draw(frame: np.ndarray, box: tuple, label: str, fake: bool) -> None:
    colour = FAKE_COLOUR if fake else REAL_COLOUR
    x, y, w, h = box
    cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
    (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    top = max(0, y - text_h - baseline - 4)
    cv2.rectangle(frame, (x, top), (x + text_w + 4, top + text_h + baseline + 4), colour, cv2.FILLED)
    cv2.putText(frame, label, (x + 2, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def default_outputs(run_dir: Path, source: int | Path) -> tuple[Path, Path]:
    """`run_dir/videos/<source name>-annotated.mp4` and `<source name>.csv`."""
    stem = f"camera{source}" if isinstance(source, int) else source.stem
    videos = Path(run_dir) / "videos"
    return videos / f"{stem}-annotated.mp4", videos / f"{stem}.csv"


class _FaceClassifier:
    """Finds, classifies and follows the faces of every `every`-th frame; keeps the CSV rows so far."""

    def __init__(self, detector, every: int, smooth: int, margin: float, finder):
        from detector.inference.predict import SYNTHFACES_WARNING

        self.detector = detector
        self.every = every
        self.margin = margin
        self.finder = finder
        self.warning = SYNTHFACES_WARNING if detector.trained_on_synthfaces else None
        self.tracker = IouTracker(smooth=smooth, max_missed=max(2, 10 // every))
        self.rows: list[dict] = []
        self.frames_classified = 0
        self.frames_with_faces = 0
        self.labels: list[tuple] = []  # the last classified frame's (box, label, fake), drawn on skipped frames too

    def annotate(self, index: int, frame: np.ndarray) -> None:
        """Classify frame number `index` when it is due, then draw the latest boxes and verdicts on it."""
        if index % self.every == 0:
            self._classify(index, frame)
        for box, label, fake in self.labels:
            _draw(frame, box, label, fake)
        if self.warning:
            _draw_warning(frame, self.warning)

    def _classify(self, index: int, frame: np.ndarray) -> None:
        boxes = self.finder.find(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        scores = score_faces(self.detector, [crop_face(frame, box, self.margin) for box in boxes])
        tracks = self.tracker.update(index // self.every, boxes, scores)
        self.labels = []
        for box, score, track in zip(boxes, scores, tracks):
            smoothed = track.smoothed
            verdict = self.detector.verdict(smoothed)
            self.labels.append((box, f"{verdict} {smoothed:.2f}", verdict == "Fake"))
            x, y, w, h = box
            self.rows.append(
                {
                    "frame": index,
                    "track": track.track_id,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "p_fake": f"{score:.6f}",
                    "p_fake_smoothed": f"{smoothed:.6f}",
                    "verdict": verdict,
                }
            )
        self.frames_classified += 1
        self.frames_with_faces += bool(boxes)


class _AnnotatedVideo:
    """The annotated MP4, written under a temporary name and renamed into place only once complete."""

    def __init__(self, out: Path, fps: float):
        self.out = out
        self.fps = fps
        self.temporary: Path | None = None
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self._open(*frame.shape[:2])
        self.writer.write(frame)

    def _open(self, height: int, width: int) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # The encoder picks the container from the extension: the temporary name ends in .mp4.
        handle, name = tempfile.mkstemp(prefix=f".{self.out.stem}.", suffix=".tmp.mp4", dir=self.out.parent)
        os.close(handle)
        self.temporary = Path(name)
        # mkstemp makes the file private; the video should get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        self.temporary.chmod(0o666 & ~umask)
        self.writer = cv2.VideoWriter(
            os.fspath(self.temporary), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height)
        )
        if not self.writer.isOpened():
            raise LabError(f"Could not write the video {self.out}: OpenCV has no MP4 (mp4v) encoder here")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()

    def discard(self) -> None:
        self.close()
        if self.temporary is not None:
            self.temporary.unlink(missing_ok=True)

    def commit(self) -> None:
        os.replace(self.temporary, self.out)


def classify_video(
    run_dir_or_detector,
    source: str | int | os.PathLike,
    out: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
    every: int = 1,
    smooth: int = 5,
    margin: float = DEFAULT_MARGIN,
    min_face: int = DEFAULT_MIN_FACE,
    max_frames: int | None = None,
    show: bool = False,
    progress: bool = True,
    faces: str = VIDEO_FACE_FINDER,
) -> dict:
    """Find and classify the faces in every `every`-th frame; write an annotated video and a CSV.

    run_dir_or_detector: a detector run directory or a loaded `detector.inference.predict.Detector`.
    source: a camera index ("0") or a video file.
    out, csv_path: default to the run's videos/ folder.
    smooth: P(fake) is averaged over a face's last `smooth` classified frames.
    faces: the face finder, "mtcnn" or "haar" (see `detector.data.faces`).
    Returns a summary: frames read, frames with faces, tracks, mean P(fake), verdict counts, paths.
    A camera is read until it stops, `max_frames`, or Ctrl-C; what was seen is still written.
    """
    if every < 1:
        raise ValueError(f"every must be at least 1. Received: every={every}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1. Received: max_frames={max_frames}")
    detector = _as_detector(run_dir_or_detector)
    source = parse_source(source)
    out, csv_path = _output_paths(detector, source, out, csv_path)
    finder = face_finder(faces, min_face)
    classifier = _FaceClassifier(detector, every=every, smooth=smooth, margin=margin, finder=finder)
    capture = _open_capture(source)
    fps, total = _frame_rate(capture), _frame_total(capture, source, max_frames)
    video = _AnnotatedVideo(out, fps)
    frames = _annotate_frames(
        capture, classifier, video, max_frames=max_frames, show=show, progress=progress, total=total
    )
    if frames == 0:
        video.discard()
        raise LabError(f"No frames could be read from {_describe(source)}")
    video.commit()
    _write_csv(classifier.rows, csv_path)
    return _summary(detector, source, fps, frames, classifier, out, csv_path)


def _as_detector(run_dir_or_detector):
    if hasattr(run_dir_or_detector, "score"):
        return run_dir_or_detector
    from detector.inference.predict import load_detector

    return load_detector(run_dir_or_detector)


def _output_paths(detector, source: int | Path, out, csv_path) -> tuple[Path, Path]:
    default_video, default_csv = default_outputs(detector.run_dir, source)
    out = Path(out) if out is not None else default_video
    csv_path = Path(csv_path) if csv_path is not None else default_csv
    if out.suffix.lower() != ".mp4":
        raise LabError(f"The annotated video is written as MP4: name it *.mp4. Received: {out}")
    return out, csv_path


def _frame_rate(capture: cv2.VideoCapture) -> float:
    """The source's frame rate; 25 when it reports none or nonsense (cameras often do)."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if fps and np.isfinite(fps) and 0 < fps <= 240 else 25.0


def _frame_total(capture: cv2.VideoCapture, source: int | Path, max_frames: int | None) -> int | None:
    """How many frames the progress bar expects, or None when unknown (a camera without max_frames)."""
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if isinstance(source, Path) else 0
    total = min(total, max_frames) if max_frames and total > 0 else (total or max_frames)
    return total or None


def _annotate_frames(capture, classifier, video, max_frames, show, progress, total) -> int:
    """Read, classify, annotate and write frames until the source ends; returns how many were read.

    Ctrl-C ends a camera normally, keeping what was recorded; any other error discards the video.
    """
    from detector.base.console import progress_bar

    frames = 0
    bar = progress_bar(total=total, unit="frame", desc="Classifying faces", disable=not progress)
    try:
        while max_frames is None or frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            classifier.annotate(frames, frame)
            video.write(frame)
            if show:
                _show(frame)
            frames += 1
            bar.update(1)
    except KeyboardInterrupt:
        pass  # how a camera is stopped: what was recorded is kept
    except BaseException:
        video.discard()
        raise
    finally:
        bar.close()
        capture.release()
        video.close()
        if show:
            cv2.destroyAllWindows()
    return frames


def _write_csv(rows: list[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _summary(detector, source, fps: float, frames: int, classifier: _FaceClassifier, out: Path, csv_path: Path) -> dict:
    rows = classifier.rows
    return {
        "source": _describe(source),
        "run": Path(detector.run_dir).name,
        "threshold": float(detector.threshold),
        "face_finder": classifier.finder.name,
        "warning": classifier.warning,
        "fps": fps,
        "frames": frames,
        "frames_classified": classifier.frames_classified,
        "frames_with_faces": classifier.frames_with_faces,
        "faces": len(rows),
        "tracks": len({row["track"] for row in rows}),
        "mean_p_fake": float(np.mean([float(row["p_fake"]) for row in rows])) if rows else None,
        "fake_detections": sum(row["verdict"] == "Fake" for row in rows),
        "real_detections": sum(row["verdict"] == "Real" for row in rows),
        "video": out,
        "csv": csv_path,
    }


def _describe(source: int | Path) -> str:
    return f"camera {source}" if isinstance(source, int) else os.fspath(source)


def _show(frame: np.ndarray) -> None:
    try:
        cv2.imshow("gan-lab video (q stops)", frame)
        key = cv2.waitKey(1) & 0xFF
    except cv2.error:
        raise LabError(
            "--show needs an OpenCV build with a display (opencv-python, not opencv-python-headless)"
        ) from None
    if key == ord("q"):
        raise KeyboardInterrupt

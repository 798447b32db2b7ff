"""Face finders side by side on a moving clip: how often each finds the face, and how many frames per second.

    .venv/bin/python benchmarks/bench_faces.py --frames 120 --width 640 --height 480

The clip is made from a real photograph (matplotlib's grace_hopper.jpg): the portrait
drifts across a textured wall while it is scaled (its face from about 50 to 230 pixels
high), turned in the image plane (up to 35 degrees either way) and squeezed sideways as a
head turning away would be. Where the face is in every frame is known from the photo, so
a detection is counted when a box holds the face's centre and is of about its size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

# The face in grace_hopper.jpg (512x600), as (x, y, w, h): between the boxes MTCNN and the Haar cascade find there.
PHOTO_FACE = (170, 105, 185, 225)


def photo() -> np.ndarray:
    """matplotlib's grace_hopper.jpg as uint8 RGB."""
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def moving_face_clip(frames: int = 120, width: int = 640, height: int = 480, seed: int = 0):
    """Yield (frame uint8 RGB, true face box (x, y, w, h)) for a photo moved, scaled and turned over time."""
    import cv2

    portrait = photo()
    rng = np.random.default_rng(seed)
    wall = cv2.GaussianBlur(rng.integers(60, 200, (height, width, 3), dtype=np.uint8), (0, 0), 6)
    face_x, face_y, face_w, face_h = PHOTO_FACE
    corners = np.array([[face_x, face_y], [face_x + face_w, face_y + face_h]], dtype=np.float64)
    for index in range(frames):
        phase = index / max(1, frames - 1)
        scale = 0.25 + 0.8 * (0.5 - 0.5 * np.cos(2 * np.pi * phase))  # small, large, small
        angle = 35.0 * np.sin(4 * np.pi * phase)  # turned in the picture plane, both ways, twice
        squeeze = 1.0 - 0.4 * abs(np.sin(3 * np.pi * phase))  # narrower, as a head turning away
        centre = (width * (0.3 + 0.4 * phase), height * (0.5 + 0.15 * np.sin(2 * np.pi * phase)))
        matrix = _placement(portrait.shape, scale, squeeze, angle, centre)
        placed = cv2.warpAffine(portrait, matrix, (width, height))
        mask = cv2.warpAffine(np.full(portrait.shape[:2], 255, np.uint8), matrix, (width, height)) > 0
        frame = np.where(mask[..., None], placed, wall)
        yield frame, _face_box(matrix, corners)


def _placement(shape, scale: float, squeeze: float, angle: float, centre) -> np.ndarray:
    """The 2x3 affine map taking the photo to the frame: squeezed, scaled, turned about its centre, moved."""
    height, width = shape[:2]
    radians = np.deg2rad(angle)
    rotate = np.array([[np.cos(radians), np.sin(radians)], [-np.sin(radians), np.cos(radians)]])
    linear = rotate @ np.diag([scale * squeeze, scale])
    offset = np.asarray(centre) - linear @ np.array([width / 2, height / 2])
    return np.hstack([linear, offset[:, None]])


def _face_box(matrix: np.ndarray, corners: np.ndarray) -> tuple[int, int, int, int]:
    """The upright box around the face's corners after `matrix`, shrunk back to a face's proportions."""
    (x0, y0), (x1, y1) = corners
    points = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ matrix[:, :2].T + matrix[:, 2]
    centre = points.mean(axis=0)
    # A turned face's upright box is wider than the face; its side is the face's height, scaled.
    side = np.linalg.norm(matrix[:, :2] @ np.array([0, y1 - y0]))
    return int(centre[0] - side / 2), int(centre[1] - side / 2), int(side), int(side)


def is_hit(box, truth) -> bool:
    """A box holds the true face's centre, and its side is within a factor of two of the face's."""
    x, y, w, h = box
    tx, ty, tw, th = truth
    centre_x, centre_y = tx + tw / 2, ty + th / 2
    inside = x <= centre_x <= x + w and y <= centre_y <= y + h
    return inside and 0.5 <= max(w, h) / max(tw, th) <= 2.0


def measure(finder, clip) -> dict:
    """Frames where the face was found, false boxes per frame, and frames per second of finding alone."""
    hits = false_boxes = 0
    seconds = 0.0
    for frame, truth in clip:
        started = time.perf_counter()
        boxes = finder.find(frame)
        seconds += time.perf_counter() - started
        found = [box for box in boxes if is_hit(box, truth)]
        hits += bool(found)
        false_boxes += len(boxes) - len(found)
    frames = len(clip)
    return {"found": hits / frames, "false_per_frame": false_boxes / frames, "fps": frames / seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--min-face", type=int, default=40, help="smallest face side looked for (default: 40)")
    parser.add_argument("--save", metavar="PNG", help="also save a strip of frames with both finders' boxes")
    args = parser.parse_args(argv)

    from detector.base.console import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    from detector.data.faces import FACE_FINDERS, face_finder

    clip = list(moving_face_clip(args.frames, args.width, args.height))
    finders = {name: face_finder(name, min_face=args.min_face) for name in FACE_FINDERS}
    for finder in finders.values():  # first calls build graphs and caches: untimed
        finder.find(clip[0][0])
    print(
        f"{args.frames} frames of {args.width}x{args.height}: a photo moved, scaled (face 50-230 px), "
        "turned up to 35 degrees and squeezed sideways"
    )
    print(f"{'finder':<8} {'face found':>10} {'false boxes/frame':>18} {'frames/s':>9} {'ms/frame':>9}")
    for name, finder in finders.items():
        result = measure(finder, clip)
        print(
            f"{name:<8} {result['found']:>10.0%} {result['false_per_frame']:>18.2f} "
            f"{result['fps']:>9.1f} {1000 / result['fps']:>9.0f}"
        )
    if args.save:
        _save_strip(clip, finders, args.save)
        print(f"Wrote {args.save}")


def _save_strip(clip, finders, path) -> None:
    """Every 15th frame with the true face (white) and each finder's boxes (haar red, mtcnn green)."""
    import cv2
    from PIL import Image

    colours = {"haar": (230, 40, 40), "mtcnn": (40, 200, 40)}
    tiles = []
    for frame, truth in clip[::15]:
        frame = frame.copy()
        x, y, w, h = truth
        cv2.rectangle(frame, (x, y), (x + w, y + h), (255, 255, 255), 1)
        for name, finder in finders.items():
            for bx, by, bw, bh in finder.find(frame):
                cv2.rectangle(frame, (bx, by), (bx + bw, by + bh), colours[name], 2)
        tiles.append(cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA))
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles) - len(tiles) % 4, 4)]
    Image.fromarray(np.vstack(rows)).save(path)


if __name__ == "__main__":
    main()

"""Finding the face in a photo or video frame: OpenCV's Haar cascade or MTCNN, behind one call.

`face_finder("mtcnn").find(rgb)` gives face boxes (x, y, w, h), largest first; `crop_face`
cuts a square around a box with a margin. The web page, its API, `detector predict` and
the video tool all find and crop faces here, so they classify the same pixels.

haar: OpenCV's frontal-face cascade (in opencv-python); fast, but misses turned, tilted
and small faces. mtcnn: the MTCNN network (the `mtcnn` package, weights in its wheel,
TensorFlow underneath); finds those too, and is slower.
"""

from __future__ import annotations

import os

import numpy as np

from detector.base.errors import LabError

FACE_FINDERS = ("haar", "mtcnn")
# For one photo (the web page and its API) speed hardly matters: the finder that misses least.
PHOTO_FACE_FINDER = "mtcnn"
# For video too: benchmarks/bench_faces.py measures how often each finder finds a moving face, and how fast.
VIDEO_FACE_FINDER = "mtcnn"
# Around the face box, this share of its side on each side: the hair, chin and ears, as face data sets crop.
DEFAULT_MARGIN = 0.25
DEFAULT_MIN_FACE = 40
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# MTCNN's last stage's confidence below which a box is not taken for a face.
MTCNN_CONFIDENCE = 0.9
# The smallest face MTCNN is asked to find, in pixels of the (scaled-down) image it looks at.
MTCNN_SMALLEST_FACE = 20
MTCNN_LONGEST_SIDE = 1600  # pixels: a 22-megapixel photo would cost about 900 MB in MTCNN's pyramid


def check_face_finder(name: str | None) -> str | None:
    """`name` if it is None (no face finding) or one of FACE_FINDERS; else a ValueError."""
    if name is not None and name not in FACE_FINDERS:
        raise ValueError(f"faces must be None or one of {FACE_FINDERS}. Received: faces={name!r}")
    return name


class HaarFaces:
    """OpenCV's frontal-face Haar cascade."""

    name = "haar"

    def __init__(self, min_face: int = DEFAULT_MIN_FACE):
        import cv2

        path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise LabError(f"Could not load the face detector {path}; reinstall opencv-python-headless")
        self.min_face = min_face

    def find(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) in a uint8 RGB image, largest first."""
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(_as_rgb(image), cv2.COLOR_RGB2GRAY))
        size = (self.min_face, self.min_face)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=size)
        return _largest_first(tuple(int(value) for value in box) for box in (boxes if len(boxes) else []))


class MtcnnFaces:
    """MTCNN (three small networks: proposals, refinement, landmarks), as the `mtcnn` package ships it."""

    name = "mtcnn"

    def __init__(self, min_face: int = DEFAULT_MIN_FACE):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise LabError("--faces mtcnn needs the mtcnn package: pip install mtcnn (or use --faces haar)") from None
        self.network = MTCNN(device="CPU:0")
        self.min_face = min_face

    def find(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) in a uint8 RGB image, largest first."""
        import cv2

        image = _as_rgb(image)
        # mtcnn 1.0's image pyramid loses faces when asked for a smallest face above about 24 px,
        # so the image is scaled down instead: its smallest face becomes MTCNN_SMALLEST_FACE pixels.
        # That is also what makes MTCNN fast enough for video.
        # A large photo is also looked at no larger than MTCNN_LONGEST_SIDE: its pyramid costs memory by the pixel.
        factor = min(1.0, MTCNN_SMALLEST_FACE / self.min_face, MTCNN_LONGEST_SIDE / max(image.shape[:2]))
        if factor < 1.0:
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        faces = self.network.detect_faces(image, min_face_size=min(self.min_face, MTCNN_SMALLEST_FACE))
        boxes = []
        for face in faces:
            x, y, w, h = (int(round(value / factor)) for value in face["box"])
            if face["confidence"] >= MTCNN_CONFIDENCE and max(w, h) >= self.min_face:
                boxes.append((x, y, w, h))
        return _largest_first(boxes)


def face_finder(name: str, min_face: int = DEFAULT_MIN_FACE) -> HaarFaces | MtcnnFaces:
    """A face finder by name: "haar" or "mtcnn". Faces smaller than `min_face` pixels are not looked for."""
    if name not in FACE_FINDERS:
        raise ValueError(f"faces must be one of {FACE_FINDERS}. Received: faces={name!r}")
    if not isinstance(min_face, int) or min_face < 12:
        raise ValueError(f"min_face must be an integer of at least 12 pixels. Received: min_face={min_face!r}")
    return HaarFaces(min_face) if name == "haar" else MtcnnFaces(min_face)


def _as_rgb(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 RGB array (H, W, 3). Received: {image.dtype} {image.shape}")
    return image


def _largest_first(boxes) -> list[tuple[int, int, int, int]]:
    return sorted(boxes, key=lambda box: box[2] * box[3], reverse=True)


def square_around(box: tuple, image_shape: tuple, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """(left, top, side) of the square around `box`, widened by `margin` of the box on each side.

    Moved, not shrunk, to stay inside the image where it can; never larger than the image.
    """
    if margin < 0:
        raise ValueError(f"margin must be at least 0. Received: margin={margin}")
    height, width = image_shape[:2]
    x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * margin)))
    side = max(1, min(side, width, height))
    centre_x, centre_y = x + w / 2, y + h / 2
    left = int(round(min(max(centre_x - side / 2, 0), width - side)))
    top = int(round(min(max(centre_y - side / 2, 0), height - side)))
    return left, top, side


def crop_face(image: np.ndarray, box: tuple, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square around the face in `box` (see `square_around`), at the image's own resolution and channel order."""
    left, top, side = square_around(box, image.shape, margin)
    return image[top : top + side, left : left + side]

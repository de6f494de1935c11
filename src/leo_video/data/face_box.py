"""One face box per clip, for face datasets shipped without boxes (FaceForensics, talking heads).

Detector: OpenCV's Viola-Jones frontal-face cascade (``haarcascade_frontalface_default.xml``), whose
trained model ships inside the ``opencv-python-headless`` wheel (``cv2.data.haarcascades``), so nothing
is downloaded at run time. Why this one: facenet-pytorch (MTCNN weights in its wheel) pins
``torch<2.3`` and has had no release since 2024; MediaPipe's current releases load their face models
as separate downloads; OpenCV's 5.x wheels dropped the cascades, while its maintained 4.x line (4.14 in
2026) still ships them, hence ``opencv-python-headless>=4.8,<5``. A cascade finds frontal and
near-frontal faces, which is what FaceForensics and talking-head footage hold.

Convention (FOMM's video-preprocessing for VoxCeleb does the same: one box per clip, the union of the
per-frame boxes, enlarged, square): the detector runs on :data:`SAMPLED_FRAMES` frames spread over the
clip; the largest face of each frame is kept and boxes far from the median are dropped (a false
detection in the background); the union of the rest is grown by :data:`ENLARGE` of its side on each
side, so that hair and chin are in (a cascade box spans brows to mouth), made square about its centre
(side = the larger of width and height), and shifted (then shrunk if needed) to lie inside the frame.
That gives head-and-shoulders-free face crops like the 256x256 FaceForensics frames StyleGAN-V and
MoCoGAN-HD train on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ..errors import InputError
from .clips import PixelBox

SAMPLED_FRAMES = 16
ENLARGE = 0.3  # extra margin on each side, as a fraction of the union box's side
DETECT_SIDE = 320  # frames are shrunk to this longer side for detection (speed; faces stay > 32 px)


class NoFaceError(InputError):
    """No face was found on any sampled frame of a clip."""


@lru_cache(maxsize=None)
def _cascade(name: str):
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {name} not found (opencv-python-headless>=4.8,<5 ships it)")
    return cascade


def detect(frame: np.ndarray, cascade: str = "haarcascade_frontalface_default.xml",
           min_fraction: float = 0.1) -> list[PixelBox]:
    """Boxes ``(x0, y0, x1, y1)`` found by an OpenCV cascade in a uint8 ``(H, W, 3)`` RGB frame.

    ``min_fraction``: smallest object side as a fraction of the frame's shorter side.
    """
    import cv2

    scale = min(1.0, DETECT_SIDE / max(frame.shape[:2]))
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    smallest = max(8, int(min(grey.shape) * min_fraction))
    found = _cascade(cascade).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
    return [tuple(int(round(v / scale)) for v in (x, y, x + w, y + h)) for x, y, w, h in found]


def clip_face_box(frames: Sequence[np.ndarray], width: int, height: int) -> PixelBox:
    """The square face box of a clip from a few of its frames ``(H, W, 3)``; :class:`NoFaceError` if none."""
    boxes = [max(found, key=_area) for found in map(detect, frames) if found]  # largest face per frame
    if not boxes:
        raise NoFaceError(f"no face found on {len(frames)} sampled frames")
    x0, y0, x1, y1 = _union(_drop_outliers(np.array(boxes, dtype=float)))
    side = max(x1 - x0, y1 - y0) * (1 + 2 * ENLARGE)
    return _square_inside((x0 + x1) / 2, (y0 + y1) / 2, side, width, height)


def _area(box: PixelBox) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _drop_outliers(boxes: np.ndarray) -> np.ndarray:
    """Keep boxes ``(N, 4)`` whose centre lies within half a median side of the median centre."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = np.median(boxes[:, 2] - boxes[:, 0])
    near = np.linalg.norm(centres - np.median(centres, axis=0), axis=1) <= side / 2
    return boxes[near] if near.any() else boxes


def _union(boxes: np.ndarray) -> tuple[float, float, float, float]:
    return boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()


def _square_inside(cx: float, cy: float, side: float, width: int, height: int) -> PixelBox:
    """The square of ``side`` centred at ``(cx, cy)``, shifted into the frame (shrunk if larger)."""
    side = int(round(min(side, width, height)))
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, x0 + side, y0 + side

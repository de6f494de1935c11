"""One clip of `prepare`: decode its frames, crop its region, resize, write (mp4 or frame folder)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from ..media.grid import sample_frame_indices
from ..media.image import resize_center_crop
from ..media.video import VideoReader
from .clip_output import clip_writer
from .clips import ClipSpec, PixelBox, pixel_box
from .face_box import SAMPLED_FRAMES, clip_face_box

if TYPE_CHECKING:
    from .prepare import PrepareConfig


def resample_indices(num_frames: int, source_fps: float, target_fps: float | None) -> Iterator[int]:
    """Source frame index of each output frame: the frame on screen at that time (dropped or held)."""
    if target_fps is None or math.isclose(source_fps, target_fps, rel_tol=1e-3):
        yield from range(num_frames)
        return
    duration = num_frames / source_fps
    for k in range(max(1, math.floor(duration * target_fps + 1e-6))):
        yield min(num_frames - 1, int(math.floor(k * source_fps / target_fps + 1e-6)))


def crop_frame(frame: np.ndarray, box: PixelBox | None, size: int) -> np.ndarray:
    """Cut ``box`` ``(x0, y0, x1, y1)`` out of ``(H, W, 3)``, then centre-crop and resize to ``(size, size, 3)``."""
    if box is not None:
        x0, y0, x1, y1 = box
        frame = frame[y0:y1, x0:x1]
    return resize_center_crop(frame, size)


def prepare_clip(spec: ClipSpec, path: Path, frames: Sequence[int], out_path: Path,
                 config: "PrepareConfig") -> tuple[PixelBox | None, float]:
    """Write ``spec``'s ``frames`` of the raw video ``path`` to ``out_path``; returns the crop box used
    (None for a centre crop) and the clip's frame rate. InputError if the raw video cannot be decoded or
    holds no face."""
    # Centre crops are scaled inside the decoder (fast); boxes need the full frame first.
    size = config.size if spec.region == "center" else None
    with VideoReader(path, size=size, still_ok=config.stills) as reader:
        info = reader.info
        box = _box(spec, reader, frames, info.width, info.height)
        fps = config.fps or info.fps
        picked = [frames[i] for i in resample_indices(len(frames), info.fps, config.fps)]
        with clip_writer(out_path, config.format, fps, config.crf) as sink:
            for frame in reader.iter_indices(picked):
                sink.write(frame if box is None else crop_frame(frame, box, config.size))
    return box, fps


def _box(spec: ClipSpec, reader: VideoReader, frames: Sequence[int], width: int, height: int) -> PixelBox | None:
    if spec.region == "center":
        return None
    if spec.region == "face":
        positions = sample_frame_indices(len(frames), min(SAMPLED_FRAMES, len(frames)))  # spread over the clip
        sampled = reader.read([frames[i] for i in positions])  # (K, H, W, 3)
        return clip_face_box(list(sampled), width, height)
    return pixel_box(spec.region, width, height)

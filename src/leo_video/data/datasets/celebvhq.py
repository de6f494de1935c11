"""CelebV-HQ as its authors process it (CelebV-HQ repository, ``download_and_process.py``).

``celebvhq_info.json`` is ``{"clips": {clip_id: {"ytb_id", "duration": {"start_sec", "end_sec"},
"bbox": {"top", "bottom", "left", "right"}, "attributes": ...}}}`` with the box normalised to 0-1; the
raw video is ``<ytb_id>.mp4``. What we follow from the authors' script: the box grows by 0.02 (of the
frame) on each side, clipped to [0, 1]; it is converted to pixels with ``round``; it becomes the square
whose side is twice ``min(h, w) // 2``, centred on the box; the clip is the time span
``start_sec <= t < end_sec`` (their ffmpeg ``-ss/-to``); the output is named ``<clip_id>``. Where we
differ: their ffmpeg ``crop`` also rounds x and y down to even numbers for yuv420p sources (a codec
detail, not part of the definition); we use the exact square (x, y floored to whole pixels). CelebV-HQ
ships no train/test split: use ``--split-file`` or the hash split.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError
from ..clips import ClipSpec, PixelBox, TimeSpan
from ..crop_inputs import read_json

EXPAND = 0.02  # the authors' margin on each side, in fractions of the frame


@dataclass(frozen=True)
class CelebVHQBox:
    """A normalised CelebV-HQ box; :meth:`pixels` applies the authors' expand-and-square rule."""

    top: float
    bottom: float
    left: float
    right: float

    def pixels(self, width: int, height: int) -> PixelBox:
        top, bottom = max(self.top - EXPAND, 0.0), min(self.bottom + EXPAND, 1.0)
        left, right = max(self.left - EXPAND, 0.0), min(self.right + EXPAND, 1.0)
        top, bottom = round(top * height), round(bottom * height)
        left, right = round(left * width), round(right * width)
        half = min(bottom - top, right - left) // 2
        y0, x0 = math.floor((top + bottom) / 2 - half), math.floor((left + right) / 2 - half)
        return x0, y0, x0 + 2 * half, y0 + 2 * half


def read_celebvhq_info(path: str | os.PathLike) -> list[ClipSpec]:
    """One :class:`ClipSpec` per clip of ``celebvhq_info.json``; InputError naming the file and clip."""
    path = Path(path)
    info = read_json(path, "metadata file")
    clips = info.get("clips") if isinstance(info, dict) else None
    if not isinstance(clips, dict):
        raise InputError(f'{path}: expected {{"clips": {{clip id: {{"ytb_id", "duration", "bbox"}}}}}}')
    return [_clip(clip_id, entry, f"{path}: clip {clip_id!r}") for clip_id, entry in clips.items()]


def _clip(clip_id: str, entry: dict, where: str) -> ClipSpec:
    try:
        ytb_id = str(entry["ytb_id"])
        start, end = float(entry["duration"]["start_sec"]), float(entry["duration"]["end_sec"])
        box = CelebVHQBox(*(float(entry["bbox"][k]) for k in ("top", "bottom", "left", "right")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: missing or malformed field ({exc})") from exc
    if not (0 <= box.top < box.bottom <= 1 and 0 <= box.left < box.right <= 1) or end <= start:
        raise InputError(f"{where}: needs 0 <= top < bottom <= 1, 0 <= left < right <= 1 and start < end")
    return ClipSpec(name=clip_id, source=ytb_id, region=box, span=TimeSpan(start, end), ids=(clip_id, ytb_id))

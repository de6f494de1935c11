"""TaichiHD as FOMM defines it: ``taichi-metadata.csv`` (first-order-model, ``data/taichi-loading``).

Columns ``video_id,start,end,bbox,fps,width,height,partition``: ``start``/``end`` are frame numbers of
the source video at ``fps``, the clip holds frames ``start <= i < end``; ``bbox`` is
``left-top-right-bottom`` in pixels of a ``width x height`` frame; ``partition`` is train/test. What we
follow from FOMM's ``load_videos.py``: frame ``i`` of the downloaded video (at its own rate) belongs to
the clip when ``i * fps_ref >= start * fps`` and ``i * fps_ref < end * fps``; the box is scaled to the
downloaded resolution and truncated to integers; the crop is resized to ``size x size``; clips are
named ``<video_id>#<start:06d>#<end:06d>``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ...errors import InputError
from ..clips import ClipSpec, FrameSpan, RefBox

COLUMNS = ("video_id", "start", "end", "bbox", "fps", "width", "height", "partition")


def read_taichi_metadata(path: str | os.PathLike) -> list[ClipSpec]:
    """One :class:`ClipSpec` per row of a TaichiHD metadata CSV; InputError naming the file and row."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such metadata file") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a CSV file ({exc})") from exc
    if not rows or any(c not in rows[0] for c in COLUMNS):
        raise InputError(f"{path}: expected the TaichiHD columns {','.join(COLUMNS)}")
    return [_clip(row, f"{path}: row {n}") for n, row in enumerate(rows, start=2)]


def _clip(row: dict, where: str) -> ClipSpec:
    try:
        start, end = int(row["start"]), int(row["end"])
        left, top, right, bottom = (int(v) for v in row["bbox"].split("-"))
        fps, width, height = float(row["fps"]), int(row["width"]), int(row["height"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed value ({exc})") from exc
    partition = row["partition"].strip()
    if partition not in ("train", "test") or end <= start or right <= left or bottom <= top:
        raise InputError(f"{where}: needs partition train/test, start < end and a box with area")
    video_id = row["video_id"].strip()
    name = f"{video_id}#{start:06d}#{end:06d}"
    return ClipSpec(name=name, source=video_id, region=RefBox(left, top, right, bottom, width, height),
                    span=FrameSpan(start, end, fps), partition=partition, ids=(name, video_id))

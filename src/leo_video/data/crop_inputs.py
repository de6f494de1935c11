"""Inputs of `prepare`: video files and frame folders (``--input``) or raw-video folders (``--raw``).

Crop-box JSON: ``{"<video file name, stem or relative path>": [x, y, w, h], ...}`` in pixels of the
upright frame.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..media.video import is_video_path
from .clips import ClipSpec, SquareBox
from .video_dataset import find_videos

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


def collect_inputs(inputs: Sequence[str | os.PathLike], stills: bool = False) -> list[tuple[Path, str]]:
    """``(video path, output name)`` for every video in ``inputs`` (files, frame folders, folders of them).

    ``stills``: every still image (a file given, or found under a folder) is a video of its own, one frame
    long, instead of a frame of its folder's video. Names are the path relative to the given folder without
    suffix, with ``/`` -> ``__``; unique.
    """
    found: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise InputError(f"{item}: no such file or folder")
        if item.is_dir() and (stills or not is_video_path(item)):
            found += [(p, "__".join(p.relative_to(item).with_suffix("").parts)) for p in find_videos(item, stills)]
        else:
            found.append((item, item.stem if item.is_file() else item.name))
    names: dict[str, int] = {}
    unique = []
    for path, name in found:
        count = names.get(name, 0)
        names[name] = count + 1
        unique.append((path, name if count == 0 else f"{name}_{count}"))
    return unique


def generic_specs(videos: list[tuple[Path, str]], crop: str, boxes: dict[str, Box] | None) -> tuple[list, dict]:
    """One whole-video :class:`ClipSpec` per input, cropped to the centre, the face or its JSON box."""
    specs, sources = [], {}
    for path, name in videos:
        region = crop if crop in ("center", "face") else "center"
        box = box_for(boxes, path, name) if boxes is not None else None
        if box is not None:
            x, y, w, h = box
            region = SquareBox((x, y, x + w, y + h))
        specs.append(ClipSpec(name=name, source=name, region=region, ids=(name, path.stem)))
        sources[name] = path
    return specs, sources


def index_raw_folders(folders: Sequence[str | os.PathLike]) -> dict[str, Path]:
    """``{video id: path}`` of the raw videos under ``folders`` (file stem or frame-folder name)."""
    raw: dict[str, Path] = {}
    for folder in map(Path, folders):
        if not folder.exists():
            raise InputError(f"{folder}: no such raw-video folder")
        for path in find_videos(folder) if folder.is_dir() else [folder]:
            raw.setdefault(path.stem if path.is_file() else path.name, path)
    return raw


def read_json(path: Path, what: str):
    """The parsed JSON of ``path``; InputError naming it when missing or not JSON (``what`` it should be)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such {what}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc


def load_crop_boxes(path: str | os.PathLike) -> dict[str, Box]:
    """Read a crop-box JSON ``{name: [x, y, w, h]}``; InputError naming the file if malformed."""
    path = Path(path)
    raw = read_json(path, "crop-box file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected an object {{video name: [x, y, w, h]}}")
    boxes = {}
    for key, box in raw.items():
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise InputError(f"{path}: box of {key!r} must be [x, y, w, h], got {box!r}")
        x, y, w, h = (int(round(v)) for v in box)
        if w < 1 or h < 1:
            raise InputError(f"{path}: box of {key!r} has no area: {box!r}")
        boxes[key] = (x, y, w, h)
    return boxes


def box_for(boxes: dict[str, Box], path: Path, name: str) -> Box | None:
    """The crop box of a video, looked up by file name, stem, output name or full path."""
    for key in (path.name, path.stem, name, str(path)):
        if key in boxes:
            return boxes[key]
    return None

"""`prepare`: turn raw videos into a dataset folder that :class:`VideoDataset` reads.

Each input video (file or frame folder) is cropped to a square — its centre, or a per-video box
from a JSON file — resized to ``size x size``, optionally resampled to a new frame rate, and written
as H.264 mp4 to ``out/train/`` or ``out/test/``::

    out/prepare.json          the settings (a rerun with other settings is refused)
    out/train/<name>.mp4      out/test/<name>.mp4

Rerunning the same command is cheap and safe: outputs are written atomically, so an existing output
is complete and is skipped; an interrupted run resumes where it stopped. The split ranks videos by
a hash of (seed, name), so it does not depend on input order, and a video already prepared stays
in its split (adding videos later never moves old ones).

Crop-box JSON: ``{"<video file name, stem or relative path>": [x, y, w, h], ...}`` in pixels of the
upright frame; a non-square box is reduced to its centre square; videos without a box are
centre-cropped (and counted).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import InputError
from ..media.image import resize_center_crop
from ..media.video import VideoReader, VideoWriter, is_video_path, probe_video
from ..utils.atomic import atomic_write_text
from .video_dataset import SPLITS, find_videos

Box = tuple[int, int, int, int]  # x, y, w, h in pixels
SETTINGS_FILE = "prepare.json"
# Datasets are read at random frames (training pairs, clips): a keyframe every 16 frames bounds the
# frames decoded per read to 15, for a file about 10-20% larger than with x264's default of 250.
KEYFRAME_INTERVAL = 16


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of one prepared dataset (saved as ``prepare.json`` next to the videos)."""

    size: int = 256
    fps: float | None = None  # None keeps each video's own rate
    test_fraction: float = 0.1
    crop: str = "center"  # "center" or the path of a crop-box JSON file
    seed: int = 0
    crf: int = 18

    def __post_init__(self) -> None:
        if self.size < 16:
            raise InputError(f"--size {self.size}: must be at least 16")
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"--fps {self.fps}: must be positive")
        if not 0 <= self.test_fraction < 1:
            raise InputError(f"--test-fraction {self.test_fraction}: must be in [0, 1)")


@dataclass
class PrepareSummary:
    """What a run did: counts per outcome and the inputs that failed, with reasons."""

    written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    existing: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    failed: list[tuple[str, str]] = field(default_factory=list)
    centre_cropped_without_box: int = 0

    def line(self) -> str:
        total = {s: self.written[s] + self.existing[s] for s in SPLITS}
        line = (
            f"prepared {sum(self.written.values())} videos, {sum(self.existing.values())} already done, "
            f"{len(self.failed)} failed; dataset: {total['train']} train / {total['test']} test"
        )
        if self.centre_cropped_without_box:
            line += f"; {self.centre_cropped_without_box} without a crop box were centre-cropped"
        return line


# ----------------------------------------------------------------------------- inputs and splits


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """``(video path, output name)`` for every video in ``inputs`` (files, frame folders, folders of them).

    Names are the path relative to the given folder without suffix, with ``/`` -> ``__``; unique.
    """
    found: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise InputError(f"{item}: no such file or folder")
        if item.is_dir() and not is_video_path(item):
            found += [(p, "__".join(p.relative_to(item).with_suffix("").parts)) for p in find_videos(item)]
        else:
            found.append((item, item.stem if item.is_file() else item.name))
    names: dict[str, int] = {}
    unique = []
    for path, name in found:
        count = names.get(name, 0)
        names[name] = count + 1
        unique.append((path, name if count == 0 else f"{name}_{count}"))
    return unique


def split_of(name: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) per (seed, name), independent of input order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(names: Sequence[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Choose ``round(n * test_fraction)`` test videos (at least one when the fraction > 0 and n > 1)."""
    n_test = round(len(names) * test_fraction)
    if test_fraction > 0 and len(names) > 1:
        n_test = max(1, n_test)
    ranked = sorted(names, key=lambda name: split_of(name, seed))
    test = set(ranked[:n_test])
    return {name: "test" if name in test else "train" for name in names}


def load_crop_boxes(path: str | os.PathLike) -> dict[str, Box]:
    """Read a crop-box JSON ``{name: [x, y, w, h]}``; InputError naming the file if malformed."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such crop-box file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
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


# ----------------------------------------------------------------------------- one video


def resample_indices(num_frames: int, source_fps: float, target_fps: float | None) -> Iterator[int]:
    """Source frame index of each output frame: the frame on screen at that time (dropped or held)."""
    if target_fps is None or math.isclose(source_fps, target_fps, rel_tol=1e-3):
        yield from range(num_frames)
        return
    duration = num_frames / source_fps
    for k in range(max(1, math.floor(duration * target_fps + 1e-6))):
        yield min(num_frames - 1, int(math.floor(k * source_fps / target_fps + 1e-6)))


def crop_frame(frame: np.ndarray, box: Box | None, size: int) -> np.ndarray:
    """Cut ``box`` (clipped to the frame) out of ``(H, W, 3)``, then centre-crop and resize to ``(size, size, 3)``."""
    if box is not None:
        x, y, w, h = box
        H, W = frame.shape[:2]
        x0, y0 = min(max(x, 0), W - 1), min(max(y, 0), H - 1)
        x1, y1 = max(min(x + w, W), x0 + 1), max(min(y + h, H), y0 + 1)
        frame = frame[y0:y1, x0:x1]
    return resize_center_crop(frame, size)


def prepare_video(path: Path, out_path: Path, config: PrepareConfig, box: Box | None) -> int:
    """Write one prepared video; returns its frame count. InputError if the input cannot be read."""
    # Centre crops are scaled inside the decoder (fast); boxes need the full frame first.
    with VideoReader(path, size=config.size if box is None else None) as reader:
        info = reader.info
        fps = config.fps or info.fps
        with VideoWriter(out_path, fps=fps, crf=config.crf, keyframe_interval=KEYFRAME_INTERVAL) as writer:
            for frame in reader.iter_indices(resample_indices(len(reader), info.fps, config.fps)):
                writer.write(frame if box is None else crop_frame(frame, box, config.size))
        return writer.frames_written


def is_complete(path: Path, size: int) -> bool:
    """An existing output is complete when it probes as a ``size x size`` video (writes are atomic)."""
    try:
        info = probe_video(path)
    except InputError:
        return False
    return info.width == size and info.height == size and info.frames > 0


# ----------------------------------------------------------------------------- whole dataset


def check_settings(out: Path, config: PrepareConfig, overwrite: bool) -> None:
    """Refuse to mix settings in one dataset folder; record the settings of this run."""
    settings = out / SETTINGS_FILE
    if settings.exists() and not overwrite:
        try:
            previous = json.loads(settings.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous != asdict(config):
            raise InputError(
                f"{out}: was prepared with other settings ({settings}); "
                "pass --overwrite to redo it or use another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings, json.dumps(asdict(config), indent=2) + "\n")


def prepare_dataset(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: PrepareConfig = PrepareConfig(),
    overwrite: bool = False,
    progress: bool = True,
    warn=None,
) -> PrepareSummary:
    """Prepare every video in ``inputs`` into ``out/{train,test}/<name>.mp4`` (see the module docstring).

    Bad inputs are skipped and reported through ``warn(message)`` (default: stderr); the summary
    counts them. Raises InputError when no input yields a video.
    """
    from tqdm import tqdm

    warn = warn or (lambda message: tqdm.write(f"leo-video prepare: warning: {message}", file=sys.stderr))
    out = Path(out)
    videos = collect_inputs(inputs)
    if not videos:
        raise InputError(f"{', '.join(map(str, inputs))}: no videos or frame folders found")
    boxes = load_crop_boxes(config.crop) if config.crop != "center" else None
    check_settings(out, config, overwrite)
    summary = PrepareSummary()
    todo, usable = [], []  # the split is drawn over every usable video, so a resumed run agrees
    checking = tqdm(videos, desc="check", unit="video", disable=not progress, file=sys.stderr, leave=False)
    for path, name in checking:  # finished outputs first, then probe the rest (cheap: no full decode)
        split = _existing_split(out, name) if not overwrite else None
        if split is not None and is_complete(out / split / f"{name}.mp4", config.size):
            summary.existing[split] += 1
            usable.append(name)
            continue
        try:
            probe_video(path)
        except InputError as exc:
            summary.failed.append((str(path), str(exc)))
            warn(f"skipped {exc}")
            continue
        todo.append((path, name, split))
        usable.append(name)
    splits = assign_splits(usable, config.test_fraction, config.seed)
    for path, name, split in tqdm(todo, desc="prepare", unit="video", disable=not progress, file=sys.stderr):
        split = split or splits[name]
        for other in SPLITS:  # with --overwrite a video may change split: never leave a stale copy
            if other != split:
                (out / other / f"{name}.mp4").unlink(missing_ok=True)
        box = box_for(boxes, path, name) if boxes is not None else None
        summary.centre_cropped_without_box += boxes is not None and box is None
        try:
            prepare_video(path, out / split / f"{name}.mp4", config, box)
        except InputError as exc:
            summary.failed.append((str(path), str(exc)))
            warn(f"skipped {exc}")
            continue
        summary.written[split] += 1
    if not any(summary.written.values()) and not any(summary.existing.values()):
        raise InputError(f"{out}: no input could be prepared ({len(summary.failed)} failed)")
    return summary


def _existing_split(out: Path, name: str) -> str | None:
    for split in SPLITS:
        if (out / split / f"{name}.mp4").exists():
            return split
    return None

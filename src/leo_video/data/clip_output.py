"""How `prepare` stores a clip: an H.264 mp4 or a frame folder (png, lossless; jpg), always atomically.

``out/<split>/<name>.mp4`` or ``out/<split>/<name>/0000000.png ...`` (FOMM's frame-folder layout, seven
digits). An output that exists is complete: files and folders appear under their final name only when
fully written (:mod:`leo_video.utils.atomic`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ..errors import InputError
from ..media.video import VideoWriter, probe_video
from ..utils.atomic import atomic_folder
from .clips import CLIP_FORMATS
from .video_dataset import SPLITS

FORMATS = CLIP_FORMATS
JPEG_QUALITY = 95  # libjpeg quality of --format jpg (4:2:0 chroma, as Pillow's default)
# Datasets are read at random frames (training pairs, clips): a keyframe every 16 frames bounds the
# frames decoded per read to 15, for a file about 10-20% larger than with x264's default of 250.
KEYFRAME_INTERVAL = 16


def describe(fmt: str, crf: int) -> str:
    """One line naming the storage and its quality (for the summary and the report)."""
    return {
        "mp4": f"H.264 mp4, CRF {crf} (lossy), yuv420p, keyframe every {KEYFRAME_INTERVAL} frames",
        "png": "png frame folders (lossless)",
        "jpg": f"jpg frame folders, quality {JPEG_QUALITY} (lossy)",
    }[fmt]


def output_path(out: Path, split: str, name: str, fmt: str) -> Path:
    return out / split / (f"{name}.mp4" if fmt == "mp4" else name)


def existing_split(out: Path, name: str, fmt: str) -> str | None:
    """The split folder that already holds a finished output of ``name``, if any."""
    for split in SPLITS:
        path = output_path(out, split, name, fmt)
        if path.exists() and (fmt != "mp4" or _probes(path)):
            return split
    return None


def _probes(path: Path) -> bool:
    try:
        return probe_video(path).frames > 0
    except InputError:
        return False


def remove_output(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def clip_writer(path: Path, fmt: str, fps: float, crf: int) -> Iterator["FrameSink"]:
    """Yield a sink taking uint8 ``(S, S, 3)`` frames; the output appears only if the block succeeds."""
    if fmt == "mp4":
        with VideoWriter(path, fps=fps, crf=crf, keyframe_interval=KEYFRAME_INTERVAL) as writer:
            yield FrameSink(writer.write)
        return
    with frame_folder_writer(path, fmt) as sink:
        yield sink


@contextlib.contextmanager
def frame_folder_writer(path: Path, fmt: str = "png") -> Iterator["FrameSink"]:
    """Yield a sink writing uint8 ``(H, W, 3)`` frames as ``path/0000000.png ...`` (``fmt`` png or jpg); the
    folder appears under ``path`` only when the block succeeds with at least one frame. Every frame folder
    the package writes (``prepare``, ``make-synthetic --format frames``) comes from here; readers order
    frames by the number in the name, so folders with other digit counts (six, from older versions) read alike."""
    with atomic_folder(path, overwrite=True) as tmp:
        sink = FrameSink(lambda frame: _save_frame(tmp, sink.count, frame, fmt))
        yield sink
        if sink.count == 0:
            raise InputError(f"{path}: no frames to write")


class FrameSink:
    """Counts frames handed to a writer function."""

    def __init__(self, write):
        self._write, self.count = write, 0

    def write(self, frame: np.ndarray) -> None:
        self._write(frame)
        self.count += 1


def _save_frame(folder: Path, index: int, frame: np.ndarray, fmt: str) -> None:
    image = Image.fromarray(frame)
    if fmt == "png":
        image.save(folder / f"{index:07d}.png")
    else:
        image.save(folder / f"{index:07d}.jpg", quality=JPEG_QUALITY)

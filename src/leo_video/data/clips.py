"""What `prepare` cuts out of a raw video: one :class:`ClipSpec` per output clip.

A spec names its raw video, the frames it keeps (a span of the source, given in frames at a reference
rate or in seconds) and the region (a pixel box at a reference resolution, a normalised box, the
centre, or the face found by a detector). :func:`resolve_frames` and :func:`pixel_box` turn a spec into
frame indices and a pixel box of the *downloaded* video, whose rate and resolution may differ from
the ones the metadata was written for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..errors import InputError

# How `prepare` stores a clip: H.264 mp4, or png / jpg frame folders (names only: `prepare --help` reads them).
CLIP_FORMATS = ("mp4", "png", "jpg")
# `prepare --preset NAME`: the paper datasets whose official metadata `data.datasets.PRESETS` reads.
PRESET_NAMES = ("taichi", "celebvhq")

PixelBox = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in pixels of the raw frame


@dataclass(frozen=True)
class FrameSpan:
    """Source frames ``start <= i * ref_fps / fps < end`` (TaichiHD: frame numbers at ``ref_fps``).

    With ``ref_fps=None`` the bounds are frame numbers of the raw video itself.
    """

    start: int
    end: int
    ref_fps: float | None = None


@dataclass(frozen=True)
class TimeSpan:
    """Source frames shown at times ``start_sec <= i / fps < end_sec`` (CelebV-HQ's ``duration``)."""

    start_sec: float
    end_sec: float


@dataclass(frozen=True)
class RefBox:
    """A pixel box ``(left, top, right, bottom)`` drawn on a ``ref_width x ref_height`` frame."""

    left: int
    top: int
    right: int
    bottom: int
    ref_width: int
    ref_height: int

    def pixels(self, width: int, height: int) -> PixelBox:
        """Scaled to a ``width x height`` frame and truncated, as FOMM's ``load_videos.py`` does for
        TaichiHD (``int(left / (ref_width / width))``)."""
        sx, sy = self.ref_width / width, self.ref_height / height
        return int(self.left / sx), int(self.top / sy), int(self.right / sx), int(self.bottom / sy)


@dataclass(frozen=True)
class SquareBox:
    """A box already resolved to pixels of the raw frame (a crop-box JSON entry, a detected face)."""

    box: PixelBox

    def pixels(self, width: int, height: int) -> PixelBox:
        return self.box


class BoxRegion(Protocol):
    """Any region that becomes a pixel box once the raw frame size is known."""

    def pixels(self, width: int, height: int) -> PixelBox: ...


Region = BoxRegion | Literal["center", "face"]


@dataclass(frozen=True)
class ClipSpec:
    """One output clip: ``name`` (also its file name), the raw video key, frames and region.

    ``ids`` are the names a split file may use for it (output name, raw video id, clip id);
    ``partition`` is the metadata's own train/test label, when it has one.
    """

    name: str
    source: str
    region: Region = "center"
    span: FrameSpan | TimeSpan | None = None
    partition: str | None = None
    ids: tuple[str, ...] = field(default=())


class TooShortError(InputError):
    """The raw video ends before the span it should supply."""


def resolve_frames(spec: ClipSpec, num_frames: int, fps: float) -> range:
    """Indices of the raw video's frames in ``spec.span`` (all frames without a span).

    Raises :class:`TooShortError` when the span runs past the end of the video or is empty there.
    """
    span = spec.span
    if span is None:
        return range(num_frames)
    if isinstance(span, FrameSpan):
        scale = fps / span.ref_fps if span.ref_fps else 1.0
        first, stop = _ceil(span.start * scale), _ceil(span.end * scale)  # i >= start*scale, i < end*scale
    else:
        first, stop = _ceil(span.start_sec * fps), _ceil(span.end_sec * fps)
    if stop <= first:
        raise InputError(f"{spec.source}: clip {spec.name} spans no frame at {fps:g} fps")
    if stop > num_frames:
        raise TooShortError(
            f"{spec.source}: too short for clip {spec.name} (needs frames {first}..{stop - 1}, has {num_frames})"
        )
    return range(first, stop)


def _ceil(x: float) -> int:
    """Ceiling that forgives float noise (``3 * (30000/1001) / 29.97`` is 3.0000000001)."""
    return math.ceil(x - 1e-6)


def pixel_box(region: BoxRegion, width: int, height: int) -> PixelBox:
    """The region in pixels of a ``width x height`` raw frame, clipped to it (never empty)."""
    box = region.pixels(width, height)
    x0, y0 = min(max(box[0], 0), width - 1), min(max(box[1], 0), height - 1)
    x1, y1 = max(min(box[2], width), x0 + 1), max(min(box[3], height), y0 + 1)
    return x0, y0, x1, y1

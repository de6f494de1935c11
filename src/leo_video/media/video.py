"""Video files and frame folders: probing and streaming reads (PyAV, Pillow); writers re-exported.

Frames at this boundary are uint8 numpy ``(H, W, 3)`` / ``(T, H, W, 3)``; :func:`read_video` returns
model tensors ``(T, 3, S, S)`` in [-1, 1]. Every user-caused failure (missing, empty, truncated, not
a video, no decodable frame) is an :class:`~leo_video.errors.InputError` whose one-line message starts
with the path.

Files are indexed by demuxing their packets once (no decoding): that gives the exact frame count,
each frame's timestamp and the keyframes, so a read of frame ``i`` seeks to the last keyframe at or
before ``i`` and decodes only from there. Frames are streamed; a whole file is never held in memory.
Writing (:class:`VideoWriter`, :func:`write_video`) lives in :mod:`.video_writer` and is re-exported.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from .image import is_still_path, load_image_uint8, numpy_to_frames, open_image_checked, resize_center_crop, to_rgb
from .video_writer import VideoWriter, write_video

__all__ = [
    "VIDEO_SUFFIXES",
    "FRAME_SUFFIXES",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "probe_video",
    "read_video",
    "write_video",
    "is_video_path",
    "natural_key",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAME_FOLDER_FPS = 25.0  # frame folders carry no rate; 25 fps is the convention of TaichiHD/FOMM data


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video file or frame folder.

    ``width``/``height`` are the displayed size (after rotation metadata); ``codec`` is the decoder
    name (``"h264"``, ``"gif"`` ...) or ``"frames"`` for a frame folder.
    """

    path: str
    frames: int
    fps: float
    width: int
    height: int
    codec: str

    def to_dict(self) -> dict:
        return asdict(self)


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png`` (one key: not worth the natsort dependency)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_video_path(path: Path) -> bool:
    """True for a file with a video suffix or a folder that directly holds png/jpg frames."""
    if path.is_dir():
        return any(p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir() if p.is_file())
    return path.suffix.lower() in VIDEO_SUFFIXES


# ----------------------------------------------------------------------------- frame folders


class _FolderSource:
    """A folder of png/jpg frames in natural name order (the TaichiHD / first-order-model layout), or one
    still image read as a video of one frame (``still=True``: e.g. `prepare --stills`)."""

    def __init__(self, path: Path, still: bool = False):
        self.path = path
        self.files = [path] if still else sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES),
            key=lambda p: natural_key(p.name),
        )
        if not self.files:
            raise InputError(f"{path}: folder holds no png/jpg frames")

    def probe(self) -> VideoInfo:
        with open_image_checked(self.files[0]) as image:
            width, height = image.size
        load_image_uint8(self.files[0])  # verifies that the first frame actually decodes
        return VideoInfo(str(self.path), len(self.files), FRAME_FOLDER_FPS, width, height, "frames")

    def decode(self, indices: Sequence[int], size: int | None) -> Iterator[np.ndarray]:
        for index in indices:
            frame = load_image_uint8(self.files[index])  # (H, W, 3)
            yield frame if size is None else resize_center_crop(frame, size)

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- files (PyAV)


@dataclass
class _PacketIndex:
    """Presentation timestamps of the shown frames, in order, and which frames are keyframes."""

    pts: list[int] | None  # None when the container gives no timestamps (then no seeking)
    keyframes: list[int]  # frame indices of keyframes, ascending
    count: int
    declared: int = 0  # frame count in the container header (0: not stated)

    @functools.cached_property
    def index_of(self) -> dict[int, int]:
        """Frame index of each presentation timestamp (empty without timestamps)."""
        return {} if self.pts is None else {p: i for i, p in enumerate(self.pts)}


def _open_container(path: Path):
    import av

    try:
        container = av.open(str(path), mode="r")
    except FileNotFoundError as exc:  # e.g. deleted or replaced while a dataset was reading it
        raise InputError(f"{path}: no such file (it was there when the video was indexed)") from exc
    except av.FFmpegError as exc:
        raise InputError(f"{path}: {_describe_open_failure(path, exc)}") from exc
    if not container.streams.video:
        no_streams = len(container.streams) == 0
        container.close()
        if no_streams and _is_iso_media(path):
            raise InputError(f"{path}: truncated or corrupt video (no streams in the container)")
        raise InputError(f"{path}: not a video (no video stream)")
    return container


def _describe_open_failure(path: Path, exc: Exception) -> str:
    reason = _short(exc)
    if _is_iso_media(path):
        return f"truncated or corrupt video (container unreadable: {reason})"
    return f"not a video ({reason})"


def _is_iso_media(path: Path) -> bool:
    """True when the file starts like an ISO-BMFF (mp4/mov) container."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[4:8] in (b"ftyp", b"mdat", b"moov", b"wide", b"free")


class _FileSource:
    """A video file decoded with PyAV; the container is opened lazily (safe across DataLoader workers)."""

    def __init__(self, path: Path):
        if path.stat().st_size == 0:
            raise InputError(f"{path}: file is empty")
        self.path = path
        self.index = self._build_index()

    def _build_index(self) -> _PacketIndex:
        import av

        container = _open_container(self.path)
        try:
            stream = container.streams.video[0]
            declared = stream.frames  # from the header (0 when the container does not say); read while open
            pts, keys, has_pts, demuxed = [], set(), True, 0
            for packet in container.demux(stream):
                demuxed += packet.size > 0
                if packet.size == 0 or packet.is_discard:  # flush packets / edit-list priming frames
                    continue
                has_pts &= packet.pts is not None
                pts.append(packet.pts if packet.pts is not None else len(pts))
                if packet.is_keyframe:
                    keys.add(pts[-1])
        except av.FFmpegError as exc:
            raise InputError(f"{self.path}: truncated or corrupt video ({_short(exc)})") from exc
        finally:
            container.close()  # PyAV >= 18.1.1 refuses to read a stream's fields after this
        if declared and demuxed < declared:
            raise InputError(f"{self.path}: truncated video (header declares {declared} frames, file holds {demuxed})")
        order = sorted(pts) if has_pts else pts
        keyframes = [i for i, p in enumerate(order) if p in keys] or [0]
        return _PacketIndex(order if has_pts else None, keyframes, len(pts), declared)

    def probe(self) -> VideoInfo:
        container = _open_container(self.path)
        try:
            stream = container.streams.video[0]
            first = self._first_frame(container, stream)
            if self.index.count == 0:
                raise InputError(f"{self.path}: video has no frames")
            fps = _stream_fps(stream, self.index.count)
            width, height = first.width, first.height
            if _rotation_turns(first) % 2:
                width, height = height, width
            codec = stream.codec_context.name
        finally:
            container.close()
        if not self.index.declared:  # no header count to compare with: make sure the tail decodes
            self._check_last_frame()
        return VideoInfo(str(self.path), self.index.count, fps, width, height, codec)

    def _first_frame(self, container, stream):
        import av

        try:
            for frame in container.decode(stream):
                return frame
        except av.FFmpegError as exc:
            raise InputError(f"{self.path}: no decodable frames ({_short(exc)})") from exc
        raise InputError(f"{self.path}: no decodable frames")

    def _check_last_frame(self) -> None:
        # Without a header frame count a cut-off file shows only when its tail is decoded.
        next(iter(self.decode([self.index.count - 1], size=16)))

    def decode(self, indices: Iterable[int], size: int | None) -> Iterator[np.ndarray]:
        """Yield the frames at ascending ``indices`` as uint8 ``(H, W, 3)`` (or ``(size, size, 3)``).

        Each call has its own decoder, so several iterators over one file do not disturb each other;
        the decoder is closed when the iterator ends or is dropped.
        """
        cursor = None
        try:
            for target in indices:
                if not 0 <= target < self.index.count:
                    raise IndexError(f"frame {target} out of range for {self.path} ({self.index.count} frames)")
                if cursor is None or cursor.should_seek(target):
                    if cursor is not None:
                        cursor.close()
                    cursor = _Cursor(self, target)
                yield _frame_to_rgb(cursor.advance_to(target), size, cursor.reformatter)
        finally:
            if cursor is not None:
                cursor.close()

    def close(self) -> None:
        """Nothing stays open between reads (kept for the reader interface)."""


class _Cursor:
    """One open PyAV decoder of a :class:`_FileSource`, positioned before frame ``start``."""

    def __init__(self, source: _FileSource, start: int):
        import av.video.reformatter

        self.source = source
        self.container = _open_container(source.path)
        # PyAV's default slice threading: frame threading ("AUTO") was slower for random access here
        # (thread start-up per cursor; DataLoader workers already use the cores).
        stream = self.container.streams.video[0]
        index = source.index
        key = max((k for k in index.keyframes if k <= start), default=0)
        if key > 0 and index.pts is not None:  # jump to the last keyframe before the target
            self.container.seek(index.pts[key], stream=stream, backward=True, any_frame=False)
        self.position = key if index.pts is not None else 0  # index of the next frame to come out
        self.frames = self._numbered_frames(stream, from_seek=self.position > 0)
        # Our own scaler, made where it decodes: PyAV 18.1.1's one per thread and process hangs forked DataLoader
        # workers (docs/DEVELOPING.md, "PyAV 18.1.1 and forked DataLoader workers"). No frame.to_ndarray(width=...).
        self.reformatter = av.video.reformatter.VideoReformatter()

    def _numbered_frames(self, stream, from_seek: bool) -> Iterator[tuple[int, object]]:
        """Yield ``(frame index, av.VideoFrame)``; indices come from timestamps, or by counting."""
        import av

        lookup = self.source.index.index_of
        counter = None if from_seek else 0
        try:
            for frame in self.container.decode(stream):
                index = lookup.get(frame.pts) if lookup else None
                if index is None:
                    if counter is None:  # after a seek we cannot count: start again from frame 0
                        raise _SeekFailed
                    index = counter
                counter = index + 1
                yield index, frame
        except av.FFmpegError as exc:
            raise InputError(f"{self.source.path}: corrupt video after frame {counter} ({_short(exc)})") from exc

    def should_seek(self, target: int) -> bool:
        if target < self.position:
            return True
        key = max((k for k in self.source.index.keyframes if k <= target), default=0)
        return key > self.position  # a keyframe lies between here and the target: skip decoding

    def advance_to(self, target: int):
        """Decode forward to frame ``target`` and return it (an ``av.VideoFrame``)."""
        try:
            for index, frame in self.frames:
                self.position = index + 1
                if index == target:
                    return frame
                if index > target:
                    break
        except _SeekFailed:
            self.source.index.keyframes = [0]  # timestamps are unreliable here: decode from the start
            self.close()
            self.__init__(self.source, 0)
            return self.advance_to(target)
        raise InputError(f"{self.source.path}: frame {target} could not be decoded (truncated or corrupt video)")

    def close(self) -> None:
        """Idempotent: a cursor whose reopen failed (file gone, see ``advance_to``) is closed again by
        its owner."""
        # Drop the decode generator first: it holds the codec context (and FFmpeg's decoder threads),
        # which would otherwise live on in a reference cycle until the garbage collector runs.
        frames, self.frames = self.frames, _closed_frames()
        frames.close()
        self.container.close()


def _closed_frames() -> Iterator[tuple[int, object]]:
    """An exhausted generator: what a closed cursor decodes from (and can be closed again)."""
    yield from ()


class _SeekFailed(Exception):
    """Frame timestamps after a seek did not match the packet index."""


def _short(exc: Exception) -> str:
    """First line of an error (FFmpeg's own wording, without errno and function names)."""
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:120]


def _stream_fps(stream, frames: int) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if rate:
        return float(rate)
    if stream.duration and stream.time_base and frames > 1:
        return frames / float(stream.duration * stream.time_base)
    return FRAME_FOLDER_FPS


def _rotation_turns(frame) -> int:
    """Counter-clockwise quarter turns that display the frame upright (from its display matrix)."""
    try:
        return round(frame.rotation / 90) % 4
    except (AttributeError, TypeError, ValueError):
        return 0


def _frame_to_rgb(frame, size: int | None, reformatter) -> np.ndarray:
    """av.VideoFrame -> uint8 ``(H, W, 3)`` upright, converted by ``reformatter`` (an ``av.video.reformatter.
    VideoReformatter``: the cursor's own); with ``size``, centre-cropped to ``(size, size, 3)``.

    Frames with an alpha channel (qtrle argb, png/ffv1 rgba or yuva ...) are composited on white.

    Scaling happens in swscale (area filter when shrinking) before the crop, so large frames never
    go through a float resize; the short side is scaled to ``size``, then the centre is cut out.
    """
    turns = _rotation_turns(frame)
    alpha = any(component.is_alpha for component in frame.format.components)
    pixels = "rgba" if alpha else "rgb24"
    scaling = {}
    if size is not None:
        scale = size / min(frame.width, frame.height)
        scaling = {"width": max(size, round(frame.width * scale)), "height": max(size, round(frame.height * scale)),
                   "interpolation": "AREA" if scale < 1 else "BICUBIC"}
    rgb = reformatter.reformat(frame, format=pixels, **scaling).to_ndarray()
    if alpha:  # composited on white, as transparent stills are (media.image.to_rgb)
        rgb = np.asarray(to_rgb(Image.fromarray(rgb, mode="RGBA")))
    if turns:
        rgb = np.rot90(rgb, k=turns)
    return np.ascontiguousarray(rgb if size is None else resize_center_crop(rgb, size))


# ----------------------------------------------------------------------------- public API


def _make_source(path: Path, still_ok: bool = False) -> _FileSource | _FolderSource:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _FolderSource(path)
    if is_still_path(path):
        if still_ok:
            return _FolderSource(path, still=True)
        raise InputError(f"{path}: is a still image, not a video (pass a folder of frames)")
    return _FileSource(path)


def probe_video(path: str | os.PathLike, still_ok: bool = False) -> VideoInfo:
    """Describe a video file or frame folder after verifying that its first frame decodes.

    ``still_ok``: a still image file is a video of one frame (at the frame-folder rate) instead of an error.

    The frame count is exact: shown-frame packets are counted by demuxing (no decoding). A count below
    the header's means a truncated file; without a header count the last frame is decoded as a check.
    Raises :class:`InputError` for missing, empty, truncated, non-video or undecodable inputs.
    """
    return _make_source(Path(path), still_ok).probe()


class VideoReader:
    """Streaming reader for a video file (mp4, mov, avi, mkv, webm, gif ...) or a frame folder.

    Frames come out as uint8 ``(H, W, 3)``; with ``size`` each frame is centre-cropped to a square
    and resized to ``(size, size, 3)``. Opening is cheap (the file is indexed, not decoded); the
    decoder is opened on first read, so a reader made in the main process works in DataLoader workers.
    """

    def __init__(self, path: str | os.PathLike, size: int | None = None, still_ok: bool = False):
        self.path = Path(path)
        self.size = size
        self._source = _make_source(self.path, still_ok)  # still_ok: a still image is a video of one frame
        self._info: VideoInfo | None = None

    @property
    def info(self) -> VideoInfo:
        """The :class:`VideoInfo` of the input (probed on first use)."""
        if self._info is None:
            self._info = self._source.probe()
        return self._info

    def __len__(self) -> int:
        source = self._source
        return source.index.count if isinstance(source, _FileSource) else len(source.files)

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[np.ndarray]:
        """Stream frames ``start, start + step, ... < stop`` as uint8 ``(H, W, 3)`` without loading the rest."""
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        stop = len(self) if stop is None else min(stop, len(self))
        return self._source.decode(range(start, stop, step), self.size)

    def iter_indices(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        """Stream the frames at ascending ``indices`` (repeats allowed) with one forward decoder."""
        indices = [int(i) for i in indices]
        if any(b < a for a, b in zip(indices, indices[1:])):
            raise ValueError("iter_indices needs ascending indices")
        unique = sorted(set(indices))
        decoded = zip(unique, self._source.decode(unique, self.size))
        current, frame = None, None
        for index in indices:
            while current != index:
                current, frame = next(decoded)
            yield frame

    def read(self, indices: Iterable[int]) -> np.ndarray:
        """Read the frames at ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, 3)``."""
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("read() needs at least one frame index")
        n = len(self)
        indices = [i + n if i < 0 else i for i in indices]
        wanted = sorted(set(indices))
        frames = dict(zip(wanted, self._source.decode(wanted, self.size)))
        shapes = {f.shape for f in frames.values()}
        if len(shapes) > 1:
            raise InputError(f"{self.path}: frames differ in size ({sorted(shapes)}); pass a size to resize them")
        return np.stack([frames[i] for i in indices])

    def close(self) -> None:
        """Release the decoder (it reopens on the next read)."""
        self._source.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # picklable for DataLoader workers: never ship an open decoder
        self.close()
        return self.__dict__.copy()


def read_video(
    path: str | os.PathLike, size: int | None = None, start: int = 0, stop: int | None = None, step: int = 1
) -> torch.Tensor:
    """Read frames ``start:stop:step`` as a float tensor ``(T, 3, S, S)`` in [-1, 1].

    With ``size`` frames are centre-cropped and resized to ``size x size``; without it they keep their
    size ``(T, 3, H, W)``.
    """
    with VideoReader(path, size=size) as reader:
        frames = list(reader.iter_frames(start, stop, step))
    if not frames:
        raise InputError(f"{path}: no frames in range {start}:{stop}:{step} ({len(reader)} frames)")
    if len({f.shape for f in frames}) > 1:
        raise InputError(f"{path}: frames differ in size; pass a size to resize them")
    return numpy_to_frames(np.stack(frames))  # (T, 3, S, S)

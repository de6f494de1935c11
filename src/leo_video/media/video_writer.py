"""Video writing: browser-playable H.264 mp4 and animated GIF, always atomic.

Re-exported by :mod:`leo_video.media.video`; import from there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..utils.atomic import atomic_path
from .image import frames_to_numpy

H264_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")


class VideoWriter:
    """Write an mp4 (H.264, yuv420p, browser-playable) or an animated GIF, streaming and atomically.

    Use as a context manager; the file appears under its final name only when the block ends
    without an exception (temp file + rename, :func:`leo_video.utils.atomic.atomic_path`)::

        with VideoWriter("out.mp4", fps=25) as writer:
            writer.write(frames)  # uint8 (T, H, W, 3) / (H, W, 3) or float (T, 3, H, W) / (3, H, W) in [-1, 1]

    Odd mp4 sizes are padded to even by repeating the last row/column (yuv420p needs even sizes).
    GIF frames get their own 256-colour palette (Pillow's median cut); every frame is kept, and the
    GIF loops forever. ``keyframe_interval`` (mp4) trades file size for cheap random access.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float = 25.0, *, crf: int = 18, keyframe_interval: int | None = None
    ):
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.keyframe_interval = keyframe_interval
        suffix = self.path.suffix.lower()
        if suffix != ".gif" and suffix not in H264_SUFFIXES:
            raise InputError(f"{self.path}: unsupported video suffix (use .mp4, .mov, .mkv or .gif)")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.kind = "gif" if suffix == ".gif" else "h264"
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._container = None
        self._stream = None
        self._shape: tuple[int, int] | None = None
        self.frames_written = 0

    def __enter__(self) -> "VideoWriter":
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def write(self, frames: np.ndarray | torch.Tensor) -> None:
        """Append frames: uint8 ``(H, W, 3)``/``(T, H, W, 3)`` or float ``(3, H, W)``/``(T, 3, H, W)`` in [-1, 1]."""
        if self._stack is None:
            raise RuntimeError("use VideoWriter as a context manager (with VideoWriter(...) as w:)")
        batch = _as_uint8_frames(frames)  # (T, H, W, 3)
        if self._shape is None:
            self._shape = batch.shape[1:3]
            self._open(*self._shape)
        elif batch.shape[1:3] != self._shape:
            raise ValueError(f"frame size changed from {self._shape} to {batch.shape[1:3]} in {self.path}")
        for frame in batch:
            self._container.mux(self._stream.encode(self._to_av_frame(frame)))
        self.frames_written += len(batch)

    def _open(self, height: int, width: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(10_000)
        if self.kind == "gif":
            self._container = av.open(str(self._tmp), mode="w", format="gif")
            self._stream = self._container.add_stream("gif", rate=rate)
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "pal8"
            return
        # faststart puts the index first, so browsers can play while downloading
        self._container = av.open(str(self._tmp), mode="w", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        # The same frames must give the same file (reproducible datasets from `make-synthetic`, `leo-video
        # demo`), so: one encoder thread (x264's threaded encodes can differ from run to run), and no
        # macroblock-tree rate control, which in the bundled x264 (core 165) reads an uninitialised stack
        # value, so the bytes depended on what the process ran before (docs/RELIABILITY.md, "Same frames").
        options = {"crf": str(self.crf), "preset": "medium", "threads": "1", "mbtree": "0"}
        if self.keyframe_interval:
            options |= {"g": str(self.keyframe_interval), "keyint_min": "1"}
        self._stream.options = options

    def _to_av_frame(self, frame: np.ndarray):
        import av

        if self.kind == "h264":
            return av.VideoFrame.from_ndarray(_pad_to_even(frame), format="rgb24")
        return av.VideoFrame.from_ndarray(_palettize(frame), format="pal8")

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise ValueError(f"{self.path}: no frames were written")
        self._container.mux(self._stream.encode(None))  # flush the encoder

    def _close_container(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._finish()
        except BaseException:
            self._close_container()
            self._stack.__exit__(*sys.exc_info())
            raise
        self._close_container()
        return bool(self._stack.__exit__(exc_type, exc, tb))


def _palettize(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(H, W, 3)`` -> (indices ``(H, W)``, ARGB palette ``(256, 4)``) for FFmpeg's GIF encoder."""
    from PIL import Image

    quantized = Image.fromarray(frame).quantize(colors=256)  # median cut + Floyd-Steinberg dithering
    rgb = np.asarray(quantized.getpalette()[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255  # opaque
    palette[: len(rgb), 1:] = rgb
    return np.asarray(quantized), palette


def _as_uint8_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """Normalise writer input to uint8 ``(T, H, W, 3)``."""
    if isinstance(frames, torch.Tensor):
        if frames.dtype == torch.uint8:
            frames = frames.cpu().numpy()
        else:
            if frames.ndim == 3:
                frames = frames[None]
            if frames.ndim != 4 or frames.shape[1] != 3:
                raise ValueError(f"float video tensors must be (T, 3, H, W), got {tuple(frames.shape)}")
            return frames_to_numpy(frames)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"numpy frames must be uint8 (T, H, W, 3), got {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"numpy frames must be (T, H, W, 3), got {frames.shape}")
    return frames


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)


def write_video(
    path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float = 25.0, *, crf: int = 18
) -> Path:
    """Write a whole video at once (see :class:`VideoWriter` for the accepted layouts); returns the path."""
    with VideoWriter(path, fps=fps, crf=crf) as writer:
        writer.write(frames)
    return Path(path)

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


class VideoWriter:
    """Write an mp4 (H.264, yuv420p, browser-playable) or an animated gif, atomically.

    Use as a context manager; the file appears under its final name only when the block ends
    without an exception (temp file + rename, :func:`leo_video.utils.atomic.atomic_path`)::

        with VideoWriter("out.mp4", fps=25) as writer:
            writer.write(frames)  # uint8 (T, H, W, 3) / (H, W, 3) or float (T, 3, H, W) / (3, H, W) in [-1, 1]

    Odd mp4 sizes are padded to even by repeating the last row/column (yuv420p needs even sizes).
    GIFs are assembled in memory (they are previews) and Pillow merges identical consecutive frames.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float = 25.0, *, crf: int = 18, keyframe_interval: int | None = None
    ):
        self.path = Path(path)
        self.keyframe_interval = keyframe_interval
        self.fps = float(fps)
        self.crf = int(crf)
        self.kind = "gif" if self.path.suffix.lower() == ".gif" else "h264"
        if self.kind == "h264" and self.path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
            raise InputError(f"{self.path}: unsupported video suffix (use .mp4, .mov, .mkv or .gif)")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._container = None
        self._stream = None
        self._gif_frames: list = []
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
        elif batch.shape[1:3] != self._shape:
            raise ValueError(f"frame size changed from {self._shape} to {batch.shape[1:3]} in {self.path}")
        for frame in batch:
            self._write_one(frame)
        self.frames_written += len(batch)

    def _write_one(self, frame: np.ndarray) -> None:
        from PIL import Image

        if self.kind == "gif":
            self._gif_frames.append(Image.fromarray(frame))
            return
        import av

        frame = _pad_to_even(frame)
        if self._container is None:
            self._container = av.open(str(self._tmp), mode="w", options={"movflags": "+faststart"})
            rate = Fraction(self.fps).limit_denominator(10_000)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf), "preset": "medium"}
            if self.keyframe_interval:  # short GOPs make random access (seeking) cheaper
                self._stream.options |= {"g": str(self.keyframe_interval), "keyint_min": "1"}
        packets = self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
        self._container.mux(packets)

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise ValueError(f"{self.path}: no frames were written")
        if self.kind == "gif":
            first, *rest = self._gif_frames
            duration = max(20, round(1000 / self.fps))  # ms; browsers slow down GIF delays under 20 ms
            first.save(self._tmp, format="GIF", save_all=True, append_images=rest, duration=duration, loop=0)
        else:
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
        self._gif_frames = []
        return bool(self._stack.__exit__(exc_type, exc, tb))


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

"""Motion transfer into a video file: the streaming loop that ``animate``, ``edit`` and the UI share."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import NumericalError
from ..media.grid import make_grid
from ..media.video import VideoReader, VideoWriter
from ..utils.progress import progress_bar
from .animate import AnimateOptions, frames_to_batch, transfer_motion_chunks


@dataclass
class TransferResult:
    """What :func:`write_transfer` wrote: ``frames`` frames at ``fps`` (the driving video's rate) to ``path``."""

    path: str
    frames: int
    fps: float


def write_transfer(animator, source: torch.Tensor, driving: str | os.PathLike, out: str | os.PathLike,
                   options: AnimateOptions = AnimateOptions(), side_by_side: bool = False,
                   max_frames: int | None = None, label: str = "animate", model: str = "animator") -> TransferResult:
    """Stream the motion of the video ``driving`` onto ``source`` (3, S, S) in [-1, 1] into the video file ``out``.

    ``side_by_side`` writes source | driving | result; ``max_frames`` stops early; ``label`` names the progress
    bar. NaN or inf in a rendering stops with a :class:`NumericalError` naming ``model`` (the checkpoint), and
    nothing is written (the writer is atomic).
    """
    reader = VideoReader(driving)
    total = len(reader) if max_frames is None else min(len(reader), max_frames)
    size = animator.config.size
    chunks = transfer_motion_chunks(animator, source, reader.iter_frames(stop=total), options)
    with VideoWriter(out, fps=reader.info.fps) as writer, progress_bar(total, label) as bar:
        for driving_frames, result in chunks:  # result (n, 3, S, S)
            n = len(result)
            if not torch.isfinite(result).all():
                raise NumericalError(f"{model}: rendered frames contain NaN or inf (check the weights); "
                                     f"{out} was not written")  # fmt: skip
            if side_by_side:
                drive = frames_to_batch(driving_frames, size, torch.device("cpu"))  # (n, 3, S, S)
                result = make_grid([source.expand(n, -1, -1, -1), drive, result.cpu()], ncols=3)
            writer.write(result.cpu())
            bar.update(n)
    return TransferResult(str(out), total, reader.info.fps)

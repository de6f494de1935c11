"""Motion codes of whole videos: the frozen LIA encoder run over a dataset (LEO_METHOD.md, "Stage 2").

Frames are decoded as a stream and encoded in batches, so memory does not depend on a video's
length. With several processes (``accelerate launch`` / ``torchrun``) each rank encodes every
``world_size``-th video into its own store folder ``OUT/rank-K`` — no two processes write one index
— and the main process merges them into ``OUT`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from ..data.video_dataset import SPLITS, find_videos, split_folder
from ..media.video import VideoReader
from ..utils.device import autocast
from .animate import batched, frames_to_batch


@dataclass(frozen=True)
class VideoToEncode:
    """One dataset video: its store name (path relative to the dataset root), file and split."""

    name: str
    path: Path
    split: str | None


def list_dataset_videos(root: Path) -> list[VideoToEncode]:
    """Every video of a dataset folder; with ``train/``/``test/`` folders, each tagged by its split."""
    if any((root / s).is_dir() for s in SPLITS):
        pairs = [(s, split_folder(root, s)) for s in SPLITS if (root / s).is_dir()]
    else:
        pairs = [(None, root)]
    return [
        VideoToEncode(str(path.relative_to(root)), path, split)
        for split, folder in pairs
        for path in find_videos(folder)
    ]


@torch.no_grad()
def encode_video(
    animator, reader: VideoReader, batch_frames: int = 32, frame_stride: int = 1,
    dtype: torch.dtype = torch.float32,
) -> Iterator[torch.Tensor]:
    """Yield the motion codes of every ``frame_stride``-th frame in chunks of (n, M), float32, CPU."""
    device = next(animator.parameters()).device
    size = animator.config.size
    for chunk in batched(reader.iter_frames(step=frame_stride), batch_frames):
        with autocast(device, dtype):
            codes = animator.encode_motion(frames_to_batch(chunk, size, device))  # (n, M)
        yield codes.float().cpu()

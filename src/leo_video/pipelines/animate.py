"""LIA motion transfer, self-reenactment and linear manipulation as streaming pipelines.

Every function encodes the source image once (appearance latent, feature pyramid, its own motion
code) and renders frames in batches through :meth:`LatentImageAnimator.render` — the official demo
instead re-encodes the source for every frame (layout notes, section 4.9). Driving frames are
decoded as a stream, so memory does not grow with the video's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
from einops import rearrange

from ..media.image import from_uint8, resize_center_crop
from ..models.lia import Appearance, pad_batch
from ..utils.device import autocast


@dataclass
class AnimateOptions:
    """How driving frames become motion: ``relative`` (LIA's vox/taichi demo) or absolute (TED demo).

    ``compile`` / ``channels_last``: the animator's inference fast paths
    (:meth:`~leo_video.models.lia.LatentImageAnimator.optimize_for_inference`), applied to it in place.
    Compiled, a last chunk shorter than ``batch_frames`` is padded with its last frame (the extra renderings
    are dropped), so every call has the batch size the first one compiled for: no second compilation.
    """

    relative: bool = True
    batch_frames: int = 16
    dtype: torch.dtype = torch.float32
    compile: bool = False
    channels_last: bool = False


def encode_source(animator, source: torch.Tensor, options: AnimateOptions) -> Appearance:
    """The source (3, S, S) encoded once: an :class:`Appearance` of batch 1.

    With ``compile`` it is encoded in a batch of ``batch_frames`` copies and the first kept: the encoder is
    then compiled for the batch size the driving chunks use, not a second time for a batch of one.
    """
    if not options.compile:
        return animator.encode_appearance(source[None])
    full = animator.encode_appearance(source[None].expand(options.batch_frames, -1, -1, -1))
    return Appearance(full.latent[:1], [f[:1] for f in full.features], full.motion[:1])


def frames_to_batch(frames: list[np.ndarray], size: int, device: torch.device) -> torch.Tensor:
    """uint8 frames [(H, W, 3)] → model input (N, 3, size, size) in [-1, 1] on ``device``."""
    square = np.stack([resize_center_crop(frame, size) for frame in frames])  # (N, S, S, 3)
    batch = from_uint8(torch.from_numpy(square))  # (N, S, S, 3) float
    return rearrange(batch, "n h w c -> n c h w").to(device)


def batched(frames: Iterable[np.ndarray], n: int) -> Iterator[list[np.ndarray]]:
    """Group a frame stream into lists of at most ``n`` frames (``itertools.batched`` needs Python 3.12; we run on 3.10)."""
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@torch.no_grad()
def transfer_motion_chunks(
    animator,
    source: torch.Tensor,
    driving_frames: Iterable[np.ndarray],
    options: AnimateOptions = AnimateOptions(),
) -> Iterator[tuple[list[np.ndarray], torch.Tensor]]:
    """Animate ``source`` (3, S, S) in [-1, 1] with a stream of driving frames (H, W, 3) uint8.

    Yields ``(driving chunk, rendered chunk)``: the chunk's driving frames as decoded and their
    renderings (n, 3, S, S) in [-1, 1] on the animator's device, in driving order (callers that show
    or score the driving frames get them without decoding twice). Relative mode uses the first
    driving frame's code as the start motion (LIA's demo for vox/taichi); absolute mode puts the
    driving code directly on the source (LIA's TED demo).
    """
    device = next(animator.parameters()).device
    size = animator.config.size
    if options.compile or options.channels_last:
        animator.optimize_for_inference(compile=options.compile, channels_last=options.channels_last)
    with autocast(device, options.dtype):
        appearance = encode_source(animator, source.to(device), options)
    start_motion = None
    for chunk in batched(driving_frames, options.batch_frames):
        n = len(chunk)
        driving = frames_to_batch(chunk, size, device)  # (n, 3, S, S)
        if options.compile:
            driving = pad_batch(driving, options.batch_frames)  # (batch_frames, 3, S, S)
        with autocast(device, options.dtype):
            codes = animator.encode_motion(driving)  # (batch_frames or n, M)
            if options.relative and start_motion is None:
                start_motion = codes[:1]  # (1, M): the first driving frame
            frames = animator.render(appearance, codes, start_motion=start_motion)[:n]
        yield chunk, frames.float()


def transfer_motion(
    animator,
    source: torch.Tensor,
    driving_frames: Iterable[np.ndarray],
    options: AnimateOptions = AnimateOptions(),
) -> Iterator[torch.Tensor]:
    """:func:`transfer_motion_chunks` without the driving frames: rendered chunks (n, 3, S, S) only."""
    for _, frames in transfer_motion_chunks(animator, source, driving_frames, options):
        yield frames


@torch.no_grad()
def manipulation_codes(alpha: torch.Tensor, direction: int, values: torch.Tensor) -> torch.Tensor:
    """Codes that move a source whose own motion code is ``alpha`` (1, M) along one motion direction (LIA's
    linear manipulation).

    The official script forms ``w + D(α_source) + D(v·e_k)``; D is linear, so this is
    ``render`` with codes ``α_source + v·e_k``. Returns (len(values), M).
    """
    steps = alpha.new_zeros(len(values), alpha.shape[1])  # (K, M)
    steps[:, direction] = values.to(alpha)
    return alpha + steps  # (K, M)

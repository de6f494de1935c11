"""Generated clips made on the fly for FVD/KVD: the three protocols of ``leo-video eval``.

Each function yields float videos ``(span, 3, S, S)`` in [-1, 1] (S = the model's size), one at a
time, for :func:`leo_video.metrics.evaluate.generated_clip_features`, which measures them exactly
as saved videos (quantised to uint8, same ``--resolution`` step, same detector resize as real clips).

* :func:`unconditional_videos` — LEO samples from noise (prior + cDDPM start frame + cLMDM).
* :func:`conditional_videos` — **conditional FVD** (the image-to-video protocol of LEO, LFDM and
  others): video ``i`` starts from the first frame of real clip ``i`` of the protocol (the same clips
  :func:`leo_video.metrics.evaluate.real_clip_features` measures), compared with those real clips.
* :func:`reconstructed_videos` — **reconstruction FVD** of the animator: each real clip re-rendered
  from its first frame, driven by its own frames' absolute motion codes (LIA's self-reenactment).
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import torch

from .protocol import FVDProtocol, plan_real_clips

__all__ = ["conditional_videos", "reconstructed_videos", "unconditional_videos"]


def _real_clips(real_dir: str | os.PathLike, protocol: FVDProtocol, what: str = "--real") -> Iterator[Any]:
    """(reader, ClipSpec) of the protocol's real clips of ``real_dir``, in the order they are measured."""
    from ..media.video import VideoReader
    from .evaluate import list_videos

    readers = [VideoReader(p) for p in list_videos(real_dir, what)]
    specs = plan_real_clips([len(r) for r in readers], protocol.num_videos, protocol.num_frames, protocol.seed,
                            protocol.subsample)
    for spec in specs:
        yield readers[spec.video_index], spec


def unconditional_videos(pipe: Any, protocol: FVDProtocol, gen_batch: int, generator: torch.Generator,
                         sampler: str | None = None, steps: int | None = None) -> Iterator[torch.Tensor]:
    """``protocol.num_videos`` LEO samples from noise, ``gen_batch`` at a time: ``(span, 3, S, S)`` each."""
    made = 0
    while made < protocol.num_videos:
        count = min(gen_batch, protocol.num_videos - made)
        yield from pipe(None, protocol.span, count, generator, sampler, steps).cpu()  # (count, span, 3, S, S)
        made += count


def conditional_videos(pipe: Any, real_dir: str | os.PathLike, protocol: FVDProtocol, gen_batch: int,
                       generator: torch.Generator, sampler: str | None = None,
                       steps: int | None = None) -> Iterator[torch.Tensor]:
    """One video per real clip of the protocol, generated from that clip's first frame: ``(span, 3, S, S)``."""
    from ..pipelines.animate import frames_to_batch

    firsts: list[Any] = []

    def flush() -> Iterator[torch.Tensor]:
        image = frames_to_batch(firsts, pipe.size, pipe.device)  # (b, 3, S, S), centre square
        firsts.clear()
        yield from pipe(image, protocol.span, len(image), generator, sampler, steps).cpu()

    for reader, spec in _real_clips(real_dir, protocol):
        firsts.append(reader.read([spec.frame_indices[0]])[0])  # (H, W, 3) uint8
        if len(firsts) == gen_batch:
            yield from flush()
    if firsts:
        yield from flush()


def reconstructed_videos(animator: Any, real_dir: str | os.PathLike, protocol: FVDProtocol, batch_frames: int = 16,
                         what: str = "--recon-data") -> Iterator[torch.Tensor]:
    """Each real clip of the protocol re-rendered by the animator (self-reenactment): ``(num_frames, 3, S, S)``.

    Source = the clip's first frame; every frame of the clip drives it with its absolute code
    (:func:`~leo_video.metrics.recon.self_reenact`).
    """
    from .recon import self_reenact

    for reader, spec in _real_clips(real_dir, protocol, what):
        clip = reader.read(spec.frame_indices)  # (num_frames, H, W, 3) uint8
        yield torch.cat([rendered for _, rendered in self_reenact(animator, clip, batch_frames)]).cpu()

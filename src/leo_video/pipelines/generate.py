"""LEO generation into video files: ``leo-video generate``'s one library call."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..media.video import VideoWriter
from ..utils.device import autocast
from ..utils.progress import progress_bar


@dataclass
class GenerateOptions:
    """One generation: ``num_videos`` videos of ``num_frames`` frames from ``image`` (3, S, S) in [-1, 1]
    (None: unconditional), or driven by the given ``motion`` (T, M) instead of sampled motion.

    ``sampler`` / ``steps`` (of every diffusion model), ``guidance_scale`` (the cDDPM's classifier-free
    guidance), ``rendering`` (``relative`` / ``absolute``): None means the pipeline's defaults; ``dtype``: the
    autocast compute dtype.
    """

    image: torch.Tensor | None = None
    num_frames: int = 64
    num_videos: int = 1
    seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    motion: torch.Tensor | None = None
    fps: float = 25.0
    dtype: torch.dtype = torch.float32
    guidance_scale: float | None = None
    rendering: str | None = None


def write_generated(pipe, outs: Sequence[str | os.PathLike], options: GenerateOptions,
                    on_chunk: Callable[[torch.Tensor], None] = lambda chunk: None, show_progress: bool = True) -> None:
    """Generate ``len(outs) == options.num_videos`` videos with the LEOPipeline ``pipe``, streamed chunk by chunk
    into the video files ``outs`` (memory does not grow with the length); ``on_chunk(chunk)`` sees each chunk
    (B, n, 3, S, S), float on the CPU, after it was written; ``show_progress``: a tqdm bar on stderr.

    A NaN or inf stops with the pipeline's NumericalError and no file is written (the writers are atomic).
    """
    generator = torch.Generator(device="cpu").manual_seed(options.seed)
    stream = pipe.stream(options.image, options.num_frames, options.num_videos, generator, options.sampler,
                         options.steps, options.motion, guidance_scale=options.guidance_scale,
                         rendering=options.rendering)
    with contextlib.ExitStack() as stack, progress_bar(options.num_frames, "generate", show=show_progress) as bar:
        writers = [stack.enter_context(VideoWriter(out, fps=options.fps)) for out in outs]
        with autocast(pipe.device, options.dtype):
            for chunk in stream:
                chunk = chunk.float().cpu()  # (B, n, 3, S, S)
                for writer, video in zip(writers, chunk):
                    writer.write(video)
                bar.update(chunk.shape[1])
                on_chunk(chunk)

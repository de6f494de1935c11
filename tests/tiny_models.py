"""Tiny random LEO pipelines shared by tests (CPU, seeded: the same weights every call)."""

from __future__ import annotations

import torch

from leo_video.diffusion.motion import MotionDiffusion
from leo_video.diffusion.start_code import StartCodePrior
from leo_video.diffusion.start_frame import StartFrameDiffusion
from leo_video.models.lia import LatentImageAnimator
from leo_video.pipelines.leo import GenerationDefaults, LEOPipeline

M = 6  # motion dimension of the tiny models


def tiny_pipeline(with_start_models: bool = True) -> LEOPipeline:
    """Random 64² LEO with M = 6 and 3 denoising steps; without start models it is conditional only."""
    torch.manual_seed(0)
    animator = LatentImageAnimator(size=64, style_dim=32, motion_dim=M, channel_max=16)
    motion = MotionDiffusion.from_preset("tiny", motion_dim=M, sequence_length=8)
    start_code = StartCodePrior.from_preset("tiny", motion_dim=M) if with_start_models else None
    start_frame = StartFrameDiffusion.from_preset("tiny", sample_size=32, motion_dim=M) if with_start_models else None
    defaults = GenerationDefaults(steps=3, start_frame_steps=3, fps=10)
    return LEOPipeline(animator, motion, start_code, start_frame, defaults=defaults)

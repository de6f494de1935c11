"""Config schemas of the presets in this folder (``configs/<kind>/<preset>.yaml``).

Each stage's config is a ``@dataclass`` of sections registered under its kind with
:func:`leo_video.config.register_config`; :func:`leo_video.config.resolve_config` loads a preset or
YAML file into it, applies ``--set`` overrides and validates ranges. :class:`LoopConfig` is the
``train`` section that every stage shares (it drives :class:`leo_video.train.loop.Trainer`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..config import param, register_config, section

# --------------------------------------------------------------------------------------------
# Shared sections


@dataclasses.dataclass
class LoopConfig:
    """Settings of the shared training loop (:class:`leo_video.train.loop.Trainer`), section ``train``.

    ``batch_size`` is the *global* batch of one optimizer step: it is split over processes and
    gradient-accumulation micro-batches, so the data seen per step is the same on 1 or 8 GPUs.
    """

    run_dir: str = "runs/run"
    seed: int = param(0, ge=0, lt=2**63)
    max_steps: int = param(1000, ge=1)
    max_minutes: float = param(0.0, ge=0.0, doc="also stop (and export) after this many minutes of this process's training (0: no limit)")
    batch_size: int = param(64, ge=1, doc="global images per optimizer step")
    grad_accum_steps: int = param(1, ge=1, le=1024)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    dynamo_backend: Literal["no", "inductor", "aot_eager"] = param(
        "no", doc="torch.compile the trained networks through accelerate: inductor (GPU speed), aot_eager (traces without compiling: tests)")
    cpu: bool = param(False, doc="run on CPU even when a GPU is present")
    memory_format: Literal["auto", "channels_last", "contiguous"] = param(
        "auto", doc="layout of LIA training's networks and maps; auto: channels_last on CUDA with bf16/fp16 (1.4x faster steps on an H100), else contiguous")
    num_workers: int = param(4, ge=0, le=128, doc="DataLoader worker processes per rank")
    checkpoint_every: int = param(5000, ge=1)
    keep_last: int = param(3, ge=1, doc="how many of the newest checkpoints to keep")
    log_every: int = param(100, ge=1, doc="TensorBoard scalars every N steps")
    image_every: int = param(2000, ge=0, doc="TensorBoard image grids every N steps (0: never)")
    eval_every: int = param(0, ge=0, doc="task.evaluate every N steps (0: never)")
    ema: bool = param(False, doc="keep an EMA of the task's EMA-tracked models")
    ema_decay: float = param(0.999, gt=0.0, lt=1.0)
    optimizer_impl: Literal["auto", "fused", "foreach", "for-loop"] = param(
        "auto", doc="torch's kernel for every stage's Adam/AdamW step; auto: fused on CUDA, foreach elsewhere")


# --------------------------------------------------------------------------------------------
# Stage 1: LIA (LEO_METHOD.md, "Stage 1 - Training")


@dataclasses.dataclass
class AugmentSettings:
    """One random augmentation applied identically to both frames of a pair (or every clip frame);
    the fields of :class:`leo_video.data.video_dataset.AugmentConfig`. All off by default.

    LIA's released data pipeline: Taichi = random 224/256 crop (``crop_scale: [0.875, 0.875]``) +
    flip + colour jitter 0.1; TED = flip + jitter 0.1; VoxCeleb = none.
    """

    crop_scale: list[float] | None = param(None, gt=0.0, le=1.0, doc="[min, max] side fraction of a random square crop")
    flip: bool = param(False, doc="horizontal flip with probability 0.5")
    brightness: float = param(0.0, ge=0.0, lt=1.0)
    contrast: float = param(0.0, ge=0.0, lt=1.0)
    saturation: float = param(0.0, ge=0.0, lt=1.0)
    hue: float = param(0.0, ge=0.0, le=0.5, doc="hue rotation in turns drawn from [-hue, hue]")


@dataclasses.dataclass
class LIADataConfig:
    """Where the training videos are; pairs = two random frames of one video, resized to model.size."""

    root: str = "data/taichi"
    test_root: str | None = param(None, doc="test split for periodic reconstruction eval")
    repeats: int = param(1, ge=1, doc="each video appears this many times per epoch")
    augment: AugmentSettings = section(AugmentSettings)


@dataclasses.dataclass
class LIAModelConfig:
    """Animator architecture (the arguments of ``LatentImageAnimator``) and optional init."""

    size: int = param(256, choices=(32, 64, 128, 256, 512, 1024))
    style_dim: int = param(512, ge=8, le=4096)
    motion_dim: int = param(20, ge=1, le=512, doc="N, the number of motion directions")
    channel_multiplier: int = param(1, ge=1, le=4)
    channel_max: int = param(512, ge=8, le=1024, doc="cap on every layer's channels (512 = LIA's table)")
    init_checkpoint: str | None = param(None, doc="fine-tune from an official LIA .pt (--init)")


@dataclasses.dataclass
class LIALossConfig:
    """Loss weights; a weight of 0 skips building that loss's network (VGG19, discriminator)."""

    l1_weight: float = param(1.0, ge=0.0)
    l1_scales: list[float] = param(
        default_factory=lambda: [1.0], gt=0.0, le=1.0,
        doc="image-pyramid scales of the L1 term, summed with equal weights ([1.0]: LIA's single L1)")
    perceptual_weight: float = param(10.0, ge=0.0, doc="weight of each (scale, VGG layer) L1 term")
    perceptual_scales: list[float] = param(
        default_factory=lambda: [1.0, 0.5, 0.25, 0.125], gt=0.0, le=1.0
    )
    gan_weight: float = param(1.0, ge=0.0, doc="non-saturating GAN loss of the generator")
    r1_weight: float = param(0.0, ge=0.0, doc="R1 gamma, applied lazily every optim.d_reg_every steps")
    vgg_weights: str | None = param(None, doc="VGG19 .pth; default $TORCH_HOME/hub/checkpoints/")
    vgg_random_init: bool = param(False, doc="random VGG19 (tests only: no weights needed)")


@dataclasses.dataclass
class LIAOptimConfig:
    """Adam for G and D with StyleGAN2's lazy-regularisation scaling c = k/(k+1) of lr and betas."""

    lr: float = param(2e-3, gt=0.0, le=1.0)
    beta1: float = param(0.0, ge=0.0, lt=1.0)
    beta2: float = param(0.99, ge=0.0, lt=1.0)
    g_reg_every: int = param(4, ge=0, doc="k for G's lr/beta scaling (0: none); LIA used 4")
    d_reg_every: int = param(16, ge=0, doc="R1 interval and k for D's scaling (0: none); LIA used 16")


@dataclasses.dataclass
class LIAMonitorConfig:
    """The motion code's spread over a video, measured every ``train.log_every`` steps on fixed training clips.

    ``monitor/motion_spread`` = RMS distance of a clip's codes from their mean, over the appearance latent's
    norm (the share of the latent that motion moves). When it falls below ``collapse_fraction`` of its peak
    at two log steps in a row the run stops with a warning: the encoder has collapsed (renderings stop
    following the driver; configs/demo/README.md, run A).
    """

    videos: int = param(4, ge=0, le=64, doc="training videos probed (0: no monitor)")
    frames: int = param(8, ge=2, le=64, doc="frames per probed video, evenly spaced")
    collapse_fraction: float = param(0.1, ge=0.0, lt=1.0, doc="stop below this share of the peak spread (0: never)")


@register_config("lia")
@dataclasses.dataclass
class LIAConfig:
    """Everything ``leo-video train lia`` needs; presets in ``configs/lia/*.yaml``."""

    data: LIADataConfig = section(LIADataConfig)
    model: LIAModelConfig = section(LIAModelConfig)
    loss: LIALossConfig = section(LIALossConfig)
    optim: LIAOptimConfig = section(LIAOptimConfig)
    monitor: LIAMonitorConfig = section(LIAMonitorConfig)
    train: LoopConfig = section(LoopConfig)

    def cross_check(self) -> str | None:
        """Constraints between fields; returns the problem (naming the key) or None."""
        crop = self.data.augment.crop_scale
        if crop is not None and (len(crop) != 2 or crop[0] > crop[1]):
            return f"data.augment.crop_scale = {crop} must be [min, max] with min <= max"
        if self.loss.r1_weight > 0 and self.optim.d_reg_every == 0:
            return "optim.d_reg_every = 0 but loss.r1_weight > 0 (R1 needs an interval >= 1)"
        if self.model.size * min(self.loss.perceptual_scales, default=1.0) < 16 and self.loss.perceptual_weight > 0:
            return "loss.perceptual_scales: the smallest scale must leave at least 16 pixels for VGG19"
        return None

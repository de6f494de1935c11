"""The cDDPM: a conditional image diffusion model p(x₁ | α₁) for start frames (LEO_METHOD.md,
"The start frame", option 2). With α₁ from the start-code prior and motion from cLMDM, it makes LEO
fully unconditional.

* **Training**: ε-prediction, ``E_{x₁,ε,t} ‖ε − ε_θ(x_t, t, α̂₁)‖²`` with t uniform over the DDPM
  schedule and ``x_t`` from diffusers' ``DDPMScheduler.add_noise``. For classifier-free guidance the
  code is dropped (null embedding) with the U-Net's ``cond_dropout`` probability.
* **Sampling**: any sampler of :mod:`leo_video.diffusion.schedulers` (``ddpm``/``ddim``/``dpm++``) by
  name and step count through the shared :func:`~leo_video.diffusion.schedulers.denoise` loop, with
  guided ε̃ = ε_∅ + s (ε_α − ε_∅).
* **Code normalisation**: the U-Net sees ``α̂₁ = (α₁ − μ) / σ`` with per-dimension statistics of the
  training codes (:meth:`set_normalization`). As in the LMDM, μ and σ are buffers saved with the weights
  (``model.safetensors``), so a saved folder is complete.
* **Images** are in [-1, 1], so the image schedule clips the predicted x₀ to [-1, 1] at every DDPM/DDIM
  step (``clip_sample``, as the original DDPM did) and the returned samples are clamped to [-1, 1].
* **Global colour needs the code** (offset noise). The mean colour of an image survives the forward
  process far longer than its details (averaging H·W noisy pixels), so a plain ε-model learns to read
  colour from x_t instead of from α₁, and samples started from pure noise come out greyish with the
  wrong colours. Training noise therefore gets a per-image, per-channel constant
  ``ε = ε_pixel + offset_noise · ε_channel`` (Guttenberg 2023, "offset noise"); the other fix is a zero
  terminal SNR schedule (``image_scheduler_config(zero_terminal_snr=True)``). Both make the colour follow
  the code on a toy task (``experiments/README.md``, "Offset noise").

``save_pretrained(dir)`` / ``from_pretrained(dir)`` (diffusers) write and read ``config.json`` (U-Net
and scheduler configs) + ``model.safetensors``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from diffusers.utils.torch_utils import randn_tensor

from ..errors import ConfigError, InputError
from ..models.start_frame import START_FRAME_PRESETS, StartFrameUNet
from . import schedulers
from .code_diffusion import CodeDiffusion
from .schedulers import denoise


def image_scheduler_config(zero_terminal_snr: bool = False, **schedule) -> dict:
    """The shared schedule (:func:`~leo_video.diffusion.schedulers.scheduler_config`) with x₀ clipped to [-1, 1].

    ``zero_terminal_snr`` rescales the betas so that x_T is pure noise (Lin et al. 2024); it needs
    ``v_prediction`` (ε is degenerate at SNR 0), the prediction type it defaults to, and ``trailing`` spacing
    (sampling must start at t = T − 1), which ``scheduler_config`` sets.
    """
    if zero_terminal_snr:
        schedule.setdefault("prediction_type", "v_prediction")
    return schedulers.scheduler_config(clip_sample_range=1.0, zero_terminal_snr=zero_terminal_snr, **schedule)


class StartFrameDiffusion(CodeDiffusion):
    """cDDPM: diffusion over start frames ``(B, 3, H, W)`` conditioned on codes ``(B, M)``; ε-prediction
    (v-prediction with a zero-terminal-SNR schedule).

    Args:
        unet_config: keyword arguments of :class:`~leo_video.models.start_frame.StartFrameUNet`.
        scheduler_config: the noise schedule (:func:`image_scheduler_config`).
        offset_noise: std of the per-image, per-channel constant added to the training noise (0: off).

    ``forward(images, codes)`` is :meth:`training_loss`, so DDP-wrapped models train through ``__call__``.
    Code statistics (μ, σ) are those of :class:`~leo_video.diffusion.code_diffusion.CodeDiffusion` (buffers ``code_mean``/``code_std``).
    """

    @register_to_config
    def __init__(self, unet_config: dict | None = None, scheduler_config: dict | None = None,
                 offset_noise: float = 0.1):
        super().__init__()
        if not 0.0 <= offset_noise <= 1.0:
            raise ConfigError(f"offset_noise: must be in [0, 1], got {offset_noise}")
        if unet_config is None:  # record defaults so that the saved folder is self-describing
            self.register_to_config(unet_config=dict(sample_size=64, motion_dim=20, **START_FRAME_PRESETS["small"]))
        if scheduler_config is None:
            self.register_to_config(scheduler_config=image_scheduler_config())
        self.unet = StartFrameUNet(**self.config.unet_config)
        self._init_stats(self.unet.config.motion_dim, residual=False)

    @classmethod
    def from_preset(cls, preset: str, sample_size: int = 64, motion_dim: int = 20, cond_dropout: float = 0.1,
                    offset_noise: float = 0.1, **schedule) -> "StartFrameDiffusion":
        """A fresh model with the U-Net preset ``tiny``/``small``/``base``; ``schedule`` goes to
        :func:`image_scheduler_config`."""
        if preset not in START_FRAME_PRESETS:
            raise ConfigError(f"cddpm preset {preset!r}: choose one of {', '.join(START_FRAME_PRESETS)}")
        unet = dict(sample_size=sample_size, motion_dim=motion_dim, cond_dropout=cond_dropout, **START_FRAME_PRESETS[preset])
        return cls(unet_config=unet, scheduler_config=image_scheduler_config(**schedule), offset_noise=offset_noise)

    @property
    def motion_dim(self) -> int:
        """M."""
        return self.unet.config.motion_dim

    @property
    def sample_size(self) -> int:
        """Image side H = W."""
        return self.unet.config.sample_size

    # ---- training
    def training_loss(
        self, images: torch.Tensor, codes: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The MSE to the schedule's target (ε, or v) on start frames ``images (B, 3, H, W)`` in [-1, 1] with their codes
        ``codes (B, M)``; returns a scalar. Noise, timesteps and the guidance dropout come from ``generator``."""
        images, codes = self._check_pair(images, codes)
        x_t, t, target = self._noised_with_offset(images, generator)  # (B, 3, H, W), (B,), (B, 3, H, W)
        drop = self._dropout_mask(images.shape[0], generator)  # (B,)
        pred = self.unet(x_t, t, self._normalize(codes), drop)  # (B, 3, H, W)
        return F.mse_loss(pred.float(), target.float())

    def forward(self, images: torch.Tensor, codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.training_loss(images, codes, generator)

    def _noised_with_offset(
        self, x0: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forward process with offset noise δ (B, C, 1, 1) added to ε: x_t += σ_t δ, and the
        regression target follows (ε + δ for ε-prediction, v + α_t δ for v-prediction)."""
        x_t, t, target = self._noised(x0, generator)  # plain ε ~ N(0, I)
        if self.config.offset_noise <= 0:
            return x_t, t, target
        B, C = x0.shape[:2]
        delta = randn_tensor((B, C, 1, 1), generator=generator, device=x0.device, dtype=x0.dtype)
        delta = (self.config.offset_noise * delta).expand_as(x0)  # (B, C, H, W)
        sched, zeros = self.train_scheduler, torch.zeros_like(x0)
        x_t = x_t + sched.add_noise(zeros, delta, t)  # add_noise(0, δ, t) = σ_t δ
        kind = sched.config.prediction_type
        if kind == "epsilon":
            target = target + delta
        elif kind == "v_prediction":
            target = target + sched.get_velocity(zeros, delta, t)  # v(0, δ) = α_t δ
        return x_t, t, target

    def _dropout_mask(self, B: int, generator: torch.Generator | None) -> torch.Tensor:
        """Rows whose code is replaced by the null embedding (classifier-free guidance training), (B,) bool.

        Without dropout the mask is all False rather than None: the null embedding then stays in the
        graph (with zero gradient), so DDP does not see an unused parameter.
        """
        p = self.unet.config.cond_dropout
        if p <= 0:
            return torch.zeros(B, dtype=torch.bool, device=self.device)
        gen_device = generator.device if generator is not None else self.device
        return (torch.rand(B, generator=generator, device=gen_device) < p).to(self.device)  # (B,)

    # ---- sampling
    @torch.no_grad()
    def sample(
        self,
        codes: torch.Tensor,
        sampler: str = "ddim",
        steps: int = 50,
        guidance_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw one start frame per code: ``codes (B, M) -> images (B, 3, H, W)`` in [-1, 1].

        ``sampler`` is ``ddpm``, ``ddim`` or ``dpm++`` with ``steps`` denoising steps; ``guidance_scale``
        s is classifier-free guidance (1 = the conditional model, > 1 follows the code more strongly).
        A seeded ``generator`` gives the same images every time.
        """
        codes = self._check_codes(codes)
        if guidance_scale != 1.0 and self.unet.config.cond_dropout <= 0:
            raise InputError(f"guidance_scale: {guidance_scale} needs a model trained with cond_dropout > 0")
        code_hat = self._normalize(codes)  # (B, M)
        B, S = codes.shape[0], self.sample_size
        model_fn = lambda x_t, t: self.unet.guided_eps(x_t, t, code_hat, guidance_scale)  # noqa: E731
        x = denoise(model_fn, (B, 3, S, S), self._sampler(sampler), steps, generator,
                    device=self.device, dtype=self.dtype)  # (B, 3, S, S)
        return x.clamp(-1.0, 1.0)

    # ---- input checks
    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        codes = torch.as_tensor(codes)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[-1] != self.motion_dim:
            raise InputError(f"codes: expected (B, {self.motion_dim}), got {tuple(codes.shape)}")
        return codes.to(device=self.device, dtype=self.dtype)

    def _check_pair(self, images: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        S = self.sample_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, S, S):
            raise InputError(f"images: expected (B, 3, {S}, {S}), got {tuple(images.shape)}")
        codes = self._check_codes(codes)
        if codes.shape[0] != images.shape[0]:
            raise InputError(f"codes: {codes.shape[0]} codes for {images.shape[0]} images")
        return images.to(device=self.device, dtype=self.dtype), codes

"""LEO's Latent Motion Diffusion Model (LEO_METHOD.md, "Stage 2"): cLMDM with the Linear Motion
Condition, its no-LMC ablation, and generation of any length (the pipeline's ``motion`` part).

**Linear Motion Condition (LMC).** LIA's motion space is linear, so a code sequence
``a = {α_1 … α_L}`` is written ``a = [α_1, m]`` with residuals ``m_i = α_i − α_1`` (i ≥ 2). cLMDM
noises only ``m`` and keeps ``α_1`` clean: at every denoising step the denoiser sees the sequence
``[α_1, α_1 + m_t]`` (α₁ concatenated with α₁-plus-noisy-residuals along the time axis, length L) and
predicts ε for the L − 1 residual positions; the loss is ``‖ε − ε_θ(m_t, α_1, t)‖²``. The generated
sequence is ``[α_1, α_1 + m_0]``. Without LMC (``use_lmc=False``, the paper's ablation) the whole
sequence ``a`` is noised and ε predicted for all L positions.

**Normalisation and LMC.** Diffusion runs on normalised values. The start code is standardised with
per-dimension statistics of all codes, ``α̂_1 = (α_1 − μ) / σ``; residuals are only *scaled* by their
own per-dimension std, ``m̂ = m / σ_m`` (no shift, so "no motion" stays 0, and σ_m ≪ σ typically, so
residuals get unit scale instead of vanishing under the noise). The denoiser input is
``[α̂_1, α̂_1 + m̂_t]``, and the output is mapped back exactly: ``α_i = α_1 + σ_m · m̂_0,i``; the first
code of a sample is the given α₁ bit for bit. The ablation normalises the whole sequence with (μ, σ).

**LMC in one scale** (``lmc_scale="common"``, the paper's form): residuals are scaled by the codes' own σ,
``m̂ = m / σ``, so ``α̂_1 + m̂_t`` is exactly the normalised code ``(α_i − μ) / σ`` the paper adds; small
motions (σ_m ≪ σ) then diffuse at small scale. ``lmc_scale="residual"`` (σ_m, above) is ours.
Statistics come from the training codes (``data.motion_codes.compute_code_stats`` /
``compute_residual_stats``) and live in buffers, saved with the weights.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from diffusers.utils.torch_utils import randn_tensor

from ..errors import ConfigError, InputError, NumericalError
from ..models.unet1d import UNET1D_PRESETS, TemporalUNet1D
from . import schedulers
from .code_diffusion import CodeDiffusion
from .schedulers import denoise

# --------------------------------------------------------------------------------------------------
# The Linear Motion Condition (pure tensor functions)


def split_codes(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a (B, L, M) -> (α_1 (B, M), m (B, L-1, M))`` with ``m_i = α_i − α_1``."""
    alpha1 = a[:, 0]  # (B, M)
    return alpha1, a[:, 1:] - alpha1[:, None]  # (B, L-1, M)


def merge_codes(alpha1: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_codes`: ``[α_1, α_1 + m]``, (B, M), (B, L-1, M) -> (B, L, M)."""
    return torch.cat([alpha1[:, None], alpha1[:, None] + m], dim=1)


def lmc_denoiser_input(alpha1: torch.Tensor, m_t: torch.Tensor) -> torch.Tensor:
    """The cLMDM denoiser input ``[α_1, α_1 + m_t]`` channels-first: (B, M), (B, L-1, M) -> (B, M, L)."""
    return merge_codes(alpha1, m_t).transpose(1, 2)  # (B, M, L)


# --------------------------------------------------------------------------------------------------
# cLMDM (and its no-LMC ablation)


class MotionDiffusion(CodeDiffusion):
    """cLMDM: a :class:`TemporalUNet1D` ε-predictor over code sequences, with or without LMC.

    Args:
        motion_dim: M.
        sequence_length: training clip length L (default chunk length for long generation).
        use_lmc: the Linear Motion Condition (True) or the no-LMC ablation (False).
        lmc_scale: ``residual`` (m scaled by its own σ_m, ours) or ``common`` (by the codes' σ, the paper's).
        unet_config: keyword arguments of :class:`TemporalUNet1D` (channels are set to M).
        scheduler_config: the noise schedule (:func:`~leo_video.diffusion.schedulers.scheduler_config`).

    ``forward(codes)`` is :meth:`training_loss` so that DDP-wrapped models train through ``__call__``.
    """

    @register_to_config
    def __init__(
        self,
        motion_dim: int = 20,
        sequence_length: int = 16,
        use_lmc: bool = True,
        unet_config: dict | None = None,
        scheduler_config: dict | None = None,
        lmc_scale: str = "residual",
    ):
        super().__init__()
        if sequence_length < 2:
            raise ConfigError(f"sequence_length: must be >= 2, got {sequence_length}")
        if lmc_scale not in ("residual", "common"):
            raise ConfigError(f"lmc_scale {lmc_scale!r}: choose residual or common")
        if unet_config is None:  # record defaults so that the saved folder is self-describing
            self.register_to_config(unet_config=dict(UNET1D_PRESETS["small"]))
        if scheduler_config is None:
            self.register_to_config(scheduler_config=schedulers.scheduler_config())
        unet_kwargs = {**self.config.unet_config, "in_channels": motion_dim, "out_channels": motion_dim}
        self.unet = TemporalUNet1D(**unet_kwargs)
        self._init_stats(motion_dim, residual=True)

    @classmethod
    def from_preset(cls, preset: str, motion_dim: int = 20, sequence_length: int = 16, use_lmc: bool = True,
                    lmc_scale: str = "residual", **schedule) -> "MotionDiffusion":
        """A fresh model with the U-Net preset ``tiny``/``small``/``base``; ``schedule`` goes to scheduler_config."""
        if preset not in UNET1D_PRESETS:
            raise ConfigError(f"lmdm preset {preset!r}: choose one of {', '.join(UNET1D_PRESETS)}")
        # keyword arguments: diffusers' register_to_config records positional ones as "defaults"
        return cls(motion_dim=motion_dim, sequence_length=sequence_length, use_lmc=use_lmc,
                   unet_config=dict(UNET1D_PRESETS[preset]), scheduler_config=schedulers.scheduler_config(**schedule),
                   lmc_scale=lmc_scale)

    @property
    def residual_scale(self) -> torch.Tensor:
        """The per-dimension scale of the diffused residuals m̂ = m / scale, (M,): σ_m or, in one scale, σ."""
        return self.code_std if self.config.get("lmc_scale", "residual") == "common" else self.residual_std

    # ---- the denoiser under LMC / without LMC
    def residual_eps(self, alpha1_hat: torch.Tensor, m_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε_θ(m_t, α_1, t): normalised α̂₁ (B, M), noisy residuals (B, L-1, M) -> ε for m (B, L-1, M)."""
        x = lmc_denoiser_input(alpha1_hat, m_t)  # (B, M, L): [α̂1, α̂1 + m̂_t] on the time axis
        eps = self.unet(x, t)  # (B, M, L)
        return eps[:, :, 1:].transpose(1, 2)  # (B, L-1, M): only the residual positions

    def sequence_eps(self, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """No-LMC denoiser: noisy normalised sequence (B, L, M) -> ε (B, L, M)."""
        return self.unet(a_t.transpose(1, 2), t).transpose(1, 2)

    # ---- training
    def training_loss(self, codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising MSE ``‖ε − ε_θ(m_t, α_1, t)‖²`` on code sequences ``codes (B, L, M)``: a scalar.

        Timesteps are uniform over the training schedule and noise comes from ``generator``; the target
        is ε (or x₀ / v when the schedule's ``prediction_type`` says so).
        """
        codes = self._check_codes(codes).to(device=self.device, dtype=self.dtype)
        if self.config.use_lmc:
            alpha1, m = split_codes(codes)  # (B, M), (B, L-1, M)
            m_t, t, target = self._noised(m / self.residual_scale, generator)  # only m is noised
            pred = self.residual_eps(self._normalize(alpha1), m_t, t)  # α₁ stays clean
        else:
            a_t, t, target = self._noised(self._normalize(codes), generator)  # the whole a is noised
            pred = self.sequence_eps(a_t, t)
        return F.mse_loss(pred.float(), target.float())

    def forward(self, codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.training_loss(codes, generator)

    # ---- sampling
    @torch.no_grad()
    def sample(
        self,
        alpha1: torch.Tensor | None,
        length: int | None = None,
        sampler: str = "ddim",
        steps: int = 50,
        generator: torch.Generator | None = None,
        num_samples: int | None = None,
    ) -> torch.Tensor:
        """Sample code sequences ``(B, L, M)`` starting at ``alpha1 (B, M)`` (returned first, unchanged).

        ``length`` defaults to the training length. With LMC ``alpha1`` is required. Without LMC,
        ``alpha1=None`` samples unconditionally (``num_samples`` sequences); a given ``alpha1`` is imposed
        by replacement (the first position is set to the forward-noised α₁ before every denoiser call).
        """
        L = self.config.sequence_length if length is None else int(length)
        if L < 2:
            raise InputError(f"length: must be >= 2, got {L}")
        M = self.config.motion_dim
        if alpha1 is not None:
            alpha1 = self._check_alpha1(alpha1).to(device=self.device, dtype=self.dtype)
        elif self.config.use_lmc:
            raise InputError("alpha1: cLMDM with LMC needs a start code (draw one with StartCodePrior.sample)")
        B = alpha1.shape[0] if alpha1 is not None else (num_samples or 1)
        scheduler = self._sampler(sampler)
        kw = dict(scheduler=scheduler, steps=steps, generator=generator, device=self.device, dtype=self.dtype)

        if self.config.use_lmc:
            a1_hat = self._normalize(alpha1)  # (B, M)
            m_hat = denoise(lambda m_t, t: self.residual_eps(a1_hat, m_t, t), (B, L - 1, M), **kw)
            return merge_codes(alpha1, m_hat * self.residual_scale)  # (B, L, M), first code = α₁ exactly

        model_fn = lambda a_t, t: self.sequence_eps(a_t, t)  # noqa: E731
        if alpha1 is not None:
            model_fn = self._replacement_fn(self._normalize(alpha1), generator)
        a = self._denormalize(denoise(model_fn, (B, L, M), **kw))  # (B, L, M)
        if alpha1 is not None:
            a[:, 0] = alpha1
        return a

    def _replacement_fn(self, a1_hat: torch.Tensor, generator: torch.Generator | None):
        """No-LMC conditioning: overwrite position 0 of x_t by q(α̂₁ at t) before each denoiser call."""
        z = randn_tensor(a1_hat.shape, generator=generator, device=a1_hat.device, dtype=a1_hat.dtype)
        sched = self.train_scheduler

        def model_fn(a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            a_t = a_t.clone()
            a_t[:, 0] = sched.add_noise(a1_hat, z, t.reshape(1).to(a1_hat.device))
            return self.sequence_eps(a_t, t)

        return model_fn

    def iter_chunks(
        self,
        alpha1: torch.Tensor | None,
        total_length: int,
        chunk_length: int | None = None,
        sampler: str = "ddim",
        steps: int = 50,
        generator: torch.Generator | None = None,
        num_samples: int | None = None,
        include_start: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Autoregressive generation as a stream of code chunks ``(B, n, M)`` totalling ``total_length``.

        Each chunk is a fresh sample of ``chunk_length`` codes conditioned on the last code of the previous
        one (LEO_METHOD.md, "Any length"); only one chunk is in memory at a time. The first chunk starts
        with ``alpha1``; later chunks yield their L − 1 new codes, or, with ``include_start``, also the
        conditioning code they start with (then consecutive chunks overlap by one code).
        """
        L = self.config.sequence_length if chunk_length is None else int(chunk_length)
        if total_length < 1:
            raise InputError(f"total_length: must be >= 1, got {total_length}")
        emitted, start = 0, alpha1
        while emitted < total_length:
            chunk = self.sample(start, L, sampler, steps, generator, num_samples)  # (B, L, M)
            first = 0 if emitted == 0 else 1  # later chunks begin with the previous chunk's last code
            n = min(L - first, total_length - emitted)
            yield chunk[:, (0 if include_start else first) : first + n]
            emitted += n
            start = chunk[:, -1]

    @torch.no_grad()
    def generate_long(self, alpha1: torch.Tensor | None, total_length: int, **kwargs) -> torch.Tensor:
        """:meth:`iter_chunks` concatenated: ``(B, total_length, M)``; same keyword arguments."""
        kwargs.pop("include_start", None)
        return torch.cat(list(self.iter_chunks(alpha1, total_length, **kwargs)), dim=1)

    # ---- input checks
    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.ndim != 3 or codes.shape[-1] != self.config.motion_dim or codes.shape[1] < 2:
            raise InputError(
                f"codes: expected (B, L >= 2, {self.config.motion_dim}), got {tuple(codes.shape)}"
            )
        return codes

    def _check_alpha1(self, alpha1: torch.Tensor) -> torch.Tensor:
        alpha1 = torch.as_tensor(alpha1)
        if alpha1.ndim == 1:
            alpha1 = alpha1[None]
        if alpha1.ndim != 2 or alpha1.shape[-1] != self.config.motion_dim:
            raise InputError(f"alpha1: expected (B, {self.config.motion_dim}), got {tuple(alpha1.shape)}")
        if not torch.isfinite(alpha1).all():
            raise NumericalError("alpha1: contains NaN or inf")
        return alpha1

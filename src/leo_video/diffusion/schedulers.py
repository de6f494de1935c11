"""Noise schedules and samplers from diffusers, chosen by name, plus one generic denoising loop.

Training always uses :class:`~diffusers.DDPMScheduler` (``add_noise`` at uniformly drawn timesteps);
sampling uses ``"ddpm"`` (ancestral), ``"ddim"`` (deterministic, η = 0) or ``"dpm++"``
(DPM-Solver++ multistep, 2nd order). All three are built with ``from_config`` from one shared
config, so they share the training noise schedule exactly; a model stores that config and rebuilds
any sampler from it. :func:`denoise` is the one sampling loop reused by the LMDM, the start-code prior
and the cDDPM.
"""

from __future__ import annotations

from typing import Callable

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from ..errors import ConfigError
from .sampler_names import SAMPLER_NAMES

SAMPLERS: dict[str, type] = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpm++": DPMSolverMultistepScheduler,
}
assert tuple(SAMPLERS) == SAMPLER_NAMES, "add a new sampler's name to diffusion/sampler_names.py too"

# Per-sampler settings on top of the shared schedule.
_SAMPLER_OPTIONS: dict[str, dict] = {
    "ddpm": {},
    "ddim": {"set_alpha_to_one": True},
    "dpm++": {"algorithm_type": "dpmsolver++", "solver_order": 2},
}

# Model-output callable of the denoising loop: (x_t (B, ...), t scalar tensor) -> ε (B, ...).
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def scheduler_config(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "squaredcos_cap_v2",
    prediction_type: str = "epsilon",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    timestep_spacing: str = "leading",
    clip_sample_range: float | None = None,
    zero_terminal_snr: bool = False,
) -> dict:
    """The shared schedule config (a plain JSON-able dict) that every sampler is built from.

    ``clip_sample`` is off unless ``clip_sample_range`` r is given: then DDPM and DDIM clip the predicted
    x̂₀ to [−r, r] at every step (diffusers' ``clip_sample``; DPM-Solver++ has no such option and ignores
    it). Normalised motion codes are not confined to [-1, 1], so r is in normalised units: the range of
    the training codes after normalisation. ``zero_terminal_snr`` rescales the betas so that ᾱ_T = 0
    (Lin et al. 2024, diffusers' ``rescale_betas_zero_snr``); ε is undefined there, so it needs
    ``v_prediction`` and sampling from t = T − 1 (``trailing`` spacing, which it sets).

    Defaults (cosine betas, ``leading`` spacing, ε-prediction as in the paper) were chosen on a toy
    linear-motion problem (tiny U-Net, 600 Adam steps, 25 sampling steps): DDIM's deviation from
    linear motion was 0.26 with these, 1.6 with linear betas and 2.4 with linear + ``trailing``
    (DDPM ~0.04 in all three). ``trailing`` starts at t = T − 1, where ᾱ ≈ 0 and the ε → x₀
    conversion of the deterministic samplers amplifies ε errors by 1/√ᾱ; with cosine betas that
    blows up, so keep ``leading`` unless using ``v_prediction`` (which was robust to both).
    """
    if beta_schedule not in {"linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"}:
        raise ConfigError(f"beta_schedule {beta_schedule!r}: choose linear, scaled_linear, squaredcos_cap_v2 or sigmoid")
    if prediction_type not in {"epsilon", "sample", "v_prediction"}:
        raise ConfigError(f"prediction_type {prediction_type!r}: choose epsilon, sample or v_prediction")
    if timestep_spacing not in {"linspace", "leading", "trailing"}:
        raise ConfigError(f"timestep_spacing {timestep_spacing!r}: choose linspace, leading or trailing")
    if num_train_timesteps < 2:
        raise ConfigError(f"num_train_timesteps: must be >= 2, got {num_train_timesteps}")
    if clip_sample_range is not None and not clip_sample_range > 0:
        raise ConfigError(f"clip_sample_range: must be > 0, got {clip_sample_range}")
    if zero_terminal_snr and prediction_type != "v_prediction":
        raise ConfigError("zero_terminal_snr: needs prediction_type v_prediction (ε is undefined at SNR 0)")
    config = dict(
        num_train_timesteps=int(num_train_timesteps),
        beta_schedule=beta_schedule,
        beta_start=float(beta_start),
        beta_end=float(beta_end),
        prediction_type=prediction_type,
        clip_sample=clip_sample_range is not None,
        timestep_spacing="trailing" if zero_terminal_snr else timestep_spacing,
    )
    if clip_sample_range is not None:
        config["clip_sample_range"] = float(clip_sample_range)
    if zero_terminal_snr:
        config["rescale_betas_zero_snr"] = True
    return config


def make_scheduler(
    name: str,
    num_train_timesteps: int = 1000,
    beta_schedule: str = "squaredcos_cap_v2",
    prediction_type: str = "epsilon",
    *,
    config: dict | None = None,
) -> SchedulerMixin:
    """A fresh diffusers scheduler ``name`` (``ddpm``/``ddim``/``dpm++``) on the shared schedule.

    ``config`` (as returned by :func:`scheduler_config`, e.g. stored with a model) replaces the
    keyword arguments. Schedulers are stateful (DPM-Solver keeps past outputs): build one per sampling run.
    """
    if name not in SAMPLERS:
        raise ConfigError(f"sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    base = dict(config) if config is not None else scheduler_config(num_train_timesteps, beta_schedule, prediction_type)
    # Build the training DDPM first, then derive the sampler from its config (diffusers' from_config idiom).
    ddpm = DDPMScheduler(**base)
    if name == "ddpm":
        return ddpm
    return SAMPLERS[name].from_config(ddpm.config, **_SAMPLER_OPTIONS[name])


def check_steps(steps: int, scheduler: SchedulerMixin) -> None:
    """A user-facing check of the sampling step count."""
    total = scheduler.config.num_train_timesteps
    if not 1 <= steps <= total:
        raise ConfigError(f"steps: must be in [1, {total}], got {steps}")


@torch.no_grad()
def denoise(
    model_fn: ModelFn,
    shape: tuple[int, ...],
    scheduler: SchedulerMixin,
    steps: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Sample ``shape`` by iterative denoising from Gaussian noise (the diffusers pipeline loop).

    ``model_fn(x_t, t)`` returns the model output (ε for ε-prediction) for ``x_t`` of ``shape`` at the
    scalar timestep ``t``. Noise (initial and, for DDPM, per step) is drawn from ``generator``, so a
    seeded generator gives the same sample every time. Returns x_0 of ``shape``.
    """
    check_steps(steps, scheduler)
    scheduler.set_timesteps(steps, device=device)
    x = randn_tensor(shape, generator=generator, device=torch.device(device), dtype=dtype)
    x = x * scheduler.init_noise_sigma  # (shape) x_T
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        output = model_fn(model_input, t)  # (shape) ε_θ(x_t, t)
        x = scheduler.step(output, t, x, generator=generator).prev_sample  # (shape) x_{t-1}
    return x

"""A known motion law for cLMDM (issue 21): codes that follow a damped rotation, on CPU in seconds.

**The law.** Two-dimensional codes ``α_i = A e^{−γ i} (cos(ω i + φ), sin(ω i + φ))``, i = 0 … L − 1, with
a random amplitude A ~ U(0.5, 1.5) and phase φ ~ U(0, 2π) per sequence (ω = 2π/10, γ = 0.05). The start
code α₁ fixes A and φ, so its continuation is *determined*: a model conditioned on α₁ can be scored
against the one true continuation, and any generated sequence by its frequency ω̂ (mean wrapped angle
step) and damping γ̂ (mean log-ratio of successive norms). LMC has it easy: the residuals
``m_i = (e^{−γi} R(ω i) − I) α₁`` are a linear function of the clean α₁ it sees; without LMC α₁ is known
only through replacement at every noise level.

Used by ``tests/test_motion_law.py`` (the law is reproduced; LMC beats no-LMC) and, run as a script, to
measure the diffusion objectives on these codes (ε with the cosine or linear schedule, x̂₀ clipping to
the codes' range, v-prediction, v with zero terminal SNR)::

    OMP_NUM_THREADS=1 python experiments/motion_law.py            # about 2 minutes on one core

It prints a markdown table (the numbers quoted in ``experiments/README.md`` and ``docs/TRAINING.md``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from leo_video.diffusion.motion import MotionDiffusion, split_codes

OMEGA, GAMMA = 2 * math.pi / 10, 0.05
TINY_UNET = dict(block_channels=(32, 64), layers_per_block=1, attention_levels=(False, False),
                 attention_head_dim=8, norm_groups=8)


def damped_rotation(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` sequences of the law, (n, length, 2)."""
    amplitude = 0.5 + torch.rand(n, 1, generator=generator)  # (n, 1)
    phase = 2 * math.pi * torch.rand(n, 1, generator=generator)  # (n, 1)
    i = torch.arange(length, dtype=torch.float32)[None]  # (1, L)
    angle, radius = OMEGA * i + phase, amplitude * torch.exp(-GAMMA * i)  # (n, L)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)  # (n, L, 2)


def continuation(alpha1: torch.Tensor, length: int) -> torch.Tensor:
    """The one true continuation of start codes ``alpha1 (B, 2)``: (B, length, 2)."""
    i = torch.arange(length, dtype=alpha1.dtype)[None, :, None]  # (1, L, 1)
    c, s = torch.cos(OMEGA * i), torch.sin(OMEGA * i)
    x, y = alpha1[:, None, :1], alpha1[:, None, 1:]  # (B, 1, 1)
    return torch.exp(-GAMMA * i) * torch.cat([c * x - s * y, s * x + c * y], dim=-1)


def small_motion(n: int, length: int, generator: torch.Generator, spread: float = 3.0,
                 amplitude: float = 0.1) -> torch.Tensor:
    """Codes whose motion is small next to their spread over videos (faces: σ_m ≪ σ), (n, length, 2): a
    random per-video offset c ~ N(0, spread²) plus one fixed damped rotation of the given amplitude, so
    that the residuals ``m_i = α_i − α_1`` are the same for every video (:func:`small_motion_residuals`)."""
    offset = spread * torch.randn(n, 1, 2, generator=generator)  # (n, 1, 2)
    return offset + amplitude * continuation(torch.tensor([[1.0, 0.0]]), length)  # (n, L, 2)


def small_motion_residuals(length: int, amplitude: float = 0.1) -> torch.Tensor:
    """The residuals every :func:`small_motion` video shares: (length − 1, 2)."""
    path = amplitude * continuation(torch.tensor([[1.0, 0.0]]), length)[0]  # (L, 2)
    return path[1:] - path[:1]


def law_of(codes: torch.Tensor) -> tuple[float, float]:
    """(ω̂, γ̂) of sequences (B, L, 2): mean wrapped angle step and mean negative log norm ratio."""
    angle = torch.atan2(codes[..., 1], codes[..., 0])  # (B, L)
    step = torch.remainder(angle.diff(dim=1) + math.pi, 2 * math.pi) - math.pi  # wrapped to [−π, π)
    norm = codes.norm(dim=-1).clamp_min(1e-6)  # (B, L)
    return step.mean().item(), -torch.log(norm[:, 1:] / norm[:, :-1]).mean().item()


def make_model(use_lmc: bool = True, seed: int = 0, lmc_scale: str = "residual", **schedule) -> MotionDiffusion:
    """A fresh tiny cLMDM over 2-d codes of length 16 (``schedule``: scheduler_config arguments)."""
    from leo_video.diffusion.schedulers import scheduler_config

    torch.manual_seed(seed)
    return MotionDiffusion(motion_dim=2, sequence_length=16, use_lmc=use_lmc, unet_config=dict(TINY_UNET),
                           scheduler_config=scheduler_config(**schedule), lmc_scale=lmc_scale)


def set_stats(model: MotionDiffusion, codes: torch.Tensor) -> None:
    """μ, σ of all codes and σ_m of the LMC residuals (what training stores), from ``codes (B, L, 2)``."""
    flat = codes.reshape(-1, codes.shape[-1])
    _, m = split_codes(codes)
    model.set_normalization(flat.mean(0), flat.std(0), m.reshape(-1, codes.shape[-1]).pow(2).mean(0).sqrt())


def train(model: MotionDiffusion, steps: int = 1500, batch: int = 64, lr: float = 2e-3, seed: int = 0,
          data=damped_rotation) -> MotionDiffusion:
    """Adam on fresh sequences of ``data`` (the law) every step (an unlimited training set); returns the
    model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    set_stats(model, data(4096, model.config.sequence_length, g))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model.training_loss(data(batch, model.config.sequence_length, g), generator=g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def evaluate(model: MotionDiffusion, n: int = 256, sampler: str = "ddim", steps: int = 25, seed: int = 1) -> dict:
    """Sample continuations of ``n`` held-out start codes: ω̂, γ̂ and the RMS error to the true continuation."""
    g = torch.Generator().manual_seed(10_000 + seed)
    alpha1 = damped_rotation(n, 1, g)[:, 0]  # (n, 2)
    L = model.config.sequence_length
    sample = model.sample(alpha1, L, sampler=sampler, steps=steps, generator=g)  # (n, L, 2)
    omega, gamma = law_of(sample)
    rms = (sample - continuation(alpha1, L)).pow(2).mean().sqrt().item()
    return {"omega": omega, "gamma": gamma, "rms": rms, "finite": bool(torch.isfinite(sample).all())}


def lmc_scale_error(model: MotionDiffusion, n: int = 256, steps: int = 25, seed: int = 1) -> float:
    """RMS of sampled small-motion residuals to the one true residual path (DDIM), in code units."""
    g = torch.Generator().manual_seed(10_000 + seed)
    alpha1 = small_motion(n, 1, g)[:, 0]  # (n, 2)
    sample = model.sample(alpha1, model.config.sequence_length, sampler="ddim", steps=steps, generator=g)
    return (sample[:, 1:] - alpha1[:, None] - small_motion_residuals(model.config.sequence_length)).pow(2).mean().sqrt().item()


VARIANTS = {  # name -> scheduler_config arguments (diffusers' options, no hand-written betas)
    "ε, cosine (ours until now)": dict(beta_schedule="squaredcos_cap_v2", prediction_type="epsilon"),
    "ε, cosine, x̂₀ clipped": dict(beta_schedule="squaredcos_cap_v2", prediction_type="epsilon", clip_sample_range=3.0),
    "ε, linear (DDPM's)": dict(beta_schedule="linear", prediction_type="epsilon"),
    "ε, linear, x̂₀ clipped": dict(beta_schedule="linear", prediction_type="epsilon", clip_sample_range=3.0),
    "v, cosine": dict(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction"),
    "v, linear, zero terminal SNR": dict(beta_schedule="linear", prediction_type="v_prediction",
                                          zero_terminal_snr=True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per variant")
    parser.add_argument("--lmc-scale", action="store_true",
                        help="instead: ours (σ_m) against one scale (σ, the paper's) on small motions (σ_m ≪ σ)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.lmc_scale:
        print("| LMC scale | RMS of the residuals to the true path (motion amplitude 0.1, code spread 3) |\n|---|---|")
        for scale in ("residual", "common"):
            errors = [lmc_scale_error(train(make_model(seed=s, lmc_scale=scale, prediction_type="v_prediction"),
                                            args.steps, seed=s, data=small_motion)) for s in range(args.seeds)]
            print(f"| {scale} | {sum(errors) / len(errors):.4f} |", flush=True)
        return 0
    probe = make_model()
    codes = damped_rotation(4096, 16, torch.Generator().manual_seed(0))
    set_stats(probe, codes)
    top = (split_codes(codes)[1] / probe.residual_std).abs().max().item()
    print(f"largest normalised residual |m̂| of the training codes: {top:.2f} (the clipping range 3.0 covers it)")
    print(f"ω = {OMEGA:.4f}, γ = {GAMMA:.4f}; {args.steps} Adam steps, batch 64; DDIM 25 / DDPM 100 steps; "
          f"mean over {args.seeds} seeds\n")
    print("| objective | sampler | ω̂ | γ̂ | RMS to the true continuation |\n|---|---|---|---|---|")
    for name, schedule in VARIANTS.items():
        models = [train(make_model(seed=s, **schedule), args.steps, seed=s) for s in range(args.seeds)]
        for sampler, steps in (("ddim", 25), ("ddpm", 100)):
            start = time.time()
            rows = [evaluate(m, sampler=sampler, steps=steps) for m in models]
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("omega", "gamma", "rms")}
            print(f"| {name} | {sampler} {steps} | {mean['omega']:.4f} | {mean['gamma']:.4f} | {mean['rms']:.4f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One shared check for every ModelMixin class (diffusers' ``ModelTesterMixin`` idea): save/load round trip,
determinism, dtype and device moves, each on a tiny seeded model and inputs drawn from a seed.

A new ModelMixin class in ``leo_video`` fails ``test_every_model_class_has_a_case`` until it gets a case here.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from diffusers import ModelMixin

import leo_video
from leo_video.diffusion.code_diffusion import CodeDiffusion
from leo_video.diffusion.motion import MotionDiffusion
from leo_video.diffusion.schedulers import SAMPLERS
from leo_video.diffusion.start_code import StartCodePrior
from leo_video.diffusion.start_frame import StartFrameDiffusion
from leo_video.models.discriminator import Discriminator
from leo_video.models.lia import LatentImageAnimator
from leo_video.models.start_code import StartCodeMLP
from leo_video.models.start_frame import StartFrameUNet
from leo_video.models.unet1d import TemporalUNet1D

M = 4  # motion dimension of the tiny models

pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(seed: int, *shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed)).to(device=device, dtype=dtype)


def _like(model: ModelMixin) -> dict:
    return dict(dtype=model.dtype, device=str(model.device))


@dataclass
class Case:
    """``build()``: a tiny seeded model; ``run(model, seed)``: its output on inputs (and noise) drawn from ``seed``;
    ``exact(model, seed)``: a call that draws no noise in the model's dtype, for comparing dtypes (default ``run``)."""

    build: Callable[[], ModelMixin]
    run: Callable[[ModelMixin, int], torch.Tensor]
    exact: Callable[[ModelMixin, int], torch.Tensor] | None = None


def _stats(model: CodeDiffusion, residual: bool = False) -> CodeDiffusion:
    """Non-trivial code statistics, so that a round trip that loses the buffers fails."""
    model.set_normalization(torch.linspace(-1, 1, M), torch.linspace(0.5, 2, M),
                            torch.linspace(0.1, 0.4, M) if residual else None)
    return model


CASES = {
    LatentImageAnimator: Case(
        lambda: LatentImageAnimator(64, style_dim=32, motion_dim=M, channel_max=16),
        lambda m, s: m(_randn(s, 2, 3, 64, 64, **_like(m)), _randn(s + 1, 2, 3, 64, 64, **_like(m)))),
    Discriminator: Case(
        lambda: Discriminator(size=16, channel_max=16),
        lambda m, s: m(_randn(s, 4, 3, 16, 16, **_like(m)))),
    TemporalUNet1D: Case(
        lambda: TemporalUNet1D(in_channels=M, out_channels=M, block_channels=(8, 16), layers_per_block=1,
                               attention_levels=(False, True), attention_head_dim=8, norm_groups=4),
        lambda m, s: m(_randn(s, 2, M, 9, **_like(m)), torch.tensor([3, 700], device=m.device))),
    StartCodeMLP: Case(
        lambda: StartCodeMLP(motion_dim=M, hidden_dim=16, num_blocks=2, time_embed_dim=8),
        lambda m, s: m(_randn(s, 3, M, **_like(m)), torch.tensor([1, 50, 900], device=m.device))),
    StartFrameUNet: Case(
        lambda: StartFrameUNet(sample_size=16, motion_dim=M, block_out_channels=(8, 16), layers_per_block=1,
                               attention_levels=(False, True), norm_num_groups=4, attention_head_dim=8),
        lambda m, s: m.guided_eps(_randn(s, 2, 3, 16, 16, **_like(m)), torch.tensor([5, 500], device=m.device),
                                  _randn(s + 1, 2, M, **_like(m)), 2.0)),
    MotionDiffusion: Case(
        lambda: _stats(MotionDiffusion.from_preset("tiny", motion_dim=M, sequence_length=6), residual=True),
        lambda m, s: m.sample(_randn(s, 2, M, **_like(m)), sampler="dpm++", steps=3, generator=_gen(s + 1)),
        lambda m, s: m.residual_eps(_randn(s, 2, M, **_like(m)), _randn(s + 1, 2, 5, M, **_like(m)), torch.tensor([9, 600], device=m.device))),
    StartCodePrior: Case(
        lambda: _stats(StartCodePrior.from_preset("tiny", motion_dim=M)),
        lambda m, s: m.sample(3, sampler="ddpm", steps=3, generator=_gen(s)),
        lambda m, s: m.mlp(_randn(s, 3, M, **_like(m)), torch.tensor([1, 50, 900], device=m.device))),
    StartFrameDiffusion: Case(
        lambda: _stats(StartFrameDiffusion.from_preset("tiny", sample_size=16, motion_dim=M)),
        lambda m, s: m.sample(_randn(s, 2, M, **_like(m)), "ddim", steps=3, guidance_scale=1.5, generator=_gen(s + 1)),
        lambda m, s: m.unet.guided_eps(_randn(s, 2, 3, 16, 16, **_like(m)), torch.tensor([5, 500], device=m.device),
                                       _randn(s + 1, 2, M, **_like(m)), 1.5)),
}


def _model(cls: type) -> ModelMixin:
    """The case's model with every parameter moved off its initial value (zero-initialised output layers
    would make any two models agree), in eval mode."""
    torch.manual_seed(0)
    model = CASES[cls].build()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _leo_model_classes() -> set[type]:
    for info in pkgutil.walk_packages(leo_video.__path__, "leo_video."):
        if info.name.startswith(("leo_video.models", "leo_video.diffusion")):
            importlib.import_module(info.name)
    found, todo = set(), [ModelMixin]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("leo_video.") and sub is not CodeDiffusion:  # CodeDiffusion: a base class
                found.add(sub)
    return found


def test_every_model_class_has_a_case():
    assert _leo_model_classes() == set(CASES)


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_save_load_round_trip(cls, tmp_path):
    model = _model(cls)
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path).eval()
    def public(config) -> dict:  # as config.json holds it (tuples become lists)
        return json.loads(json.dumps({key: value for key, value in config.items() if not key.startswith("_")}))

    assert public(loaded.config) == public(model.config)
    saved, restored = model.state_dict(), loaded.state_dict()
    assert saved.keys() == restored.keys() and all(torch.equal(saved[k], restored[k]) for k in saved)
    with torch.no_grad():
        assert torch.equal(CASES[cls].run(loaded, 1), CASES[cls].run(model, 1))


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_deterministic_in_the_seed_alone(cls):
    model, run = _model(cls), CASES[cls].run
    with torch.no_grad():
        first = run(model, 1)
        torch.manual_seed(123)  # the global RNG plays no part
        assert torch.equal(run(model, 1), first)
        assert not torch.allclose(run(model, 2), first)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("cls", [MotionDiffusion, StartCodePrior, StartFrameDiffusion], ids=lambda c: c.__name__)
def test_every_sampler_is_deterministic_in_the_generator(cls, sampler):
    model = _model(cls)
    alpha1 = _randn(0, 2, M)
    draw = {MotionDiffusion: lambda g: model.sample(alpha1, sampler=sampler, steps=3, generator=g),
            StartCodePrior: lambda g: model.sample(2, sampler=sampler, steps=3, generator=g),
            StartFrameDiffusion: lambda g: model.sample(alpha1, sampler, steps=3, guidance_scale=2.0, generator=g)}[cls]
    a, b, c = draw(_gen(1)), draw(_gen(1)), draw(_gen(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_float64_move_follows_the_float32_model(cls):
    """``.to(torch.float64)`` moves every parameter and buffer; outputs agree to float32 rounding (the float64
    run is the exact one: the difference is the float32 model's error, ~1e-5 relative after a few layers)."""
    model, run = _model(cls), CASES[cls].exact or CASES[cls].run
    with torch.no_grad():
        out32 = run(model, 1)
        model.to(torch.float64)
        assert {t.dtype for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()} == {torch.float64}
        out64 = run(model, 1)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-4 * out64.abs().max().item())


@pytest.mark.gpu
@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_cuda_move_follows_the_cpu_model(cls):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    model, run = _model(cls).double(), CASES[cls].exact or CASES[cls].run
    with torch.no_grad():
        cpu = run(model, 1)
        model.to("cuda")
        assert all(t.is_cuda for t in [*model.parameters(), *model.buffers()])
        gpu = run(model, 1)
    assert gpu.is_cuda
    # float64 models, but diffusers computes the sinusoidal timestep embedding in float32 whatever the model's
    # dtype, and CUDA's float32 sin/exp differ from the CPU's by an ulp: float32-level agreement (seen on an
    # H100: 3e-7 of a 1.6 maximum), not float64's.
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-6 * cpu.abs().max().item())

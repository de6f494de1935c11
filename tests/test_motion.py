"""cLMDM with LMC, the no-LMC ablation, the start-code prior, schedulers and long generation."""

from __future__ import annotations

import pytest
import torch

from leo_video.diffusion.motion import (
    MotionDiffusion,
    lmc_denoiser_input,
    merge_codes,
    split_codes,
)
from leo_video.diffusion import schedulers
from leo_video.diffusion.start_code import StartCodePrior
from leo_video.diffusion.schedulers import SAMPLERS, denoise, make_scheduler
from leo_video.errors import ConfigError, InputError, NumericalError

M, L = 4, 8
TINY_UNET = dict(block_channels=(16, 32), layers_per_block=1, attention_levels=(False, True),
                 attention_head_dim=8, norm_groups=8)


def tiny_model(use_lmc: bool = True, seed: int = 0, **kwargs) -> MotionDiffusion:
    torch.manual_seed(seed)
    model = MotionDiffusion(motion_dim=M, sequence_length=L, use_lmc=use_lmc, unet_config=TINY_UNET, **kwargs)
    model.set_normalization(torch.linspace(-1, 1, M), torch.linspace(0.5, 2, M), torch.linspace(0.1, 0.4, M))
    for p in model.unet.conv_out.parameters():  # break the zero init so outputs depend on inputs
        p.data.normal_(0, 0.05)
    return model.eval()


def linear_motion(n: int, generator: torch.Generator) -> torch.Tensor:
    """Sequences of a known linear motion process: α_i = α_1 + (i - 1) v, (n, L, M)."""
    alpha1 = torch.randn(n, M, generator=generator)
    velocity = 0.3 * torch.randn(n, M, generator=generator)
    steps = torch.arange(L, dtype=torch.float32)[None, :, None]
    return alpha1[:, None] + steps * velocity[:, None]


def record_unet_inputs(model: MotionDiffusion) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


# ---- the LMC construction


def test_split_merge_and_denoiser_input_layout():
    a = torch.randn(3, L, M)
    alpha1, m = split_codes(a)
    assert alpha1.shape == (3, M) and m.shape == (3, L - 1, M)
    torch.testing.assert_close(m[:, 2], a[:, 3] - a[:, 0])
    torch.testing.assert_close(merge_codes(alpha1, m), a)
    x = lmc_denoiser_input(alpha1, m)  # [α1, α1 + m] on the time axis, channels = M
    assert x.shape == (3, M, L)
    assert torch.equal(x[:, :, 0], alpha1)
    torch.testing.assert_close(x.transpose(1, 2), a)


def test_training_keeps_alpha1_clean_and_noises_only_m():
    model = tiny_model()
    codes = torch.randn(5, L, M) * 2 + 1
    seen = record_unet_inputs(model)
    model.training_loss(codes, generator=torch.Generator().manual_seed(7))
    (x,) = seen
    alpha1, m = split_codes(codes)
    alpha1_hat = model._normalize(alpha1)
    assert torch.equal(x[:, :, 0], alpha1_hat)  # α₁ clean, in the first time position
    # the rest is α̂₁ + m_t with m_t = DDPM add_noise(m / σ_m) at the same draw of (t, ε)
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (5,), generator=g)
    noise = torch.randn(5, L - 1, M, generator=g)
    m_t = model.train_scheduler.add_noise(m / model.residual_std, noise, t)
    torch.testing.assert_close(x[:, :, 1:].transpose(1, 2) - alpha1_hat[:, None], m_t, atol=1e-5, rtol=0)
    assert not torch.allclose(m_t, m / model.residual_std, atol=1e-2)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_sampling_keeps_alpha1_clean_at_every_step(sampler):
    model = tiny_model()
    alpha1 = torch.randn(2, M) * 3
    seen = record_unet_inputs(model)
    out = model.sample(alpha1, sampler=sampler, steps=6, generator=torch.Generator().manual_seed(0))
    assert len(seen) == 6
    for x in seen:
        assert x.shape == (2, M, L)
        assert torch.equal(x[:, :, 0], model._normalize(alpha1))
    assert out.shape == (2, L, M)
    assert torch.equal(out[:, 0], alpha1)  # the output sequence starts with α₁ itself


# ---- training


def test_loss_finite_and_decreasing_on_linear_motion():
    g = torch.Generator().manual_seed(0)
    data = linear_motion(256, g)
    model = tiny_model().train()
    _, m = split_codes(data)
    model.set_normalization(data.flatten(0, 1).mean(0), data.flatten(0, 1).std(0), m.flatten(0, 1).std(0))
    eval_batch = data[:128]

    def eval_loss() -> float:
        with torch.no_grad():
            return float(sum(model.training_loss(eval_batch, torch.Generator().manual_seed(s)) for s in range(4)) / 4)

    before = eval_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):  # measured: 1.11 -> 0.39
        batch = data[torch.randint(0, 256, (16,), generator=g)]
        loss = model.training_loss(batch, generator=g)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.6 * before, (before, after)


def test_loss_input_errors():
    model = tiny_model()
    with pytest.raises(InputError, match="codes"):
        model.training_loss(torch.randn(2, L, M + 1))
    with pytest.raises(InputError, match="alpha1"):
        model.sample(None)
    with pytest.raises(InputError, match="alpha1"):
        model.sample(torch.randn(2, M + 1))
    with pytest.raises(NumericalError, match="alpha1"):
        model.sample(torch.full((1, M), float("nan")))


# ---- samplers and determinism


def test_make_scheduler_names_and_shared_schedule():
    built = {name: make_scheduler(name, beta_schedule="linear") for name in SAMPLERS}
    ref = built["ddpm"].alphas_cumprod
    for sched in built.values():
        torch.testing.assert_close(sched.alphas_cumprod, ref)
    assert built["dpm++"].config.algorithm_type == "dpmsolver++"
    with pytest.raises(ConfigError, match="sampler 'euler'"):
        make_scheduler("euler")


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_denoise_loop_recovers_data_with_an_exact_denoiser(sampler):
    # data distribution = a point mass at x0; its exact ε is (x_t - sqrt(ᾱ) x0) / sqrt(1 - ᾱ)
    sched = make_scheduler(sampler)
    x0 = torch.tensor([1.5, -0.5, 2.0])
    abar = make_scheduler("ddpm").alphas_cumprod

    def exact_eps(x, t):
        a = abar[int(t)]
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    out = denoise(exact_eps, (4, 3), sched, steps=10, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0.expand(4, 3), atol=1e-3, rtol=0)


# ---- any length


@pytest.mark.parametrize("total", [1, 5, 8, 9, 22, 40])
def test_generate_long_is_chained_samples(total):
    """generate_long equals chunks drawn one by one with :meth:`sample`, each started at the previous
    chunk's last code, stitched without repeating that code, and cut at ``total``.

    Built from ``sample`` (not from ``iter_chunks``, which generate_long wraps): fails if a chunk is
    conditioned on another code than the previous chunk's last one (α₁ again, or the last-but-one),
    if the shared code is emitted twice or dropped, or if the length is cut at the wrong end.
    """
    model = tiny_model()
    alpha1 = torch.randn(2, M)
    kw = dict(sampler="ddim", steps=3)
    g = torch.Generator().manual_seed(3)
    pieces, start, n = [], alpha1, 0
    while n < total:
        chunk = model.sample(start, L, generator=g, **kw)  # (2, L, M)
        new = chunk if not pieces else chunk[:, 1:]
        pieces.append(new)
        n += new.shape[1]
        start = chunk[:, -1]
    expected = torch.cat(pieces, dim=1)[:, :total]
    full = model.generate_long(alpha1, total, generator=torch.Generator().manual_seed(3), **kw)
    assert full.shape == (2, total, M)
    assert torch.equal(full[:, 0], alpha1)
    torch.testing.assert_close(full, expected)
    chunks = list(model.iter_chunks(alpha1, total, include_start=True, generator=torch.Generator().manual_seed(3), **kw))
    for prev, nxt in zip(chunks, chunks[1:]):
        assert torch.equal(nxt[:, 0], prev[:, -1])  # include_start: each chunk repeats its start code


def test_iter_chunks_streams_lazily():
    model = tiny_model()
    seen = record_unet_inputs(model)
    stream = model.iter_chunks(torch.randn(1, M), total_length=10_000, steps=2)
    first = next(stream)
    assert first.shape == (1, L, M)
    assert len(seen) == 2  # one chunk sampled, not 10,000 frames' worth
    second = next(stream)
    assert second.shape == (1, L - 1, M) and len(seen) == 4


# ---- without LMC (the ablation)


def test_without_lmc_noises_the_whole_sequence_and_samples():
    model = tiny_model(use_lmc=False)
    codes = torch.randn(3, L, M)
    seen = record_unet_inputs(model)
    loss = model.training_loss(codes, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.ndim == 0
    assert seen[0].shape == (3, M, L)
    assert not torch.allclose(seen[0][:, :, 0], model._normalize(codes[:, 0]), atol=1e-3)  # α₁ noised too

    uncond = model.sample(None, num_samples=4, steps=3, generator=torch.Generator().manual_seed(0))
    assert uncond.shape == (4, L, M) and torch.isfinite(uncond).all()
    alpha1 = torch.randn(2, M)
    cond = model.sample(alpha1, length=12, steps=3, generator=torch.Generator().manual_seed(0))
    assert cond.shape == (2, 12, M) and torch.equal(cond[:, 0], alpha1)
    assert model.generate_long(None, 20, num_samples=2, steps=2).shape == (2, 20, M)


# ---- save / load


def test_from_preset_and_bad_config():
    model = MotionDiffusion.from_preset("tiny", motion_dim=6, sequence_length=12, beta_schedule="linear")
    assert model.config.scheduler_config["beta_schedule"] == "linear"
    assert model.unet.config.in_channels == 6
    with pytest.raises(ConfigError):
        MotionDiffusion.from_preset("huge")
    with pytest.raises(ConfigError, match="sequence_length"):
        MotionDiffusion(sequence_length=1)


# ---- the start-code prior


def test_start_code_prior_loss_and_samples_through_its_statistics():
    """Determinism and round trips: tests/test_models.py."""
    torch.manual_seed(0)
    prior = StartCodePrior.from_preset("tiny", motion_dim=M)
    prior.set_normalization(torch.full((M,), 3.0), torch.full((M,), 0.5))
    loss = prior.training_loss(torch.randn(8, M), generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    # samples are the denoising loop's output mapped back through the stored (μ, σ)
    for p in prior.mlp.proj_out.parameters():
        p.data.normal_(0, 0.05)
    draws = prior.sample(6, steps=4, generator=torch.Generator().manual_seed(2))
    raw = denoise(prior.mlp, (6, M), make_scheduler("ddim"), 4, torch.Generator().manual_seed(2))
    torch.testing.assert_close(draws, 3.0 + 0.5 * raw)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_training_target_follows_prediction_type(prediction_type):
    model = tiny_model(scheduler_config=None)
    model.register_to_config(scheduler_config=schedulers.scheduler_config(prediction_type=prediction_type))
    model._train_scheduler = None
    x0 = torch.randn(6, L - 1, M)
    x_t, t, target = model._noised(x0, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    t_ref = torch.randint(0, 1000, (6,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    abar = model.train_scheduler.alphas_cumprod[t_ref][:, None, None]
    assert torch.equal(t, t_ref)
    torch.testing.assert_close(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
    expected = {"epsilon": noise, "sample": x0, "v_prediction": abar.sqrt() * noise - (1 - abar).sqrt() * x0}
    torch.testing.assert_close(target, expected[prediction_type])


def test_scheduler_config_validation():
    assert schedulers.scheduler_config(timestep_spacing="leading")["timestep_spacing"] == "leading"
    for bad in (dict(beta_schedule="cubic"), dict(prediction_type="x"), dict(timestep_spacing="odd"),
                dict(num_train_timesteps=1)):
        with pytest.raises(ConfigError):
            schedulers.scheduler_config(**bad)
    with pytest.raises(ConfigError, match="steps"):
        denoise(lambda x, t: x, (1, 2), make_scheduler("ddim"), steps=0)


@pytest.mark.gpu
def test_cuda_sampling_follows_a_cpu_generator_and_trains():
    alpha1 = torch.randn(2, M)
    cpu = tiny_model().sample(alpha1, steps=5, generator=torch.Generator().manual_seed(0))
    model = tiny_model().cuda()
    a = model.sample(alpha1, steps=5, generator=torch.Generator().manual_seed(0))
    b = model.sample(alpha1.cuda(), steps=5, generator=torch.Generator().manual_seed(0))
    assert a.is_cuda and torch.equal(a, b)
    torch.testing.assert_close(a.cpu(), cpu, atol=1e-3, rtol=1e-3)  # same noise, drawn on the CPU
    loss = model.training_loss(torch.randn(4, L, M), generator=torch.Generator(device="cuda").manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and model.unet.conv_out.weight.grad is not None
    prior = StartCodePrior.from_preset("tiny", motion_dim=M).cuda()
    assert prior.sample(3, steps=3, generator=torch.Generator().manual_seed(0)).device.type == "cuda"


# ---- the paper's options (issue 21)


@pytest.mark.parametrize("lmc_scale", ["common", "residual"])
def test_lmc_in_one_scale_adds_the_normalised_codes(lmc_scale):
    """``lmc_scale="common"``: at zero noise the denoiser sees ``[α̂₁, α̂₁ + m/σ]`` = the normalised codes
    ``(α − μ)/σ`` (the paper's ``α₁ + m_t`` in one normalisation); ``residual`` (ours) divides m by σ_m
    instead. Sampling maps back with the same scale, and the choice survives save/load. Fails if the
    option is ignored, if training and sampling use different scales, or if it is lost on export."""
    model = tiny_model(lmc_scale=lmc_scale)
    codes = torch.randn(3, L, M)
    seen = record_unet_inputs(model)
    t0 = torch.zeros(3, dtype=torch.long)
    model._noised = lambda x0, generator: (x0, t0, x0)  # no noise: the clean residuals reach the U-Net
    model.training_loss(codes)
    normalised = ((codes - model.code_mean) / model.code_std).transpose(1, 2)  # (B, M, L)
    matches = torch.allclose(seen[0], normalised, atol=1e-5)
    assert matches is (lmc_scale == "common")
    scale = model.code_std if lmc_scale == "common" else model.residual_std
    assert torch.equal(model.residual_scale, scale)
    del model._noised
    alpha1 = torch.randn(2, M)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    sample = model.sample(alpha1, steps=2, generator=g())
    m_hat = denoise(lambda m_t, t: model.residual_eps(model._normalize(alpha1), m_t, t), (2, L - 1, M),
                    model._sampler("ddim"), 2, g())
    torch.testing.assert_close(sample[:, 1:], alpha1[:, None] + m_hat * scale)


def test_lmc_scale_round_trip_and_check(tmp_path):
    model = tiny_model(lmc_scale="common")
    model.save_pretrained(tmp_path / "m")
    assert MotionDiffusion.from_pretrained(tmp_path / "m").config.lmc_scale == "common"
    with pytest.raises(ConfigError, match="lmc_scale"):
        tiny_model(lmc_scale="both")


def test_x0_clipping_and_zero_terminal_snr_reach_the_samplers():
    """scheduler_config's clip range and zero-terminal-SNR reach diffusers' DDPM and DDIM (which then clip x̂₀
    to [−r, r] and end the schedule at ᾱ_T = 0), and zero SNR refuses ε-prediction (undefined at SNR 0)."""
    config = schedulers.scheduler_config(beta_schedule="linear", clip_sample_range=2.5)
    for name in ("ddpm", "ddim"):
        s = make_scheduler(name, config=config)
        assert s.config.clip_sample and s.config.clip_sample_range == 2.5
    # DDIM with ε = 0 predicts x̂₀ = x_t / √ᾱ_t: at the first step that is far outside [−2.5, 2.5] unless clipped
    s = make_scheduler("ddim", config=config)
    s.set_timesteps(2)
    x = torch.full((1, 4), 3.0)
    out = s.step(torch.zeros_like(x), s.timesteps[0], x)
    assert out.pred_original_sample.abs().max().item() == pytest.approx(2.5)
    zero = schedulers.scheduler_config(beta_schedule="linear", prediction_type="v_prediction", zero_terminal_snr=True)
    assert zero["timestep_spacing"] == "trailing"
    assert make_scheduler("ddpm", config=zero).alphas_cumprod[-1].item() < 1e-8
    assert make_scheduler("dpm++", config=zero).alphas_cumprod[-1].item() <= 2.0**-24  # DPM-Solver's floor (no inf σ)
    linear = schedulers.scheduler_config(beta_schedule="linear", prediction_type="v_prediction")
    assert make_scheduler("ddpm", config=linear).alphas_cumprod[-1] > 1e-5  # 4e-5 without the rescaling
    with pytest.raises(ConfigError, match="zero_terminal_snr"):
        schedulers.scheduler_config(zero_terminal_snr=True)

"""cDDPM (start frame given its motion code): tiny U-Net, CPU, 16²-32²."""

from __future__ import annotations


import pytest
import torch

from leo_video.diffusion.start_frame import StartFrameDiffusion
from leo_video.errors import ConfigError, InputError
from leo_video.models.start_frame import START_FRAME_PRESETS, StartFrameUNet

M = 4


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(size: int = 16, **kw) -> StartFrameDiffusion:
    torch.manual_seed(0)
    return StartFrameDiffusion.from_preset("tiny", sample_size=size, motion_dim=M, **kw).eval()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def model() -> StartFrameDiffusion:
    return tiny()


@pytest.mark.parametrize("size", [16, 32])
def test_unet_shapes(size):
    torch.manual_seed(0)
    unet = StartFrameUNet(sample_size=size, motion_dim=M, **START_FRAME_PRESETS["tiny"])
    x = torch.randn(3, 3, size, size)
    eps = unet(x, torch.tensor([1, 500, 999]), torch.randn(3, M))
    assert eps.shape == (3, 3, size, size)
    assert unet(x, 10, torch.randn(3, M)).shape == (3, 3, size, size)  # scalar timestep


def test_sample_shape_and_range(model):
    images = model.sample(torch.randn(2, M), "ddim", steps=3, generator=seeded())
    assert images.shape == (2, 3, 16, 16)
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0


def test_condition_changes_prediction(model):
    unet = model.unet
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([300, 300])
    with torch.no_grad():
        a = unet(x, t, torch.zeros(2, M))
        b = unet(x, t, torch.full((2, M), 2.0))
        # dropped rows use the null embedding: the code no longer matters there
        drop = torch.tensor([True, False])
        da = unet(x, t, torch.zeros(2, M), drop)
        db = unet(x, t, torch.full((2, M), 2.0), drop)
    assert (a - b).abs().mean() > 1e-3
    torch.testing.assert_close(da[0], db[0])
    assert (da[1] - db[1]).abs().mean() > 1e-3


def test_guidance(model):
    unet = model.unet
    with torch.no_grad():  # give the null embedding a value, so ε_∅ is not a trivial case
        unet.null_embedding.copy_(torch.randn_like(unet.null_embedding))
    x, t, code = torch.randn(2, 3, 16, 16), torch.tensor(400), torch.randn(2, M)
    with torch.no_grad():
        cond = unet(x, t, code)
        null = unet(x, t, code, torch.ones(2, dtype=torch.bool))
        torch.testing.assert_close(unet.guided_eps(x, t, code, 1.0), cond)
        torch.testing.assert_close(unet.guided_eps(x, t, code, 3.0), null + 3.0 * (cond - null), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(unet.guided_eps(x, t, code, 0.0), null, atol=1e-5, rtol=1e-4)
    assert (cond - null).abs().mean() > 1e-3


def test_codes_are_normalised(model):
    """Sampling with stats (μ, σ) on codes α equals sampling without stats on (α − μ) / σ."""
    mean, std = torch.tensor([1.0, -2.0, 0.5, 3.0]), torch.tensor([2.0, 0.5, 1.0, 4.0])
    codes = torch.randn(2, M)
    plain = model.sample((codes - mean) / std, "ddim", steps=2, generator=seeded())
    normed = tiny()
    normed.set_normalization(mean, std)
    torch.testing.assert_close(normed.sample(codes, "ddim", steps=2, generator=seeded()), plain)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_offset_noise(offset):
    """x_t = √ᾱ x₀ + √(1−ᾱ) target, and the target carries a per-channel constant of std ``offset``."""
    model = tiny(offset_noise=offset)
    x0 = torch.rand(64, 3, 16, 16, generator=seeded()) * 2 - 1
    x_t, t, target = model._noised_with_offset(x0, seeded(1))
    abar = model.train_scheduler.alphas_cumprod[t][:, None, None, None]
    torch.testing.assert_close(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * target, atol=1e-5, rtol=1e-5)
    channel_means = target.mean((2, 3))  # (B, 3): std 1/16 from pixel noise, plus the offset
    assert channel_means.std().item() == pytest.approx((offset**2 + 1 / 256) ** 0.5, rel=0.2)


def test_zero_terminal_snr_schedule():
    from leo_video.diffusion.start_frame import image_scheduler_config

    config = image_scheduler_config(zero_terminal_snr=True)
    assert config["prediction_type"] == "v_prediction" and config["timestep_spacing"] == "trailing"
    with pytest.raises(ConfigError, match="v_prediction"):
        image_scheduler_config(zero_terminal_snr=True, prediction_type="epsilon")
    model = tiny(zero_terminal_snr=True)
    assert model.train_scheduler.alphas_cumprod[-1] < 1e-6
    loss = model.training_loss(torch.rand(2, 3, 16, 16) * 2 - 1, torch.randn(2, M), seeded())
    assert torch.isfinite(loss)
    for sampler in ("ddpm", "ddim", "dpm++"):
        assert torch.isfinite(model.sample(torch.randn(2, M), sampler, steps=3, generator=seeded())).all()


def colour_of(codes: torch.Tensor, size: int) -> torch.Tensor:
    """Toy data: a flat image whose RGB colour is a fixed function of the code, (B, M) -> (B, 3, S, S)."""
    rgb = torch.tanh(codes[:, :3] * 1.5)  # (B, 3)
    return rgb[:, :, None, None].expand(-1, -1, size, size).contiguous()


def test_training_reduces_loss():
    model = tiny().train()
    codes_eval = torch.randn(16, M, generator=seeded(100))
    images_eval = colour_of(codes_eval, 16)

    def eval_loss() -> float:
        with torch.no_grad():  # same noise, timesteps and dropout every time
            return model.training_loss(images_eval, codes_eval, seeded(7)).item()

    before = eval_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    data = seeded(0)
    for _ in range(30):
        codes = torch.randn(16, M, generator=data)
        loss = model(colour_of(codes, 16), codes, data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = eval_loss()
    assert after < 0.6 * before, (before, after)


def test_input_errors(model):
    with pytest.raises(InputError, match="codes"):
        model.sample(torch.randn(2, M + 1), "ddim", steps=2)
    with pytest.raises(InputError, match="images"):
        model.training_loss(torch.randn(2, 3, 8, 8), torch.randn(2, M))
    with pytest.raises(InputError, match="codes"):
        model.training_loss(torch.randn(2, 3, 16, 16), torch.randn(3, M))
    with pytest.raises(ConfigError, match="sampler"):
        model.sample(torch.randn(1, M), "euler", steps=2)
    with pytest.raises(InputError, match="guidance_scale"):
        tiny(cond_dropout=0.0).sample(torch.randn(1, M), "ddim", steps=2, guidance_scale=2.0)
    with pytest.raises(ConfigError, match="preset"):
        StartFrameDiffusion.from_preset("huge")
    with pytest.raises(ConfigError, match="sample_size"):
        StartFrameUNet(sample_size=17, block_out_channels=(16, 32), attention_levels=(False, True), norm_num_groups=8)


# --------------------------------------------------------------------------------------------------
# leo-video train cddpm (end to end, tiny)


@pytest.fixture(scope="module")
def train_inputs(tmp_path_factory):
    """A 3-video synthetic dataset at 32² and a random LIA export (64², M = 4)."""
    from leo_video.data.synthetic import make_synthetic_dataset
    from leo_video.models.lia import LatentImageAnimator
    from leo_video.models.loading import export_lia

    root = tmp_path_factory.mktemp("cddpm_train")
    data = make_synthetic_dataset(root / "data", 3, 4, 32, seed=0, test_fraction=0.0, fmt="frames", progress=False)
    torch.manual_seed(0)
    lia = export_lia(LatentImageAnimator(64, style_dim=32, motion_dim=M).eval(), root / "lia")
    return data, lia


def train_args(data, lia, run_dir, steps: int) -> list[str]:
    sets = [
        "model.preset=tiny", "model.sample_size=32", "data.stats_frames=6", "data.repeats=2",
        f"train.max_steps={steps}", "train.batch_size=2", "train.checkpoint_every=2", "train.log_every=1",
        "train.image_every=2", "train.cpu=true", "sample.steps=2", "sample.num_images=2",
    ]  # fmt: skip
    return ["train", "cddpm", "--data", data, "--lia", lia, "--config", "synthetic64", "--run-dir", run_dir,
            *[arg for s in sets for arg in ("--set", s)]]  # fmt: skip


def test_train_cli_exports_and_resumes_exactly(train_inputs, tmp_path, run_cli):
    from safetensors.torch import load_file

    data, lia = train_inputs
    code, out, err = run_cli(*train_args(data, lia, tmp_path / "straight", 4))
    assert code == 0, err
    assert "exported" in out
    straight = tmp_path / "straight" / "export"
    model = StartFrameDiffusion.from_pretrained(straight)
    assert model.motion_dim == M and model.sample_size == 32
    assert model.code_std.ne(1).all()  # statistics of the LIA codes, not the defaults
    assert list((tmp_path / "straight" / "tb").iterdir())

    # 2 steps, then rerun the same command with max_steps=4: the same weights as 4 steps at once
    assert run_cli(*train_args(data, lia, tmp_path / "resumed", 2))[0] == 0
    assert run_cli(*train_args(data, lia, tmp_path / "resumed", 4))[0] == 0
    weights = "diffusion_pytorch_model.safetensors"
    a, b = load_file(straight / weights), load_file(tmp_path / "resumed" / "export" / weights)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_channels_last_training_matches_contiguous(train_inputs, tmp_path, run_cli):
    """``train.memory_format=channels_last``: the U-Net's convolution weights NHWC in the checkpoint, the same
    losses as a contiguous run within float32 rounding (same batches and noise), an export that loads."""
    import json

    from leo_video.train import checkpoint as ckpt

    data, lia = train_inputs
    runs = {}
    for layout in ("contiguous", "channels_last"):
        run = runs[layout] = tmp_path / layout
        code, _, err = run_cli(*train_args(data, lia, run, 2), "--set", f"train.memory_format={layout}")
        assert code == 0, err
        assert (", channels_last, batch" in err) == (layout == "channels_last")
    state = ckpt.load_checkpoint(ckpt.list_checkpoints(runs["channels_last"])[-1][1])["task"]["models"]["cddpm"]
    kernels = [v for v in state.values() if v.dim() == 4 and v.shape[-1] > 1]  # 1x1 kernels are both layouts
    assert kernels and all(v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous()
                           for v in kernels)  # fmt: skip
    losses = {layout: [json.loads(line)["loss/mse"] for line in (run / "metrics.jsonl").read_text().splitlines()]
              for layout, run in runs.items()}  # fmt: skip
    assert len(losses["contiguous"]) == 2
    torch.testing.assert_close(losses["channels_last"], losses["contiguous"], rtol=1e-4, atol=1e-6)
    StartFrameDiffusion.from_pretrained(runs["channels_last"] / "export")


def test_memory_format_setting_per_stage():
    """``train.memory_format``: auto is channels_last on CUDA with bf16 only for LIA (measured faster), contiguous
    for the cDDPM (not yet) and on CPU or in fp32; an explicit channels_last reaches both image stages; the
    stages of 1-D codes ignore it."""
    from types import SimpleNamespace

    from leo_video.configs import LoopConfig
    from leo_video.train.alpha_prior import AlphaPriorTask
    from leo_video.train.cddpm import CDDPMTask
    from leo_video.train.lia import LIATrainingTask
    from leo_video.train.lmdm import LMDMTask

    def nhwc(cls, device: str, precision: str, setting: str) -> bool:
        task = cls.__new__(cls)  # the property reads only these two
        task.loop = LoopConfig(memory_format=setting, mixed_precision=precision)
        task.accelerator = SimpleNamespace(device=torch.device(device))
        return task.channels_last

    stages = (LIATrainingTask, CDDPMTask, LMDMTask, AlphaPriorTask)
    assert [nhwc(c, "cuda", "bf16", "auto") for c in stages] == [True, False, False, False]
    assert [nhwc(c, "cuda", "no", "auto") for c in stages] == [False] * 4
    assert [nhwc(c, "cpu", "bf16", "auto") for c in stages] == [False] * 4
    assert [nhwc(c, "cpu", "no", "channels_last") for c in stages] == [True, True, False, False]
    assert [nhwc(c, "cuda", "bf16", "contiguous") for c in stages] == [False] * 4


def test_train_cli_errors(train_inputs, tmp_path, run_cli):
    data, lia = train_inputs
    code, _, err = run_cli("train", "cddpm", "--data", data, "--lia", tmp_path / "missing.pt", "--run-dir", tmp_path)
    assert code != 0 and "missing.pt" in err
    code, _, err = run_cli(*train_args(data, lia, tmp_path, 2), "--set", "sample.guidance_scale=2",
                           "--set", "model.cond_dropout=0")  # fmt: skip
    assert code != 0 and "guidance_scale" in err
    code, out, _ = run_cli(*train_args(data, lia, tmp_path, 2), "--print-config")
    assert code == 0 and "preset: tiny" in out

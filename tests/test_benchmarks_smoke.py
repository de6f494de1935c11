"""The benchmark scripts of ``benchmarks/`` run on CPU at tiny sizes and write their markdown/JSON reports.

They are meant for a GPU (``benchmarks/gpu_suite.sh``), where nobody should discover a typo after
minutes of device time; here each runs in-process with a tiny model, one thread, one repetition.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = ["--device", "cpu", "--threads", "1", "--repeats", "1"]


@pytest.fixture(scope="module")
def bench_modules():
    """The scripts as modules; the global torch settings their ``main`` changes are restored afterwards."""
    import torch

    threads, tf32 = torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name)
               for name in ("render", "generate", "train_throughput", "summarize", "i3d_throughput", "bias_act",
                            "train_data_vs_random", "perceptual", "encode_motion")}
    finally:
        sys.path.remove(str(BENCH))
        torch.set_num_threads(threads)
        torch.backends.cuda.matmul.allow_tf32 = tf32


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """One output folder for every script, as in the suite (the summary reads them all)."""
    return tmp_path_factory.mktemp("bench_out")


def _report(out: Path, name: str) -> tuple[str, dict]:
    return (out / f"{name}.md").read_text(), json.loads((out / f"{name}.json").read_text())


def test_render_benchmark_cpu(bench_modules, out):
    bench_modules["render"].main([*TINY, "--out", str(out), "--sizes", "64", "--batch", "2", "--channel-max", "16",
                                  "--style-dim", "32", "--compile-sizes", "--profile-size", "64",
                                  "--profile-variant", "bf16 weights + channels_last",
                                  "--per-frame-frames", "1", "--variants", "fp32", "bf16 weights + channels_last"])
    text, data = _report(out, "render")
    assert "| fp32 |" in text and "| bf16 weights + channels_last |" in text
    assert "official LIA pattern" in text and "profile of one render batch" in text
    section = data["64"]
    assert section["decoder_flops"] > 0 and section["encoder_flops"] > 0
    assert section["render/fp32"]["mean_abs_diff_vs_fp32"] == 0.0
    assert 0 < section["render/bf16 weights + channels_last"]["mean_abs_diff_vs_fp32"] < 0.2  # bf16 rounding only


def test_bias_act_benchmark_cpu(bench_modules, out):
    """The fused activation's micro-benchmark records the networks' maps and times the reference (CPU: no Triton)."""
    bench_modules["bias_act"].main([*TINY, "--out", str(out), "--size", "64", "--channel-max", "16",
                                    "--style-dim", "32", "--batch", "2", "--iters", "1"])
    text, data = _report(out, "bias_act")
    assert "| G | 16 x 64 x 64 | NHWC | bfloat16 |" in text  # a StyledConv's map with its demodulation scale
    assert "| D | 16 (B, C) | — | — | 1 |" in text  # the discriminator's EqualLinear
    # both timings are recorded; not their order: one iteration on a shared CPU can time forward alone slower
    # than forward + backward (CI saw 0.038 s vs 0.021 s)
    assert data["total"]["reference"]["forward_backward_s"] > 0 and data["total"]["reference"]["forward_s"] > 0
    assert "triton" not in data["total"]


def test_train_data_vs_random_benchmark_cpu(bench_modules, out, tmp_path):
    """Issue 19's end-to-end row: the real loop on prepared jpg frames and on random tensors, a ratio each."""
    bench_modules["train_data_vs_random"].main([*TINY, "--out", str(out), "--size", "64", "--channel-max", "16",
                                                "--style-dim", "32", "--no-vgg", "--batch", "2", "--steps", "4",
                                                "--log-every", "2", "--workers", "0", "--videos", "2", "--frames", "8",
                                                "--formats", "jpg", "--work", str(tmp_path)])
    text, data = _report(out, "train_data_vs_random")
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| random") or line.startswith("| jpg")]
    assert [row[1].strip() for row in rows] == ["random tensors", "jpg files"]
    rates = data["images_per_s"]  # unrounded; the table's images/s column has 1 decimal
    assert [float(row[3].replace(",", "")) for row in rows] == [round(rates["random"], 1), round(rates["jpg"], 1)]
    assert rows[0][4].strip() == "100 %" and rows[1][4].strip() == f"{100 * rates['jpg'] / rates['random']:.0f} %"


def test_i3d_throughput_benchmark_cpu(bench_modules, out):
    from leo_video.errors import MissingWeightsError
    from leo_video.metrics.i3d_k400 import i3d_k400_weights_path

    try:
        i3d_k400_weights_path()
    except MissingWeightsError as exc:
        pytest.skip(str(exc))
    bench_modules["i3d_throughput"].main([*TINY, "--out", str(out), "--clips", "1", "--batch", "1", "--frames", "9",
                                          "--size", "32", "--dtypes", "fp32"])
    text, data = _report(out, "i3d_throughput")
    assert "| fp32 | 1 | 1 |" in text and data["rows"][0]["max_abs_delta"] == 0.0


@pytest.mark.parametrize("name,extra", [("generate", []), ("generate_fast", ["--channels-last"])])
def test_generate_benchmark_cpu(bench_modules, out, name, extra):
    bench_modules["generate"].main([*TINY, "--out", str(out), "--size", "64", "--frames", "6", "--videos", "1", "2",
                                    "--samplers", "ddim:2", "--channel-max", "16", "--style-dim", "32",
                                    "--lmdm-preset", "tiny", "--sequence-length", "4", "--dtype", "fp32",
                                    "--name", name, *extra])  # fmt: skip
    text, data = _report(out, name)
    for videos in (1, 2):
        row = data[f"ddim:2/{videos}"]
        # each timed in its own run: on a shared CPU sampling alone can take longer than the whole, so no order
        assert row["end_to_end_s"] > 0 and row["sampling_s"] > 0 and row["frames_per_s"] > 0
    assert "| ddim 2 | 2 |" in text and ("channels_last" in text) == bool(extra)


def test_cddpm_channels_last_rows_train_nhwc_weights_on_nhwc_images(bench_modules, monkeypatch):
    """The cDDPM channels_last row hands the step a U-Net whose convolution weights, and images, are NHWC in
    memory (a layout dropped on the way would time the contiguous step twice)."""
    import argparse

    import torch

    bench = bench_modules["train_throughput"]
    seen = {}
    build = bench._single_model_task

    def spy(model, *rest, **kwargs):
        seen["weights"] = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        return build(model, *rest, **kwargs)

    def record(task, inputs, args, profile_dump=None):
        seen["images"] = inputs[0]
        return {}

    monkeypatch.setattr(bench, "_single_model_task", spy)
    monkeypatch.setattr(bench, "bench_diffusion", record)
    args = argparse.Namespace(cddpm_preset="tiny", cddpm_size=16)
    for layout, nhwc in (("channels_last", True), ("contiguous", False)):
        bench.bench_cddpm(args, torch.device("cpu"), "auto", 2, "eager", layout=layout)
        kernels = [w for w in seen["weights"] if w.shape[-1] > 1]  # 1x1 kernels are both layouts at once
        assert kernels and all(w.is_contiguous(memory_format=torch.channels_last) == nhwc for w in kernels)
        assert seen["images"].is_contiguous(memory_format=torch.channels_last) == nhwc


def test_train_benchmark_cpu_and_summary(bench_modules, out):
    bench_modules["train_throughput"].main([*TINY, "--out", str(out), "--size", "64", "--batch", "2",
                                            "--channel-max", "16", "--style-dim", "32", "--no-vgg",
                                            "--precisions", "fp32", "bf16-channels_last", "--lmdm-preset", "tiny",
                                            "--sequence-length", "4",
                                            "--lmdm-batch", "2", "3", "--cddpm-preset", "tiny", "--cddpm-size", "16",
                                            "--cddpm-batch", "2", "--warmup", "1", "--steps", "1", "--profile", "fp32",
                                            "--breakdown", "fp32", "--adam", "auto", "fused", "--fused", "on", "off",
                                            "--cddpm-layouts", "contiguous", "channels_last", "--stage-profile", "cddpm"])
    text, data = _report(out, "train")
    # --stage-profile cddpm: every cDDPM row profiled, a table each and the full table in a file; cLMDM not
    for key, file in (("cddpm", "train_profile_cddpm.txt"),
                      ("cddpm, channels_last", "train_profile_cddpm_channels_last.txt")):
        table = text.split(f"profile of one `{key}` step")[1].split("###")[0]
        assert "aten::" in table and (out / file).is_file() and "profile" not in data[key]
    assert "profile of one `cddpm, Adam fused` step" in text and "profile of one `lmdm" not in text
    # --cddpm-layouts: a row per layout, the same arithmetic; cLMDM (1-D maps) has no layout rows
    nhwc = data["cddpm, channels_last"]
    assert nhwc["layout"] == "channels_last" and nhwc["flops_per_step"] == data["cddpm"]["flops_per_step"]
    assert "| eager, channels_last | 2 |" in text and "lmdm, channels_last" not in data
    parts = text.split("each part timed alone")[1].split("###")[0]
    assert "| G forward + backward" in parts and "| D step" in parts and "| whole step (train_step) |" in parts
    assert "profile of one fp32 step" in text and "aten::" in text  # CPU ops table
    lia = data["lia/fp32/1gpu"]
    assert lia["images_per_s"] > 0 and lia["flops_per_step"] > 0 and lia["mfu"] is None  # no peak on CPU
    assert data["lia/bf16-channels_last/1gpu"]["images_per_s"] > 0
    assert data["lmdm"]["steps_per_s"] > 0 and data["cddpm"]["steps_per_s"] > 0
    assert all(data[k]["flops_per_step"] > 0 and data[k]["mfu"] is None for k in ("lmdm", "cddpm"))  # no peak on CPU
    # --adam: a row per Adam kernel, side by side (auto is foreach on CPU)
    assert data["lia/fp32/1gpu"]["adam"] == "foreach" and data["lia/fp32, Adam fused/1gpu"]["adam"] == "fused"
    assert "| fp32 | foreach | 1 |" in text and "| fp32 | fused | 1 |" in text and "| fused |" in text.split("cLMDM")[1]
    assert data["lmdm, Adam fused"]["steps_per_s"] > 0 and data["cddpm, Adam fused"]["steps_per_s"] > 0
    # --lmdm-batch 2 3: a row per batch; the host launches the same operators whatever the batch, and a CPU has
    # no device kernels to count
    small, large = data["lmdm"], data["lmdm, B 3"]
    assert (small["batch"], large["batch"]) == (2, 3) and large["flops_per_step"] == 1.5 * small["flops_per_step"]
    # the same ops at any batch, up to a few layout copies: with diffusers 0.42 one view is contiguous at batch 2 and
    # not at 3, so batch 3 adds one .contiguous() (5 ATen calls of ~7,250)
    assert small["aten_calls"] > 100 and abs(large["aten_calls"] - small["aten_calls"]) <= 10
    assert small["kernels"] is None
    assert "| eager | 3 | foreach |" in text.split("cLMDM")[1].split("cDDPM")[0]
    assert text.count("profile of one fp32 step") == 1 and text.count("each part timed alone") == 1
    # --fused: a row per setting (train.fused_kernels); CPU runs the plain ops in both
    assert data["lia/fp32, fused off/1gpu"]["fused_kernels"] is False and data["lia/fp32/1gpu"]["fused_kernels"] is False
    assert "profile of one fp32, fused off step" in text and (out / "train_profile_fp32_fused-off.txt").is_file()
    bench_modules["summarize"].main(str(out))
    summary = (out / "SUMMARY.md").read_text()
    assert "## Targets" in summary and "LIA training step at 64²" in summary and "profile of one render" in summary
    targets = summary.split("## LIA animator")[0]
    assert "| 128-frame 256² video from a still: < 1 s |" in targets
    assert "met" not in targets.replace("not measured", "")  # smoke sizes never count for the 256² targets


class _Parsed(Exception):
    """Raised right after a benchmark's argparse accepted its arguments (nothing is measured)."""


@pytest.mark.parametrize("smoke", ["0", "1"])
def test_gpu_suite_passes_arguments_its_scripts_accept(bench_modules, tmp_path, monkeypatch, smoke):
    """gpu_suite.sh, run with a recording stand-in for Python, calls every part's script, and each script's
    own argument parser accepts the flags the suite passes (full GPU sizes and SMOKE=1 sizes).

    Replaces ``bash -n``: fails when a benchmark renames or drops a flag the suite still passes (found only
    after minutes of GPU time otherwise), when a part is no longer run, or when the summary step is lost.
    """
    import argparse
    import os
    import subprocess

    log = tmp_path / "calls.jsonl"
    stub = tmp_path / "stub.py"
    stub.write_text(
        "import json, sys\n"
        "if sys.argv[1:2] == ['-c']: print(0); sys.exit(0)\n"  # the GPU count probe: no GPU
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    env = {**os.environ, "PY": f"{sys.executable} {stub}", "OUT": str(tmp_path / "out"), "SMOKE": smoke}
    result = subprocess.run(["bash", str(BENCH / "gpu_suite.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    scripts = [Path(c[0]).stem for c in calls]
    assert scripts == ["render", "generate", "train_throughput", "generate", "summarize"], scripts
    assert "ddp: skipped" in result.stdout

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for call in calls[:-1]:
        with pytest.raises(_Parsed):  # argparse errors would raise SystemExit instead
            bench_modules[Path(call[0]).stem].main(call[1:])


@pytest.mark.gpu
@pytest.mark.timeout(600)  # torch.compile: minutes on a busy host, beyond a short --timeout
def test_render_benchmark_cuda_profile_and_compile(bench_modules, tmp_path):
    """The CUDA-only paths of render.py: kernel profile, compile row, peak fraction (tiny model)."""
    bench_modules["render"].main(["--device", "cuda", "--repeats", "1", "--out", str(tmp_path), "--sizes", "64",
                                  "--batch", "4", "--channel-max", "16", "--style-dim", "32", "--compile-sizes", "64",
                                  "--profile-size", "64", "--per-frame-frames", "1"])
    text, data = _report(tmp_path, "render")
    assert "failed" not in text and "kernels)" in text
    assert data["64"]["render/bf16 weights + channels_last + compile"]["frames_per_s"] > 0


def test_summary_verdicts_at_target_settings(bench_modules, tmp_path):
    """Hand-written reports at the targets' settings: each verdict says met or by how much it was missed."""
    def write(name, data):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))

    write("render", {"256": {"render/fp32": {"frames_per_s": 9000}, "render/bf16 weights": {"frames_per_s": 1500},
                             "transfer/official": {"frames_per_s": 5000}, "transfer/fp32": {"frames_per_s": 1600}}})
    write("generate", {"setting": {"size": 256, "frames": 128}, "ddim:50/1": {"end_to_end_s": 2.0},
                       "ddim:50/64": {"end_to_end_s": 0.5}})
    write("generate_fast", {"setting": {"size": 256, "frames": 64}, "ddim:50/1": {"end_to_end_s": 0.1}})
    lia = {"size": 256, "batch": 32, "channel_max": 512}
    write("train", {"setting": lia, "lia/bf16/1gpu": {"mfu": 0.30, "images_per_s": 100.0},
                    "lia/bf16-compile/1gpu": {"mfu": 0.40}, "lia/fp32/1gpu": {"mfu": 0.5}})  # fp32 never counts
    write("train_ddp", {"setting": lia, "lia/bf16/2gpu": {"images_per_s": 170.0}})
    rows = {row[0].split(":")[0]: row[1:] for row in bench_modules["summarize"].targets(tmp_path)}
    assert rows["rendering 256², bf16"] == ["1,500 frames/s (bf16 weights)", "**missed** (0.50x of the target)"]
    assert rows["motion transfer 256²"] == ["1,600 frames/s (fp32)", "met"]  # the official pattern never counts
    assert rows["motion transfer 256² vs LIA's per-frame pattern"] == ["0.3x", "**missed** (0.02x of the target)"]
    assert rows["128-frame 256² video from a still"] == ["2.00 s (ddim:50/1 (eager))", "**missed** (0.50x of the target)"]
    assert rows["LIA training 256², bf16, batch 32"] == ["40.0% (bf16-compile)", "met"]  # the fastest bf16 row
    assert rows["LIA training on two GPUs"] == ["1.70x", "**missed** (0.94x of the target)"]


def test_perceptual_benchmark_cpu(bench_modules, out):
    """Both networks at 32² (pyramid 32, 16 px); the I3D's FLOPs are the folded network's, far below VGG19's."""
    bench_modules["perceptual"].main([*TINY, "--out", str(out), "--size", "32", "--batch", "1",
                                      "--scales", "1", "0.5"])  # fmt: skip
    text, data = _report(out, "perceptual")
    vgg, i3d = data["vgg19/fp32"], data["i3d-k400/fp32"]
    assert "| vgg19 | fp32 | random (timing only) | 1 |" in text and "| i3d-k400 | fp32 |" in text
    # I3D at 32²: Conv3d_1a 16², Conv3d_2b/2c 8², Mixed_3b/3c 4²: 2 x MACs
    macs = (7 * 7 * 3 * 64 * 16**2 + (64 * 64 + 9 * 64 * 192) * 8**2
            + (192 * 176 + 9 * 96 * 128 + 9 * 16 * 32 + 192 * 32 + 256 * 288 + 9 * 128 * 192 + 9 * 32 * 96 + 256 * 64)
            * 4**2)  # fmt: skip
    assert i3d["features_gflop_per_image"] == pytest.approx(2 * macs / 1e9, rel=1e-9)
    assert vgg["features_gflop_per_image"] > 10 * i3d["features_gflop_per_image"]
    assert i3d["loss_ms_per_image"] > 0 and vgg["loss_ms_per_image"] > 0



def test_encode_motion_benchmark(bench_modules, out, tmp_path):
    """Rows per dtype and batch over a folder of videos; the encoder's FLOPs per frame do not depend on the batch
    (a count not divided by the batch would), and every pass encodes every frame asked for."""
    import numpy as np

    from leo_video.media.video import write_video

    rng = np.random.default_rng(0)
    (tmp_path / "videos").mkdir()
    for k in range(2):
        write_video(tmp_path / "videos" / f"clip{k}.mp4", rng.integers(0, 256, (8, 40, 48, 3), dtype=np.uint8), fps=25)
    bench_modules["encode_motion"].main([*TINY, "--out", str(out), "--data", str(tmp_path / "videos"), "--size", "64",
                                         "--channel-max", "16", "--batch-frames", "1", "4", "--dtypes", "fp32",
                                         "--max-frames", "6"])
    text, data = _report(out, "encode_motion")
    one, four = data["fp32/batch1"], data["fp32/batch4"]
    assert one["frames"] == four["frames"] == 12
    assert one["flops_per_frame"] == four["flops_per_frame"] > 0 and one["encoder_mfu"] is None  # no peak on CPU
    assert all(r[k] > 0 for r in (one, four) for k in ("frames_per_s", "decode_frames_per_s", "encoder_frames_per_s"))
    assert "| fp32 | 1 |" in text and "| 1.00x |" in text and "| fp32 | 4 |" in text


def test_kernel_classes_sum_and_order():
    """The profile's class table: every kernel in exactly one class, times summed, largest first."""
    sys.path.insert(0, str(BENCH))
    try:
        _bench = importlib.import_module("_bench")
    finally:
        sys.path.remove(str(BENCH))
    kernels = [
        ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", 10, 4.0),
        ("void cudnn::ops::nchwToNhwcKernel<__nv_bfloat16>", 4, 0.5),
        ("_bias_act_forward", 3, 0.25),  # a Triton kernel carries its Python name
        ("triton_poi_fused_add_mul_0", 2, 0.25),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::bfloat16_copy_kernel_cuda>", 7, 1.0),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>", 5, 2.0),
        ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>", 2, 0.5),
        ("void at::native::grid_sampler_2d_backward_kernel<float>", 1, 1.5),
    ]
    rows = _bench.kernel_classes(kernels)
    by_class = {c: (n, ms) for c, n, ms in rows}
    assert by_class["convolution / matmul (tensor cores)"] == (10, 4.0)
    assert by_class["layout transposes"] == (4, 0.5)
    assert by_class["copies and casts"] == (7, 1.0)
    assert by_class["pointwise (elementwise)"] == (5, 2.0)
    assert by_class["Triton (fused bias-act and compiled code)"] == (5, 0.5)
    assert "other" not in by_class
    assert sum(n for _, n, _ in rows) == sum(n for _, n, _ in kernels)
    assert [ms for _, _, ms in rows] == sorted((ms for _, _, ms in rows), reverse=True)


def test_roofline_records_the_flops_and_extrapolates_exactly(bench_modules, out):
    """The roofline's op record sums to FlopCounterMode's count of the same step, its batch extrapolation
    reproduces a recorded batch (FLOPs and bytes are linear in the batch), and the report has the ceiling."""
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(BENCH))
    try:
        roofline = importlib.import_module("roofline")
    finally:
        sys.path.remove(str(BENCH))
    argv = ["--size", "64", "--channel-max", "16", "--style-dim", "32", "--no-vgg", "--threads", "2"]
    args = SimpleNamespace(size=64, channel_max=16, style_dim=32, no_vgg=True)
    steps = {b: roofline.lia_step(args, b) for b in (4, 8, 12)}  # D's minibatch-std groups of 4 throughout
    records = {b: roofline.record(step) for b, step in steps.items()}
    flops = sum(f for _, f, _ in records[4].values())
    with FlopCounterMode(display=False) as counter:
        steps[4]()
    assert flops == counter.get_total_flops() > 0
    guessed = roofline.extrapolate(records[4], records[8], 4, 8, 12)
    for cls, (_, f, b) in records[12].items():
        assert guessed[cls][1] == pytest.approx(f, rel=1e-9) and guessed[cls][2] == pytest.approx(b, rel=1e-9), cls
    assert "optimizer" in records[4] and "FIR filters (depthwise convolutions)" in records[4]
    roofline.main([*argv, "--batch", "16", "--record-batches", "4", "8", "--out", str(out)])
    text, data = _report(out, "roofline")
    assert "MFU ceiling" in text and 0 < data["batch16"]["mfu_ceiling"] < 1
    roofline.main(["--stage", "cddpm", "--cddpm-preset", "tiny", "--size", "32", "--batch", "8", "--threads", "2",
                   "--out", str(out), "--name", "roofline_cddpm"])
    _, data = _report(out, "roofline_cddpm")
    assert data["batch8"]["classes"]["attention"][1] > 0  # the CPU's flash attention counted by shape


def test_roofline_fused_activation_model(bench_modules, monkeypatch):
    """The roofline's stand-in for the Triton bias-act: the reference's values and gradients, recorded as one pass
    each way, so the fused step moves fewer bytes than the plain one, in the same convolutions and matmuls."""
    import torch

    from leo_video.kernels import bias_act as module

    sys.path.insert(0, str(BENCH))
    try:
        roofline = importlib.import_module("roofline")
    finally:
        sys.path.remove(str(BENCH))
    g = torch.Generator().manual_seed(0)
    x, bias, scale = (torch.randn(*s, generator=g, requires_grad=True) for s in ((2, 3, 4, 4), (3,), (2, 3, 1, 1)))
    recorder = roofline.OpRecorder()
    y = roofline.FusedBiasActModel.apply(x, bias, scale, 0.2, 2**0.5, recorder)
    grads = torch.autograd.grad(y.square().sum(), (x, bias, scale))
    y_ref = module.bias_act_reference(x, bias, 0.2, 2**0.5, scale)
    for got, want in zip((y, *grads), (y_ref, *torch.autograd.grad(y_ref.square().sum(), (x, bias, scale)))):
        torch.testing.assert_close(got, want)
    assert recorder.by_op["pointwise and the rest: fused bias_act (Triton) forward"][2] == 2 * 2 * x.numel()

    monkeypatch.setattr(module, "FUSED_MIN_ELEMENTS", 0)  # every activation through the stand-in
    args = SimpleNamespace(size=64, channel_max=16, style_dim=32, no_vgg=True)
    step = roofline.lia_step(args, 4)
    plain, fused = roofline.record(step), roofline.record(step, fused_at=4)
    for cls in ("pointwise and the rest", "reductions"):  # the kernel sums the bias gradient in its own pass
        assert fused[cls][2] < plain[cls][2], cls
    for cls in set(plain) - {"pointwise and the rest", "reductions"}:
        assert fused[cls][1:] == plain[cls][1:], cls

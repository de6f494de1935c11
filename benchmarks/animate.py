"""Frames per second of LIA motion transfer: the official demo's per-frame pattern vs batched rendering.

The official demo calls the whole generator once per driving frame, re-encoding the source (and
its motion code) every time. ``LatentImageAnimator`` encodes the source once, encodes the driving
frames in batches (``encode_motion``) and renders them in batches (``render``). Both run in the same
process on the same random weights; the outputs are compared.

    .venv/bin/python benchmarks/animate.py --size 128 --frames 16 --batch 8 [--device cpu] [--dtype fp32]
"""

from __future__ import annotations

import argparse
import time

import _bench  # noqa: F401  (puts tests/ on sys.path: the literal reference)
import torch
from reference.lia_functional import ReferenceGenerator

from leo_video.models.lia import LatentImageAnimator

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_frame(model: LatentImageAnimator, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
    """Official demo pattern: h_start from the first frame, then forward(source, frame_t, h_start) per frame."""
    start = model.encode_motion(driving[:1])  # (1, M)
    return torch.cat([model(source, frame[None], start) for frame in driving])  # (T, 3, S, S)


def batched(model: LatentImageAnimator, source: torch.Tensor, driving: torch.Tensor, batch: int) -> torch.Tensor:
    """Encode the source once; encode and render the driving frames ``batch`` at a time."""
    appearance = model.encode_appearance(source)
    codes = torch.cat([model.encode_motion(driving[i : i + batch]) for i in range(0, len(driving), batch)])
    return model.render(appearance, codes, start_motion=codes[:1], chunk_size=batch)  # (T, 3, S, S)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, float, torch.Tensor]:
    """Best wall time and best process CPU time over ``repeats`` runs.

    On a shared CPU the wall time depends on other load; the CPU time (all threads) does much less,
    so speed-ups are reported for both.
    """
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        _sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        _sync(device)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--reference-ops", action="store_true", help="per-frame baseline with LIA's literal ops")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.manual_seed(0)
    model = LatentImageAnimator(args.size).eval().to(device)
    g = torch.Generator().manual_seed(1)
    source = (torch.rand(1, 3, args.size, args.size, generator=g) * 2 - 1).to(device)
    driving = (torch.rand(args.frames, 3, args.size, args.size, generator=g) * 2 - 1).to(device)
    with torch.inference_mode():
        baseline = ReferenceGenerator(model.float()) if args.reference_ops else model.float()
        w_ref, c_ref, ref = timed(lambda: per_frame(baseline, source, driving), device, args.repeats)
        fast = torch.nn.Module.to(model, dtype=dtype)
        w_fast, c_fast, out = timed(lambda: batched(fast, source.to(dtype), driving.to(dtype), args.batch),
                                    device, args.repeats)
    diff = (out.float() - ref).abs()
    n = args.frames
    print(f"device={device} threads={torch.get_num_threads()} size={args.size} frames={n} batch={args.batch} "
          f"dtype={args.dtype}")
    label = "per-frame (official pattern, fp32" + (", LIA's literal ops)" if args.reference_ops else ")")
    for name, wall, cpu in ((label, w_ref, c_ref), ("batched encode_motion + render", w_fast, c_fast)):
        print(f"{name:48s} {n / wall:6.2f} frames/s wall ({wall / n * 1000:5.0f} ms/frame), "
              f"{cpu / n * 1000:5.0f} CPU-ms/frame")
    print(f"speed-up: {w_ref / w_fast:.2f}x wall, {c_ref / c_fast:.2f}x CPU time")
    print(f"max |diff| {diff.max().item():.2e}, mean |diff| {diff.mean().item():.2e}")


if __name__ == "__main__":
    main()

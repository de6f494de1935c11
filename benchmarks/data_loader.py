"""Issue 19: does data loading keep up with training? Frame pairs/s of the LIA training dataset.

``VideoDataset(mode="pairs")`` (what ``train lia`` reads) at ``--size`` from the same clips stored by
``leo-video prepare`` as H.264 mp4 (CRF 18, keyframe every 16 frames), png frame folders and jpg frame
folders, through a ``DataLoader`` (batch ``--batch``, shuffled) with 0, 1, 2 ... workers; clips of
``VideoDataset(mode="clips")`` (encode-motion, evaluation) and LMDM's training clips of motion codes
(``MotionClipDataset``). The demand rows compare with LIA training: about 209 pairs/s on one H100 (bf16,
256², issue 19) and 1,700 on a node of 8; "per worker" is the one-worker rate, and "16 workers" is that
rate x 16 — a projection for a 16-core host, valid only while nothing else (the trainer's own process)
needs the cores.

    python benchmarks/data_loader.py --raw ../shared/data/videos --workers 0 1 2      # real footage
    python benchmarks/data_loader.py --videos 8 --frames 64 --workers 0 1 2            # synthetic humans
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import _bench
import numpy as np
import torch

from leo_video.data.prepare import PrepareConfig, prepare_dataset
from leo_video.data.video_dataset import VideoDataset

DEMAND = {"one H100": 209.0, "8x H100 node": 1700.0}  # LIA training pairs/s at 256² (issue 19)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _bench.add_common_args(parser)
    parser.add_argument("--raw", default=None, help="folder of real videos to prepare (default: synthetic humans)")
    parser.add_argument("--videos", type=int, default=8, help="synthetic videos (without --raw)")
    parser.add_argument("--frames", type=int, default=96, help="frames per synthetic video")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--formats", nargs="+", default=["mp4", "png", "jpg"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per row (after one warm-up batch)")
    parser.add_argument("--clip-length", type=int, default=32)
    parser.add_argument("--work", default=os.environ.get("LEO_BENCH_WORK", "/tmp/leo-bench-loader"),
                        help="where the prepared datasets are kept (reused when present)")
    parser.add_argument("--name", default="data_loader")
    return parser.parse_args(argv)


def raw_videos(args: argparse.Namespace) -> Path:
    """The raw clips: ``--raw``, or synthetic humans rendered at twice ``--size`` (so prepare resizes)."""
    if args.raw:
        return Path(args.raw)
    from leo_video.data.synthetic import render_synthetic_video
    from leo_video.media.video import write_video

    folder = Path(args.work) / "raw"
    for i in range(args.videos):
        path = folder / f"synthetic_{i}.mp4"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            write_video(path, render_synthetic_video(seed=i, num_frames=args.frames, size=2 * args.size), fps=25)
    return folder


def prepared(args: argparse.Namespace, fmt: str) -> Path:
    """``raw`` prepared at ``--size`` in ``fmt`` (all in train/; resumable, so reruns cost nothing)."""
    out = Path(args.work) / f"{fmt}{args.size}"
    config = PrepareConfig(size=args.size, format=fmt, test_fraction=0)
    prepare_dataset([raw_videos(args)], out, config, progress=False, warn=lambda message: None)
    return out


def items_per_second(dataset, batch: int, workers: int, batches: int) -> float:
    """Items/s through a shuffled DataLoader over ``batches`` batches after one warm-up batch."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
        persistent_workers=False, prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    iterator = iter(loader)
    next(iterator)  # workers started, decoders warm
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator
    return batches * batch / elapsed


def pair_rows(args: argparse.Namespace, report: _bench.Report) -> None:
    columns = ["storage", *(f"workers={w}" for w in args.workers), "16 workers (projection)",
               *(f"vs {name} ({need:,.0f}/s)" for name, need in DEMAND.items()), "kB/frame"]
    rows: list[list[str]] = []  # filled row by row, saved after each (a killed run keeps them)
    report.table(f"LIA training pairs/s at {args.size}² (batch {args.batch})", columns, rows)
    for fmt in args.formats:
        root = prepared(args, fmt)
        dataset = VideoDataset(root, "train", mode="pairs", size=args.size, repeats=64)
        rates = {w: items_per_second(dataset, args.batch, w, args.batches) for w in args.workers}
        per_worker = rates.get(1, rates.get(0))
        disk = sum(p.stat().st_size for p in (root / "train").rglob("*") if p.is_file())
        frames = sum(len(r) for r in dataset.readers)
        report.data.setdefault("pairs", {})[fmt] = {"pairs_per_s": rates, "bytes_per_frame": disk / frames}
        rows.append([fmt, *(_bench.fmt(rates[w]) for w in args.workers), _bench.fmt(16 * per_worker),
                     *(f"{16 * per_worker / need:.1f}×" for need in DEMAND.values()), f"{disk / frames / 1e3:.1f}"])
        report.save(args.out)


def clip_rows(args: argparse.Namespace, report: _bench.Report) -> None:
    rows = []
    for fmt in args.formats:
        dataset = VideoDataset(prepared(args, fmt), "train", mode="clips", size=args.size,
                               clip_length=args.clip_length, repeats=16)
        rate = items_per_second(dataset, 4, 0, max(1, args.batches // 4))
        rows.append([f"{fmt} frames → clips of {args.clip_length}", _bench.fmt(rate), _bench.fmt(rate * args.clip_length)])
    rows.append(["motion codes (LMDM, MotionClipDataset)", _bench.fmt(code_clip_rate(args)), "—"])
    report.table("Clip loading, one process (0 workers)", ["data", "clips/s", "frames/s"], rows)


def code_clip_rate(args: argparse.Namespace) -> float:
    """LMDM's clips of 32 motion codes from a store of 64 videos x 256 codes x 20 dims."""
    from leo_video.data.motion_codes import MotionClipDataset, MotionCodeWriter

    root = Path(args.work) / "codes"
    if not (root / "index.json").exists():
        with MotionCodeWriter(root, motion_dim=20) as writer:
            for i in range(64):
                writer.add(f"video_{i}", torch.randn(256, 20, generator=torch.Generator().manual_seed(i)))
    dataset = torch.utils.data.ConcatDataset([MotionClipDataset(root, 32, split="train")] * 16)  # 16 epochs
    return items_per_second(dataset, 64, 0, min(args.batches, len(dataset) // 64 - 1))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or 1)  # decoding is per worker; torch ops here are tiny
    report = _bench.Report(args.name, "Data loading: LIA pairs and clips by storage and workers (issue 19)",
                           torch.device("cpu"))
    report.notes.append(f"Data: {args.raw or f'{args.videos} synthetic human videos of {args.frames} frames'}; "
                        f"prepared by `leo-video prepare --size {args.size} --format F`.")
    with _bench.interruptible(report):
        pair_rows(args, report)
        clip_rows(args, report)
    report.write(args.out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

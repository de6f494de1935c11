"""Issue 22: ``encode-motion`` frames/s on a folder of real videos, as ``leo-video encode-motion`` runs it.

Each row streams every video of ``--data`` through ``pipelines.encode.encode_video`` (decode, centre-crop and
resize to the model's size, LIA motion encoder in batches of ``--batch-frames``), the job ``encode_dataset``
does for each video before storing its codes. Batch 1 is the per-frame pattern, the baseline measured in the
same run. Beside it, the two halves alone: decoding + resizing without the encoder, and the encoder alone on
frames already on the device (its GFLOP per frame and MFU on a GPU), so a row says which half bounds it.
Random encoder weights: the arithmetic is that of any trained checkpoint of the same size.

    python benchmarks/encode_motion.py --data ../shared/data/videos --size 256 --batch-frames 1 64 --dtypes fp32 bf16
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import _bench
import torch

from leo_video.data.video_dataset import find_videos
from leo_video.media.video import VideoReader
from leo_video.models.lia import LatentImageAnimator
from leo_video.pipelines.animate import batched, frames_to_batch
from leo_video.pipelines.encode import encode_video
from leo_video.utils.device import autocast

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def list_inputs(data: Path, max_videos: int | None) -> list[Path]:
    """The videos (and frame folders) under ``data``, recursively, in name order; the first ``max_videos``."""
    videos = find_videos(data)[:max_videos]
    if not videos:
        raise SystemExit(f"{data}: no videos found")
    return videos


def pass_over(videos: list[Path], max_frames: int | None, per_video) -> tuple[float, int]:
    """Wall seconds and frames of one pass of ``per_video(reader, stop) -> frames done`` over ``videos``."""
    frames, start = 0, time.perf_counter()
    for path in videos:
        with VideoReader(path) as reader:
            stop = len(reader) if max_frames is None else min(len(reader), max_frames)
            frames += per_video(reader, stop)
    return time.perf_counter() - start, frames


def best_pass(videos, max_frames, per_video, device: torch.device, repeats: int) -> tuple[float, int]:
    """The fastest of ``repeats`` passes (after one untimed pass: decoder caches, cuDNN's algorithm search)."""
    pass_over(videos, max_frames, per_video)
    best = None
    for _ in range(repeats):
        _bench.sync(device)
        seconds, frames = pass_over(videos, max_frames, per_video)
        _bench.sync(device)
        best = (seconds, frames) if best is None or seconds < best[0] else best
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_args(parser)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of videos (searched recursively)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channel-max", type=int, default=512, help="the encoder's widest layer (LIA: 512)")
    parser.add_argument("--batch-frames", type=int, nargs="+", default=[1, 64],
                        help="frames per encoder call, a row each (1: the per-frame baseline)")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(_bench.DTYPES), default=["fp32", "bf16"])
    parser.add_argument("--max-videos", type=int, default=None)
    parser.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each video")
    parser.add_argument("--name", default="encode_motion")
    args = parser.parse_args(argv)
    device = _bench.setup(args)
    videos = list_inputs(args.data, args.max_videos)
    model = LatentImageAnimator(size=args.size, channel_max=args.channel_max).to(device).eval()
    peak = _bench.peak_flops(device)
    report = _bench.Report(args.name, f"encode-motion at {args.size}² ({len(videos)} videos of {args.data.name})",
                           device)
    rows: list[list[str]] = []
    report.table("frames/s of one pass over the videos (best of --repeats)",
                 ["dtype", "batch", "end to end", "decode + resize only", "encoder only", "GFLOP/frame",
                  "encoder MFU (bf16 peak)", "end to end vs batch 1"], rows)

    def decode_only(batch_frames: int):
        def run(reader: VideoReader, stop: int) -> int:
            done = 0
            for chunk in batched(reader.iter_frames(stop=stop), batch_frames):
                done += len(frames_to_batch(chunk, args.size, device))
            return done
        return run

    def end_to_end(batch_frames: int, dtype: torch.dtype):
        def run(reader: VideoReader, stop: int) -> int:
            codes = torch.cat(list(encode_video(model, _Prefix(reader, stop), batch_frames, dtype=dtype)))
            return len(codes)
        return run

    decode_rates: dict[int, float] = {}
    first_rate: dict[str, float] = {}
    for dtype_name, batch in itertools.product(args.dtypes, args.batch_frames):
        dtype = _bench.DTYPES[dtype_name]
        if batch not in decode_rates:
            seconds, frames = best_pass(videos, args.max_frames, decode_only(batch), device, args.repeats)
            decode_rates[batch] = frames / seconds
        seconds, frames = best_pass(videos, args.max_frames, end_to_end(batch, dtype), device, args.repeats)
        rate = frames / seconds
        x = torch.rand(batch, 3, args.size, args.size, device=device) * 2 - 1

        def encode(x=x, dtype=dtype):
            with torch.no_grad(), autocast(device, dtype):
                return model.encode_motion(x)

        encoder_rate = batch / _bench.best_time(encode, device, max(args.repeats, 3) * 5, warmup=2)
        flops = _bench.count_flops(encode) / batch
        mfu = flops * encoder_rate / peak if peak else None
        first_rate.setdefault(dtype_name, rate)  # the first --batch-frames entry is the baseline (1 by default)
        rows.append([dtype_name, str(batch), _bench.fmt(rate, 1), _bench.fmt(decode_rates[batch], 1),
                     _bench.fmt(encoder_rate, 1), f"{flops / 1e9:.3g}",
                     "—" if mfu is None else f"{100 * mfu:.1f}%", f"{rate / first_rate[dtype_name]:.2f}x"])
        report.data[f"{dtype_name}/batch{batch}"] = {
            "frames": frames, "seconds": seconds, "frames_per_s": rate, "decode_frames_per_s": decode_rates[batch],
            "encoder_frames_per_s": encoder_rate, "flops_per_frame": flops, "encoder_mfu": mfu}
        report.save(args.out)
    report.notes += [
        f"{len(videos)} videos, {frames} frames a pass ({'all' if args.max_frames is None else args.max_frames} "
        f"per video); the first --batch-frames value ({args.batch_frames[0]}) is the baseline of the last column.",
        "End to end = `pipelines.encode.encode_video`: decoding (PyAV or image folders), centre crop, resize, "
        "transfer to the device and the motion encoder, one video after another in one process (no DataLoader).",
    ]
    report.write(args.out)


class _Prefix:
    """The first ``stop`` frames of an open reader, as ``encode_video`` reads them (``iter_frames(step=...)``)."""

    def __init__(self, reader: VideoReader, stop: int) -> None:
        self.reader, self.stop = reader, stop

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1):
        return self.reader.iter_frames(start, self.stop if stop is None else min(stop, self.stop), step)


if __name__ == "__main__":
    main()

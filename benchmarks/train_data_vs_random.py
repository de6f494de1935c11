"""Issue 19: does `train lia` on real files train as fast as on random tensors? The same loop, two datasets.

Runs the real training loop (``Trainer.fit`` of ``LIATrainingTask``, the ``taichi256`` recipe: L1 + VGG19
pyramid with random weights — the FLOPs of the real one — + GAN, bf16 on CUDA) twice, side by side in one process:
once on prepared video files (``--raw`` prepared by ``leo-video prepare`` at ``--size`` in each ``--formats``,
read by ``--workers`` DataLoader workers), once on random tensors that cost the loader nothing (the same
DataLoader, collate, pinning and host-to-device copy). images/s comes from the loop's own log
(``metrics.jsonl``: ``items_per_s`` of every log window after the first, which holds cuDNN's autotuning and
the workers' start). Target: files ≥ 90 % of random.

    python benchmarks/train_data_vs_random.py --raw ../shared/data/videos --workers 14 --steps 60
    python benchmarks/train_data_vs_random.py --device cpu --size 64 --channel-max 16 --style-dim 32 --no-vgg \\
        --batch 2 --steps 4 --log-every 2 --workers 0      # smoke size
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from unittest import mock

import _bench
import torch
from data_loader import prepared
from train_throughput import RandomPairs

from leo_video.config import resolve_config
from leo_video.train.lia import LIATrainingTask
from leo_video.train.loop import Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _bench.add_common_args(parser)
    parser.add_argument("--raw", default=None, help="folder of real videos (default: synthetic humans)")
    parser.add_argument("--videos", type=int, default=8, help="synthetic videos (without --raw)")
    parser.add_argument("--frames", type=int, default=96, help="frames per synthetic video")
    parser.add_argument("--formats", nargs="+", default=["jpg", "mp4"], choices=("mp4", "png", "jpg"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=14, help="DataLoader workers (train.num_workers)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per row")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--no-vgg", action="store_true", help="perceptual loss off (smoke runs)")
    parser.add_argument("--work", default="/tmp/leo-bench-loader", help="where the prepared datasets are kept")
    parser.add_argument("--name", default="train_data_vs_random")
    return parser.parse_args(argv)


def train_rate(args: argparse.Namespace, device: torch.device, data_root: Path | None) -> float:
    """images/s of ``train lia`` on ``data_root`` (None: random tensors), mean of the log windows after the first."""
    with tempfile.TemporaryDirectory() as run_dir:
        sets = {"data.root": data_root or run_dir, "model.size": args.size, "model.channel_max": args.channel_max,
                "model.style_dim": args.style_dim, "train.batch_size": args.batch, "train.cpu": device.type == "cpu",
                "train.mixed_precision": "no" if device.type == "cpu" else "bf16",  # the preset says no: bf16 is the demand
                "loss.vgg_random_init": "true", "loss.perceptual_weight": 0 if args.no_vgg else 10,
                "train.max_steps": args.steps, "train.log_every": args.log_every, "train.num_workers": args.workers,
                "train.checkpoint_every": 10**9, "train.run_dir": run_dir, "monitor.videos": 0,
                "train.eval_every": 0, "train.image_every": 0, "data.test_root": None}  # fmt: skip
        config = resolve_config("lia", "taichi256", [f"{k}={'null' if v is None else v}" for k, v in sets.items()])
        if data_root is None:
            with mock.patch("leo_video.train.lia.pairs_dataset", lambda cfg, seed: RandomPairs(args.size)):
                Trainer(LIATrainingTask(), config).fit()
        else:
            Trainer(LIATrainingTask(), config).fit()
        rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    rates = [row["items_per_s"] for row in rows[1:]] or [rows[-1]["items_per_s"]]
    return sum(rates) / len(rates)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = _bench.setup(args)
    report = _bench.Report(args.name, "train lia on files vs on random tensors (issue 19)", device)
    random_rate = train_rate(args, device, None)
    report.data["images_per_s"] = {"random": random_rate}  # unrounded: the table shows 1 decimal
    rows = [["random tensors", str(args.workers), _bench.fmt(random_rate, 1), "100 %"]]
    for fmt in args.formats:
        rate = train_rate(args, device, prepared(args, fmt))
        report.data["images_per_s"][fmt] = rate
        rows.append([f"{fmt} files", str(args.workers), _bench.fmt(rate, 1), f"{100 * rate / random_rate:.0f} %"])
        report.table(f"{args.size}², batch {args.batch}, {args.steps} steps, taichi256 recipe (VGG19 random "
                     "weights, GAN), bf16 on CUDA", ["data", "workers", "images/s", "of random"], rows)
        report.sections = report.sections[-1:]
        report.save(args.out)
    report.notes.append("target (issue 19): files >= 90 % of random tensors; the same loop, log windows after "
                        "the first averaged")
    report.write(args.out)


if __name__ == "__main__":
    main()

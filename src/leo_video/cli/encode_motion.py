"""`leo-video encode-motion`: motion codes of every video of a dataset, for LMDM training."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_device_args, positive_int, warn

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "encode-motion",
        help="run a frozen LIA encoder over a dataset and store each video's motion codes (T, M)",
        description=(
            "Encodes every video (and frame folder) of a dataset with a frozen LIA encoder, streaming "
            "frames in batches, into a motion-code store: safetensors shards + index.json with the "
            "source file, fps, frame indices, split and the checkpoint's sha256. Resumable: rerun "
            "the same command and videos already stored are skipped. Runs on several GPUs with "
            "`accelerate launch -m leo_video.cli.main encode-motion ...` (each process takes every "
            "N-th video; the main process merges)."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--data", required=True, help="dataset folder (with train/ and test/, or a flat folder)")
    p.add_argument("--out", required=True, help="output store folder (created; resumed if it exists)")
    p.add_argument("--frame-stride", type=int, default=1, help="encode every k-th frame (default 1)")
    p.add_argument("--batch-frames", type=positive_int, default=None,
                   help="frames per encoder batch (default: 64 on a GPU, 1 on a CPU, where batches run slower)")
    p.add_argument("--shard-size", type=int, default=64, help="videos per safetensors shard (default 64)")
    add_device_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..pipelines.encode import EncodeOptions, encode_dataset

    options = EncodeOptions(args.data, args.out, args.checkpoint, args.frame_stride, args.batch_frames,
                            args.shard_size, args.device, args.dtype)
    summary = encode_dataset(options, warn=lambda text: warn("encode-motion", text))
    if summary is not None:  # the main process
        print(json.dumps(summary))
    return 0

"""`leo-video encode-motion`: motion codes of every video of a dataset, for LMDM training."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_device_args, progress

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
    p.add_argument("--batch-frames", type=int, default=64, help="frames per encoder batch (default 64)")
    p.add_argument("--shard-size", type=int, default=64, help="videos per safetensors shard (default 64)")
    add_device_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    import sys
    from pathlib import Path

    import torch
    from accelerate import PartialState

    from ..data.motion_codes import MotionCodeStore, MotionCodeWriter, sha256_checkpoint
    from ..errors import InputError, LeoError
    from ..media.video import VideoReader
    from ..models.loading import load_lia
    from ..pipelines.encode import encode_video, list_dataset_videos
    from ..pipelines.leo import animator_path
    from ..utils.device import resolve_device, resolve_dtype

    if args.frame_stride < 1 or args.batch_frames < 1:
        raise InputError("--frame-stride and --batch-frames must be at least 1")
    root, out = Path(args.data), Path(args.out)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    videos = list_dataset_videos(root)
    if not videos:
        raise InputError(f"{root}: no videos or frame folders found")
    fresh = not out.exists()  # an empty store left by a run that encoded nothing is removed again
    state = PartialState(cpu=args.device == "cpu")
    device = state.device if state.num_processes > 1 else resolve_device(args.device)
    dtype = resolve_dtype(args.dtype)
    checkpoint = animator_path(args.checkpoint)  # a pipeline folder's animator/, the demo model's by default
    animator = load_lia(checkpoint, device=device)
    sha = sha256_checkpoint(checkpoint)  # a file's hash, or an exported folder's (its files')
    rank_out = out if state.num_processes == 1 else out / f"rank-{state.process_index}"
    done = set(MotionCodeStore(out).names) if (out / "index.json").exists() else set()
    mine = [v for v in videos[state.process_index :: state.num_processes] if v.name not in done]
    skipped = 0
    with MotionCodeWriter(rank_out, args.shard_size, checkpoint_sha256=sha) as writer, progress(
        len(mine), "encode-motion", unit="video"
    ) as bar:
        for video in mine:
            bar.update(1)
            if video.name in writer:  # resumed: already stored
                continue
            try:
                reader = VideoReader(video.path)
                codes = torch.cat(list(encode_video(animator, reader, args.batch_frames, args.frame_stride, dtype)))
            except LeoError as exc:  # one bad file never stops a dataset-wide job
                print(f"leo-video encode-motion: warning: skipped {exc}", file=sys.stderr)
                skipped += 1
                continue
            indices = range(0, len(reader), args.frame_stride)
            writer.add(video.name, codes, {"source": str(video.path), "fps": reader.info.fps,
                                           "frame_indices": list(indices)[: len(codes)], "split": video.split})
    state.wait_for_everyone()
    if state.is_main_process and state.num_processes > 1:
        _merge_rank_stores(out, state.num_processes, args.shard_size, sha)
        for k in range(state.num_processes):
            shutil.rmtree(out / f"rank-{k}", ignore_errors=True)
    if state.is_main_process:
        store = MotionCodeStore(out)
        if len(store) == 0:
            if fresh:
                shutil.rmtree(out, ignore_errors=True)
            raise InputError(f"{root}: no video could be encoded ({skipped} skipped, see the warnings above)")
        print(json.dumps({"out": str(out), "videos": len(store), "skipped": skipped,
                          "motion_dim": store.motion_dim, "lia_checkpoint_sha256": store.checkpoint_sha256}))
    return 0


def _merge_rank_stores(out, num_processes: int, shard_size: int, sha: str | None) -> None:
    """Copy every rank's store into the main store (videos already there are skipped)."""
    from ..data.motion_codes import MotionCodeStore, MotionCodeWriter

    with MotionCodeWriter(out, shard_size, checkpoint_sha256=sha) as merged:
        for k in range(num_processes):
            part = out / f"rank-{k}"
            if not (part / "index.json").exists():
                continue
            store = MotionCodeStore(part)
            for name, codes in store.items():
                meta = {key: value for key, value in store.info(name).items()
                        if key not in ("name", "shard", "key", "num_frames", "motion_dim")}
                merged.add(name, codes, meta)

"""`leo-video animate`: LIA motion transfer from a driving video onto a still image."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_device_args, add_overwrite_arg, progress

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "animate",
        help="transfer the motion of a driving video onto a source image (LIA)",
        description=(
            "Motion transfer with a LIA animator: the source image is encoded once, driving frames are "
            "decoded as a stream, encoded and rendered in batches (memory does not grow with length). "
            "The output keeps the driving video's fps."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--source", required=True, help="source image (any size or mode; centre-cropped to a square)")
    p.add_argument("--driving", required=True, help="driving video or frame folder")
    p.add_argument("--out", required=True, help="output .mp4 or .gif")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--relative", dest="relative", action="store_true", default=True,
                      help="motion relative to the first driving frame (LIA's vox/taichi demo; default)")
    mode.add_argument("--absolute", dest="relative", action="store_false",
                      help="driving codes applied directly (LIA's TED demo)")
    p.add_argument("--size", type=int, default=None, help="must equal the model's size (default: the model's)")
    p.add_argument("--batch-frames", type=int, default=16, help="frames encoded and rendered per batch (default 16)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many driving frames")
    p.add_argument("--side-by-side", action="store_true", help="write source | driving | result")
    add_fast_path_args(p)
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def add_fast_path_args(p: argparse.ArgumentParser) -> None:
    """``--compile`` and ``--channels-last``: the animator's inference fast paths (same output within rounding)."""
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the animator: with --dtype bf16 about 1.4x the frames/s on a GPU (H100, 256²: "
                        "1,842 vs 1,297), after about a minute of compiling; pays off on long videos")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout: eager motion transfer about 1.3x faster on a GPU (H100, 256², bf16: "
                        "1,783 vs 1,339 frames/s; benchmarks/RESULTS.md)")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..media.image import load_image
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import check_video_output, load_animator, model_name, note_if_unlike_demo

    if args.batch_frames < 1:
        raise InputError(f"--batch-frames {args.batch_frames}: must be at least 1")
    out = check_video_output(args.out, args.overwrite)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    animator = load_animator(args.checkpoint, device)
    size = animator.config.size
    if args.size is not None and args.size != size:
        raise InputError(f"--size {args.size}: {model_name(args.checkpoint)} is a {size}x{size} model")
    source = load_image(args.source, size=size)  # (3, S, S)
    note_if_unlike_demo("animate", args.checkpoint, animator, source, args.source)
    write_transfer(animator, source, args.driving, out, args.relative, args.batch_frames, dtype,
                   args.side_by_side, args.max_frames, "animate", compile=args.compile,
                   channels_last=args.channels_last, model=model_name(args.checkpoint))  # fmt: skip
    return 0


def write_transfer(animator, source, driving_path, out, relative: bool, batch_frames: int, dtype,
                   side_by_side: bool, max_frames: int | None, label: str, compile: bool = False,
                   channels_last: bool = False, model: str = "animator") -> None:  # fmt: skip
    """Stream ``driving_path``'s motion onto ``source`` (3, S, S) into the video file ``out``.

    Shared by ``animate`` and ``edit``; ``side_by_side`` writes source | driving | result;
    ``compile`` / ``channels_last`` as in :class:`~leo_video.pipelines.animate.AnimateOptions`.
    NaN or inf in a rendering stops with a NumericalError naming ``model`` (the checkpoint); nothing is written.
    """
    import torch

    from ..errors import NumericalError

    from ..media.grid import make_grid
    from ..media.video import VideoReader, VideoWriter
    from ..pipelines.animate import AnimateOptions, frames_to_batch, transfer_motion_chunks

    reader = VideoReader(driving_path)
    total = len(reader) if max_frames is None else min(len(reader), max_frames)
    size = animator.config.size
    options = AnimateOptions(relative=relative, batch_frames=batch_frames, dtype=dtype, compile=compile,
                             channels_last=channels_last)  # fmt: skip
    chunks = transfer_motion_chunks(animator, source, reader.iter_frames(stop=total), options)
    with VideoWriter(out, fps=reader.info.fps) as writer, progress(total, label) as bar:
        for driving, result in chunks:
            n = len(result)
            if not torch.isfinite(result).all():
                raise NumericalError(f"{model}: rendered frames contain NaN or inf (check the weights); "
                                     f"{out} was not written")  # fmt: skip
            if side_by_side:
                drive = frames_to_batch(driving, size, torch.device("cpu"))
                result = make_grid([source.expand(n, -1, -1, -1), drive, result.cpu()], ncols=3)
            writer.write(result.cpu())
            bar.update(n)
    print(f"wrote {out} ({total} frames, {reader.info.fps:g} fps)")

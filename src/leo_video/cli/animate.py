"""`leo-video animate`: LIA motion transfer from a driving video onto a still image."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_batch_frames_arg, add_device_args, add_fast_path_args, add_overwrite_arg

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
    add_batch_frames_arg(p)
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many driving frames")
    p.add_argument("--side-by-side", action="store_true", help="write source | driving | result")
    add_fast_path_args(p)
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..media.image import load_image
    from ..pipelines.animate import AnimateOptions
    from ..pipelines.transfer import write_transfer
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import check_video_output, load_animator, model_name, note_if_unlike_demo

    out = check_video_output(args.out, args.overwrite)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    animator = load_animator(args.checkpoint, device)
    size = animator.config.size
    if args.size is not None and args.size != size:
        raise InputError(f"--size {args.size}: {model_name(args.checkpoint)} is a {size}x{size} model")
    source = load_image(args.source, size=size)  # (3, S, S)
    note_if_unlike_demo("animate", args.checkpoint, animator, source, args.source)
    options = AnimateOptions(relative=args.relative, batch_frames=args.batch_frames, dtype=dtype, compile=args.compile,
                             channels_last=args.channels_last)  # fmt: skip
    result = write_transfer(animator, source, args.driving, out, options, args.side_by_side, args.max_frames,
                            "animate", model=model_name(args.checkpoint))
    print(f"wrote {result.path} ({result.frames} frames, {result.fps:g} fps)")
    return 0

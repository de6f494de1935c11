"""`leo-video edit`: edit a video by editing its first frame (LEO_METHOD.md, "Video editing")."""

from __future__ import annotations

import argparse

from ._common import ANIMATOR_HELP, add_batch_frames_arg, add_device_args, add_overwrite_arg, add_part_arg
from ._editor import add_controlnet_args

ORDER = 42


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "edit",
        help="re-render a video's motion on an edited first frame",
        description=(
            "Appearance lives in the first frame alone: the original video's motion codes, relative to "
            "its first frame, are applied to the edited first frame and rendered. Content changes, the "
            "motion and its timing stay. --side-by-side writes edited first frame | original | edited. "
            "Give the edited frame (--edited-first-frame) or let --editor controlnet make it from --prompt."
        ),
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument("--pipeline", help="LEO pipeline folder (its animator is used); "
                                          "without --pipeline and --animator: the embedded demo model")
    add_part_arg(model, "animator", ANIMATOR_HELP)
    p.add_argument("--video", required=True, help="the original video or frame folder")
    first = p.add_mutually_exclusive_group(required=True)
    first.add_argument("--edited-first-frame", help="the edited first frame (any image; centre-cropped)")
    first.add_argument("--editor", choices=("controlnet",),
                       help="make the edited first frame from --prompt with a Canny ControlNet (needs leo-video[edit])")
    p.add_argument("--out", required=True, help="output .mp4 or .gif")
    add_batch_frames_arg(p)
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames of --video (default: all)")
    p.add_argument("--side-by-side", action="store_true", help="write edited first frame | original | edited")
    add_controlnet_args(p)
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..editing.first_frame import controlnet_first_frame
    from ..errors import CheckpointError
    from ..media.image import load_image
    from ..pipelines.leo import is_pipeline_folder
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import check_video_output, load_animator, model_name, note_if_unlike_demo
    from ..pipelines.animate import AnimateOptions
    from ..pipelines.transfer import write_transfer
    from ._editor import check_controlnet_args, config_from_args

    check_controlnet_args(args)
    out = check_video_output(args.out, args.overwrite)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    if args.pipeline and not is_pipeline_folder(args.pipeline):
        raise CheckpointError(f"{args.pipeline}: not a LEO pipeline folder (no model_index.json)")
    animator = load_animator(args.pipeline or args.animator, device)  # a pipeline's animator only
    if args.editor == "controlnet":  # the edited frame from a prompt, then the same path as a given one
        edited = controlnet_first_frame(args.video, config_from_args(args), animator.config.size,
                                        args.save_edited_frame)  # (3, S, S)
    else:
        edited = load_image(args.edited_first_frame, size=animator.config.size)  # (3, S, S)
        note_if_unlike_demo("edit", args.pipeline or args.animator, animator, edited, args.edited_first_frame)
    # relative transfer with the original first frame as the start: latent_i = w(edited) + Q(α_i − α_1) + Q E(edited)
    options = AnimateOptions(relative=True, batch_frames=args.batch_frames, dtype=dtype)
    result = write_transfer(animator, edited, args.video, out, options, args.side_by_side, args.max_frames, "edit",
                            model=model_name(args.pipeline or args.animator))
    print(f"wrote {result.path} ({result.frames} frames, {result.fps:g} fps)")
    return 0

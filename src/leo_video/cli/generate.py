"""`leo-video generate`: LEO video generation from a still (conditional) or from nothing (unconditional)."""

from __future__ import annotations

import argparse

from ._common import (FRAMES_WITHOUT_YES, add_device_args, add_fast_path_args, add_overwrite_arg, add_pipeline_args,
                      add_sampler_arg, add_steps_arg, add_yes_arg)

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate human videos with LEO (from a start image, or unconditionally)",
        description=(
            "Samples motion codes with cLMDM (autoregressively, so --frames may exceed the training "
            "length) and renders them with the animator from the start frame. With --source the start "
            "frame is your image (alpha_1 = E(x_1)); without it the start code comes from the start-code prior "
            "and the start frame from the cDDPM (fully unconditional). Frames are rendered and written as a "
            "stream: memory does not grow with --frames."
        ),
    )
    add_pipeline_args(p, "model (a pipeline folder, or the parts; none: the embedded demo model)",
                      "folder written by `leo-video assemble` / LEOPipeline.save_pretrained")
    p.add_argument("--source", help="start image; omit for unconditional generation")
    p.add_argument("--motion-from",
                   help="use this motion instead of sampling: a video, a code store folder or a .safetensors of (T, M) "
                        "codes; at most as many frames as it has (a warning says so), at its fps unless --fps")
    p.add_argument("--frames", type=int, default=64,
                   help=f"frames per video (default 64; any length, over {FRAMES_WITHOUT_YES:,} in all with --yes)")
    p.add_argument("--num-videos", type=int, default=1, help="videos to generate (OUT_000.mp4, ... when > 1)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same video (default 0)")
    add_sampler_arg(p, None, "default: the pipeline's (ddim)")
    add_steps_arg(p, None, "denoising steps of cLMDM, the start-code prior and the cDDPM, at least 1 "
                           "(default: the pipeline's, 50)")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="the cDDPM's classifier-free guidance scale for unconditional start frames "
                        "(1: none, >1 follows the start code more; default: the pipeline's, 1)")
    p.add_argument("--rendering", choices=("relative", "absolute"), default=None,
                   help="render frames relative to the start code (default) or from the sampled codes directly")
    p.add_argument("--fps", type=float, default=None,
                   help="output frame rate (default: the --motion-from clip's, else the pipeline's)")
    p.add_argument("--out", required=True, help="output .mp4 or .gif")
    add_fast_path_args(p)
    add_device_args(p)
    add_overwrite_arg(p)
    add_yes_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError, NumericalError
    from ..media.image import load_image
    from ..pipelines.generate import GenerateOptions, write_generated
    from ..pipelines.sources import load_leo_pipeline, load_motion
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import (TimeEstimate, check_frame_count, check_video_output, format_seconds,
                          note_if_unlike_demo, pipeline_sources, progress_note, warn)

    if args.frames < 1 or args.num_videos < 1:
        raise InputError("--frames and --num-videos must be at least 1")
    sources = pipeline_sources(args)  # checked before any model loads
    check_frame_count("--frames", args.frames, args.frames * args.num_videos, args.yes)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    outs = _output_paths(Path(args.out), args.num_videos)
    for out in outs:
        check_video_output(out, args.overwrite)  # before any model loads
    pipe = load_leo_pipeline(sources, device).optimize_for_inference(compile=args.compile,
                                                                     channels_last=args.channels_last)
    image = load_image(args.source, size=pipe.size) if args.source else None
    if image is not None and not sources.parts_given:
        note_if_unlike_demo("generate", args.pipeline, pipe.animator, image, args.source)
    motion, motion_fps = load_motion(args.motion_from, pipe.animator) if args.motion_from else (None, None)
    frames = args.frames
    if motion is not None and len(motion) < frames:
        frames = len(motion)
        warn("generate", f"--motion-from {args.motion_from}: {frames} frames of motion, fewer than --frames "
                         f"{args.frames}; the video has {frames} frames")
    fps = args.fps or motion_fps or pipe.defaults.fps  # --motion-from keeps the driving clip's rate
    videos = f"{args.num_videos} videos x " if args.num_videos > 1 else ""
    progress_note(f"generate: {videos}{frames:,} frames ({format_seconds(frames / fps)} of video at {fps:g} fps)")
    options = GenerateOptions(image, frames, args.num_videos, args.seed, args.sampler, args.steps, motion, fps, dtype,
                              guidance_scale=args.guidance_scale, rendering=args.rendering)
    try:
        estimate = TimeEstimate("generate", frames)
        write_generated(pipe, outs, options, on_chunk=lambda chunk: estimate.update(chunk.shape[1]))
    except NumericalError as exc:  # the pipeline does not know the paths: name the models (no file was written)
        raise NumericalError(f"{sources.name()}: {exc}") from exc
    for out in outs:
        print(f"wrote {out}")
    return 0


def _output_paths(out, count: int) -> list:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{k:03d}{out.suffix}") for k in range(count)]

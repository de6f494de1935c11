"""`leo-video generate`: LEO video generation from a still (conditional) or from nothing (unconditional)."""

from __future__ import annotations

import argparse

from ._common import FRAMES_WITHOUT_YES, add_device_args, add_overwrite_arg, add_steps_arg, add_yes_arg, progress
from .animate import add_fast_path_args

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate human videos with LEO (from a start image, or unconditionally)",
        description=(
            "Samples motion codes with cLMDM (autoregressively, so --frames may exceed the training "
            "length) and renders them with the animator from the start frame. With --source the start "
            "frame is your image (alpha_1 = E(x_1)); without it the start code comes from the prior and "
            "the start frame from the cDDPM (fully unconditional). Frames are rendered and written as a "
            "stream: memory does not grow with --frames."
        ),
    )
    src = p.add_argument_group("model (a pipeline folder, or the parts; none: the embedded demo model)")
    src.add_argument("--pipeline", help="folder written by `leo-video assemble` / LEOPipeline.save_pretrained")
    src.add_argument("--lia", help="LIA checkpoint (.pt) or exported folder")
    src.add_argument("--lmdm", help="exported cLMDM folder (from `train lmdm`)")
    src.add_argument("--prior", help="exported start-code prior folder (unconditional only)")
    src.add_argument("--cddpm", help="exported cDDPM folder (unconditional only)")
    p.add_argument("--source", help="start image; omit for unconditional generation")
    p.add_argument("--motion-from",
                   help="use this motion instead of sampling: a video, a code store folder or a .safetensors of (T, M) "
                        "codes; at most as many frames as it has (a warning says so), at its fps unless --fps")
    p.add_argument("--frames", type=int, default=64,
                   help=f"frames per video (default 64; any length, over {FRAMES_WITHOUT_YES:,} in all with --yes)")
    p.add_argument("--num-videos", type=int, default=1, help="videos to generate (OUT_000.mp4, ... when > 1)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same video (default 0)")
    p.add_argument("--sampler", choices=("ddpm", "ddim", "dpm++"), default=None, help="default: the pipeline's (ddim)")
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
    import contextlib
    from pathlib import Path

    import torch

    from ..errors import InputError, NumericalError
    from ..media.image import load_image
    from ..media.video import VideoWriter
    from ..utils.device import autocast, resolve_device, resolve_dtype
    from ._common import (TimeEstimate, check_frame_count, check_video_output, format_seconds, note_if_unlike_demo,
                          progress_note, warn)

    if args.frames < 1 or args.num_videos < 1:
        raise InputError("--frames and --num-videos must be at least 1")
    check_frame_count("--frames", args.frames, args.frames * args.num_videos, args.yes)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    outs = _output_paths(Path(args.out), args.num_videos)
    for out in outs:
        check_video_output(out, args.overwrite)  # before any model loads
    pipe = load_pipeline(args, device).optimize_for_inference(compile=args.compile, channels_last=args.channels_last)
    image = load_image(args.source, size=pipe.size) if args.source else None
    if image is not None and not (args.lia or args.lmdm or args.prior or args.cddpm):
        note_if_unlike_demo("generate", args.pipeline, pipe.animator, image, args.source)
    motion, motion_fps = _load_motion(args.motion_from, pipe) if args.motion_from else (None, None)
    frames = args.frames
    if motion is not None and len(motion) < frames:
        frames = len(motion)
        warn("generate", f"--motion-from {args.motion_from}: {frames} frames of motion, fewer than --frames "
                         f"{args.frames}; the video has {frames} frames")
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    fps = args.fps or motion_fps or pipe.defaults.fps  # --motion-from keeps the driving clip's rate
    videos = f"{args.num_videos} videos x " if args.num_videos > 1 else ""
    progress_note(f"generate: {videos}{frames:,} frames ({format_seconds(frames / fps)} of video at {fps:g} fps)")
    stream = pipe.stream(image, frames, args.num_videos, generator, args.sampler, args.steps, motion,
                         guidance_scale=args.guidance_scale, rendering=args.rendering)
    estimate = TimeEstimate("generate", frames)
    try:
        with contextlib.ExitStack() as stack, progress(frames, "generate") as bar:
            writers = [stack.enter_context(VideoWriter(out, fps=fps)) for out in outs]
            with autocast(device, dtype):
                for chunk in stream:  # (B, n, 3, S, S)
                    for writer, video in zip(writers, chunk.float().cpu()):
                        writer.write(video)
                    bar.update(chunk.shape[1])
                    estimate.update(chunk.shape[1])
    except NumericalError as exc:  # the pipeline does not know the paths: name the models (no file was written)
        raise NumericalError(f"{args.pipeline or ' + '.join(filter(None, (args.lia, args.lmdm))) or 'demo pipeline'}: "
                             f"{exc}") from exc  # fmt: skip
    for out in outs:
        print(f"wrote {out}")
    return 0


def load_pipeline(args: argparse.Namespace, device):
    """A LEOPipeline from --pipeline, or from the separate component paths."""
    from ..errors import InputError
    from ..pipelines.leo import LEOPipeline

    if args.pipeline:
        return LEOPipeline.from_pretrained(args.pipeline, device=device)
    if not (args.lia or args.lmdm or args.prior or args.cddpm):
        from ..pipelines.demo import load_demo_pipeline

        return load_demo_pipeline(device)  # the embedded default
    if not (args.lia and args.lmdm):
        raise InputError("give --pipeline DIR, or --lia and --lmdm (plus --prior and --cddpm for unconditional output)")
    return LEOPipeline.from_parts(args.lia, args.lmdm, args.prior, args.cddpm).to(device)


def _output_paths(out, count: int) -> list:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{k:03d}{out.suffix}") for k in range(count)]


def _load_motion(path_text: str, pipe):
    """(motion codes (T, M), their fps or None) from a video (encoded with the pipeline's animator),
    a store or a file; the codes are finite."""
    import torch

    from ..errors import NumericalError

    codes, fps = _read_motion(path_text, pipe)
    if not torch.isfinite(codes).all():
        raise NumericalError(f"{path_text}: motion codes contain NaN or inf")
    return codes, fps


def _read_motion(path_text: str, pipe):
    from pathlib import Path

    import torch

    from ..data.motion_codes import MotionCodeStore
    from ..errors import InputError
    from ..media.video import VideoReader
    from ..pipelines.encode import encode_video
    from ..utils.serialization import read_safetensors

    path = Path(path_text)
    if path.is_dir() and (path / "index.json").exists():
        store = MotionCodeStore(path)
        info = store.info(store.names[0])
        fps, indices = info.get("fps"), info["frame_indices"]
        if fps and len(indices) > 1:  # encoded every k-th frame: the codes' rate is fps / k
            fps = fps / (indices[1] - indices[0])
        return store.codes(store.names[0]), fps
    if path.suffix == ".safetensors":
        tensors = list(read_safetensors(path).values())
        if len(tensors) != 1 or tensors[0].ndim != 2:
            raise InputError(f"{path}: expected one (T, M) tensor of motion codes")
        return tensors[0], None  # no frame rate stored
    reader = VideoReader(path)
    return torch.cat(list(encode_video(pipe.animator, reader))), reader.info.fps

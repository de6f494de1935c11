"""`leo-video ui`: the web UI (Gradio) for generation, motion transfer, editing and manipulation."""

from __future__ import annotations

import argparse

from ._common import add_device_args, add_pipeline_args

ORDER = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ui",
        help="start the web UI (generate, animate, edit, motion sliders); needs leo-video[ui]",
        description=(
            "A Gradio app with four tabs: Generate (LEO video from a start image, or unconditionally), "
            "Animate (LIA motion transfer), Edit (re-render a video on its edited first frame) and Motion "
            "(sliders along the motion directions). Without --pipeline or --animator it opens on the embedded "
            "demo model. It listens on 127.0.0.1 only unless --host says otherwise; jobs run one at a time "
            "in a queue; uploads are checked against the limits below."
        ),
        epilog="example: leo-video ui --pipeline runs/leo_pipeline --port 7860",
    )
    add_pipeline_args(p, "model (default: the embedded demo model; --animator alone: Animate, Edit and Motion)",
                      "LEO pipeline folder (all four tabs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MB (default 50)")
    limits.add_argument("--max-video-frames", type=int, default=300, help="longest video in frames (default 300)")
    limits.add_argument("--max-video-seconds", type=float, default=30.0, help="longest video in seconds (default 30)")
    limits.add_argument("--max-frames", type=int, default=128, help="most frames Generate may make (default 128)")
    limits.add_argument("--max-queue", type=int, default=16, help="jobs that may wait in the queue (default 16)")
    add_device_args(p)
    p.set_defaults(func=run, device="cpu")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import InputError, LeoError

    try:
        import gradio  # noqa: F401 - optional dependency, checked first
    except ImportError:
        raise LeoError("gradio is not installed: pip install 'leo-video[ui]'") from None
    from ..ui.handlers import UIModels
    from ..ui.validation import UploadLimits, is_loopback
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import pipeline_sources

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: must be 1..65535")
    if args.max_queue < 1:
        raise InputError(f"--max-queue {args.max_queue}: must be at least 1")
    limits = UploadLimits(args.max_upload_mb, args.max_video_frames, args.max_video_seconds, args.max_frames,
                          min(32, args.max_frames))
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    models = UIModels.load(pipeline_sources(args, animator_alone=True), device)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the app",
              file=sys.stderr)
    from ..ui.app import serve

    serve(models, limits, args.host, args.port, args.max_queue, dtype)
    return 0

"""`leo-video probe FILE...`: describe videos and frame folders as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys

ORDER = 90


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="Print frame count, fps, size and codec of videos or frame folders (one JSON line each).",
        description=(
            "Verify that each video file (mp4, mov, avi, mkv, webm, gif ...) or folder of png/jpg frames "
            "decodes, and print one JSON object per input: path, frames, fps, width, height, codec "
            '("frames" for a folder). Bad inputs get a one-line error on stderr; the others are still '
            "probed, and the exit status is non-zero if any input failed."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="video files or frame folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import LeoError
    from ..media.video import probe_video

    failures = 0
    for path in args.files:
        try:
            info = probe_video(path)
        except LeoError as exc:
            print(f"leo-video probe: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(json.dumps(info.to_dict()), flush=True)
    return 2 if failures else 0

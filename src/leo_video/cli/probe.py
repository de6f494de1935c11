"""`leo-video probe FILE...`: describe videos and frame folders as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys

ORDER = 90


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="print frame count, fps, size and codec of videos or frame folders (one JSON line each)",
        description=(
            "Verify that each video file (mp4, mov, avi, mkv, webm, gif ...) or folder of png/jpg frames "
            "decodes, and print one JSON object per input: path, frames, fps, width, height, codec "
            '("frames" for a folder). A folder without frames (a folder of videos, a dataset with '
            "train/ and test/) means every video and frame folder inside it. Bad inputs get a one-line "
            "error on stderr; the others are still probed, and the exit status is non-zero if any input failed."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="video files, frame folders, or folders of them (probed one by one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import LeoError
    from ..media.video import probe_video

    failures = 0
    for path in (video for given in args.files for video in expand_folder(given)):
        try:
            info = probe_video(path)
        except LeoError as exc:
            print(f"leo-video probe: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(json.dumps(info.to_dict()), flush=True)
    return 2 if failures else 0


def expand_folder(path_text: str) -> list:
    """``path_text`` itself, or, for a folder that holds no frames but videos or subfolders, what is inside
    it (recursively, sorted): each video file and each frame folder. Anything else is probed as given."""
    from pathlib import Path

    from ..media.video import FRAME_SUFFIXES, VIDEO_SUFFIXES

    path = Path(path_text)
    if not path.is_dir():
        return [path_text]
    entries = sorted(path.iterdir())
    if any(p.is_file() and p.suffix.lower() in FRAME_SUFFIXES for p in entries):
        return [path_text]  # a frame folder
    inside = [str(p) for p in entries if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    inside += [found for p in entries if p.is_dir() for found in expand_folder(str(p))]
    return inside or [path_text]  # nothing to probe: probe_video says what is wrong with the folder

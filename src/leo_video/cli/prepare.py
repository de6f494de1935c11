"""`leo-video prepare`: raw videos -> a cropped, resized train/test dataset (mp4 or frame folders)."""

from __future__ import annotations

import argparse

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.clips import CLIP_FORMATS, PRESET_NAMES

    parser = subparsers.add_parser(
        "prepare",
        help="turn raw videos into a dataset folder (official TaichiHD/CelebV-HQ clips, face or centre crops)",
        description=(
            "With --preset taichi|celebvhq, cut the clips of the dataset's official metadata (time span, box, "
            "partition) out of the raw videos in --raw, as the dataset's authors do (docs/DATASETS.md). With "
            "--input, crop every video file or frame folder to its centre, a box from a JSON file "
            "{name: [x, y, w, h]}, or its face (--crop face, OpenCV's face detector). Clips are resized to "
            "--size, optionally resampled to --fps, and written to OUT/train and OUT/test as jpg frame "
            "folders (quality 95, default), png frame folders (lossless) or H.264 mp4 (CRF --crf). Raw videos "
            "that are missing, too short or corrupt are skipped, listed in the summary and in "
            "OUT/prepare-report.json. Rerunning the same command skips finished clips (idempotent, resumable)."
        ),
        epilog=(
            "examples: leo-video prepare --preset taichi --metadata taichi-metadata.csv --raw youtube-taichi "
            "--out data/taichi --format png | leo-video prepare --input faceforensics/ --crop face --out "
            "data/faceforensics --split-file ff-splits.json"
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="PATH",
                        help="video files, frame folders, or folders holding them (searched recursively)")
    source.add_argument("--raw", nargs="+", metavar="DIR",
                        help="with --preset: folders of the downloaded raw videos, named <video id>.mp4")
    parser.add_argument("--preset", choices=list(PRESET_NAMES), default=None,
                        help="cut the official clips of this dataset out of --raw (needs --metadata)")
    parser.add_argument("--metadata", metavar="FILE", default=None,
                        help="the preset's metadata: taichi-metadata.csv or celebvhq_info.json")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create or complete")
    parser.add_argument("--size", type=int, default=256, help="output frame size in pixels (default 256)")
    parser.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: keep)")
    parser.add_argument("--format", choices=CLIP_FORMATS, default="jpg",
                        help="jpg (default): frame folders at JPEG quality 95 (lossy), the fastest to load in "
                             "training; png: lossless frame folders; mp4: H.264 at --crf (lossy), the smallest")
    parser.add_argument("--split-file", metavar="FILE", default=None,
                        help='official train/test ids: JSON {"train": [...], "test": [...]} or lines '
                             "'<id> train|test' (default: the metadata's partition, else a hash split)")
    parser.add_argument("--test-fraction", type=float, default=0.1,
                        help="hash split: share of videos put in test/ (default 0.1; at least one when > 0)")
    parser.add_argument("--crop", default="center", metavar="center|face|FILE.json",
                        help="with --input: 'center' (default), 'face' (detected face, one square box per "
                             "clip) or a JSON file of per-video boxes {name: [x, y, w, h]}")
    parser.add_argument("--stills", action="store_true",
                        help="with --input: every still image (png, jpg ...; a file given or under a folder) is "
                             "a clip of its own, one frame long: one more identity for stage-1 training, whose "
                             "pair is the image twice (docs/TRAINING.md, finding 12). Without it a folder of "
                             "images is one video whose frames they are")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hash split (default 0)")
    parser.add_argument("--crf", type=int, default=18, help="H.264 quality of --format mp4, lower is better (default 18)")
    parser.add_argument("--overwrite", action="store_true", help="redo every clip (also after changing settings)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.prepare import PrepareConfig, prepare_dataset
    from ..errors import InputError, LeoError

    if (args.preset is None) != (args.raw is None):
        raise InputError("--preset reads raw videos from --raw; without a preset use --input")
    config = PrepareConfig(size=args.size, fps=args.fps, test_fraction=args.test_fraction, crop=args.crop,
                           seed=args.seed, crf=args.crf, format=args.format, preset=args.preset,
                           metadata=args.metadata, split_file=args.split_file, stills=args.stills)
    out = Path(args.out)
    fresh = not out.exists()
    try:
        summary = prepare_dataset(args.input or args.raw, out, config, overwrite=args.overwrite,
                                  progress=not args.no_progress)
    except LeoError:
        if fresh:  # a failed first run leaves no dataset folder behind (only its settings/report files)
            _remove_if_no_videos(out)
        raise
    print(summary.line())
    return 0


def _remove_if_no_videos(folder) -> None:
    import shutil

    from ..data.prepare import REPORT_FILE, SETTINGS_FILE

    if folder.is_dir() and not any(p.is_file() and p.name not in (SETTINGS_FILE, REPORT_FILE)
                                   for p in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)

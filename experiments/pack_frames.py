"""Pack a dataset of PNG frame folders into small H.264 RGB files, and unpack them with OpenCV alone.

For lent GPU machines whose image has OpenCV but not PyAV (`experiments/device_kit.sh`): the 7,000 frames of the
real-face set are 24 MB packed instead of ~175 MB of PNGs. libx264rgb codes RGB itself (no 4:2:0 chroma), so
``--crf 0`` is lossless (``check`` proves it frame by frame); the training clips go at ``--crf 12`` (near-lossless,
a third of the size; a one-frame clip, a still, is always stored losslessly), the held-out clips at 0, because a lossy held-out frame pulls every L1 ratio towards 1
(docs/TRAINING.md, finding 15).

    python experiments/pack_frames.py pack DATASET OUT --split train --crf 12   # DATASET/train/<clip>/*.png -> OUT/train/<clip>.mkv
    python experiments/pack_frames.py unpack OUT DATASET2                       # every OUT/<split>/<clip>.mkv -> PNG folders
    python experiments/pack_frames.py check DATASET OUT --split test            # each decoded frame equals its PNG
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def pack(dataset: Path, out: Path, split: str, crf: int) -> int:
    """Write ``out/split/<clip>.mkv`` for every ``dataset/split/<clip>/`` PNG folder; returns the frame count."""
    import av
    from PIL import Image

    count = 0
    for clip in sorted(p for p in (dataset / split).iterdir() if p.is_dir()):
        frames = sorted(clip.glob("*.png"))
        if not frames:
            continue
        target = out / split / f"{clip.name}.mkv"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")  # renamed once complete: no half-written file
        with av.open(str(partial), "w", format="matroska") as container:
            stream = container.add_stream("libx264rgb", rate=25)
            stream.height, stream.width = np.asarray(Image.open(frames[0])).shape[:2]
            stream.pix_fmt = "bgr24"  # libx264rgb's own RGB layout: no chroma subsampling
            stream.options = {"crf": str(crf if len(frames) > 1 else 0), "preset": "slow"}  # stills lossless
            for path in frames:
                rgb = np.asarray(Image.open(path).convert("RGB"))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., ::-1]), "bgr24")))
            container.mux(stream.encode())
        partial.replace(target)
        count += len(frames)
    return count


def decoded(path: Path):
    """The frames of one packed file, as OpenCV decodes them: uint8 (H, W, 3) BGR."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield bgr
    finally:
        capture.release()


def unpack(packed: Path, dataset: Path) -> int:
    """Every ``packed/<split>/<clip>.mkv`` to ``dataset/<split>/<clip>/00000.png ...``; returns the frame count."""
    import cv2

    count = 0
    for path in sorted(packed.glob("*/*.mkv")):
        folder = dataset / path.parent.name / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        for i, bgr in enumerate(decoded(path)):
            if not cv2.imwrite(str(folder / f"{i:05d}.png"), bgr):
                raise OSError(f"{folder}: could not write frame {i}")
            count += 1
    return count


def check(dataset: Path, packed: Path, split: str) -> int:
    """The number of decoded frames that differ from their PNG (a missing or extra frame counts as one)."""
    from PIL import Image

    differ = 0
    for path in sorted((packed / split).glob("*.mkv")):
        pngs = sorted((dataset / split / path.stem).glob("*.png"))
        frames = list(decoded(path))
        differ += abs(len(frames) - len(pngs))
        for png, bgr in zip(pngs, frames):
            differ += not np.array_equal(np.asarray(Image.open(png).convert("RGB")), bgr[..., ::-1])
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="PNG folders of one split -> .mkv files")
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--split", default="train")
    p.add_argument("--crf", type=int, default=0, help="x264 rate factor: 0 = lossless (default)")
    u = sub.add_parser("unpack", help=".mkv files -> PNG folders (OpenCV only)")
    u.add_argument("packed", type=Path)
    u.add_argument("dataset", type=Path)
    c = sub.add_parser("check", help="exit 1 unless every decoded frame of a split equals its PNG")
    c.add_argument("dataset", type=Path)
    c.add_argument("packed", type=Path)
    c.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    if args.command == "unpack":
        inputs = [args.packed]
    else:  # pack and check read a split of the PNG dataset; check also the packed split
        inputs = [args.dataset / args.split] + ([args.packed / args.split] if args.command == "check" else [])
    missing = [folder for folder in inputs if not folder.is_dir()]
    if missing:
        print(f"pack_frames.py: {missing[0]}: no such folder", file=sys.stderr)
        return 2
    if args.command == "pack":
        print(f"packed {pack(args.dataset, args.out, args.split, args.crf)} frames of {args.dataset / args.split}")
    elif args.command == "unpack":
        print(f"unpacked {unpack(args.packed, args.dataset)} frames into {args.dataset}")
    else:
        differ = check(args.dataset, args.packed, args.split)
        print(f"{args.packed / args.split}: {differ} frames differ from {args.dataset / args.split}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

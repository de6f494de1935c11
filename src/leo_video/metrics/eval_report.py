"""``leo-video eval all``: every metric at once, written as ``report.json`` + ``report.md`` with plots and contact
sheets, from one :class:`ReportOptions`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .evaluate import generated_clip_features, list_videos
from .report import bar_plot, mean_std, write_report
from .video_distance import (VideoDistanceOptions, VideoDistanceSetup, distances_for_seed, fake_features,
                             pipeline_videos, real_features, setup_video_distances)


@dataclass
class ReportOptions:
    """What ``eval all`` measures: FVD/KVD (``distances``; generated videos from its ``fake`` folder) over ``runs``
    real-clip seeds, ACD of both folders (``acd_*``), optionally motion-code metrics (``real_codes`` /
    ``fake_codes``, windows of ``window`` codes every ``stride``, ``relative``), reconstruction L1 and FVD of the
    animator ``checkpoint`` on ``recon_data``, and conditional FVD of ``cond_pipeline``; the report goes to ``out``.
    """

    distances: VideoDistanceOptions
    out: str
    runs: int = 1
    acd_embedder: str = "mean-colour"
    acd_weights: str | None = None
    acd_max_frames: int | None = None
    real_codes: str | None = None
    fake_codes: str | None = None
    window: int = 16
    stride: int | None = None
    relative: bool = False
    checkpoint: str | None = None
    recon_data: str | None = None
    recon_max_videos: int | None = None
    cond_pipeline: str | None = None
    sheet_videos: int = 4
    sheet_frames: int = 8
    overwrite: bool = False


def check_report_options(o: ReportOptions) -> None:
    """Refuse missing pairs, bad counts and absent inputs before the long FVD runs (one line naming the option)."""
    if o.runs < 1:
        raise InputError(f"--runs {o.runs}: must be at least 1")
    if o.distances.pipeline:
        raise InputError(f"--pipeline {o.distances.pipeline}: eval all reads generated videos from --fake DIR "
                         "(write them first with `leo-video generate --num-videos N`)")
    if (o.real_codes is None) != (o.fake_codes is None):
        raise InputError("--real-codes/--fake-codes: give both or neither")
    if (o.checkpoint is None) != (o.recon_data is None):
        raise InputError("--checkpoint/--recon-data: give both or neither")
    if o.sheet_videos < 1 or o.sheet_frames < 1:
        raise InputError(f"--sheet-videos/--sheet-frames {o.sheet_videos}/{o.sheet_frames}: must be at least 1")
    for option in ("real_codes", "fake_codes", "checkpoint", "recon_data", "cond_pipeline"):
        value = getattr(o, option)
        if value is not None and not Path(value).exists():
            raise InputError(f"--{option.replace('_', '-')} {value}: no such file or folder")


def video_distance_metrics(options: ReportOptions, setup: VideoDistanceSetup) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """FVD and KVD over ``runs`` real-clip seeds (one feature pass per side): report entries, input info."""
    fake, counts = fake_features(setup)
    runs = [distances_for_seed(setup, fake, setup.protocol.seed + r) for r in range(options.runs)]
    num_real, num_fake = runs[0]["num_real"], runs[0]["num_fake"]
    samples = f"{num_real} real / {num_fake} generated clips of {setup.protocol.num_frames} frames"
    seeds = f"real-clip seeds {setup.protocol.seed}..{setup.protocol.seed + options.runs - 1}"
    entries = [
        {"name": f"FVD ({setup.protocol.name})", "key": "fvd", **mean_std([r["fvd"] for r in runs]),
         "samples": samples, "num_real": num_real, "num_fake": num_fake, "note": seeds},
        {"name": f"KVD ({setup.protocol.name})", "key": "kvd", **mean_std([r["kvd"] for r in runs]),
         "samples": samples, "num_real": num_real, "num_fake": num_fake, "note": "unbiased MMD², not x1000"},
    ]
    info = {"detector": setup.detector_info.name, "detector_path": setup.detector_info.path,
            "detector_sha256": setup.detector_info.sha256, "real_folder": str(setup.real_dir),
            "real_split": setup.real_split, "num_real_videos": runs[0]["num_real_videos"],
            "real_eligible_videos": runs[0]["real_eligible_videos"], **counts}
    return entries, info


def _distance_entries(label: str, key: str, result: dict[str, Any], note: str) -> list[dict[str, Any]]:
    samples = f"{result['num_real']} real / {result['num_fake']} generated clips of {result['protocol']['num_frames']} frames"
    return [{"name": f"{metric.upper()} {label}", "key": f"{metric}_{key}", "value": result[metric], "samples": samples,
             "num_real": result["num_real"], "num_fake": result["num_fake"], "note": note} for metric in ("fvd", "kvd")]


def conditional_metrics(options: ReportOptions, setup: VideoDistanceSetup) -> list[dict[str, Any]]:
    """Conditional FVD/KVD: ``cond_pipeline`` animates the first frame of each real clip (real-clip seed: the protocol's)."""
    videos = pipeline_videos(setup, options.cond_pipeline, "first-frame")
    fake = generated_clip_features(setup.detector, videos, setup.protocol, options.distances.batch_size,
                                   options.distances.progress, what=f"--cond-pipeline {options.cond_pipeline}")
    result = distances_for_seed(setup, fake, setup.protocol.seed)
    return _distance_entries(f"conditional, first frame ({setup.protocol.name})", "conditional", result,
                             f"pipeline {options.cond_pipeline}, real clips of {setup.real_dir}")


def recon_fvd_metrics(options: ReportOptions, setup: VideoDistanceSetup, animator: Any) -> list[dict[str, Any]]:
    """Reconstruction FVD/KVD: ``animator`` re-renders each real clip of --recon-data (its test split) from its
    first frame, driven by its own frames; compared with those clips."""
    from ..data.video_dataset import split_folder
    from .evaluate import video_distances
    from .generated import reconstructed_videos

    d = options.distances
    folder = split_folder(Path(options.recon_data), "test")
    fake = generated_clip_features(setup.detector, reconstructed_videos(animator, folder, setup.protocol),
                                   setup.protocol, d.batch_size, d.progress, what=f"--recon-data {folder}")
    real = real_features(setup, folder, setup.protocol.seed)
    result = video_distances(real.features, fake, setup.protocol)
    return _distance_entries(f"reconstruction ({setup.protocol.name})", "recon", result,
                             f"self-reenactment of the clips of {folder}")


def acd_metrics(options: ReportOptions, real_dir: Path, protocol: Any, embedder: Any) -> list[dict[str, Any]]:
    """ACD of the real and the generated videos (same embedder, frames and video count)."""
    from .evaluate import folder_acd

    frames = options.acd_max_frames or protocol.num_frames
    entries = []
    for side, folder, what in (("real", real_dir, "--real"), ("generated", options.distances.fake, "--fake")):
        r = folder_acd(folder, embedder, protocol.num_videos, frames, protocol.resolution, what,
                       options.distances.progress)
        entries.append({"name": f"ACD {side} ({options.acd_embedder})", "key": f"acd_{side}", "value": r["acd"],
                        "samples": f"{r['num_videos']} videos, {r['num_frames']} frames",
                        "num_videos": r["num_videos"], "note": f"first {frames} frames of each video"})
    return entries


def motion_metrics(options: ReportOptions) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The motion-code window FD and the jitter ratio of ``fake_codes`` against ``real_codes``."""
    from .evaluate import load_code_sequences
    from .motion import motion_report

    real = load_code_sequences(options.real_codes, "--real-codes")
    fake = load_code_sequences(options.fake_codes, "--fake-codes")
    r = motion_report(real, fake, window=options.window, stride=options.stride, relative=options.relative)
    windows = f"{r['num_real_windows']} real / {r['num_fake_windows']} generated windows of {r['window']}"
    seqs = f"{r['num_real_sequences']} real / {r['num_fake_sequences']} generated sequences"
    return [
        {"name": "motion-code window FD", "key": "code_window_fd", "value": r["code_window_fd"], "samples": windows,
         "note": "relative windows" if options.relative else ""},
        {"name": "jitter ratio (generated / real)", "key": "jitter_ratio", "value": r["jitter_ratio"],
         "samples": seqs, "note": f"real {r['jitter_real']:.4g}, generated {r['jitter_fake']:.4g}; 1 is ideal"},
    ], r


def recon_metrics(options: ReportOptions, animator: Any) -> list[dict[str, Any]]:
    """Self-reenactment L1 of ``animator`` (loaded from ``checkpoint``) on the test videos of ``recon_data``."""
    from .recon import reconstruction_error

    r = reconstruction_error(options.checkpoint, options.recon_data, options.recon_max_videos,
                             device=options.distances.device, progress=options.distances.progress, animator=animator,
                             shuffled=False)
    return [{"name": "reconstruction L1 [0, 1]", "key": "recon_l1", "value": r["l1"],
             "samples": f"{r['num_videos']} videos, {r['num_frames']} frames",
             "note": f"std over videos {r['l1_std']:.3g}; the first frame repeated scores {r['still_l1']:.3g}"}]


def save_samples(out: Path, options: ReportOptions, real_dir: Path, protocol: Any) -> list[dict[str, str]]:
    """Contact sheets (first ``sheet_videos`` videos, frames spread over one clip span) of both folders."""
    from ..media.grid import sample_frame_indices, save_contact_sheet
    from ..media.video import VideoReader

    items = []
    for side, folder, what in (("real", real_dir, "--real"), ("generated", options.distances.fake, "--fake")):
        videos, labels = [], []
        for path in list_videos(folder, what)[: options.sheet_videos]:
            with VideoReader(path, size=protocol.resolution) as reader:
                videos.append(reader.read(sample_frame_indices(min(len(reader), protocol.span), options.sheet_frames)))
            labels.append(path.stem)
        name = f"samples_{side}.png"
        save_contact_sheet(out / name, videos, num_frames=options.sheet_frames, labels=labels)
        items.append({"title": f"{side} videos (frames spread over {protocol.span})", "file": name})
    return items


def save_plots(out: Path, metrics: list[dict[str, Any]], motion: dict[str, Any] | None) -> list[dict[str, str]]:
    """Bar charts: FVD and KVD per run (and their mean ± std), ACD real vs generated, jitter real vs generated."""
    by_key, plots = {m["key"]: m for m in metrics}, []
    for key in ("fvd", "kvd"):
        m = by_key[key]
        labels = [f"run {i}" for i in range(m["runs"])] + (["mean"] if m["runs"] > 1 else [])
        values = m["values"] + ([m["mean"]] if m["runs"] > 1 else [])
        errors = [0.0] * m["runs"] + ([m["std"]] if m["runs"] > 1 else [])
        bar_plot(out / f"{key}.png", labels, values, errors, title=f"{m['name']} per run ({m['samples']})")
        plots.append({"title": m["name"], "file": f"{key}.png"})
    if "acd_real" in by_key:
        bar_plot(out / "acd.png", ["real", "generated"], [by_key["acd_real"]["value"], by_key["acd_generated"]["value"]],
                 title="ACD (lower = content stays the same)")
        plots.append({"title": "ACD", "file": "acd.png"})
    if motion is not None:
        bar_plot(out / "jitter.png", ["real", "generated"], [motion["jitter_real"], motion["jitter_fake"]],
                 title="motion-code jitter, mean ||a_(i+1) - a_i||")
        plots.append({"title": "motion-code jitter", "file": "jitter.png"})
    return plots


def write_eval_report(options: ReportOptions) -> dict[str, Any]:
    """Measure everything ``options`` asks for and write ``report.json``, ``report.md``, plots and contact sheets to
    ``options.out``; returns the summary ``eval all`` prints (the report's paths and each metric's value)."""
    import datetime

    from .. import __version__
    from ..models.loading import load_lia
    from ..pipelines.leo import animator_path
    from ..utils.atomic import check_output_path
    from ..utils.device import resolve_device
    from .acd import load_embedder
    from .i3d import I3D_KWARGS
    from .protocol import protocol_hash

    check_report_options(options)
    out = Path(options.out)
    check_output_path(out / "report.json", options.overwrite)
    # missing weights: fail early
    embedder = load_embedder(options.acd_embedder, options.acd_weights, options.distances.device)
    setup = setup_video_distances(options.distances)
    protocol = setup.protocol
    metrics, info = video_distance_metrics(options, setup)
    if options.cond_pipeline is not None:
        metrics += conditional_metrics(options, setup)
    metrics += acd_metrics(options, setup.real_dir, protocol, embedder)
    motion = None
    if options.real_codes is not None:
        entries, motion = motion_metrics(options)
        metrics += entries
    if options.checkpoint is not None:  # one animator for the L1 and the FVD (a LIA file or a pipeline folder)
        animator = load_lia(animator_path(options.checkpoint), device=resolve_device(options.distances.device))
        metrics += recon_metrics(options, animator) + recon_fvd_metrics(options, setup, animator)
    notes = []
    if info["num_real_videos"] and metrics[0]["num_real"] < protocol.num_videos:
        notes.append(f"Only {metrics[0]['num_real']} real clips (the protocol asks for {protocol.num_videos}): "
                     "FVD/KVD are biased by the sample size and not comparable with papers' numbers.")
    if info["fake_skipped_short"]:
        notes.append(f"{info['fake_skipped_short']} generated videos shorter than {protocol.span} frames were skipped.")
    report = {
        "title": "leo-video evaluation report",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "leo_video_version": __version__,
        "inputs": {"real": f"{info['real_folder']} (split: {info['real_split']}; {info['num_real_videos']} videos, "
                           f"{info['real_eligible_videos']} long enough)",
                   "generated": f"{options.distances.fake} ({info['num_fake_videos']} videos)",
                   "detector": f"{info['detector']} ({info['detector_path']}, sha256 {info['detector_sha256']}, "
                               f"call {I3D_KWARGS})"},
        "protocol": {**protocol.to_dict(), "hash": protocol_hash(protocol), "runs": options.runs},
        "metrics": metrics,
        "details": {"motion": motion, **info},
        "plots": save_plots(out, metrics, motion),
        "samples": save_samples(out, options, setup.real_dir, protocol),
        "notes": notes,
    }
    json_path, md_path = write_report(out, report)
    return {"report": str(md_path), "json": str(json_path), **{m["key"]: m.get("mean", m.get("value")) for m in metrics}}

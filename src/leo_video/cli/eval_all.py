"""`leo-video eval all`: every metric at once, written as report.json + report.md with plots and samples."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .eval_acd import add_acd_args
from .eval_fvd import add_video_distance_args
from .eval_motion import add_motion_args

PARENT = "eval"
ORDER = 65


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "all",
        help="FVD, KVD, ACD (and motion, reconstruction if given) as report.json + report.md",
        description=(
            "Runs FVD and KVD --runs times (real-clip offsets seeded seed, seed+1, ...; generated clips "
            "fixed) and reports mean ± std, ACD of real and generated videos, optionally motion-code "
            "metrics (--real-codes/--fake-codes), reconstruction L1 and reconstruction FVD (--checkpoint/--recon-data) "
            "and conditional FVD (--cond-pipeline). "
            "Writes report.json, report.md, PNG plots and contact sheets of real and generated videos to --out."
        ),
    )
    add_video_distance_args(p)
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--runs", type=int, default=1, help="FVD/KVD runs with different real-clip seeds (default 1)")
    add_acd_args(p, prefix="acd-")
    p.add_argument("--real-codes", default=None, help="real motion codes (store folder or file) for motion metrics")
    p.add_argument("--fake-codes", default=None, help="generated motion codes")
    add_motion_args(p)
    p.add_argument("--checkpoint", default=None,
                   help="LIA checkpoint: also report self-reenactment L1 and reconstruction FVD on --recon-data")
    p.add_argument("--recon-data", default=None, help="test videos for the reconstruction L1")
    p.add_argument("--recon-max-videos", type=int, default=None, help="only the first N videos of --recon-data")
    p.add_argument("--cond-pipeline", default=None, metavar="PIPE",
                   help="also report conditional FVD/KVD: this LEO pipeline animates the first frame of each real clip")
    p.add_argument("--sheet-videos", type=int, default=4, help="videos per contact sheet (default 4)")
    p.add_argument("--sheet-frames", type=int, default=8, help="frames per contact-sheet row (default 8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    from ..errors import InputError

    if args.runs < 1:
        raise InputError(f"--runs {args.runs}: must be at least 1")
    if args.pipeline:
        raise InputError(f"--pipeline {args.pipeline}: eval all reads generated videos from --fake DIR "
                         "(write them first with `leo-video generate --num-videos N`)")
    if (args.real_codes is None) != (args.fake_codes is None):
        raise InputError("--real-codes/--fake-codes: give both or neither")
    if (args.checkpoint is None) != (args.recon_data is None):
        raise InputError("--checkpoint/--recon-data: give both or neither")
    if args.sheet_videos < 1 or args.sheet_frames < 1:
        raise InputError(f"--sheet-videos/--sheet-frames {args.sheet_videos}/{args.sheet_frames}: must be at least 1")
    for option in ("real_codes", "fake_codes", "checkpoint", "recon_data", "cond_pipeline"):  # fail before the long FVD runs
        value = getattr(args, option)
        if value is not None and not Path(value).exists():
            raise InputError(f"--{option.replace('_', '-')} {value}: no such file or folder")


def video_distance_metrics(args: argparse.Namespace, setup: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """FVD and KVD over ``--runs`` real-clip seeds (one feature pass per side): report entries, input info."""
    from ..metrics.report import mean_std
    from .eval_fvd import distances_for_seed, fake_features

    fake, counts = fake_features(setup, args)
    runs = [distances_for_seed(setup, args, fake, setup.protocol.seed + r) for r in range(args.runs)]
    num_real, num_fake = runs[0]["num_real"], runs[0]["num_fake"]
    samples = f"{num_real} real / {num_fake} generated clips of {setup.protocol.num_frames} frames"
    seeds = f"real-clip seeds {setup.protocol.seed}..{setup.protocol.seed + args.runs - 1}"
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


def conditional_metrics(args: argparse.Namespace, setup: Any) -> list[dict[str, Any]]:
    """Conditional FVD/KVD: --cond-pipeline animates the first frame of each real clip (real-clip seed = --seed)."""
    from ..metrics.evaluate import generated_clip_features
    from .eval_fvd import distances_for_seed, pipeline_videos

    videos = pipeline_videos(args, setup, args.cond_pipeline, "first-frame")
    fake = generated_clip_features(setup.detector, videos, setup.protocol, setup.batch_size, setup.progress,
                                   what=f"--cond-pipeline {args.cond_pipeline}")
    result = distances_for_seed(setup, args, fake, setup.protocol.seed)
    return _distance_entries(f"conditional, first frame ({setup.protocol.name})", "conditional", result,
                             f"pipeline {args.cond_pipeline}, real clips of {setup.real_dir}")


def recon_fvd_metrics(args: argparse.Namespace, setup: Any) -> list[dict[str, Any]]:
    """Reconstruction FVD/KVD: the animator re-renders each real clip of --recon-data (its test split) from its
    first frame, driven by its own frames; compared with those clips."""
    from pathlib import Path

    from ..data.video_dataset import split_folder
    from ..metrics.evaluate import generated_clip_features, real_clip_features, video_distances
    from ..metrics.generated import reconstructed_videos
    from ..models.loading import load_lia
    from ..utils.device import resolve_device

    folder = split_folder(Path(args.recon_data), "test")
    animator = load_lia(args.checkpoint, device=resolve_device(args.device))
    fake = generated_clip_features(setup.detector, reconstructed_videos(animator, folder, setup.protocol),
                                   setup.protocol, setup.batch_size, setup.progress, what=f"--recon-data {folder}")
    real = real_clip_features(setup.detector, folder, setup.protocol, setup.cache_dir, setup.detector_info.sha256,
                              setup.batch_size, setup.progress)
    result = video_distances(real.features, fake, setup.protocol)
    return _distance_entries(f"reconstruction ({setup.protocol.name})", "recon", result,
                             f"self-reenactment of the clips of {folder}")


def acd_metrics(args: argparse.Namespace, real_dir: Any, protocol: Any, embedder: Any) -> list[dict[str, Any]]:
    """ACD of the real and the generated videos (same embedder, frames and video count)."""
    from ..metrics.evaluate import folder_acd
    from ..utils.progress import progress_enabled

    frames = args.acd_max_frames or protocol.num_frames
    entries = []
    for side, folder, what in (("real", real_dir, "--real"), ("generated", args.fake, "--fake")):
        r = folder_acd(folder, embedder, protocol.num_videos, frames, protocol.resolution, what, progress_enabled())
        entries.append({"name": f"ACD {side} ({args.acd_embedder})", "key": f"acd_{side}", "value": r["acd"],
                        "samples": f"{r['num_videos']} videos, {r['num_frames']} frames",
                        "num_videos": r["num_videos"], "note": f"first {frames} frames of each video"})
    return entries


def motion_metrics(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from ..metrics.evaluate import load_code_sequences
    from ..metrics.motion import motion_report

    real = load_code_sequences(args.real_codes, "--real-codes")
    fake = load_code_sequences(args.fake_codes, "--fake-codes")
    r = motion_report(real, fake, window=args.window, stride=args.stride, relative=args.relative)
    windows = f"{r['num_real_windows']} real / {r['num_fake_windows']} generated windows of {r['window']}"
    seqs = f"{r['num_real_sequences']} real / {r['num_fake_sequences']} generated sequences"
    return [
        {"name": "motion-code window FD", "key": "code_window_fd", "value": r["code_window_fd"], "samples": windows,
         "note": "relative windows" if args.relative else ""},
        {"name": "jitter ratio (generated / real)", "key": "jitter_ratio", "value": r["jitter_ratio"],
         "samples": seqs, "note": f"real {r['jitter_real']:.4g}, generated {r['jitter_fake']:.4g}; 1 is ideal"},
    ], r


def recon_metrics(args: argparse.Namespace) -> list[dict[str, Any]]:
    from .eval_recon import reconstruction_error

    r = reconstruction_error(args.checkpoint, args.recon_data, args.recon_max_videos, device=args.device)
    return [{"name": "reconstruction L1 [0, 1]", "key": "recon_l1", "value": r["l1"],
             "samples": f"{r['num_videos']} videos, {r['num_frames']} frames", "note": f"std over videos {r['l1_std']:.3g}"}]


def save_samples(out: Path, args: argparse.Namespace, real_dir: Any, protocol: Any) -> list[dict[str, str]]:
    """Contact sheets (first ``--sheet-videos`` videos, frames spread over one clip span) of both folders."""
    from ..media.grid import sample_frame_indices, save_contact_sheet
    from ..media.video import VideoReader
    from ..metrics.evaluate import list_videos

    items = []
    for side, folder, what in (("real", real_dir, "--real"), ("generated", args.fake, "--fake")):
        videos, labels = [], []
        for path in list_videos(folder, what)[: args.sheet_videos]:
            with VideoReader(path, size=protocol.resolution) as reader:
                videos.append(reader.read(sample_frame_indices(min(len(reader), protocol.span), args.sheet_frames)))
            labels.append(path.stem)
        name = f"samples_{side}.png"
        save_contact_sheet(out / name, videos, num_frames=args.sheet_frames, labels=labels)
        items.append({"title": f"{side} videos (frames spread over {protocol.span})", "file": name})
    return items


def save_plots(out: Path, metrics: list[dict[str, Any]], motion: dict[str, Any] | None) -> list[dict[str, str]]:
    """Bar charts: FVD and KVD per run (and their mean ± std), ACD real vs generated, jitter real vs generated."""
    from ..metrics.report import bar_plot

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


def run(args: argparse.Namespace) -> int:
    import datetime

    from .. import __version__
    from ..metrics.i3d import I3D_KWARGS
    from ..metrics.protocol import protocol_hash
    from ..metrics.report import write_report
    from ..utils.atomic import check_output_path
    from .eval_acd import load_embedder
    from .eval_fvd import setup_from_args

    _check_args(args)
    out = Path(args.out)
    check_output_path(out / "report.json", args.overwrite)
    embedder = load_embedder(args.acd_embedder, args.acd_weights, args.device)  # missing weights: fail early
    setup = setup_from_args(args)
    protocol = setup.protocol
    metrics, info = video_distance_metrics(args, setup)
    if args.cond_pipeline is not None:
        metrics += conditional_metrics(args, setup)
    metrics += acd_metrics(args, setup.real_dir, protocol, embedder)
    motion = None
    if args.real_codes is not None:
        entries, motion = motion_metrics(args)
        metrics += entries
    if args.checkpoint is not None:
        metrics += recon_metrics(args) + recon_fvd_metrics(args, setup)
    notes = ["Plots are drawn with Pillow (matplotlib is not a dependency of leo-video)."]
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
                   "generated": f"{args.fake} ({info['num_fake_videos']} videos)",
                   "detector": f"{info['detector']} ({info['detector_path']}, sha256 {info['detector_sha256']}, "
                               f"call {I3D_KWARGS})"},
        "protocol": {**protocol.to_dict(), "hash": protocol_hash(protocol), "runs": args.runs},
        "metrics": metrics,
        "details": {"motion": motion, **info},
        "plots": save_plots(out, metrics, motion),
        "samples": save_samples(out, args, setup.real_dir, protocol),
        "notes": notes,
    }
    json_path, md_path = write_report(out, report)
    print(json.dumps({"report": str(md_path), "json": str(json_path),
                      **{m["key"]: m.get("mean", m.get("value")) for m in metrics}}))
    return 0

"""`leo-video eval all`: every metric at once, written as report.json + report.md with plots and samples."""

from __future__ import annotations

import argparse
import dataclasses
import json

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


def run(args: argparse.Namespace) -> int:
    from ..metrics.eval_report import ReportOptions, write_eval_report
    from .eval_fvd import distance_options

    names = [f.name for f in dataclasses.fields(ReportOptions) if f.name != "distances"]
    options = ReportOptions(distance_options(args), **{name: getattr(args, name) for name in names})
    print(json.dumps(write_eval_report(options)))
    return 0

"""`leo-video assemble`: bundle trained LEO components into one pipeline folder."""

from __future__ import annotations

import argparse

from ._common import add_overwrite_arg, add_part_arg, add_sampler_arg, add_steps_arg

ORDER = 41


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "assemble",
        help="bundle the animator and motion (+ start code, start frame) into one pipeline folder",
        description=(
            "Writes a LEO pipeline folder (diffusers layout: model_index.json, one folder of config.json + safetensors per part) "
            "that `leo-video generate --pipeline`, `leo-video ui` and LEOPipeline.from_pretrained load. "
            "The motion dimensions of all parts must agree."
        ),
    )
    add_part_arg(p, "animator", "LIA checkpoint (.pt, official or ours) or exported animator folder", required=True)
    add_part_arg(p, "motion", required=True)
    add_part_arg(p, "start_code")
    add_part_arg(p, "start_frame")
    add_sampler_arg(p, "ddim", "default sampler stored with the pipeline")
    add_steps_arg(p, 50, "default denoising steps stored with the pipeline, at least 1 (default 50)")
    p.add_argument("--fps", type=float, default=25.0, help="default output fps stored with the pipeline")
    p.add_argument("--weights-dtype", choices=("fp32", "fp16"), default="fp32",
                   help="storage dtype of the weights (fp16 halves the folder; loading casts to fp32)")
    p.add_argument("--out", required=True, help="pipeline folder to write")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pipelines.leo import GenerationDefaults, LEOPipeline

    defaults = GenerationDefaults(sampler=args.sampler, steps=args.steps, start_frame_steps=args.steps, fps=args.fps)
    pipe = LEOPipeline.from_parts(args.animator, args.motion, args.start_code, args.start_frame, defaults=defaults)
    import torch

    weights_dtype = torch.float16 if args.weights_dtype == "fp16" else None
    folder = pipe.save_pretrained(args.out, overwrite=args.overwrite, weights_dtype=weights_dtype)
    print(f"wrote {folder} ({', '.join(sorted(pipe.parts()))})")
    return 0

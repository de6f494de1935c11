"""`leo-video manipulate`: move a source image along LIA's motion directions (linear manipulation)."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_device_args, add_overwrite_arg, int_at_least

ORDER = 22


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "manipulate",
        help="move a source image along motion directions (one video per direction + contact sheet)",
        description=(
            "LIA's linear manipulation: the source's own motion code plus v·e_k for v over a range, "
            "rendered for each chosen direction k. Writes OUT/direction_KK.mp4 and OUT/contact_sheet.png."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--source", required=True, help="source image")
    p.add_argument("--direction", default="all", help="direction index K (0-based) or 'all' (default)")
    p.add_argument("--range", nargs=2, type=float, default=(-3.0, 3.0), metavar=("LOW", "HIGH"),
                   help="range of the magnitude v (default -3 3)")
    p.add_argument("--steps", type=int_at_least(2), default=16, help="frames per direction, at least 2 (default 16)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the videos (default 8)")
    p.add_argument("--out", required=True, help="output folder")
    add_device_args(p, dtype=False)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..media.image import load_image
    from ..pipelines.manipulate import write_manipulation
    from ..utils.device import resolve_device
    from ._common import load_animator, note_if_unlike_demo

    device = resolve_device(args.device)
    animator = load_animator(args.checkpoint, device)
    directions = _parse_directions(args.direction, animator.config.motion_dim)
    source = load_image(args.source, size=animator.config.size)  # (3, S, S)
    note_if_unlike_demo("manipulate", args.checkpoint, animator, source, args.source)
    sheet = write_manipulation(animator, source, directions, args.range, args.steps, args.out, args.fps, args.overwrite)
    print(f"wrote {len(directions)} videos and {sheet}")
    return 0


def _parse_directions(text: str, count: int) -> list[int]:
    from ..errors import InputError

    if text == "all":
        return list(range(count))
    try:
        k = int(text)
    except ValueError:
        raise InputError(f"--direction {text}: expected an index or 'all'") from None
    if not 0 <= k < count:
        raise InputError(f"--direction {k}: the model has directions 0..{count - 1}")
    return [k]

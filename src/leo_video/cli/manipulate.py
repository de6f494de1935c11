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
    from pathlib import Path

    import torch

    from ..media.grid import save_contact_sheet
    from ..media.image import load_image
    from ..media.video import VideoWriter
    from ..pipelines.animate import manipulation_codes
    from ..utils.atomic import check_output_path
    from ..utils.device import resolve_device
    from ._common import load_animator, note_if_unlike_demo

    device = resolve_device(args.device)
    animator = load_animator(args.checkpoint, device)
    num_directions = animator.config.motion_dim
    directions = _parse_directions(args.direction, num_directions)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = load_image(args.source, size=animator.config.size)
    note_if_unlike_demo("manipulate", args.checkpoint, animator, source, args.source)
    appearance = animator.encode_appearance(source.unsqueeze(0).to(device))
    values = torch.linspace(args.range[0], args.range[1], args.steps)
    videos = []
    for k in directions:
        with torch.no_grad():
            codes = manipulation_codes(animator, source, k, values)  # (steps, M)
        path = check_output_path(out / f"direction_{k:02d}.mp4", args.overwrite)
        with VideoWriter(path, fps=args.fps) as writer:  # rendered and written in batches
            frames = [_render(animator, appearance, batch, writer) for batch in codes.split(RENDER_BATCH)]
        videos.append(torch.cat(frames))  # (steps, 3, S, S)
    sheet = check_output_path(out / "contact_sheet.png", args.overwrite)
    save_contact_sheet(sheet, videos, num_frames=min(args.steps, 9), labels=[f"dir {k}" for k in directions])
    print(f"wrote {len(directions)} videos and {sheet}")
    return 0


RENDER_BATCH = 16  # frames rendered at once


def _render(animator, appearance, codes, writer):
    """Render ``codes`` (n, M) on ``appearance``, append them to ``writer``; returns the frames (n, 3, S, S) on the CPU."""
    import torch

    with torch.no_grad():
        frames = animator.render(appearance, codes).float().cpu()
    writer.write(frames)
    return frames


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

"""LIA's linear manipulation into files: one video per motion direction and a contact sheet (``leo-video manipulate``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from ..media.grid import save_contact_sheet
from ..media.video import VideoWriter
from ..utils.atomic import check_output_path
from .animate import manipulation_codes

RENDER_BATCH = 16  # frames rendered at once


def write_manipulation(animator, source: torch.Tensor, directions: Sequence[int], value_range: tuple[float, float],
                       steps: int, out: str | os.PathLike, fps: float, overwrite: bool = False) -> Path:
    """For each direction k: the source (3, S, S) with its own motion code plus v·e_k, v over ``value_range`` in
    ``steps`` steps, written to ``out/direction_KK.mp4``; then ``out/contact_sheet.png``, whose path is returned."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # every output refused before anything is rendered (not the sheet after all the videos)
    paths = {k: check_output_path(out / f"direction_{k:02d}.mp4", overwrite) for k in directions}
    sheet = check_output_path(out / "contact_sheet.png", overwrite)
    device = next(animator.parameters()).device
    with torch.no_grad():
        appearance = animator.encode_appearance(source.unsqueeze(0).to(device))  # its motion: α_source (1, M)
    values = torch.linspace(value_range[0], value_range[1], steps)
    videos = []
    for k in directions:
        codes = manipulation_codes(appearance.motion, k, values)  # (steps, M)
        with VideoWriter(paths[k], fps=fps) as writer:  # rendered and written in batches
            frames = [_render(animator, appearance, batch, writer) for batch in codes.split(RENDER_BATCH)]
        videos.append(torch.cat(frames))  # (steps, 3, S, S)
    save_contact_sheet(sheet, videos, num_frames=min(steps, 9), labels=[f"dir {k}" for k in directions])
    return sheet


def _render(animator, appearance, codes: torch.Tensor, writer: VideoWriter) -> torch.Tensor:
    """Render ``codes`` (n, M) on ``appearance``, append them to ``writer``; returns the frames (n, 3, S, S) on the CPU."""
    with torch.no_grad():
        frames = animator.render(appearance, codes).float().cpu()
    writer.write(frames)
    return frames

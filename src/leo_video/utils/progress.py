"""The one switch for progress bars: ``LEO_PROGRESS=0`` hides every bar (CLI, training, editing)."""

from __future__ import annotations

import os


def progress_enabled() -> bool:
    """Whether progress bars are shown: true unless the environment sets ``LEO_PROGRESS=0``."""
    return os.environ.get("LEO_PROGRESS", "1") != "0"


def progress_bar(total: int | None, desc: str, unit: str = "frame", show: bool = True):
    """A tqdm progress bar on stderr (hidden when not ``show`` or by ``LEO_PROGRESS=0``); the UI's
    ``gr.Progress(track_tqdm=True)`` follows it too."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=not (show and progress_enabled()))

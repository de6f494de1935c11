"""The one switch for progress bars: ``LEO_PROGRESS=0`` hides every bar (CLI, training, editing)."""

from __future__ import annotations

import os


def progress_enabled() -> bool:
    """Whether progress bars are shown: true unless the environment sets ``LEO_PROGRESS=0``."""
    return os.environ.get("LEO_PROGRESS", "1") != "0"

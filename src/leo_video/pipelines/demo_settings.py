"""What the demo generates, without torch: ``leo-video demo --help`` shows these defaults."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class DemoSettings:
    """What :func:`write_demo` generates (defaults: well under a minute on 2 CPU cores)."""

    num_frames: int = 40
    infinite_frames: int = 320
    num_videos: int = 4  # unconditional; the conditional grid shows 2 motions of one still
    seed: int = 0
    sampler: str | None = None  # None: the pipeline's default
    steps: int | None = 25

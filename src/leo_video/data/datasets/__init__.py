"""Readers of the paper datasets' official metadata: each turns its file into :class:`~..clips.ClipSpec` s."""

from __future__ import annotations

from .celebvhq import read_celebvhq_info
from .taichi import read_taichi_metadata

# `prepare --preset NAME`: the reader of NAME's metadata file.
PRESETS = {"taichi": read_taichi_metadata, "celebvhq": read_celebvhq_info}

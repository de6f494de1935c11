"""Readers of the paper datasets' official metadata: each turns its file into :class:`~..clips.ClipSpec` s."""

from __future__ import annotations

from ..clips import PRESET_NAMES
from .celebvhq import read_celebvhq_info
from .taichi import read_taichi_metadata

# `prepare --preset NAME`: the reader of NAME's metadata file.
PRESETS = {"taichi": read_taichi_metadata, "celebvhq": read_celebvhq_info}
assert tuple(PRESETS) == PRESET_NAMES, "clips.PRESET_NAMES (what --help lists) must name every preset"

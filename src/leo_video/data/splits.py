"""Train/test splits of `prepare`: an official split file, or a stable hash split.

Split file: either JSON ``{"train": [id, ...], "test": [id, ...]}`` (an entry may itself be a list of
ids, as FaceForensics' pair lists ``[["071", "054"], ...]`` are: every id in it counts), or text with
one ``<id> <train|test>`` (or ``<id>,<split>``) per line. An id names a clip by its output name or
its raw video id (TaichiHD ``video_id``, CelebV-HQ clip id or ``ytb_id``, a file stem).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .clips import ClipSpec
from .video_dataset import SPLITS


def split_of(name: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) per (seed, name), independent of input order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(names: Sequence[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Choose ``round(n * test_fraction)`` test videos (at least one when the fraction > 0 and n > 1)."""
    n_test = round(len(names) * test_fraction)
    if test_fraction > 0 and len(names) > 1:
        n_test = max(1, n_test)
    ranked = sorted(names, key=lambda name: split_of(name, seed))
    test = set(ranked[:n_test])
    return {name: "test" if name in test else "train" for name in names}


def load_split_file(path: str | os.PathLike) -> dict[str, str]:
    """``{id: "train" | "test"}`` from a split file (see the module docstring); InputError naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such split file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text file") from exc
    splits = _from_json(text, path) if text.lstrip().startswith("{") else _from_lines(text, path)
    if not splits:
        raise InputError(f"{path}: lists no video ids")
    return splits


def _from_json(text: str, path: Path) -> dict[str, str]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or not set(raw) <= set(SPLITS):
        raise InputError(f'{path}: expected {{"train": [ids], "test": [ids]}}')
    splits = {}
    for split, ids in raw.items():
        for entry in ids if isinstance(ids, list) else []:
            for video_id in entry if isinstance(entry, list) else [entry]:
                splits[str(video_id)] = split
    return splits


def _from_lines(text: str, path: Path) -> dict[str, str]:
    splits = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields or line.lstrip().startswith("#"):
            continue
        if len(fields) != 2 or fields[1] not in SPLITS:
            raise InputError(f"{path}: line {number}: expected '<video id> train|test', got {line.strip()!r}")
        splits[fields[0]] = fields[1]
    return splits


def split_from_file(splits: dict[str, str], spec: ClipSpec) -> str | None:
    """The split a split file gives a clip (by its output name first, then its other ids), or None."""
    for key in (spec.name, *spec.ids, spec.source):
        if key in splits:
            return splits[key]
    return None

"""A store of per-video motion-code sequences (the output of LIA's encoder; LEO_METHOD.md, "Stage 2").

Layout of a store folder::

    index.json                   global metadata + one entry per video
    codes-00000.safetensors      shards: one float32 tensor (T, M) per video, under the entry's key
    codes-00001.safetensors ...

``index.json``::

    {"format": "leo-motion-codes", "version": 1, "motion_dim": 20,
     "lia_checkpoint_sha256": "…" | null, "shards": ["codes-00000.safetensors", …],
     "videos": [{"name": …, "source": …, "fps": …, "frame_indices": [...] | {"start", "step", "count"},
                 "num_frames": T, "motion_dim": M, "shard": …, "key": …, …extra meta}, …]}

Shards and the index are written atomically, a shard before the index entries that point into it, so a
crash loses at most the videos not yet flushed; rerunning the same encoding resumes (videos already in
the index are skipped). :class:`MotionClipDataset` serves clips of L codes for LMDM training, and
:func:`compute_code_stats` / :func:`compute_residual_stats` give the normalisation statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import InputError, NumericalError
from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.hashing import sha256_file
from ..utils.serialization import read_safetensors

INDEX_NAME = "index.json"
STORE_FORMAT = "leo-motion-codes"
STORE_VERSION = 1


def sha256_checkpoint(path: str | os.PathLike) -> str:
    """Hex sha256 identifying a LIA checkpoint: a file's own hash, or for an exported folder the hash of
    ``name:file-sha256`` lines of every file in it (sorted, sub-folders included), so that any change of
    weights or config changes it."""
    root = Path(path)
    if root.is_file():
        return sha256_file(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such LIA checkpoint (file or exported folder)")
    lines = [f"{f.relative_to(root).as_posix()}:{sha256_file(f)}\n" for f in sorted(root.rglob("*")) if f.is_file()]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _pack_indices(indices: Sequence[int]) -> list[int] | dict:
    """Frame indices as JSON: an arithmetic progression is stored as {start, step, count}."""
    idx = [int(i) for i in indices]
    if len(idx) >= 2 and all(b - a == idx[1] - idx[0] for a, b in zip(idx, idx[1:])):
        return {"start": idx[0], "step": idx[1] - idx[0], "count": len(idx)}
    return idx


def _unpack_indices(packed: list[int] | dict) -> list[int]:
    if isinstance(packed, dict):
        return [packed["start"] + k * packed["step"] for k in range(packed["count"])]
    return list(packed)


class MotionCodeWriter:
    """Write code sequences into a store folder, resumably (``with`` closes and flushes it).

    Args:
        out_dir: the store folder (created if missing; an existing store is resumed).
        shard_size: videos per safetensors shard.
        lia_checkpoint: the LIA checkpoint (file or exported folder) the codes come from, hashed with
            :func:`sha256_checkpoint`, or
        checkpoint_sha256: that hash directly. A resumed store must match it.
        motion_dim: M; taken from the first video (or the existing index) when not given.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        shard_size: int = 64,
        lia_checkpoint: str | os.PathLike | None = None,
        checkpoint_sha256: str | None = None,
        motion_dim: int | None = None,
    ):
        if shard_size < 1:
            raise InputError(f"shard_size: must be >= 1, got {shard_size}")
        self.root = Path(out_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        sha = sha256_checkpoint(lia_checkpoint) if lia_checkpoint is not None else checkpoint_sha256
        self._index = self._load_or_new(sha, motion_dim)
        self._names = {v["name"] for v in self._index["videos"]}
        self._pending: list[tuple[dict, torch.Tensor]] = []
        self._next_shard = len(self._index["shards"])

    def _load_or_new(self, sha: str | None, motion_dim: int | None) -> dict:
        path = self.root / INDEX_NAME
        if not path.exists():
            return {"format": STORE_FORMAT, "version": STORE_VERSION, "motion_dim": motion_dim,
                    "lia_checkpoint_sha256": sha, "shards": [], "videos": []}
        index = _read_index(self.root)
        old = index.get("lia_checkpoint_sha256")
        if sha is not None and old is not None and old != sha:
            raise InputError(
                f"{self.root}: holds codes of LIA checkpoint sha256 {old[:12]}…, not {sha[:12]}…; use another output folder"
            )
        index["lia_checkpoint_sha256"] = old or sha
        if motion_dim is not None and index["motion_dim"] not in (None, motion_dim):
            raise InputError(f"{self.root}: holds codes with motion_dim {index['motion_dim']}, not {motion_dim}")
        return index

    def __contains__(self, name: str) -> bool:
        """True if ``name`` is stored (or queued): an encoder should skip it."""
        return name in self._names

    def __len__(self) -> int:
        return len(self._names)

    def add(self, name: str, codes: torch.Tensor, meta: dict | None = None) -> bool:
        """Queue one video's codes ``(T, M)`` with ``meta`` (``source``, ``fps``, ``frame_indices``, extras).

        Returns False (and stores nothing) when ``name`` is already in the store. ``frame_indices``
        defaults to ``range(T)``; extra JSON-able keys are kept in the video's index entry.
        """
        if name in self._names:
            return False
        codes = self._check_codes(name, codes)
        meta = dict(meta or {})
        T, M = codes.shape
        indices = list(meta.pop("frame_indices", range(T)))
        if len(indices) != T:
            raise InputError(f"{name}: {len(indices)} frame_indices for {T} codes")
        entry = {**meta, "name": name, "source": str(meta["source"]) if meta.get("source") else None,
                 "fps": None if meta.get("fps") is None else float(meta["fps"]),
                 "frame_indices": _pack_indices(indices), "num_frames": T, "motion_dim": M}
        json.dumps(entry)  # fail now, not at flush time, on meta that JSON cannot hold
        self._pending.append((entry, codes))
        self._names.add(name)
        if len(self._pending) >= self.shard_size:
            self.flush()
        return True

    def _check_codes(self, name: str, codes: torch.Tensor) -> torch.Tensor:
        codes = torch.as_tensor(codes).detach().to("cpu", torch.float32).contiguous()
        if codes.ndim != 2 or codes.shape[0] < 1:
            raise InputError(f"{name}: codes must be (T >= 1, M), got {tuple(codes.shape)}")
        if self._index["motion_dim"] is None:
            self._index["motion_dim"] = int(codes.shape[1])
        if codes.shape[1] != self._index["motion_dim"]:
            raise InputError(f"{name}: codes have M = {codes.shape[1]}, the store has {self._index['motion_dim']}")
        if not torch.isfinite(codes).all():
            raise NumericalError(f"{name}: codes contain NaN or inf")
        return codes

    def flush(self) -> None:
        """Write queued videos as one shard, then the index (both atomically)."""
        if not self._pending:
            return
        shard = f"codes-{self._next_shard:05d}.safetensors"
        tensors = {}
        for k, (entry, codes) in enumerate(self._pending):
            entry.update(shard=shard, key=f"video_{k:05d}")
            tensors[entry["key"]] = codes
        with atomic_path(self.root / shard) as tmp:
            save_file(tensors, str(tmp), metadata={"format": STORE_FORMAT})
        self._index["shards"].append(shard)
        self._index["videos"].extend(entry for entry, _ in self._pending)
        atomic_write_text(self.root / INDEX_NAME, json.dumps(self._index, indent=1))
        self._pending.clear()
        self._next_shard += 1

    def close(self) -> None:
        """Flush what is queued (an empty store still gets its index)."""
        self.flush()
        if not (self.root / INDEX_NAME).exists():
            atomic_write_text(self.root / INDEX_NAME, json.dumps(self._index, indent=1))

    def __enter__(self) -> "MotionCodeWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # every queued video is complete, so flushing is safe even after an error


def _read_index(root: Path) -> dict:
    path = root / INDEX_NAME
    if not path.is_file():
        raise InputError(f"{root}: not a motion-code store (no {INDEX_NAME})")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(index, dict) or index.get("format") != STORE_FORMAT:
        raise InputError(f"{path}: not a leo-video motion-code index")
    return index


class MotionCodeStore:
    """Read a store folder written by :class:`MotionCodeWriter`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.index = _read_index(self.root)
        self._entries = {v["name"]: v for v in self.index["videos"]}

    @property
    def motion_dim(self) -> int | None:
        return self.index["motion_dim"]

    @property
    def checkpoint_sha256(self) -> str | None:
        return self.index.get("lia_checkpoint_sha256")

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def info(self, name: str) -> dict:
        """The index entry of ``name`` with ``frame_indices`` as a list of ints."""
        entry = dict(self._entry(name))
        entry["frame_indices"] = _unpack_indices(entry["frame_indices"])
        return entry

    def codes(self, name: str) -> torch.Tensor:
        """One video's codes: float32 (T, M)."""
        entry = self._entry(name)
        path = self.root / entry["shard"]
        if not path.is_file():
            raise InputError(f"{path}: shard listed in the index is missing")
        with safe_open(str(path), framework="pt") as handle:
            return _finite(handle.get_tensor(entry["key"]), path, name)

    def items(self, names: Iterable[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(name, codes (T, M))``, reading each shard once."""
        wanted = self.names if names is None else list(names)
        by_shard: dict[str, list[str]] = {}
        for name in wanted:
            by_shard.setdefault(self._entry(name)["shard"], []).append(name)
        for shard, shard_names in by_shard.items():
            tensors = read_safetensors(self.root / shard)
            for name in shard_names:
                yield name, _finite(tensors[self._entries[name]["key"]], self.root / shard, name)

    def _entry(self, name: str) -> dict:
        if name not in self._entries:
            raise InputError(f"{name}: no such video in the motion-code store {self.root}")
        return self._entries[name]


def _finite(codes: torch.Tensor, shard: Path, name: str) -> torch.Tensor:
    """``codes`` unchanged; NumericalError naming the shard if a value is NaN or inf (a damaged store)."""
    if not torch.isfinite(codes).all():
        raise NumericalError(f"{shard}: the codes of {name} contain NaN or inf")
    return codes


SPLITS = ("train", "test")


def select_split(store: "MotionCodeStore", split: str | None, test_fraction: float = 0.1) -> list[str]:
    """Names of the videos of ``split`` (``"train"``, ``"test"`` or None for all).

    A video whose index entry records ``split`` (the encoder copies the dataset's ``train/`` /
    ``test/`` folder) goes where it says; any other video is assigned by a hash of its name, a
    fraction ``test_fraction`` to ``test``: deterministic, and stable as videos are added.
    """
    if split is None:
        return store.names
    if split not in SPLITS:
        raise InputError(f"split {split!r}: choose one of {', '.join(SPLITS)} or None")

    def split_of(name: str) -> str:
        recorded = store.info(name).get("split")
        if recorded in SPLITS:
            return recorded
        h = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big")
        return "test" if h / 2**64 < test_fraction else "train"

    return [n for n in store.names if split_of(n) == split]


class MotionClipDataset(torch.utils.data.Dataset):
    """Clips of ``clip_length`` codes (every ``frame_stride``-th frame) from a motion-code store.

    Item ``i`` is a clip ``(L, M)`` float32 of the i-th usable video at a random start, drawn from the
    index's own ``seed`` when it carries one (the trainer's ``SampleIndex``, for exact resume), else from
    ``(seed, epoch, i)`` (call :meth:`set_epoch` to vary it). ``split``: see :func:`select_split`. Videos with fewer than
    ``(L - 1) * frame_stride + 1`` codes are dropped and counted (``dropped``). All usable sequences are
    held in memory (codes are tiny: 10,000 frames x 20 dims = 800 kB).
    """

    def __init__(self, root: str | os.PathLike, clip_length: int, frame_stride: int = 1, split: str | None = None,
                 test_fraction: float = 0.1, seed: int = 0):
        if clip_length < 1 or frame_stride < 1:
            raise InputError(f"clip_length / frame_stride: must be >= 1, got {clip_length} / {frame_stride}")
        store = MotionCodeStore(root)
        self.clip_length, self.frame_stride, self.seed, self.epoch = clip_length, frame_stride, seed, 0
        self.span = (clip_length - 1) * frame_stride + 1
        self.names: list[str] = []
        self.sequences: list[torch.Tensor] = []
        self.dropped: list[str] = []
        for name, codes in store.items(select_split(store, split, test_fraction)):
            if codes.shape[0] >= self.span:
                self.names.append(name)
                self.sequences.append(codes)
            else:
                self.dropped.append(name)
        if not self.sequences:
            raise InputError(f"{root}: no video has the {self.span} codes a clip needs "
                             f"(clip_length {clip_length}, frame_stride {frame_stride}; {len(self.dropped)} too short)")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> torch.Tensor:
        codes = self.sequences[i]  # (T, M)
        seed = getattr(i, "seed", None)
        rng = np.random.default_rng([self.seed, self.epoch, int(i)] if seed is None else seed)
        start = int(rng.integers(0, codes.shape[0] - self.span + 1))
        return codes[start : start + self.span : self.frame_stride].clone()  # (L, M)


def _sequences(store: MotionCodeStore | str | os.PathLike, names: Iterable[str] | None) -> Iterator[torch.Tensor]:
    store = store if isinstance(store, MotionCodeStore) else MotionCodeStore(store)
    for _, codes in store.items(names):
        yield codes.double()


def _mean_std(total: torch.Tensor, total_sq: torch.Tensor, count: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if count == 0:
        raise InputError(f"{what}: no codes to compute statistics from")
    mean = total / count
    var = (total_sq / count - mean**2).clamp_min(0)
    return mean.float(), var.sqrt().float()


def compute_code_stats(
    store: MotionCodeStore | str | os.PathLike, names: Iterable[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std of all codes (of ``names``, default all videos): ``(M,), (M,)``."""
    total = total_sq = 0.0
    count = 0
    for codes in _sequences(store, names):  # (T, M) float64
        total, total_sq, count = total + codes.sum(0), total_sq + (codes**2).sum(0), count + codes.shape[0]
    return _mean_std(torch.as_tensor(total), torch.as_tensor(total_sq), count, "code stats")


def compute_residual_stats(
    store: MotionCodeStore | str | os.PathLike,
    clip_length: int,
    frame_stride: int = 1,
    names: Iterable[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std ``(M,), (M,)`` of the LMC residuals ``m_k = α_{s + k·stride} − α_s``, k = 1 … L−1,
    over every clip start s that fits (the normalisation of cLMDM's diffused variable)."""
    total = total_sq = 0.0
    count = 0
    span = (clip_length - 1) * frame_stride + 1
    for codes in _sequences(store, names):  # (T, M) float64
        starts = codes.shape[0] - span + 1
        for k in range(1, clip_length):
            if starts <= 0:
                break
            m = codes[k * frame_stride : k * frame_stride + starts] - codes[:starts]  # (S, M)
            total, total_sq, count = total + m.sum(0), total_sq + (m**2).sum(0), count + m.shape[0]
    what = f"residual stats (clip_length {clip_length}, frame_stride {frame_stride})"
    return _mean_std(torch.as_tensor(total), torch.as_tensor(total_sq), count, what)


def code_normalization(
    store: MotionCodeStore | str | os.PathLike,
    clip_length: int,
    frame_stride: int = 1,
    names: Iterable[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Everything ``MotionDiffusion.set_normalization`` takes, from the training codes:
    ``{"code_mean", "code_std", "residual_std"}``, each (M,)."""
    store = store if isinstance(store, MotionCodeStore) else MotionCodeStore(store)
    names = None if names is None else list(names)
    mean, std = compute_code_stats(store, names)
    _, residual_std = compute_residual_stats(store, clip_length, frame_stride, names)
    return {"code_mean": mean, "code_std": std, "residual_std": residual_std}

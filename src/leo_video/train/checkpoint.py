"""Training checkpoints: one ``weights_only``-loadable object per save, written atomically.

Layout: ``RUN_DIR/checkpoints/step_0001000.pt`` (7-digit step = optimizer steps completed). Each
file is a dict of tensors and plain containers only, so it loads with ``torch.load(...,
weights_only=True)``::

    {"format": "leo-video/train-checkpoint", "version": 2, "step": int,
     "task": {...},            # TrainingTask.state_dict(): unwrapped models, EMA, optimizers ...
     "rng": {...},             # rank 0's python / numpy / torch / cuda generator states, as tensors
     "data_position": int,     # samples of the global stream consumed (version 1: micro-batches)
     "world_size": int,        # processes that trained it (any count may resume it)
     "loop": {...},            # loop-owned extras (fp16 grad scaler)
     "config": {...}}          # the resolved config, as nested dicts

A save goes to a temporary file beside the target, is fsynced and renamed (``utils.atomic``), so a
crash, SIGKILL or full disk never leaves a partial file under a ``step_*.pt`` name. Old checkpoints
are pruned only after the new one is in place. :func:`load_latest` skips an unreadable newest file
with a warning and falls back to the previous one.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, LeoError
from ..utils.atomic import atomic_path, is_disk_full
from ..utils.serialization import safe_torch_load

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "leo-video/train-checkpoint"
CHECKPOINT_VERSION = 2  # 2: data_position counts samples, not micro-batches
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    """``RUN_DIR/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``RUN_DIR/checkpoints/step_XXXXXXX.pt`` for ``step`` completed optimizer steps."""
    return checkpoint_dir(run_dir) / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoint files of a run as ``(step, path)``, oldest first (temp files ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` atomically to ``path``.

    Raises:
        CheckpointError: the disk is full (or over quota); the message names the previous,
            intact checkpoint. Nothing is left under ``path``.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            # A Python file object (not a path) makes write errors surface as OSError with errno.
            with open(tmp, "wb") as handle:
                torch.save(state, _HeldWrite(handle, delay) if (delay := _test_delay()) else handle)
                if delay:  # and once more with the whole file written but not yet renamed
                    handle.flush()
                    time.sleep(delay / 2)
    except (OSError, RuntimeError, LeoError) as exc:
        if not is_disk_full(exc):
            raise
        previous = [p for _, p in list_checkpoints(path.parent.parent) if p != path]
        kept = f"the previous checkpoint {previous[-1]} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointError(f"{path}: no space left on device while saving; {kept}") from exc
    return path


class _HeldWrite:
    """Test hook: a file object that pauses once, half-way through a checkpoint write.

    Active only when ``LEO_TEST_CHECKPOINT_DELAY`` (seconds) is set, so that fault-injection tests
    (``tests/test_faults.py``) can SIGKILL a run while a checkpoint is half written.
    """

    def __init__(self, handle, delay: float) -> None:
        self.handle, self.delay, self.held = handle, delay, False

    def write(self, data) -> int:
        written = self.handle.write(data)
        if not self.held and self.handle.tell() > 0:
            self.held = True
            self.handle.flush()  # the torn bytes are on disk while we wait
            time.sleep(self.delay / 2)
        return written

    def flush(self) -> None:
        self.handle.flush()


def _test_delay() -> float:
    """Seconds from ``LEO_TEST_CHECKPOINT_DELAY`` (0 when unset or malformed)."""
    try:
        return max(float(os.environ.get("LEO_TEST_CHECKPOINT_DELAY", "0")), 0.0)
    except ValueError:
        return 0.0


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read one training checkpoint (``weights_only=True``) and check that it is complete."""
    state = safe_torch_load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a leo-video training checkpoint")
    missing = [k for k in ("step", "task", "rng", "data_position", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete training checkpoint (missing {', '.join(missing)})")
    return state


def samples_consumed(state: dict) -> int:
    """Where the run stands in the global sample stream: samples drawn so far (the resumable sampler's start).

    Version 1 checkpoints counted micro-batches of ``train.batch_size / train.grad_accum_steps`` samples."""
    position = int(state["data_position"])
    if state.get("version", 1) >= 2:
        return position
    train = state["config"]["train"]
    return position * (train["batch_size"] // train["grad_accum_steps"])


def warn_config_changes(saved: dict, current: dict, path: Path) -> None:
    """Log one warning listing the settings a resumed run changed (``key: old -> new``)."""
    changed = [f"{k}: {a!r} -> {b!r}" for k, (a, b) in _flat_diff(saved, current).items()]
    if changed:
        logger.warning("resuming %s with changed settings: %s", path, "; ".join(changed))


def _flat_diff(a: Any, b: Any, prefix: str = "") -> dict[str, tuple]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, tuple] = {}
        for key in sorted(set(a) | set(b)):
            out.update(_flat_diff(a.get(key), b.get(key), f"{prefix}{key}."))
        return out
    return {} if a == b else {prefix.rstrip("."): (a, b)}


def load_latest(run_dir: str | os.PathLike) -> tuple[Path, dict] | None:
    """The newest readable checkpoint of a run, or None; unreadable newer files are skipped with a warning."""
    for step, path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as exc:
            logger.warning("skipping unreadable checkpoint: %s", exc)
    return None


def prune_checkpoints(run_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; returns the deleted paths."""
    doomed = [p for _, p in list_checkpoints(run_dir)][:-keep_last] if keep_last > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def remove_stale_temp_files(run_dir: str | os.PathLike) -> list[Path]:
    """Remove temp files left by a save that was killed (``.step_*.pt.tmp-*``)."""
    folder = checkpoint_dir(run_dir)
    stale = list(folder.glob(".step_*.tmp-*")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


# --------------------------------------------------------------------------------------------
# RNG states, stored as tensors and plain numbers so that weights_only loading accepts them


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and every CUDA device) global generators."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python_version": version,
        "python_mt": torch.tensor(mt, dtype=torch.int64),
        "python_gauss": gauss,
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_gauss": float(cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states restored only where devices exist)."""
    mt = tuple(int(v) for v in state["python_mt"].tolist())
    random.setstate((state["python_version"], mt, state["python_gauss"]))
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)

"""Safe loading of weights. Never unpickles arbitrary objects.

* :func:`safe_torch_load` wraps ``torch.load(..., weights_only=True)`` (tensors, dicts, lists,
  numbers only). A pickle that would build other objects or run code is refused with a one-line
  :class:`~leo_video.errors.CheckpointError` naming the file, and nothing executes.
* Our own exports are folders of ``config.json`` + ``*.safetensors`` (diffusers' layout, written by
  ``save_pretrained``); :func:`read_safetensors` reads one file with a clear error on corruption.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from ..errors import CheckpointError


def safe_torch_load(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """Load a ``torch.save`` file with ``weights_only=True``; raise CheckpointError on anything else."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if "Unsupported operand" in reason:  # a byte that is no pickle opcode: not a pickle at all
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason[:160]})") from exc
        raise CheckpointError(
            f"{path}: refused to load: the file contains objects other than tensors "
            f"(unsafe pickle; only weights are accepted) [{reason[:160]}]"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes make the unpickler raise KeyError, IndexError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        usual = isinstance(exc, (RuntimeError, EOFError, ValueError, OSError))  # their text says enough
        detail = first if usual else f"{type(exc).__name__} {first}"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({detail.strip()[:160]})") from exc


def _unpickler_reason(exc: Exception) -> str:
    """The informative line of torch's weights-only error (it starts with paragraphs of boilerplate)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (specific or lines or [type(exc).__name__])[0]


def read_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict:
    """Read a safetensors file into a dict of tensors; CheckpointError if missing or corrupt."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return load_file(str(path), device=device)
    except Exception as exc:  # safetensors raises its own SafetensorError for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(exc)[:160]})") from exc


def state_mismatch(expected: dict, got: dict) -> str | None:
    """How the tensors ``got`` differ from the state dict ``expected`` (names and shapes), or None when they
    match: ``"missing [...], unexpected [...], wrong shape [...]"`` with the first three keys of each."""
    want = {k: tuple(v.shape) for k, v in expected.items()}
    have = {k: tuple(v.shape) for k, v in got.items()}
    if want == have:
        return None
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    wrong = sorted(k for k in set(have) & set(want) if have[k] != want[k])
    return f"missing {missing[:3]}, unexpected {extra[:3]}, wrong shape {wrong[:3]}"

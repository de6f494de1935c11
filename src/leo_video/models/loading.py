"""Loading LIA weights: official checkpoints, bare state dicts and our exported folders.

* Official LIA files (``vox.pt``, ``taichi.pt``, ``ted.pt``, training checkpoints): a ``torch.save``
  dict whose ``'gen'`` entry is the generator state dict; every other key (``'dis'``, optimizer
  states, ...) is ignored. Read with ``weights_only=True`` (:func:`safe_torch_load`).
* A bare generator state dict (``.pt`` or ``.safetensors``), optionally with a DDP ``module.`` prefix.
* Our export: a folder with ``config.json`` + ``diffusion_pytorch_model.safetensors`` written by
  ``save_pretrained`` / :func:`export_lia`.

The architecture (size, style_dim, motion_dim, channel_multiplier) is read from the tensors, never
from a dataset name. Anything else raises a one-line :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..utils.atomic import save_pretrained_atomic
from ..utils.serialization import read_safetensors, safe_torch_load
from .lia import SUPPORTED_SIZES, LatentImageAnimator, lia_channels

_APP_PREFIX = "enc.net_app.convs."
_NOT_LIA = "not a LIA checkpoint (expected a dict with a 'gen' generator state dict, or a LIA state dict)"


def _indices(state: dict[str, Any], prefix: str) -> set[int]:
    """Distinct integer module indices right after ``prefix`` in the keys."""
    out = set()
    for key in state:
        if key.startswith(prefix):
            head = key[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                out.add(int(head))
    return out


def infer_lia_config(state: dict[str, torch.Tensor], path: str | os.PathLike = "<state dict>") -> dict[str, int]:
    """Read size, style_dim, motion_dim, channel_multiplier and channel_max from a LIA generator state dict."""
    if "dec.direction.weight" not in state or not _indices(state, _APP_PREFIX):
        raise CheckpointError(f"{path}: {_NOT_LIA}")
    n_app = max(_indices(state, _APP_PREFIX)) + 1  # = log2(size)
    size = 2**n_app
    if size not in SUPPORTED_SIZES:
        raise CheckpointError(f"{path}: LIA checkpoint for size {size}, supported sizes are {SUPPORTED_SIZES}")
    n_dec = len(_indices(state, "dec.convs."))
    if n_dec != 2 * (n_app - 2):
        raise CheckpointError(
            f"{path}: inconsistent LIA checkpoint: {n_app} encoder stages (size {size}) but {n_dec} decoder "
            f"convs (expected {2 * (n_app - 2)})"
        )
    direction = state["dec.direction.weight"]
    if direction.ndim != 2:
        raise CheckpointError(f"{path}: key 'dec.direction.weight' has shape {tuple(direction.shape)}, expected 2-D")
    style_dim, motion_dim = direction.shape
    last_rgb = state.get(f"dec.to_rgbs.{n_app - 3}.conv.0.weight")  # (3, C_S * multiplier, 1, 1)
    multiplier = 1
    if last_rgb is not None and last_rgb.ndim == 4:
        multiplier = max(1, last_rgb.shape[1] // lia_channels(size))
    return {"size": size, "style_dim": int(style_dim), "motion_dim": int(motion_dim),
            "channel_multiplier": int(multiplier), "channel_max": _infer_channel_max(state)}


def _infer_channel_max(state: dict[str, torch.Tensor]) -> int:
    """The channel cap: the 4x4 constant's width when below LIA's 512, else the widest layer (>= 512).

    The table only shrinks with resolution from 64 up, so its widest capped entry is at 4 (cap < 512)
    or at 64 (``dec.to_rgbs.3`` reads the 64x64 features).
    """
    const = state.get("dec.input.input")  # (1, C_4, 4, 4), C_4 = min(512, channel_max)
    if const is None or const.ndim != 4 or const.shape[1] < 512:
        return int(const.shape[1]) if const is not None and const.ndim == 4 else 512
    rgb64 = state.get("dec.to_rgbs.3.conv.0.weight")  # (3, C_64, 1, 1)
    return max(512, int(rgb64.shape[1])) if rgb64 is not None and rgb64.ndim == 4 else 512


def check_lia_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Raise CheckpointError naming the first missing, unexpected or wrongly shaped key."""
    expected = model.state_dict()
    size = getattr(model.config, "size", "?") if hasattr(model, "config") else "?"
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"{path}: missing key {missing[0]!r} ({len(missing)} missing in all)")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{path}: unexpected key {extra[0]!r} ({len(extra)} unexpected in all)")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: key {key!r} has shape {tuple(state[key].shape)}, expected {tuple(ref.shape)} "
                f"for a size-{size} LIA"
            )


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """``module.load_state_dict(state, strict=True)``, its errors as a one-line CheckpointError naming the file
    (what only loading finds: a buffer whose values a layer refuses, e.g. a FIR ``kernel`` that is not LIA's)."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        problem = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: {problem}") from exc


def load_lia_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """:func:`check_lia_state` (keys and shapes, named), then :func:`load_strict`."""
    check_lia_state(model, state, path)
    load_strict(model, state, path)


def extract_generator_state(obj: Any, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The generator state dict inside a loaded checkpoint object (``obj['gen']`` or obj itself)."""
    if isinstance(obj, dict) and "gen" in obj:
        obj = obj["gen"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: {_NOT_LIA}")
    if all(isinstance(k, str) and k.startswith("module.") for k in obj):  # saved from a DDP wrapper
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return extract_generator_state(read_safetensors(path), path)
    return extract_generator_state(safe_torch_load(path), path)


def _export_weights_file(folder: Path) -> Path:
    from diffusers.utils import SAFETENSORS_WEIGHTS_NAME

    return folder / SAFETENSORS_WEIGHTS_NAME


def _load_export(folder: Path) -> LatentImageAnimator:
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: not an exported model folder (no config.json)")
    try:
        config = LatentImageAnimator.load_config(folder)
    except Exception as exc:  # diffusers raises EnvironmentError / JSON errors
        raise CheckpointError(f"{folder}: unreadable config.json ({str(exc).splitlines()[0][:160]})") from exc
    if config.get("_class_name", LatentImageAnimator.__name__) != LatentImageAnimator.__name__:
        raise CheckpointError(f"{folder}: exported {config.get('_class_name')}, not a LatentImageAnimator")
    try:
        model = LatentImageAnimator.from_config(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}: invalid LIA config ({exc})") from exc
    weights = _export_weights_file(folder)
    load_lia_state(model, read_safetensors(weights), weights)
    return model


def load_lia(path: str | os.PathLike, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> LatentImageAnimator:
    """Load a LIA generator from an official checkpoint, a bare state dict or an exported folder.

    Returns the model on ``device`` in ``dtype``, in eval mode. Raises CheckpointError (one line,
    naming the file) for unreadable or unsafe files, files that are not LIA checkpoints, and
    state dicts whose keys or shapes do not match the inferred architecture.
    """
    path = Path(path)
    if path.is_dir():
        model = _load_export(path)
    else:
        state = _read_state(path)
        model = LatentImageAnimator(**infer_lia_config(state, path))
        load_lia_state(model, state, path)
    # nn.Module.to: diffusers' ModelMixin.to warns about fp32-kept modules on every dtype cast (we have none)
    return torch.nn.Module.to(model, device=device, dtype=dtype).eval()


def export_lia(model: LatentImageAnimator, folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``config.json`` + safetensors (``save_pretrained``) to ``folder``, atomically.

    The folder is written beside the target and renamed into place, so a crash never leaves a
    half-written export. Returns the folder path.
    """
    return save_pretrained_atomic(model, folder, overwrite)

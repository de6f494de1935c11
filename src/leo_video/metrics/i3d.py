"""The I3D feature detector of the StyleGAN-V FVD protocol.

The detector is ``i3d_torchscript.pt``: a TorchScript port of the tf.hub Kinetics-400 I3D that
StyleGAN-V (Skorokhodov et al., CVPR 2022, ``src/metrics/frechet_video_distance.py``) made and
published. StyleGAN-V and the papers that follow its protocol (LEO's method notes say it does)
call it on clips ``[B, 3, T, H, W]`` with values in [0, 255] as
``detector(x, rescale=True, resize=True, return_features=True)``: the detector itself rescales to
[-1, 1] and resizes to 224², and returns the 400-d pre-softmax features.

Where the file comes from: StyleGAN-V's release URL
``https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1`` is the usual source. Nothing
here downloads it: pass ``--detector PATH`` or set ``$LEO_I3D``.

Trust model: a TorchScript archive holds a serialised graph, not a pickle of arbitrary Python, so
loading it does not run Python code of the file's choosing; but the graph itself is code that we
then execute. Only load detectors you downloaded yourself from the source above (check its sha256
against the one your colleagues use; :func:`file_sha256`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import InputError, MissingWeightsError

I3D_FILENAME = "i3d_torchscript.pt"
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
I3D_ENV = "LEO_I3D"
I3D_FEATURE_DIM = 400
# Exactly StyleGAN-V's call: the detector rescales [0, 255] -> [-1, 1] and resizes to 224x224 itself.
I3D_KWARGS: dict[str, bool] = {"rescale": True, "resize": True, "return_features": True}

__all__ = [
    "I3D_FILENAME",
    "I3D_URL",
    "I3D_ENV",
    "I3D_KWARGS",
    "file_sha256",
    "i3d_features",
    "i3d_features_of_clips",
    "load_i3d",
    "resolve_i3d_path",
    "videos_to_i3d_input",
]


def resolve_i3d_path(path: str | os.PathLike | None = None) -> Path:
    """The detector path: ``path`` if given, else ``$LEO_I3D``; MissingWeightsError if absent."""
    where = "--detector" if path is not None else f"${I3D_ENV}"
    if path is None:
        path = os.environ.get(I3D_ENV) or None
    if path is None:
        raise MissingWeightsError(
            f"{I3D_FILENAME}: no I3D detector given; pass --detector PATH or set ${I3D_ENV} "
            f"(StyleGAN-V's TorchScript I3D, usually downloaded from {I3D_URL})"
        )
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"{path}: I3D detector not found (from {where}); download {I3D_FILENAME} "
            f"(StyleGAN-V's TorchScript I3D, usually from {I3D_URL}) and pass its path"
        )
    return path


def load_i3d(path: str | os.PathLike | None = None, device: str = "cpu") -> Any:
    """Load the TorchScript I3D detector (``torch.jit.load``) from ``path`` or ``$LEO_I3D``; eval mode.

    Raises MissingWeightsError naming the file and its usual source when it is missing, and
    InputError when the file is not a TorchScript archive.
    """
    import torch

    path = resolve_i3d_path(path)
    try:
        with warnings.catch_warnings():
            # torch 2.x marks TorchScript deprecated; the published detector exists only in that format.
            warnings.simplefilter("ignore", DeprecationWarning)
            detector = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a TorchScript detector ({first[:160]})") from exc
    return detector.eval()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (to pin the detector in reports and in the real-statistics cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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

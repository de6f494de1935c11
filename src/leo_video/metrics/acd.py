"""Average Content Distance (ACD): how much a video's content (identity) drifts across its frames.

ACD (MoCoGAN, Tulyakov et al. 2018; used by G3AN, ImaGINator and LEO) embeds every frame of a
video and measures how far apart the embeddings are. Here, exactly:

    ACD(video) = mean over frame pairs i < j of || e_i - e_j ||_2        (e_t = embedding of frame t)
    ACD        = mean over videos of ACD(video)                          (each video weighs the same)

Lower is better (content stays the same). The embedding decides what "content" means:

* **faces** — the identity embedding of a face-recognition network: facenet-pytorch's
  InceptionResnetV1 (512-d, L2-normalised, :mod:`leo_video.metrics.facenet`) loaded from a local
  weight file with :func:`load_face_embedder`;
* **bodies** — MoCoGAN's mean-colour variant, :func:`mean_colour_embedding`: ``e_t`` = the mean
  RGB colour of frame t over all its pixels, with channels in [0, 1] (uint8 / 255, or
  (x + 1) / 2 for [-1, 1] tensors), a 3-vector; or any image-feature extractor you pass
  (a callable ``(N, 3, H, W) in [-1, 1] -> (N, D)``).

Note that ACD is an average over *all* pairs, not only consecutive frames, so slow drift counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import scipy.spatial.distance

from ..errors import CheckpointError, InputError, MissingWeightsError
from .frechet import to_numpy

# A frame embedder: frames (N, 3, H, W) float in [-1, 1] -> embeddings (N, D).
ImageEmbedder = Callable[[Any], Any]

FACENET_WEIGHTS = "20180402-114759-vggface2.pt"
FACENET_SOURCE = "facenet-pytorch's InceptionResnetV1 release, trained on VGGFace2"
FACENET_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"

__all__ = [
    "FACENET_WEIGHTS",
    "ImageEmbedder",
    "average_content_distance",
    "load_face_embedder",
    "mean_colour_embedding",
    "mean_pairwise_distance",
    "video_acd",
    "video_embeddings",
]


def mean_pairwise_distance(embeddings: Any) -> float:
    """Mean L2 distance over all pairs ``i < j`` of the rows of ``embeddings (T, D)``; float64."""
    e = _as_2d(embeddings, "embeddings")
    if e.shape[0] < 2:
        raise InputError(f"embeddings: need at least 2 frames for a pairwise distance, got {e.shape[0]}")
    # pdist: the T(T-1)/2 distances i < j in difference form (exact zeros for identical frames),
    # without a (T, T, D) intermediate.
    return float(scipy.spatial.distance.pdist(e, metric="euclidean").mean())


def average_content_distance(embeddings: Sequence[Any]) -> float:
    """ACD of a set of videos from their per-frame embeddings, a list of ``(T_v, D)`` arrays.

    Mean over videos of :func:`mean_pairwise_distance` (videos may differ in length).
    """
    if len(embeddings) == 0:
        raise InputError("embeddings: no videos given")
    return float(np.mean([mean_pairwise_distance(e) for e in embeddings]))


def mean_colour_embedding(video: Any) -> np.ndarray:
    """MoCoGAN's body ACD embedding: per-frame mean RGB over all pixels, in [0, 1]; ``(T, 3)``.

    ``video`` is uint8 ``(T, H, W, 3)`` (divided by 255) or float ``(T, 3, H, W)`` in [-1, 1]
    (mapped by ``(x + 1) / 2``); numpy or torch.
    """
    v = to_numpy(video)
    if v.ndim != 4:
        raise InputError(f"video: expected 4 dims (T, H, W, 3) or (T, 3, H, W), got shape {v.shape}")
    if v.dtype == np.uint8:
        if v.shape[-1] != 3:
            raise InputError(f"video: uint8 video must be (T, H, W, 3), got {v.shape}")
        return v.astype(np.float64).mean(axis=(1, 2)) / 255.0  # (T, 3)
    if v.shape[1] != 3:
        raise InputError(f"video: float video must be (T, 3, H, W) in [-1, 1], got {v.shape}")
    return (v.astype(np.float64).mean(axis=(2, 3)) + 1.0) / 2.0  # (T, 3)


def video_embeddings(video: Any, embedder: ImageEmbedder, batch_size: int = 64) -> np.ndarray:
    """Embed every frame of ``video`` (float ``(T, 3, H, W)`` in [-1, 1]) with ``embedder``: ``(T, D)``."""
    import torch

    frames = torch.as_tensor(video)
    if frames.ndim != 4 or frames.shape[1] != 3 or not frames.is_floating_point():
        raise InputError(f"video: expected float frames (T, 3, H, W) in [-1, 1], got {tuple(frames.shape)}")
    out = []
    with torch.no_grad():
        for start in range(0, frames.shape[0], batch_size):
            out.append(to_numpy(embedder(frames[start : start + batch_size]), np.float64))
    return np.concatenate(out).reshape(frames.shape[0], -1)  # (T, D)


def video_acd(videos: Sequence[Any], embedder: ImageEmbedder | None = None) -> float:
    """ACD of ``videos``: with ``embedder=None`` the mean-colour variant, else frame embeddings.

    Videos are float ``(T, 3, H, W)`` in [-1, 1] (uint8 ``(T, H, W, 3)`` also for mean colour).
    """
    if embedder is None:
        return average_content_distance([mean_colour_embedding(v) for v in videos])
    return average_content_distance([video_embeddings(v, embedder) for v in videos])


EMBEDDERS = ("mean-colour", "facenet")  # the per-frame embedders ACD can use (the CLI's choices)


def load_embedder(name: str, weights: str | os.PathLike | None = None, device: str = "auto") -> ImageEmbedder | None:
    """None for mean-colour (the metric's default), else the FaceNet embedder (MissingWeightsError if absent)."""
    if name not in EMBEDDERS:
        raise InputError(f"ACD embedder {name!r}: choose one of {', '.join(EMBEDDERS)}")
    if name == "mean-colour":
        return None
    from ..utils.device import resolve_device

    return load_face_embedder(weights, device=str(resolve_device(device)))


def load_face_embedder(path: str | os.PathLike | None, device: str = "cpu") -> ImageEmbedder:
    """Load facenet-pytorch's InceptionResnetV1 weights into a face-identity embedder.

    Returns a callable ``(N, 3, H, W) in [-1, 1] -> (N, 512)`` (L2-normalised embeddings of
    face-centred crops; see :mod:`leo_video.metrics.facenet`) for :func:`video_acd`. The file is
    read with ``weights_only=True``; the classifier head ``logits.*`` is ignored. Missing file →
    MissingWeightsError naming it and where it comes from; wrong contents → CheckpointError.
    """
    from ..utils.serialization import safe_torch_load
    from .facenet import InceptionResnetV1

    if path is None:
        raise MissingWeightsError(
            f"{FACENET_WEIGHTS}: no face-embedding weights given; download it from {FACENET_URL} "
            f"({FACENET_SOURCE}) and pass its path"
        )
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"{path}: face-embedding weights not found; download {FACENET_WEIGHTS} from {FACENET_URL}"
        )
    state = safe_torch_load(path, map_location="cpu")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict of InceptionResnetV1 weights")
    state = {k: v for k, v in state.items() if not str(k).startswith("logits.")}
    model = InceptionResnetV1()
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{path}: not facenet-pytorch InceptionResnetV1 weights (wrong tensor shapes)") from exc
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise CheckpointError(
            f"{path}: not facenet-pytorch InceptionResnetV1 weights "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys, e.g. {first!r})"
        )
    return model.to(device).eval().embed


def _as_2d(x: Any, name: str) -> np.ndarray:
    array = to_numpy(x, np.float64)
    if array.ndim != 2:
        raise InputError(f"{name}: expected shape (T, D), got {array.shape}")
    return array

"""Evaluation metrics: FVD, KVD, ACD, reconstruction and motion statistics.

* :mod:`.frechet` — :func:`frechet_distance`, :func:`kernel_distance` on feature sets ``(N, D)``.
* :mod:`.i3d` — choosing and loading the I3D detector, :func:`i3d_features`;
  :mod:`.i3d_k400` — the Kinetics-400 I3D in PyTorch (the default); :mod:`.resize` — TF1 bilinear.
* :mod:`.protocol` — the FVD protocol (clip sampling, presets, real-statistics cache).
* :mod:`.acd` — average content distance (:mod:`.facenet`: the face-identity network);
  :mod:`.motion` — motion-code statistics;
  :mod:`.recon` — reconstruction L1 (with the still baseline);
  :mod:`.transfer` — ground-truth motion transfer on synthetic pairs, against still / wrong-identity baselines;
* :mod:`.evaluate` — folders of videos / code files → the metrics above (what ``leo-video eval`` runs);
  :mod:`.generated` — generated clips made on the fly (unconditional, conditional, reconstruction FVD);
  :mod:`.report` — ``report.json`` / ``report.md`` / PNG plots of ``eval all``.

Names are imported lazily so that ``import leo_video.metrics`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "as_features": "frechet",
    "feature_distances": "frechet",
    "feature_stats": "frechet",
    "frechet_distance": "frechet",
    "frechet_distance_from_stats": "frechet",
    "kernel_distance": "frechet",
    "polynomial_kernel": "frechet",
    "I3D_DEFAULT": "i3d",
    "I3D_URL": "i3d",
    "I3D_FILENAME": "i3d",
    "DetectorInfo": "i3d",
    "resolve_detector": "i3d",
    "sha256_file": "i3d",
    "InceptionI3d": "i3d_k400",
    "load_i3d_k400": "i3d_k400",
    "clip_at_resolution": "resize",
    "tf1_resize_bilinear": "resize",
    "i3d_features": "i3d",
    "i3d_features_of_clips": "i3d",
    "load_i3d": "i3d",
    "resolve_i3d_path": "i3d",
    "videos_to_i3d_input": "i3d",
    "ClipSpec": "protocol",
    "FVDProtocol": "protocol",
    "PROTOCOLS": "protocol",
    "iter_real_clips": "protocol",
    "load_or_compute_real_stats": "protocol",
    "plan_real_clips": "protocol",
    "protocol_hash": "protocol",
    "real_stats_cache_path": "protocol",
    "sample_real_clips": "protocol",
    "average_content_distance": "acd",
    "load_face_embedder": "acd",
    "mean_colour_embedding": "acd",
    "mean_pairwise_distance": "acd",
    "video_acd": "acd",
    "video_embeddings": "acd",
    "InceptionResnetV1": "facenet",
    "code_jitter": "motion",
    "code_window_frechet": "motion",
    "code_windows": "motion",
    "motion_report": "motion",
    "ReconstructionL1": "recon",
    "errors_by_motion": "recon",
    "reconstruction_l1": "recon",
    "self_reenactment_errors": "recon",
    "self_reenactment_l1": "recon",
    "TransferErrors": "transfer",
    "list_transfer_pairs": "transfer",
    "pair_transfer_errors": "transfer",
    "transfer_errors": "transfer",
    "GeneratedClips": "evaluate",
    "RealFeatures": "evaluate",
    "folder_acd": "evaluate",
    "generated_clip_features": "evaluate",
    "generated_clips_from_folder": "evaluate",
    "list_videos": "evaluate",
    "load_code_sequences": "evaluate",
    "make_protocol": "evaluate",
    "protocol_clip": "evaluate",
    "conditional_videos": "generated",
    "reconstructed_videos": "generated",
    "unconditional_videos": "generated",
    "real_clip_features": "evaluate",
    "video_distances": "evaluate",
    "bar_plot": "report",
    "mean_std": "report",
    "render_markdown": "report",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leo_video.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__

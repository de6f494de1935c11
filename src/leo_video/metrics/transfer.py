"""Ground-truth motion transfer (``eval transfer``): the error of animating one person with another's motion.

The synthetic renderer knows identity and motion separately, so it can draw person A performing person B's
motion (:func:`leo_video.data.synthetic.render_transfer_pair`). For such a pair the animator gets A's first
frame (A in B's first pose) as the source and B's video as the driver; its output is compared with the true
rendering of A in B's poses. Two baselines come from the same frames, so a number means something only
next to them:

* ``still_l1``: A's first frame repeated (an animator that ignores the driver scores this);
* ``wrong_identity_l1``: B's frames themselves (right motion, wrong person: an animator that pastes the
  driver instead of moving the source scores about this).

Every error is the L1 on [0, 1] (as :mod:`leo_video.metrics.recon`) at the animator's size, averaged over
frames, channels and pixels, then over pairs with equal weights. Frames are uint8 ``(T, H, W, 3)`` at the
I/O boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import InputError

__all__ = ["TransferErrors", "list_transfer_pairs", "pair_transfer_errors", "transfer_errors", "transfer_pairs",
           "write_transfer_errors"]

KEYS = ("l1", "still_l1", "wrong_identity_l1")
SHEET_PAIRS = 3  # pairs shown in the contact sheet
SHEET_LABELS = ("driving (B)", "truth: A in B's poses", "animated A", "still baseline")


@dataclass
class TransferErrors:
    """Per-pair errors (``per_pair[key]``, one float per pair) for every key in :data:`KEYS`."""

    per_pair: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KEYS})

    def add(self, errors: dict[str, float]) -> None:
        for key in KEYS:
            self.per_pair[key].append(float(errors[key]))

    def mean(self, key: str) -> float:
        values = self.per_pair[key]
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Means, the animator's ratios to both baselines, and the per-pair lists."""
        means = {key: self.mean(key) for key in KEYS}
        return {**means, "l1_over_still": means["l1"] / means["still_l1"],
                "l1_over_wrong_identity": means["l1"] / means["wrong_identity_l1"],
                "num_pairs": len(self.per_pair["l1"]), "per_pair": self.per_pair}  # fmt: skip


def pair_transfer_errors(animator: Any, driving: np.ndarray, target: np.ndarray, relative: bool = True,
                         batch_frames: int = 16, return_frames: bool = False) -> dict[str, Any]:
    """Errors of one pair: ``{"l1", "still_l1", "wrong_identity_l1"}`` (floats, L1 on [0, 1]).

    ``driving`` (B's video) and ``target`` (A in B's poses): uint8 ``(T, H, W, 3)`` of equal length. The
    source is ``target[0]``; ``relative``: LIA's relative transfer (``leo-video animate``'s default), else
    absolute codes. With ``return_frames`` also ``"frames"``: ``{"driving", "target", "animated"}``, each
    ``(T, 3, S, S)`` in [-1, 1] on the CPU (for contact sheets).
    """
    import torch

    from ..pipelines.animate import AnimateOptions, frames_to_batch, transfer_motion

    if len(driving) != len(target) or len(target) < 1:
        raise InputError(f"transfer pair: driving has {len(driving)} frames, target {len(target)}")
    device = next(animator.parameters()).device
    size = animator.config.size
    truth = frames_to_batch(list(target), size, device)  # (T, 3, S, S)
    driver = frames_to_batch(list(driving), size, device)  # (T, 3, S, S)
    options = AnimateOptions(relative=relative, batch_frames=batch_frames)
    animated = torch.cat(list(transfer_motion(animator, truth[0], list(driving), options)))  # (T, 3, S, S)
    l1 = lambda x: float((x - truth).abs().mean() / 2)  # noqa: E731 - |a - b| / 2 = L1 on [0, 1]
    errors: dict[str, Any] = {"l1": l1(animated), "still_l1": l1(truth[:1]), "wrong_identity_l1": l1(driver)}
    if return_frames:
        errors["frames"] = {"driving": driver.cpu(), "target": truth.cpu(), "animated": animated.clamp(-1, 1).cpu()}
    return errors


def transfer_errors(animator: Any, pairs: Iterable[tuple[np.ndarray, np.ndarray]], relative: bool = True,
                    batch_frames: int = 16, frames_of: int = 0,
                    on_pair: Callable[[dict[str, Any]], None] | None = None) -> TransferErrors:
    """:func:`pair_transfer_errors` over ``(driving, target)`` pairs; per-pair lists in a :class:`TransferErrors`.

    ``on_pair(errors)``, if given, sees each pair's errors as they come, with the pair's frames (``"frames"``)
    for the first ``frames_of`` pairs.
    """
    import torch

    result = TransferErrors()
    with torch.no_grad():
        for index, (driving, target) in enumerate(pairs):
            errors = pair_transfer_errors(animator, driving, target, relative, batch_frames,
                                          return_frames=index < frames_of)
            result.add(errors)
            if on_pair is not None:
                on_pair(errors)
    return result


def list_transfer_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(driving, target)`` paths of the pairs ``make-synthetic --pairs`` wrote under ``folder`` (or ``folder/pairs``)."""
    from ..media.video import natural_key

    root = Path(folder)
    root = root / "pairs" if (root / "pairs").is_dir() else root
    if not root.is_dir():
        raise InputError(f"{folder}: transfer-pair folder not found (make one with `leo-video make-synthetic --pairs N`)")
    pairs = []
    for pair in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        found = [_one_video(pair, name) for name in ("driving", "target")]
        if all(found):
            pairs.append((found[0], found[1]))
    if not pairs:
        raise InputError(f"{root}: no transfer pairs (folders holding driving and target videos)")
    return pairs


def _one_video(pair: Path, name: str) -> Path | None:
    """``pair/name.mp4`` (any video suffix) or the frame folder ``pair/name``; None if neither is there."""
    from ..media.video import VIDEO_SUFFIXES

    if (pair / name).is_dir():
        return pair / name
    return next((pair / f"{name}{s}" for s in VIDEO_SUFFIXES if (pair / f"{name}{s}").is_file()), None)


def transfer_pairs(data: str | os.PathLike | None, seed: int, pairs: int, frames: int,
                   size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(driving, target)`` uint8 (T, H, W, 3) pairs: those of the folder ``data`` (``make-synthetic --pairs``),
    or, without it, ``pairs`` pairs of ``frames`` frames rendered now at ``size`` from ``seed``."""
    from ..data.synthetic import render_transfer_pair
    from ..media.video import VideoReader

    def read(path: Path) -> np.ndarray:  # (T, H, W, 3) uint8
        with VideoReader(path) as reader:
            return np.stack(list(reader.iter_frames()))

    if data:
        for driving, target in list_transfer_pairs(data):
            yield read(driving), read(target)
        return
    for index in range(pairs):
        yield render_transfer_pair(seed, index, frames, size)


def write_transfer_errors(animator: Any, pairs: Iterable[tuple[np.ndarray, np.ndarray]], relative: bool = True,
                          batch_frames: int = 16, sheet: str | os.PathLike | None = None,
                          total: int | None = None) -> TransferErrors:
    """:func:`transfer_errors` with a progress bar (``total`` pairs, when known) and, when ``sheet`` is given, a
    labelled contact sheet PNG of the first :data:`SHEET_PAIRS` pairs."""
    from ..media.grid import save_contact_sheet
    from ..utils.progress import progress_bar

    shown: list[Any] = []  # (T, 3, S, S) videos, four rows a pair

    def on_pair(errors: dict[str, Any]) -> None:
        if "frames" in errors:
            f = errors["frames"]
            shown.extend([f["driving"], f["target"], f["animated"], f["target"][:1].expand_as(f["target"])])
        bar.update(1)

    with progress_bar(total, "eval transfer", unit="pair") as bar:
        result = transfer_errors(animator, pairs, relative, batch_frames, SHEET_PAIRS if sheet else 0, on_pair)
    if sheet is not None:
        save_contact_sheet(sheet, shown, num_frames=8, labels=SHEET_LABELS * (len(shown) // 4))
    return result

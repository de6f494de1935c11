"""Where a LEO pipeline and a motion come from: the loaders that ``generate``, ``eval`` and the UI share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError, NumericalError

PARTS = ("animator", "motion", "start_code", "start_frame")  # a LEO pipeline's parts, in model_index.json's names


@dataclass
class PipelineSources:
    """A pipeline folder, or the paths of the parts (``animator`` and ``motion`` at least; ``start_code`` and
    ``start_frame`` for unconditional generation); nothing given means the embedded demo pipeline."""

    pipeline: str | os.PathLike | None = None
    animator: str | os.PathLike | None = None
    motion: str | os.PathLike | None = None
    start_code: str | os.PathLike | None = None
    start_frame: str | os.PathLike | None = None

    @property
    def parts(self) -> list[str]:
        """The names of the parts given (``animator``, ``motion``, ``start_code``, ``start_frame``)."""
        return [part for part in PARTS if getattr(self, part)]

    @property
    def parts_given(self) -> bool:
        return bool(self.parts)

    def check(self, animator_alone: bool = False) -> None:
        """Refuse (InputError) a pipeline folder together with parts, and parts without the animator and the
        motion (where ``animator_alone``, the animator by itself is accepted: animation needs nothing more)."""
        if self.pipeline and self.parts_given:
            raise InputError(f"{self.pipeline}: give a pipeline folder or its parts ({', '.join(self.parts)}), "
                             "not both")
        if animator_alone and self.parts == ["animator"]:
            return
        if self.parts_given and not (self.animator and self.motion):
            raise InputError(f"{', '.join(self.parts)}: a pipeline built of parts needs the animator and the motion "
                             "(plus start_code and start_frame for unconditional output)")

    def name(self) -> str:
        """How messages name the pipeline: its folder, the parts it is built of, or the demo pipeline."""
        parts = " + ".join(str(p) for p in (self.animator, self.motion) if p)
        return str(self.pipeline or parts or "demo model")


def load_leo_pipeline(sources: PipelineSources, device: str | torch.device):
    """The :class:`~leo_video.pipelines.leo.LEOPipeline` of ``sources`` on ``device``."""
    from .leo import LEOPipeline

    sources.check()
    if sources.pipeline:
        return LEOPipeline.from_pretrained(sources.pipeline, device=device)
    if not sources.parts_given:
        from .demo import load_demo_pipeline

        return load_demo_pipeline(device)  # the embedded default
    return LEOPipeline.from_parts(sources.animator, sources.motion, sources.start_code, sources.start_frame).to(device)


def load_motion(path: str | os.PathLike, animator) -> tuple[torch.Tensor, float | None]:
    """(motion codes (T, M), their fps or None) of a motion-code store folder, a ``.safetensors`` file of one
    (T, M) tensor, or a video (encoded with ``animator``); NaN or inf is refused."""
    codes, fps = _read_motion(Path(path), animator)
    if not torch.isfinite(codes).all():
        raise NumericalError(f"{path}: motion codes contain NaN or inf")
    return codes, fps


def _read_motion(path: Path, animator) -> tuple[torch.Tensor, float | None]:
    from ..data.motion_codes import MotionCodeStore
    from ..media.video import VideoReader
    from ..utils.serialization import read_safetensors
    from .encode import encode_video

    if path.is_dir() and (path / "index.json").exists():
        store = MotionCodeStore(path)
        info = store.info(store.names[0])
        fps, indices = info.get("fps"), info["frame_indices"]
        if fps and len(indices) > 1:  # encoded every k-th frame: the codes' rate is fps / k
            fps = fps / (indices[1] - indices[0])
        return store.codes(store.names[0]), fps
    if path.suffix == ".safetensors":
        tensors = list(read_safetensors(path).values())
        if len(tensors) != 1 or tensors[0].ndim != 2:
            raise InputError(f"{path}: expected one (T, M) tensor of motion codes")
        return tensors[0], None  # no frame rate stored
    reader = VideoReader(path)
    return torch.cat(list(encode_video(animator, reader))), reader.info.fps

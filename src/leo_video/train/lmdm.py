"""Training cLMDM (LEO_METHOD.md, "Stage 2") on the shared loop (:mod:`leo_video.train.loop`: DDP,
mixed precision, EMA, atomic checkpoints, exact resume).

**Data.** Clips of L codes (every ``data.frame_stride``-th code) at random starts from the *train*
split of a motion-code store (:class:`~leo_video.data.motion_codes.MotionClipDataset`; the start is
drawn from the trainer's per-sample seed, so a resumed run sees the same clips).

**Normalisation.** Before the first step, μ, σ of all training codes and σ_m of the LMC residuals over
every clip start (:func:`~leo_video.data.motion_codes.code_normalization`, train split only) are
stored in the model's buffers: they are in every checkpoint and in the export.

**Previews.** With ``data.lia`` set, every ``train.image_every`` steps a few sequences are sampled from
the first codes of test-split videos and rendered by the frozen animator from each video's first frame
(``render(encode_appearance(x₁), codes)``); one row of frames per video goes to TensorBoard (a video
too when moviepy is installed).

``leo-video train lmdm --codes CODES --config synthetic64`` runs this (``cli/train_lmdm.py``); the
final (EMA) model is exported to ``RUN_DIR/export``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np

import torch
from torch.utils.data import Dataset

from ..configs import LMDMDataConfig, LMDMModelConfig
from ..errors import InputError
from .common import adamw_with_warmup, export_model, optimizer_step
from .logging import RunLogger
from .loop import TrainingTask

_log = logging.getLogger(__name__)

def unet_kwargs(m: LMDMModelConfig) -> dict:
    """The U-Net keyword arguments: the preset with ``block_channels`` / ``attention_levels`` overrides.

    Channels given without attention flags keep attention at the lowest resolution only (the presets' habit).
    """
    from ..models.unet1d import UNET1D_PRESETS

    config = dict(UNET1D_PRESETS[m.preset])
    if m.block_channels is not None:
        config["block_channels"] = tuple(m.block_channels)
        n = len(m.block_channels)
        config["attention_levels"] = tuple(i == n - 1 and n > 1 for i in range(n))
    if m.attention_levels is not None:
        config["attention_levels"] = tuple(m.attention_levels)
    return config


# --------------------------------------------------------------------------------------------------
# Data


def train_video_names(root: str | os.PathLike, split: str = "train", test_fraction: float = 0.1) -> list[str]:
    """Names of the videos of ``split`` in the store at ``root``; InputError (naming it) if there are none."""
    from ..data.motion_codes import MotionCodeStore, select_split

    store = MotionCodeStore(root)
    names = select_split(store, split, test_fraction)
    if not names:
        raise InputError(f"{root}: no {split} videos in this motion-code store ({len(store)} videos in all)")
    return names


# --------------------------------------------------------------------------------------------------
# The task


class LMDMTask(TrainingTask):
    """ε-prediction training of :class:`~leo_video.diffusion.motion.MotionDiffusion` on code clips (B, L, M)."""

    def setup(self) -> None:
        from ..data.motion_codes import MotionCodeStore, code_normalization
        from ..diffusion.motion import MotionDiffusion
        from ..diffusion.schedulers import scheduler_config

        cfg, m = self.config, self.config.model
        names = train_video_names(cfg.data.root, "train", cfg.data.test_fraction)
        store = MotionCodeStore(cfg.data.root)
        model = MotionDiffusion(
            motion_dim=store.motion_dim, sequence_length=m.sequence_length, use_lmc=m.use_lmc,
            unet_config=unet_kwargs(m), lmc_scale=m.lmc_scale,
            scheduler_config=scheduler_config(m.num_train_timesteps, m.beta_schedule, m.prediction_type,
                                              clip_sample_range=m.clip_sample_range,
                                              zero_terminal_snr=m.zero_terminal_snr),
        )  # fmt: skip
        model.set_normalization(**code_normalization(store, m.sequence_length, cfg.data.frame_stride, names))
        optimizer, lr = adamw_with_warmup(model.parameters(), cfg.optim, self.optimizer_kernel)
        self.models["lmdm"], self.optimizers["lmdm"] = self.accelerator.prepare(model, optimizer)
        self.schedulers["lmdm"] = lr
        self.track_ema("lmdm")
        self._preview = None  # (animator, appearances, start codes (K, M)), built on the first log_images

    def dataset(self) -> Dataset:
        from ..data.motion_codes import MotionClipDataset

        d = self.config.data
        return MotionClipDataset(d.root, self.config.model.sequence_length, d.frame_stride, split="train",
                                 test_fraction=d.test_fraction, seed=self.loop.seed)  # fmt: skip

    def train_step(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        loss = self.models["lmdm"](batch)  # batch: codes (B, L, M); noise and t from the seeded global RNG
        optimizer_step(self, "lmdm", loss, self.config.optim.grad_clip)
        return {"mse": loss}

    def log_images(self, step: int, logger: RunLogger) -> None:
        """Sampled code sequences rendered by the animator: one row of L frames per test video."""
        if not self.config.data.lia:
            return
        if self._preview is None:
            self._preview = self._load_preview()
        lia, appearances, alpha1 = self._preview
        if not appearances:
            return
        s = self.config.sample
        with self.ema_weights("lmdm") as model, torch.no_grad():
            was_training = model.training
            model.eval()
            generator = torch.Generator(model.device).manual_seed(self.loop.seed)
            codes = model.sample(alpha1, sampler=s.sampler, steps=s.steps, generator=generator)  # (K, L, M)
            model.train(was_training)
            videos = [lia.render(a, c.to(lia.device)).cpu() for a, c in zip(appearances, codes)]  # K x (L, 3, S, S)
        logger.image_grid("samples", videos, step)
        log_video(logger, "samples_video", videos, step)

    def _load_preview(self) -> tuple:
        """The frozen animator, the appearance of each preview video's first frame and its first code."""
        from ..models.loading import load_lia
        from ..pipelines.animate import frames_to_batch

        lia = load_lia(self.config.data.lia, device=self.accelerator.device).requires_grad_(False)
        appearances, alpha1 = [], []
        for name, codes, frame in preview_starts(self.config.data, self.config.sample.num_videos):
            batch = frames_to_batch([frame], lia.config.size, lia.device)  # (1, 3, S, S)
            with torch.no_grad():
                appearances.append(lia.encode_appearance(batch))
            alpha1.append(codes[0])
        if not appearances:
            _log.warning("%s: no preview video could be read; no sample videos in TensorBoard", self.config.data.root)
        return lia, appearances, torch.stack(alpha1) if alpha1 else None  # alpha1 (K, M)

    def export(self, folder: str | os.PathLike) -> Path:
        """Write the trained model (EMA weights when kept) to ``folder`` (config.json + safetensors)."""
        return export_model(self, "lmdm", folder)


def preview_starts(data: LMDMDataConfig, k: int) -> Iterator[tuple[str, torch.Tensor, np.ndarray]]:
    """Yield up to ``k`` ``(name, codes (T, M), first frame uint8 (H, W, 3))`` of test videos (train
    videos if the store has no test split), skipping videos whose source cannot be read."""
    from ..data.motion_codes import MotionCodeStore, select_split
    from ..errors import LeoError
    from ..media.video import VideoReader

    store = MotionCodeStore(data.root)
    names = select_split(store, "test", data.test_fraction) or select_split(store, "train", data.test_fraction)
    found = 0
    for name in names:
        info = store.info(name)
        try:
            frame = VideoReader(info["source"]).read(info["frame_indices"][:1])[0]
        except (LeoError, OSError, TypeError, ValueError) as exc:
            _log.warning("%s: preview start frame unreadable (%s)", name, exc)
            continue
        yield name, store.codes(name), frame
        found += 1
        if found == k:
            return


def log_video(logger: RunLogger, tag: str, videos: list[torch.Tensor], step: int, fps: int = 8) -> None:
    """Videos ``K x (T, 3, H, W)`` in [-1, 1] as one TensorBoard video (needs moviepy; skipped without it)."""
    try:
        import moviepy  # noqa: F401  (SummaryWriter.add_video encodes GIFs with it)
    except ImportError:
        return
    if logger.tb is None:
        return
    clips = ((torch.stack(videos) + 1) / 2).clamp(0, 1)  # (K, T, 3, H, W)
    logger.tb.add_video(tag, clips, step, fps=fps)

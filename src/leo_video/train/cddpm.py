"""Training the cDDPM (start frame x₁ given its motion code α₁; LEO_METHOD.md, "The start frame") on the
shared loop (:mod:`leo_video.train.loop`: DDP, mixed precision, EMA, atomic checkpoints, exact resume).

**Data.** (frame, code) pairs. Frames come from :class:`~leo_video.data.video_dataset.VideoDataset`
(clips of one frame): one frame drawn uniformly from *any* moment of a video per item, not only first
frames. In use, start frames are whatever frame a generated video begins with (and LIA's codes are
absolute per frame), so every frame is a valid x₁; it also gives L times more training images. Codes
are computed on the fly by the frozen LIA encoder, ``α₁ = E(x₁)`` (``encode_motion``, under no_grad, at
the animator's resolution), so the cDDPM always matches the animator it will be used with.

**Code statistics.** μ and σ of the codes (:meth:`StartFrameDiffusion.set_normalization`) come from
``data.stats_frames`` frames encoded at setup, deterministically; they are saved with the weights.

``leo-video train cddpm --data DIR --animator LIA --config synthetic64`` runs this (``cli/train_cddpm.py``);
the final (EMA) model is exported to ``RUN_DIR/export`` as ``config.json`` + safetensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..diffusion.start_frame import StartFrameDiffusion
from .common import adamw_with_warmup, export_model, optimizer_step
from .loop import TrainingTask

# --------------------------------------------------------------------------------------------------
# Data


class StartFrames(Dataset):
    """One random frame per item: ``{"image": (3, S, S)}`` in [-1, 1], from a :class:`VideoDataset` of
    one-frame clips. The draw is keyed on the trainer's per-sample seed, so a resumed run sees the same frames.
    """

    def __init__(self, root: str | os.PathLike, size: int, seed: int, repeats: int = 1):
        from ..data.video_dataset import VideoDataset

        self.videos = VideoDataset(root, split="train", mode="clips", size=size, clip_length=1, seed=seed,
                                   repeats=repeats)  # fmt: skip

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        sample_seed = getattr(index, "seed", None)
        if sample_seed is not None:  # VideoDataset draws from (its seed, epoch, index): use the sample seed as epoch
            self.videos.set_epoch(sample_seed)
        return {"image": self.videos[int(index)]["video"][0]}  # (3, S, S)


# --------------------------------------------------------------------------------------------------
# The task


class CDDPMTask(TrainingTask):
    """ε-prediction training of :class:`StartFrameDiffusion` on (frame, LIA code) pairs."""

    # train.memory_format auto stays contiguous: the NHWC step is 1.5x slower on an H100 (203.5 -> 305.0 ms at 256²,
    # B 16: the diffusers U-Net's copies; benchmarks/train_throughput.py --cddpm-layouts); channels_last is opt-in
    channels_last_when_auto = False

    def setup(self) -> None:
        from ..models.loading import load_lia

        cfg, acc = self.config, self.accelerator
        self.lia = load_lia(cfg.data.lia, device=acc.device).requires_grad_(False)  # frozen, eval mode
        model = StartFrameDiffusion.from_preset(
            cfg.model.preset, sample_size=cfg.model.sample_size, motion_dim=self.lia.config.motion_dim,
            cond_dropout=cfg.model.cond_dropout, offset_noise=cfg.model.offset_noise,
            num_train_timesteps=cfg.model.num_train_timesteps, beta_schedule=cfg.model.beta_schedule,
            zero_terminal_snr=cfg.model.zero_terminal_snr,
        )  # fmt: skip
        self.preview_images, codes = self._stats_frames()  # (K, 3, S, S), (N, M)
        model.set_normalization(codes.mean(0), codes.std(0))
        self.preview_codes = codes[: len(self.preview_images)]  # (K, M)
        if self.channels_last:  # train.memory_format: NHWC weights here, NHWC images in train_step
            model = model.to(memory_format=torch.channels_last)
        optimizer, lr = adamw_with_warmup(model.parameters(), cfg.optim, self.optimizer_kernel)
        self.models["cddpm"], self.optimizers["cddpm"] = acc.prepare(model, optimizer)
        self.schedulers["cddpm"] = lr  # not prepared: optimizer_step steps it once per real optimizer step
        self.track_ema("cddpm")

    def dataset(self) -> Dataset:
        return StartFrames(self.config.data.root, self.config.model.sample_size, self.loop.seed, self.config.data.repeats)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """α₁ = E(x₁) with the frozen LIA at its own resolution: (B, 3, S, S) -> (B, M) float32."""
        size = self.lia.config.size
        x = images.float()
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.lia.encode_motion(x).float()  # (B, M)

    def _stats_frames(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``data.stats_frames`` frames (fixed draws): preview frames (K, 3, S, S) and all codes (N, M)."""
        from .loop import SampleIndex

        frames = StartFrames(self.config.data.root, self.config.model.sample_size, self.loop.seed)
        n, chunk, codes, preview = self.config.data.stats_frames, 32, [], None
        for start in range(0, n, chunk):
            batch = torch.stack([frames[SampleIndex(i % len(frames), i)]["image"]
                                 for i in range(start, min(n, start + chunk))])  # fmt: skip
            codes.append(self.encode(batch.to(self.accelerator.device)).cpu())
            preview = batch[: self.config.sample.num_images] if preview is None else preview
        return preview, torch.cat(codes)  # (K, 3, S, S), (N, M)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        images = batch["image"]  # (B, 3, S, S)
        codes = self.encode(images)  # (B, M), no gradient into the animator
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss = self.models["cddpm"](images, codes)
        optimizer_step(self, "cddpm", loss, self.config.optim.grad_clip)
        return {"mse": loss}

    def log_images(self, step: int, logger) -> None:
        """Real frames | cDDPM samples from their codes (EMA weights when kept)."""
        s = self.config.sample
        with self.ema_weights("cddpm") as model:
            was_training = model.training
            model.eval()
            samples = model.sample(self.preview_codes, s.sampler, s.steps, s.guidance_scale,
                                   torch.Generator(model.device).manual_seed(self.loop.seed))  # fmt: skip
            model.train(was_training)
        logger.image_grid("samples", [self.preview_images, samples.cpu()], step)

    def export(self, folder: str | os.PathLike) -> Path:
        """Write the trained model (EMA weights when kept) to ``folder`` (config.json + safetensors), atomically."""
        return export_model(self, "cddpm", folder)

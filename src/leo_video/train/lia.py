"""Training LIA, LEO's stage-1 image animator, on the shared loop (LEO_METHOD.md, "Stage 1 - Training").

Self-supervised reconstruction: a pair (source, driving) = two random frames of one video with the
same augmentation; the animator renders the driving frame from the source with the driving frame's
*absolute* motion code, ``recon = G(source, driving)`` (``z = w_source + Q alpha_driving``). Per step:

* **G step** - ``l1_weight * L1 + perceptual (VGG19 pyramid) + gan_weight * softplus(-D(recon))``;
  D is frozen and scored through the unwrapped module (:mod:`leo_video.train.loop` explains why).
* **D step** - non-saturating ``softplus(-D(driving)) + softplus(D(recon))``, plus the lazy R1
  penalty ``r1_weight / 2 * ||grad D(driving)||^2 * k`` every ``k = optim.d_reg_every`` steps
  (StyleGAN2, Appendix B; off by default, as in LIA).
* Adam with ``beta1 = 0`` and StyleGAN2's lazy-regularisation scaling of lr and betas (``k = 4`` for G,
  ``16`` for D in LIA's trainer); an optional EMA of G.

``model.init_checkpoint`` (``--init taichi.pt``) fine-tunes from an official LIA file: ``gen`` sets G,
and ``dis``, when present and of the same shapes, sets D. ``leo-video train lia`` runs this task
(``cli/train_lia.py``); :func:`export_generator` turns a run into an inference folder for ``load_lia``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..configs import LIAConfig
from ..errors import CheckpointError, ConfigError, InputError
from ..kernels import fused_enabled, set_fused
from . import checkpoint as ckpt
from .common import cosine_decay_lr
from .logging import RunLogger
from .loop import TrainingTask
from .losses import (
    ReconstructionLoss,
    discriminator_gan_loss,
    generator_gan_loss,
    lazy_regularization,
    r1_penalty,
)

logger = logging.getLogger(__name__)

ARCHITECTURE_KEYS = ("size", "style_dim", "motion_dim", "channel_multiplier", "channel_max")


# --------------------------------------------------------------------------------------------
# Official weights (--init)


def read_init_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """Generator and (if stored) discriminator state dicts of an official LIA file or our export.

    Accepts what ``load_lia`` reads: an official ``torch.save`` dict (``gen``, optionally ``dis``), a
    bare generator state dict (``.pt`` / ``.safetensors``) or an exported folder (no discriminator).
    """
    from ..models.loading import extract_generator_state, load_lia
    from ..utils.serialization import read_safetensors, safe_torch_load

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: init checkpoint not found (model.init_checkpoint / --init)")
    if path.is_dir():
        return load_lia(path).state_dict(), None
    obj = read_safetensors(path) if path.suffix == ".safetensors" else safe_torch_load(path)
    dis = obj.get("dis") if isinstance(obj, dict) and "gen" in obj else None
    if isinstance(dis, dict) and all(isinstance(v, torch.Tensor) for v in dis.values()):
        dis = {k.removeprefix("module."): v for k, v in dis.items()}
    else:
        dis = None
    return extract_generator_state(obj, path), dis


def init_architecture(path: str | os.PathLike) -> dict[str, int]:
    """The animator architecture (``ARCHITECTURE_KEYS``) of an init checkpoint, read from its tensors."""
    from ..models.loading import infer_lia_config

    gen, _ = read_init_checkpoint(path)
    return infer_lia_config(gen, path)


def adopt_init_architecture(config: LIAConfig) -> list[str]:
    """Set ``config.model``'s architecture to the init checkpoint's (the file decides, not the preset).

    Returns the changes as ``"model.size: 64 -> 256"`` strings (empty without an init checkpoint).
    """
    if not config.model.init_checkpoint:
        return []
    changes = []
    for key, value in init_architecture(config.model.init_checkpoint).items():
        if getattr(config.model, key) != value:
            changes.append(f"model.{key}: {getattr(config.model, key)} -> {value}")
            setattr(config.model, key, value)
    return changes


def _load_discriminator(discriminator: torch.nn.Module, state: dict[str, torch.Tensor] | None, path: str) -> bool:
    """Load ``state`` into D if its keys and shapes match exactly; returns whether it did."""
    expected = discriminator.state_dict()
    if state is None or set(state) != set(expected) or any(state[k].shape != v.shape for k, v in expected.items()):
        if state is not None:
            logger.warning("%s: its discriminator ('dis') does not fit this run's; D starts from scratch", path)
        return False
    from ..models.loading import load_strict

    load_strict(discriminator, state, path)
    return True


# --------------------------------------------------------------------------------------------
# Data


def pairs_dataset(config: LIAConfig, seed: int) -> Dataset:
    """Training pairs ``{"source", "driving"}`` (3, S, S) from ``data.root`` (its ``train/`` split)."""
    from ..data.video_dataset import AugmentConfig, VideoDataset

    root = Path(config.data.root)
    if not root.is_dir():
        raise InputError(f"{root}: training data folder not found (data.root); make one with "
                         f"`leo-video make-synthetic` or `leo-video prepare`")  # fmt: skip
    settings = dataclasses.asdict(config.data.augment)
    if settings["crop_scale"] is not None:
        settings["crop_scale"] = tuple(settings["crop_scale"])
    return VideoDataset(root, split="train", mode="pairs", size=config.model.size, augment=AugmentConfig(**settings),
                        seed=seed, repeats=config.data.repeats)  # fmt: skip


# --------------------------------------------------------------------------------------------
# The task


class LIATrainingTask(TrainingTask):
    """LIA's generator/discriminator training (see the module docstring) as a :class:`TrainingTask`.

    Models: ``generator`` (:class:`~leo_video.models.lia.LatentImageAnimator`) and, when
    ``loss.gan_weight > 0``, ``discriminator`` (:class:`~leo_video.models.discriminator.Discriminator`).
    """

    # train.memory_format auto: NHWC on CUDA with bf16/fp16 (measured 217 vs 159 ms per 256² step on an H100)
    channels_last_when_auto = True
    eval_videos: int = 4  # test videos in the periodic reconstruction eval
    eval_frames: int = 32  # frames per test video
    preview_pairs: int = 4  # pairs in the logged image grid

    def setup(self) -> None:
        cfg, acc = self.config, self.accelerator
        self._dataset = pairs_dataset(cfg, self.loop.seed)  # data errors before any network is built
        if cfg.data.test_root:
            list_test_videos(cfg.data.test_root)  # a missing test split fails now, not at the first eval
        self.recon_loss = ReconstructionLoss.from_config(cfg.loss).to(acc.device)  # VGG19 missing: fails here
        set_fused(self.loop.fused_kernels)  # process-wide, like torch.backends flags (the layers have no config)
        generator, discriminator = self._build_networks()
        if self.channels_last:  # NHWC weights; the maps follow (the animator converts the images it encodes)
            from ..models.stylegan2 import set_memory_format

            generator.to(memory_format=torch.channels_last)  # also sets the layout of the images it encodes
            for module in (discriminator, self.recon_loss):
                if module is not None:
                    set_memory_format(module, torch.channels_last)
        o = cfg.optim
        g_lr, g_betas = lazy_regularization(o.lr, (o.beta1, o.beta2), o.g_reg_every)
        trainable = [p for p in generator.parameters() if p.requires_grad]
        g_opt = torch.optim.Adam(trainable, lr=g_lr, betas=g_betas, **self.optimizer_kernel)
        self.models["generator"], self.optimizers["generator"] = acc.prepare(generator, g_opt)
        if discriminator is not None:
            d_lr, d_betas = lazy_regularization(o.lr, (o.beta1, o.beta2), o.d_reg_every)
            d_opt = torch.optim.Adam(discriminator.parameters(), lr=d_lr, betas=d_betas, **self.optimizer_kernel)
            self.models["discriminator"], self.optimizers["discriminator"] = acc.prepare(discriminator, d_opt)
        self.track_ema("generator")
        self.preview = self._preview_batch()
        probe = probe_clips(self._dataset, cfg.monitor.videos, cfg.monitor.frames)  # (V, T, 3, S, S) or None
        self.probe = None if probe is None else probe.to(acc.device)  # moved once, not at every log step
        held_out = held_out_probe(cfg)
        self.probe_test = None if held_out is None else held_out.to(acc.device)
        self._spread_peak, self._low_spread = 0.0, 0

    def start_note(self) -> str:
        fused = self.accelerator.device.type == "cuda" and fused_enabled()  # train.fused_kernels, LEO_FUSED, triton
        return super().start_note() + (", fused Triton kernels" if fused else "")

    def _build_networks(self) -> tuple[torch.nn.Module, torch.nn.Module | None]:
        from ..models.discriminator import Discriminator
        from ..models.lia import LatentImageAnimator

        m = self.config.model
        generator = LatentImageAnimator(**{k: getattr(m, k) for k in ARCHITECTURE_KEYS})
        freeze_unused_parameters(generator)
        discriminator = None
        if self.config.loss.gan_weight > 0:
            discriminator = Discriminator(m.size, m.channel_multiplier, m.channel_max)
        if m.init_checkpoint and not ckpt.list_checkpoints(self.loop.run_dir):  # a resume overwrites it anyway
            self._init_from(m.init_checkpoint, generator, discriminator)
        return generator, discriminator

    def _init_from(self, path: str, generator: torch.nn.Module, discriminator: torch.nn.Module | None) -> None:
        from ..models.loading import infer_lia_config, load_lia_state

        gen, dis = read_init_checkpoint(path)
        found = infer_lia_config(gen, path)
        wanted = {k: getattr(self.config.model, k) for k in ARCHITECTURE_KEYS}
        if found != wanted:
            diff = ", ".join(f"model.{k}={found[k]}" for k in ARCHITECTURE_KEYS if found[k] != wanted[k])
            raise ConfigError(f"{path}: init checkpoint's architecture differs from the config; set {diff}")
        load_lia_state(generator, gen, path)
        loaded_d = discriminator is not None and _load_discriminator(discriminator, dis, path)
        logger.info("initialised from %s (generator%s)", path, " and discriminator" if loaded_d else "")

    def dataset(self) -> Dataset:
        return self._dataset

    def _step(self, name: str, step: int) -> None:
        """One optimizer step of ``name`` (skipped by accelerate while gradients accumulate), then zero grad.

        The rate of optimizer step ``step`` (0-based) is the initial (lazily rescaled) rate times
        :func:`~leo_video.train.common.cosine_decay_lr` of ``step`` (1 without ``optim.decay_steps``): a function of
        the step alone, so a resumed run follows it exactly, and a decay can be switched on (or off) when resuming.
        """
        optimizer, o = self.optimizers[name], self.config.optim
        factor = cosine_decay_lr(step, o.decay_steps, o.decay_to, start=o.decay_start)
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def collate(self, items: list) -> dict[str, torch.Tensor]:
        """Only the frames travel: ``{"source", "driving"}`` (B, 3, S, S), and ``driving_view`` (what the motion
        encoder reads, ``data.augment.motion_view``) when the items have it."""
        keys = ("source", "driving", "driving_view") if "driving_view" in items[0] else ("source", "driving")
        return {k: torch.stack([item[k] for item in items]) for k in keys}

    def _preview_batch(self) -> dict[str, torch.Tensor]:
        """Fixed pairs for the image grids, the same at every log step: (K, 3, S, S) each."""
        from .sampler import SampleIndex

        n = min(self.preview_pairs, len(self._dataset))
        return self.collate([self._dataset[SampleIndex(i, i)] for i in range(n)])

    # ---- one step ----

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        source, driving = batch["source"], batch["driving"]  # (B, 3, S, S) each, [-1, 1]
        view = batch.get("driving_view")  # the motion encoder's recoloured input (data.augment.motion_view), or None
        if self.channels_last:  # D sees real frames in the layout of G's reconstructions (a compiled D: one graph)
            source, driving = (x.contiguous(memory_format=torch.channels_last) for x in (source, driving))
            view = None if view is None else view.contiguous(memory_format=torch.channels_last)
        losses, recon = self._generator_step(source, driving, driving if view is None else view, step)
        if "discriminator" in self.models:
            # A copy: under CUDA graphs (train.compile_mode reduce-overhead) G's output lives in the graphs' shared
            # memory pool, and the D step's first replay overwrites it before D reads it (measured on an H100: "accessing
            # tensor output of CUDAGraphs that has been overwritten by a subsequent run"). Test: test_train_lia.py.
            losses.update(self._discriminator_step(driving, recon.detach().clone(), step))
        return losses

    def _generator_step(self, source: torch.Tensor, driving: torch.Tensor, view: torch.Tensor,
                        step: int) -> tuple[dict, torch.Tensor]:
        """Reconstruction + GAN loss for G with D frozen; returns losses and recon (B, 3, S, S). ``view``: the
        frame the motion is read from (``driving`` itself unless recoloured); the target is always ``driving``."""
        acc, cfg = self.accelerator, self.config
        with acc.autocast():
            recon = self.models["generator"](source, view)  # (B, 3, S, S), absolute transfer
            terms = self.recon_loss(recon.float(), driving.float(), source.float())
            loss, losses = terms["total"], {k: v for k, v in terms.items() if k != "total"}
            if "discriminator" in self.models:
                critic = self.unwrap("discriminator").requires_grad_(False)
                losses["g_gan"] = generator_gan_loss(critic(recon).float())
                loss = loss + cfg.loss.gan_weight * losses["g_gan"]
        acc.backward(loss)
        self._step("generator", step)
        return {**losses, "g_total": loss}, recon

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Non-saturating D loss on driving frames vs reconstructions, plus lazy R1 every k steps."""
        acc, cfg = self.accelerator, self.config
        self.unwrap("discriminator").requires_grad_(True)
        k = cfg.optim.d_reg_every
        regularize = cfg.loss.r1_weight > 0 and step % k == 0
        real = real.detach().requires_grad_(regularize)
        discriminator = self.models["discriminator"]
        # R1 differentiates D's gradient (a double backward), which torch.compile's backward refuses: on R1 steps the
        # real frames go through D without the compile wrapper (DDP kept; same parameters). Test: test_train_lia.py.
        d_real = getattr(discriminator, "_orig_mod", discriminator) if regularize else discriminator
        with acc.autocast():
            real_logits = d_real(real).float()  # (B, 1)
            fake_logits = discriminator(fake).float()  # (B, 1)
            loss = discriminator_gan_loss(real_logits, fake_logits)
        losses = {"d_gan": loss.detach(), "d_real": real_logits.mean().detach(), "d_fake": fake_logits.mean().detach()}
        if regularize:  # StyleGAN2's lazy R1: gamma / 2 * penalty, times k to keep its strength
            r1 = r1_penalty(real_logits, real)
            loss = loss + cfg.loss.r1_weight / 2 * r1 * k
            losses["r1"] = r1.detach()
        acc.backward(loss)
        self._step("discriminator", step)
        return losses

    # ---- monitoring ----

    @torch.no_grad()
    def monitor(self, step: int) -> dict[str, float]:
        """``motion_spread`` of the probe clips and ``motion_spread_test`` of the held-out ones (see
        :class:`~leo_video.configs.LIAMonitorConfig`); sets
        ``stop_reason`` when it collapses (the loop makes every rank stop if any rank's monitor did)."""
        logs = {}
        if self.probe_test is not None:
            logs["motion_spread_test"] = motion_spread(self.unwrap("generator"), self.probe_test)
        if self.probe is None:
            return logs
        spread = motion_spread(self.unwrap("generator"), self.probe)
        cfg = self.config.monitor
        if spread > self._spread_peak:
            self._spread_peak = spread
        self._low_spread = self._low_spread + 1 if spread < cfg.collapse_fraction * self._spread_peak else 0
        if self._low_spread >= 2:
            self.stop_reason = (f"the motion code collapsed: its spread over a video fell to {spread:.3g}, "
                                f"{spread / self._spread_peak:.0%} of its peak {self._spread_peak:.3g} "
                                "(renderings no longer follow the driver; with a GAN, lower loss.gan_weight; "
                                "docs/TRAINING.md)")  # fmt: skip
        return {"motion_spread": spread, **logs}

    @torch.no_grad()
    def log_images(self, step: int, logger: RunLogger) -> None:
        """source | driving | reconstruction (EMA weights when kept) of the fixed preview pairs."""
        device = self.accelerator.device
        source, driving = (self.preview[k].to(device) for k in ("source", "driving"))
        with self.ema_weights("generator") as generator:
            recon = generator(source, driving).clamp(-1, 1)  # (K, 3, S, S)
        logger.image_grid("recon/source_driving_reconstruction", [source, driving, recon], step)

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """LIA's self-reenactment over the first test videos of ``data.test_root``, means over videos: ``recon_l1``
        (L1 on [0, 1]), ``recon_still_l1`` (the first frame repeated on the same frames), their ratio
        ``recon_l1_over_still`` (below 1: the animator beats an animator that ignores its driver) and
        ``recon_source_l1`` (the first frame drawn from its own code: the floor of the drawing, where the still
        scores 0; ``docs/TRAINING.md``, finding 14), and ``recon_moved_l1_over_still``, the ratio over the pixels
        that moved alone (about 1: the motion is not drawn, whatever the floor; finding 17)."""
        if not self.config.data.test_root or not self.accelerator.is_main_process:
            return {}
        from ..metrics.recon import reconstruction_error

        with self.ema_weights("generator") as generator:
            result = reconstruction_error(None, self.config.data.test_root, self.eval_videos, self.eval_frames,
                                          progress=False, animator=generator, shuffled=False, by_motion=True)
        return {"recon_l1": result["l1"], "recon_still_l1": result["still_l1"],
                "recon_l1_over_still": result["l1_over_still"], "recon_source_l1": result["source_l1"],
                "recon_moved_l1_over_still": result["moved_l1_over_still"]}


def probe_clips(dataset: Any, videos: int, frames: int) -> torch.Tensor | None:
    """``frames`` evenly spaced frames of ``videos`` evenly spaced videos of a pairs dataset, un-augmented:
    (V, T, 3, S, S) in [-1, 1], or None when ``videos`` is 0."""
    import numpy as np

    from ..media.image import numpy_to_frames

    if videos == 0:
        return None
    readers = dataset.readers
    chosen = np.linspace(0, len(readers) - 1, min(videos, len(readers))).round().astype(int)
    clips = [numpy_to_frames(readers[v].read(np.linspace(0, len(readers[v]) - 1, frames).round().astype(int)))
             for v in chosen]  # fmt: skip
    return torch.stack(clips)


def held_out_probe(config: LIAConfig) -> torch.Tensor | None:
    """``monitor.test_videos`` un-augmented clips of the held-out split (``data.test_root``, else
    ``data.root/test``) for ``monitor/motion_spread_test``: (V, T, 3, S, S), or None without a test split."""
    from ..data.video_dataset import VideoDataset, find_videos, split_folder

    if not config.monitor.test_videos:
        return None
    if config.data.test_root:
        root = Path(config.data.test_root)
        folder = split_folder(root, "test")  # test_root itself, or its test/
    else:
        root = Path(config.data.root)
        folder = root / "test"  # never data.root itself: without split folders it is the training data
    if not folder.is_dir() or not find_videos(folder):
        return None
    dataset = VideoDataset(root, split="test", size=config.model.size)
    return probe_clips(dataset, config.monitor.test_videos, config.monitor.frames)


@torch.no_grad()
def motion_spread(generator: Any, clips: torch.Tensor) -> float:
    """How much the motion code moves over a video, relative to the latent it displaces.

    ``clips`` (V, T, 3, S, S). Per clip: RMS over frames of ``||Q alpha_t - mean_t Q alpha_t||`` (Q is
    orthonormal, so this is the distance in alpha) over the mean appearance-latent norm ``||w_t||``; averaged
    over clips. 0 = a frozen code: every frame renders the source's pose.
    """
    V, T = clips.shape[:2]
    appearance = generator.encode_appearance(clips.flatten(0, 1))
    codes = appearance.motion.float().view(V, T, -1)  # (V, T, M)
    latent_norm = appearance.latent.float().norm(dim=-1).view(V, T).mean(1)  # (V,)
    rms = (codes - codes.mean(1, keepdim=True)).pow(2).sum(-1).mean(1).sqrt()  # (V,)
    return float((rms / latent_norm.clamp_min(1e-8)).mean())


def list_test_videos(root: str | os.PathLike) -> list[Path]:
    """Videos of a test folder (``ROOT/test`` when ``ROOT`` has split folders)."""
    from ..data.video_dataset import split_folder
    from ..metrics.evaluate import list_videos

    return list_videos(split_folder(Path(root), "test"), "data.test_root")


# --------------------------------------------------------------------------------------------
# Export


def generator_from_checkpoint(path: str | os.PathLike, ema: bool = False) -> tuple[Any, Path]:
    """The trained :class:`LatentImageAnimator` of a run folder (newest checkpoint) or checkpoint file.

    ``ema``: the EMA weights (CheckpointError if the run kept none). Returns (model in eval mode, file).
    """
    from ..models.lia import LatentImageAnimator

    path = Path(path)
    if path.is_dir():
        found = ckpt.load_latest(path)
        if found is None:
            raise CheckpointError(f"{path}: no training checkpoint in {ckpt.checkpoint_dir(path)}")
        path, state = found
    elif path.is_file():
        state = ckpt.load_checkpoint(path)
    else:
        raise InputError(f"{path}: no such run folder or checkpoint")
    task, model_cfg = state["task"], state["config"].get("model", {})
    if "generator" not in task.get("models", {}) or "style_dim" not in model_cfg:
        raise CheckpointError(f"{path}: not a LIA training checkpoint (no generator)")
    model = LatentImageAnimator(**{k: model_cfg[k] for k in ARCHITECTURE_KEYS if k in model_cfg})
    model.load_state_dict(task["models"]["generator"])
    if ema:
        shadow = task.get("emas", {}).get("generator", {}).get("shadow_params")
        if shadow is None:
            raise CheckpointError(f"{path}: the run kept no EMA (train.ema was off); export without --ema")
        for param, value in zip(model.parameters(), shadow, strict=True):
            param.data.copy_(value)
    return model.eval(), path


def export_generator(checkpoint: str | os.PathLike, out: str | os.PathLike, ema: bool = False,
                     overwrite: bool = False) -> Path:  # fmt: skip
    """Write a run's generator as an inference folder (``config.json`` + safetensors) for ``load_lia``."""
    from ..models.loading import export_lia
    from ..utils.atomic import check_output_path

    check_output_path(out, overwrite)  # refuse before reading a large checkpoint
    model, _ = generator_from_checkpoint(checkpoint, ema)
    return export_lia(model, out, overwrite)


__all__ = ["LIATrainingTask", "adopt_init_architecture", "export_generator", "generator_from_checkpoint",
           "held_out_probe", "motion_spread", "pairs_dataset", "probe_clips", "read_init_checkpoint"]  # fmt: skip


def freeze_unused_parameters(generator: torch.nn.Module) -> None:
    """Freeze what LIA's layout keeps but its forward never uses, so DDP expects no gradient for it.

    ``dec.to_rgb1`` is never applied and every ``noise.weight`` is inert (no noise is ever passed;
    layout notes 4.5). DDP without ``find_unused_parameters`` fails on the second step otherwise.
    """
    generator.dec.to_rgb1.requires_grad_(False)
    for name, param in generator.named_parameters():
        if name.endswith("noise.weight"):
            param.requires_grad_(False)

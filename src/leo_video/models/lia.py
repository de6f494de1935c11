"""LIA, the Latent Image Animator (Wang et al., ICLR 2022): LEO's stage 1 (LEO_METHOD.md, "Stage 1").

An appearance encoder E maps an image to a latent w and a feature pyramid; a purely affine motion
head maps w to motion magnitudes alpha (M dims); the motion dictionary (Linear Motion
Decomposition) turns alpha into a latent displacement Q alpha, Q = QR(D + 1e-8); a StyleGAN2
synthesis network driven by the displaced latent predicts, at every scale 8..S, a flow and an
occlusion mask that warp-and-inpaint the source's features.

Module and parameter names reproduce LIA's ``Generator`` exactly (185 state-dict keys at 256^2), so
``model.load_state_dict(official["gen"], strict=True)`` works; see :func:`leo_video.models.loading.load_lia`.

Shapes: S image size, L = log2 S, M motion dims, N frames rendered against one source. Images are
(B, 3, S, S) in [-1, 1]; outputs are returned raw (no clamp), as LIA does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .stylegan2 import (
    ConvLayer,
    EqualConv2d,
    EqualLinear,
    ResDownBlock,
    StyledConv,
    ToFlow,
    ToRGB,
    same_layout,
    set_memory_format,
    warp,
)

# resolution -> channels; entries >= 64 are multiplied by channel_multiplier
_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
SUPPORTED_SIZES = (64, 128, 256, 512)
QR_EPS = 1e-8  # added to every element of the dictionary before QR (LIA)


def lia_channels(resolution: int, channel_multiplier: int = 1, channel_max: int | None = None) -> int:
    """Channel count at one resolution (LIA / StyleGAN2 table), capped at ``channel_max`` if given."""
    base = _BASE_CHANNELS[resolution]
    channels = base * channel_multiplier if resolution >= 64 else base
    return channels if channel_max is None else min(channels, channel_max)


def pad_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """x (n, ...) -> (max(n, size), ...), its last entry repeated: keeps a compiled module at one batch size
    (callers drop the extra outputs)."""
    if x.shape[0] >= size:
        return x
    return torch.cat([x, x[-1:].expand(size - x.shape[0], *x.shape[1:])])


@dataclass
class Appearance:
    """An encoded source image, computed once and reused for every rendered frame.

    latent: (B, style_dim) appearance code w; features: L-2 maps coarse -> fine, features[k] is
    (B, C_r, r, r) with r = 8 * 2**k; motion: (B, M) the source's own motion code.
    """

    latent: torch.Tensor
    features: list[torch.Tensor]
    motion: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.latent.shape[0]

    def expand(self, n: int) -> Appearance:
        """Repeat a batch-1 appearance n times without copying (``Tensor.expand``)."""
        if self.batch_size != 1:
            raise ValueError(f"expand needs an appearance of batch 1, got {self.batch_size}")
        return Appearance(
            self.latent.expand(n, -1),
            [f.expand(n, -1, -1, -1) for f in self.features],
            self.motion.expand(n, -1),
        )


class CompiledInPlace(nn.Module):
    """A module that records ``Module.compile`` (torch keeps that in a private attribute only)."""

    compiled: bool = False

    def compile(self, *args, **kwargs) -> None:
        super().compile(*args, **kwargs)
        self.compiled = True


class AppearanceEncoder(CompiledInPlace):
    """LIA's ``net_app``: 1x1 conv, L-2 residual down blocks (S -> 4), 4x4 conv to a (B, style_dim) code.

    ``convs`` has L entries. Returns w (B, style_dim) and the features coarse -> fine: outputs of
    convs[L-3], ..., convs[0] (resolutions 8 ... S); the 4x4 map is not returned.
    """

    def __init__(self, size: int, style_dim: int, channel_multiplier: int = 1, channel_max: int = 512):
        super().__init__()
        ch = [lia_channels(2**i, channel_multiplier, channel_max) for i in range(int(math.log2(size)), 1, -1)]  # S .. 4
        self.convs = nn.ModuleList([ConvLayer(3, ch[0], 1)])
        self.convs.extend(ResDownBlock(c_in, c_out) for c_in, c_out in zip(ch[:-1], ch[1:]))
        self.convs.append(EqualConv2d(ch[-1], style_dim, 4, padding=0, bias=False))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, feats = images, []
        for conv in self.convs:
            h = conv(h)
            feats.append(h)  # S, S/2, ..., 4, 1
        return h.flatten(1), feats[-3::-1]  # (B, style_dim), [8x8 ... SxS]


class Encoder(nn.Module):
    """``enc``: appearance network + the affine motion head ``fc`` (4 x style->style, style->M, no activations)."""

    def __init__(self, size: int, style_dim: int, motion_dim: int, channel_multiplier: int = 1,
                 channel_max: int = 512):  # fmt: skip
        super().__init__()
        self.net_app = AppearanceEncoder(size, style_dim, channel_multiplier, channel_max)
        self.fc = nn.Sequential(*[EqualLinear(style_dim, style_dim) for _ in range(4)],
                                EqualLinear(style_dim, motion_dim))


class MotionDictionary(nn.Module):
    """Linear Motion Decomposition: ``weight`` D (style_dim, M), orthonormalised as Q = QR(D + 1e-8).Q.

    D(alpha) = alpha Q^T (LIA sums diag(alpha) Q^T over M: the same sums).
    """

    def __init__(self, style_dim: int, motion_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(style_dim, motion_dim))

    def basis(self) -> torch.Tensor:
        """Q (style_dim, M) with orthonormal columns (reduced Householder QR, no sign fix)."""
        w = self.weight + QR_EPS
        if w.dtype in (torch.float16, torch.bfloat16):  # no half-precision QR kernels
            return torch.linalg.qr(w.float()).Q.to(w.dtype)
        return torch.linalg.qr(w).Q

    def forward(self, alpha: torch.Tensor, basis: torch.Tensor | None = None) -> torch.Tensor:
        """alpha (B, M) -> latent displacement (B, style_dim) = sum_i alpha_i q_i."""
        q = self.basis() if basis is None else basis
        return alpha @ q.t()


class ConstantInput(nn.Module):
    """Learned constant ``input`` (1, C, 4, 4) broadcast over the batch."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.input.expand(batch_size, -1, -1, -1)  # (B, C, 4, 4)


class Synthesis(CompiledInPlace):
    """``dec``: the flow-based warp-and-inpaint StyleGAN2 generator.

    ``to_rgb1`` exists only for checkpoint compatibility: LIA never applies it.

    Warp-and-inpaint is regrouped to touch each feature map less often than LIA's order (the literal
    order: ``tests/reference/lia_functional.py``) — the inpainted map as one ``lerp(x, warped, mask)``,
    the RGB head on the warp of the source's features projected to 3 channels (:class:`ToRGB`), and no
    warp or inpainting of C channels after the last scale (LIA computes them and keeps only the RGB).
    """

    def __init__(self, size: int, style_dim: int, motion_dim: int, channel_multiplier: int = 1,
                 channel_max: int = 512):  # fmt: skip
        super().__init__()
        self.direction = MotionDictionary(style_dim, motion_dim)
        c4 = lia_channels(4, channel_max=channel_max)
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, style_dim)
        self.to_rgb1 = ToRGB(c4, upsample=False)
        self.convs, self.to_rgbs, self.to_flows = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c_prev = c4
        for i in range(3, int(math.log2(size)) + 1):  # r = 8 .. S
            c = lia_channels(2**i, channel_multiplier, channel_max)
            self.convs.extend([StyledConv(c_prev, c, 3, style_dim, upsample=True), StyledConv(c, c, 3, style_dim)])
            self.to_rgbs.append(ToRGB(c))
            self.to_flows.append(ToFlow(c, style_dim))
            c_prev = c

    def forward(self, latent: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """latent (B, style_dim), features coarse -> fine [(B, C_r, r, r), r = 8..S] -> image (B, 3, S, S)."""
        const = same_layout(self.input(latent.shape[0]), features[0])  # NHWC when the features are
        x = self.conv1(const, latent)  # (B, C_4, 4, 4)
        rgb = logits = None
        last = len(self.to_flows) - 1
        for k, (to_flow, to_rgb) in enumerate(zip(self.to_flows, self.to_rgbs)):
            x = self.convs[2 * k](x, latent)  # (B, C_r, r, r), r = 8 * 2**k
            x = self.convs[2 * k + 1](x, latent)
            grid, mask, logits = to_flow(x, latent, logits)  # (B, r, r, 2), (B, 1, r, r)
            mask = mask.to(x.dtype)
            rgb = to_rgb(features[k], grid, mask, rgb)  # RGB of the warped map: (B, 3, r, r)
            if k < last:  # inpaint: warped * mask + x * (1 - mask)
                x = torch.lerp(x, warp(features[k], grid, x).to(x.dtype), mask)
        return rgb


class LatentImageAnimator(ModelMixin, ConfigMixin):
    """LIA generator with LIA's exact state-dict layout (``enc.*``, ``dec.*``).

    Args:
        size: image size S (64, 128, 256 or 512).
        style_dim: latent width (512 in every released model).
        motion_dim: M, number of motion directions (20).
        channel_multiplier: scales channels at resolutions >= 64. LIA scales only its decoder, which
            cannot run for values other than 1; here both halves are scaled, so 1 reproduces LIA.
        channel_max: cap on every layer's channels; 512 (the default) is LIA's table, smaller values
            make tiny models for CPU training and tests.
    """

    #: layout of the images entering the encoder (``to(memory_format=...)`` / ``optimize_for_inference``)
    memory_format: torch.memory_format = torch.contiguous_format
    #: batch size of the first render through a compiled decoder (later, smaller chunks are padded to it)
    _compiled_batch: int | None = None

    @register_to_config
    def __init__(self, size: int = 256, style_dim: int = 512, motion_dim: int = 20, channel_multiplier: int = 1,
                 channel_max: int = 512):  # fmt: skip
        super().__init__()
        if size not in SUPPORTED_SIZES:
            raise ValueError(f"size must be one of {SUPPORTED_SIZES}, got {size}")
        self.enc = Encoder(size, style_dim, motion_dim, channel_multiplier, channel_max)
        self.dec = Synthesis(size, style_dim, motion_dim, channel_multiplier, channel_max)

    # ------------------------------------------------------------------ encoding
    def encode_appearance(self, images: torch.Tensor) -> Appearance:
        """images (B, 3, S, S) -> Appearance(latent (B, style_dim), features coarse->fine, motion (B, M))."""
        latent, features = self.enc.net_app(images.contiguous(memory_format=self.memory_format))
        return Appearance(latent, features, self.enc.fc(latent))

    def encode_motion(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S) -> motion codes alpha (B, M)."""
        return self.enc.fc(self.enc.net_app(images.contiguous(memory_format=self.memory_format))[0])

    def motion_directions(self) -> torch.Tensor:
        """The motion dictionary Q (style_dim, M), orthonormal columns."""
        return self.dec.direction.basis()

    # ------------------------------------------------------------------ latent arithmetic
    def latent_from_motion(self, appearance: Appearance, motion_codes: torch.Tensor,
                           start_motion: torch.Tensor | None = None) -> torch.Tensor:
        """Latent that renders ``appearance`` with the given motion, (B, style_dim).

        Absolute (start_motion None): w + Q alpha. Relative: w + (Q alpha - Q alpha_start) + Q alpha_source,
        evaluated in LIA's order. motion_codes (B, M); start_motion (B, M) or (1, M) or (M,);
        appearance of batch B or 1 (broadcast).
        """
        direction = self.dec.direction
        q = direction.basis()  # (style_dim, M)
        latent = appearance.latent
        if start_motion is None:
            return latent + direction(motion_codes, q)
        start_motion = start_motion.reshape(-1, motion_codes.shape[-1])
        return latent + (direction(motion_codes, q) - direction(start_motion, q)) + direction(appearance.motion, q)

    # ------------------------------------------------------------------ synthesis
    def decode(self, latent: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """latent (B, style_dim) + features coarse->fine (B, C_r, r, r) -> image (B, 3, S, S)."""
        return self.dec(latent, features)

    def forward(self, source: torch.Tensor, driving: torch.Tensor,
                start_motion: torch.Tensor | None = None) -> torch.Tensor:
        """Motion transfer, numerically LIA's ``Generator.forward(img_source, img_drive, h_start)``.

        source, driving: (B, 3, S, S); start_motion: None (absolute) or (B, M) motion code of the
        first driving frame (relative). Returns (B, 3, S, S), unclamped.
        """
        appearance = self.encode_appearance(source)
        latent = self.latent_from_motion(appearance, self.encode_motion(driving), start_motion)
        return self.decode(latent, appearance.features)

    def render(self, appearance: Appearance, motion_codes: torch.Tensor, start_motion: torch.Tensor | None = None,
               chunk_size: int | None = None) -> torch.Tensor:
        """Render N motion codes against ONE encoded source, in chunks of ``chunk_size`` frames.

        appearance: batch 1 (features are expanded, not copied); motion_codes (N, M);
        start_motion None (absolute) or (M,) / (1, M) (relative). Returns (N, 3, S, S).
        """
        if appearance.batch_size != 1:
            raise ValueError(f"render needs an appearance of batch 1, got {appearance.batch_size}")
        n = motion_codes.shape[0]
        step = chunk_size or n
        frames = [self._render_chunk(appearance, motion_codes[i : i + step], start_motion) for i in range(0, n, step)]
        return torch.cat(frames)

    def _render_chunk(self, appearance: Appearance, codes: torch.Tensor, start_motion: torch.Tensor | None) -> torch.Tensor:
        """codes (n, M) -> frames (n, 3, S, S). With a compiled decoder, a chunk smaller than the first one
        rendered is padded to that size (its last code repeated, the extra frames dropped): every call has
        the batch size the decoder was compiled for, so a short last chunk does not compile it again."""
        n = codes.shape[0]
        if self.dec.compiled:
            self._compiled_batch = self._compiled_batch or n
            codes = pad_batch(codes, self._compiled_batch)
        latent = self.latent_from_motion(appearance, codes, start_motion)  # broadcast over the chunk
        return self.decode(latent, appearance.expand(codes.shape[0]).features)[:n]

    # ------------------------------------------------------------------ fast inference
    def to(self, *args, **kwargs) -> LatentImageAnimator:
        """``nn.Module.to``, also with ``memory_format=torch.channels_last``.

        ``Module.to(memory_format=...)`` converts every 4-D and 5-D tensor and fails on the 5-D
        modulated weights (1, out, in, k, k); here the memory format is applied to the 4-D
        parameters and buffers only, and images entering the encoder are converted to it, so every
        activation (and through :func:`~leo_video.models.stylegan2.same_layout` the decoder) follows.
        """
        memory_format = kwargs.pop("memory_format", None)
        model = super().to(*args, **kwargs) if args or kwargs else self
        if memory_format is not None:
            model._set_memory_format(memory_format)
        return model

    def _set_memory_format(self, memory_format: torch.memory_format) -> None:
        set_memory_format(self, memory_format)
        self.memory_format = memory_format

    def optimize_for_inference(self, compile: bool = False, channels_last: bool = False,
                               mode: str | None = None) -> LatentImageAnimator:
        """Inference fast paths, same outputs within the dtype's rounding (``tests/test_fast_paths.py``).

        ``channels_last``: NHWC activations (cuDNN's native layout for bf16 convolutions).
        ``compile``: ``torch.compile`` the appearance encoder and the decoder in place (``Module.compile``:
        the state dict keeps its keys). ``render`` pads chunks smaller than its first one to that size, so
        chunked rendering compiles once (any other batch size would recompile with a dynamic batch);
        ``mode`` is passed through (e.g. ``"max-autotune"``). Compiling takes about a minute on a GPU and pays
        for long videos (``benchmarks/RESULTS.md``). Puts the model in eval mode.
        """
        self.eval()
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if compile:
            for module in (self.enc.net_app, self.dec):
                if not module.compiled:  # calling twice does not wrap twice
                    module.compile(mode=mode)
        return self

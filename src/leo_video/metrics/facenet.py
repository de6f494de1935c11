"""Face-identity embeddings for ACD: Inception-ResNet-v1 (FaceNet) with facenet-pytorch's weights.

The network is Szegedy et al.'s Inception-ResNet-v1 as trained by David Sandberg's FaceNet
(VGGFace2, 2018-04-02) and converted to PyTorch by facenet-pytorch. Its parameter names here match
facenet-pytorch's state dict exactly (``conv2d_1a.conv.weight``, ``repeat_1.0.branch1.0.bn.*``,
``last_bn.*`` ...), so the released ``20180402-114759-vggface2.pt`` loads unchanged (its
``logits.*`` classifier head is not needed and is dropped). Weights usually come from
https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt
(about 107 MB); nothing here downloads them.

Input: face crops ``(N, 3, H, W)`` in [-1, 1], resized to 160² (bilinear, antialiased) and standardised as
facenet-pytorch's ``fixed_image_standardization`` does, ``(p - 127.5) / 128`` for pixels p in
[0, 255]. Output: L2-normalised 512-d embeddings. No face detection or alignment is done: frames
must already be face-centred crops (as FaceForensics / CelebV-HQ clips are after preprocessing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FACENET_INPUT_SIZE = 160
FACENET_EMBED_DIM = 512

# One conv layer: (in_channels, out_channels, kernel, stride, padding).
ConvSpec = tuple[int, int, int | tuple[int, int], int, int | tuple[int, int]]

__all__ = ["FACENET_EMBED_DIM", "FACENET_INPUT_SIZE", "InceptionResnetV1"]


class BasicConv(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, TensorFlow's) -> ReLU; attributes ``conv``, ``bn``."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _branch(specs: list[ConvSpec]) -> nn.Module:
    """A branch of convs: one layer is stored bare, several as a Sequential (facenet's key layout)."""
    layers = [BasicConv(*spec) for spec in specs]
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


class ResidualInception(nn.Module):
    """Inception-ResNet block: parallel conv branches, concat, 1x1 conv, ``x + scale * out``, ReLU.

    Block35 / Block17 / Block8 of the paper differ only in their branches and scale.
    """

    def __init__(self, channels: int, branches: list[list[ConvSpec]], scale: float, relu: bool = True) -> None:
        super().__init__()
        for i, specs in enumerate(branches):
            self.add_module(f"branch{i}", _branch(specs))
        self.num_branches, self.scale, self.relu = len(branches), scale, relu
        self.conv2d = nn.Conv2d(sum(specs[-1][1] for specs in branches), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.num_branches)], dim=1)
        out = x + self.scale * self.conv2d(out)
        return F.relu(out) if self.relu else out


class Reduction(nn.Module):
    """Grid reduction (Mixed_6a / Mixed_7a): strided conv branches plus a 3x3/2 max-pool, concat."""

    def __init__(self, branches: list[list[ConvSpec]]) -> None:
        super().__init__()
        for i, specs in enumerate(branches):
            self.add_module(f"branch{i}", _branch(specs))
        self.num_branches = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convs = [getattr(self, f"branch{i}")(x) for i in range(self.num_branches)]
        return torch.cat([*convs, F.max_pool2d(x, 3, stride=2)], dim=1)


def _block35() -> ResidualInception:  # 35x35 grid, 256 channels
    return ResidualInception(
        256,
        [[(256, 32, 1, 1, 0)], [(256, 32, 1, 1, 0), (32, 32, 3, 1, 1)],
         [(256, 32, 1, 1, 0), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1)]],
        scale=0.17,
    )


def _block17() -> ResidualInception:  # 17x17 grid, 896 channels
    return ResidualInception(
        896,
        [[(896, 128, 1, 1, 0)], [(896, 128, 1, 1, 0), (128, 128, (1, 7), 1, (0, 3)), (128, 128, (7, 1), 1, (3, 0))]],
        scale=0.10,
    )


def _block8(scale: float = 0.20, relu: bool = True) -> ResidualInception:  # 8x8 grid, 1792 channels
    return ResidualInception(
        1792,
        [[(1792, 192, 1, 1, 0)], [(1792, 192, 1, 1, 0), (192, 192, (1, 3), 1, (0, 1)), (192, 192, (3, 1), 1, (1, 0))]],
        scale=scale,
        relu=relu,
    )


class InceptionResnetV1(nn.Module):
    """FaceNet's Inception-ResNet-v1 embedding network (inference only): ``(N, 3, H, W) -> (N, 512)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv(32, 32, 3)
        self.conv2d_2b = BasicConv(32, 64, 3, padding=1)
        self.conv2d_3b = BasicConv(64, 80, 1)
        self.conv2d_4a = BasicConv(80, 192, 3)
        self.conv2d_4b = BasicConv(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[_block35() for _ in range(5)])
        self.mixed_6a = Reduction([[(256, 384, 3, 2, 0)], [(256, 192, 1, 1, 0), (192, 192, 3, 1, 1), (192, 256, 3, 2, 0)]])
        self.repeat_2 = nn.Sequential(*[_block17() for _ in range(10)])
        self.mixed_7a = Reduction(
            [[(896, 256, 1, 1, 0), (256, 384, 3, 2, 0)], [(896, 256, 1, 1, 0), (256, 256, 3, 2, 0)],
             [(896, 256, 1, 1, 0), (256, 256, 3, 1, 1), (256, 256, 3, 2, 0)]]
        )
        self.repeat_3 = nn.Sequential(*[_block8() for _ in range(5)])
        self.block8 = _block8(scale=1.0, relu=False)
        self.last_linear = nn.Linear(1792, FACENET_EMBED_DIM, bias=False)
        self.last_bn = nn.BatchNorm1d(FACENET_EMBED_DIM, eps=1e-3, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised face crops ``(N, 3, 160, 160)`` -> L2-normalised embeddings ``(N, 512)``."""
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))  # (N, 64, 77, 77)
        x = F.max_pool2d(x, 3, stride=2)  # (N, 64, 38, 38)
        x = self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(x)))  # (N, 256, 17, 17)
        x = self.mixed_6a(self.repeat_1(x))  # (N, 896, 8, 8)
        x = self.mixed_7a(self.repeat_2(x))  # (N, 1792, 3, 3)
        x = self.block8(self.repeat_3(x))  # (N, 1792, 3, 3)
        x = self.last_bn(self.last_linear(x.mean(dim=(2, 3))))  # (N, 512)
        return F.normalize(x, p=2, dim=1)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Face crops ``(N, 3, H, W)`` in [-1, 1] -> embeddings ``(N, 512)`` (resize + standardise)."""
        param = next(self.parameters())
        x = frames.to(param.device, param.dtype)
        if x.shape[-2:] != (FACENET_INPUT_SIZE, FACENET_INPUT_SIZE):
            x = F.interpolate(x, size=(FACENET_INPUT_SIZE,) * 2, mode="bilinear", align_corners=False, antialias=True)
        # [-1, 1] -> p in [0, 255] -> (p - 127.5) / 128, i.e. x * 127.5 / 128.
        return self(x * (127.5 / 128.0))

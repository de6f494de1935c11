"""Frozen VGG19 feature network for the perceptual loss (LEO_METHOD.md, "Training").

Our own definition, laid out exactly like torchvision's ``vgg19().features`` so that the ImageNet
weights file torchvision publishes (``vgg19-dcbb9e9d.pth``) loads key for key: convolutions at
``features.{0,2,5,7,10,12,14,16,19,21,23,25,28,30,32,34}`` (``.weight``, ``.bias``), ReLUs after
each and max-pools at 4, 9, 18, 27, 36. The classifier is not built (its keys are ignored on load).

Nothing is downloaded: the weights are read from a path given in the config or from torch's hub
cache, ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (``TORCH_HOME`` defaults to
``~/.cache/torch``), where ``torchvision.models.vgg19(weights="IMAGENET1K_V1")`` would put it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, MissingWeightsError
from ..utils.serialization import safe_torch_load

VGG19_WEIGHTS_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"

# torchvision's configuration "E" (VGG19): output channels of each 3x3 conv, "M" = 2x2 max-pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")  # fmt: skip

# features index of the ReLU that gives each feature map the perceptual loss reads.
FEATURE_LAYERS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}


def default_vgg19_path() -> Path:
    """``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (torch's own hub-cache rules)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_WEIGHTS_FILE


def _vgg_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_channels = item
    return nn.Sequential(*layers)


class VGG19(nn.Module):
    """VGG19 features relu1_1 ... relu5_1 of ImageNet-normalised images; frozen (no parameter grads).

    Args:
        weights: path of torchvision's VGG19 state dict; None -> :func:`default_vgg19_path`.
        random_init: skip loading (random weights; for tests).
    Raises:
        MissingWeightsError: the weights file does not exist (the message says what to put where).
        CheckpointError: the file is not a torchvision VGG19 state dict.
    """

    def __init__(self, weights: str | os.PathLike | None = None, random_init: bool = False) -> None:
        super().__init__()
        self.features = _vgg_features()
        if not random_init:
            load_vgg19_weights(self, weights)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x`` (B, 3, H, W) ImageNet-normalised, H, W >= 16 -> five maps (B, C_k, H/2^k, W/2^k)."""
        outputs = []
        last = max(FEATURE_LAYERS.values())
        for index, layer in enumerate(self.features[: last + 1]):
            x = layer(x)
            if index in FEATURE_LAYERS.values():
                outputs.append(x)
        return outputs


def load_vgg19_weights(model: VGG19, path: str | os.PathLike | None = None) -> Path:
    """Load torchvision's ImageNet VGG19 weights (``features.*`` keys) into ``model``; returns the path."""
    path = Path(path).expanduser() if path is not None else default_vgg19_path()
    if not path.is_file():
        raise MissingWeightsError(
            f"{path}: VGG19 weights not found (the perceptual loss needs them); download "
            f"{VGG19_WEIGHTS_URL} and put it at {path}, or set loss.vgg_weights=FILE "
            f"(loss.perceptual_weight=0 turns the perceptual loss off)"
        )
    state = safe_torch_load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a VGG19 state dict")
    expected = model.state_dict()
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    missing = [k for k in expected if k not in features]
    wrong = [k for k in expected if k in features and features[k].shape != expected[k].shape]
    if missing or wrong:
        problem = f"missing {missing[0]}" if missing else f"{wrong[0]} has shape {tuple(features[wrong[0]].shape)}"
        raise CheckpointError(f"{path}: not torchvision VGG19 weights ({problem})")
    model.load_state_dict({k: features[k] for k in expected})
    return path

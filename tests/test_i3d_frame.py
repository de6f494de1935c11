"""The I3D's early layers folded to 2-D (``leo_video.models.i3d_frame``) against the real 3-D network.

A static clip of T = 24 copies of an image goes through ``InceptionI3d.end_points``; the 2-D network's maps
of the image must equal the 3-D maps' frame T/4 = 6 (of 12 after the stem), the one frame far enough from
both clip ends (the module doc derives it), to float32 rounding.

Tolerance: the 2-D network sums a unit's temporal taps in float64 and rounds once; the 3-D convolution
adds kT*kH*kW*C products in float32 in another order (1,029 in the stem, 1,728 in Conv3d_2c_3x3). Such
reassociation differs by about sqrt(n) * 2^-24 ~ 2e-6 of the terms' size per layer (measured: at most
1.6e-6 of each map's largest value, random and real weights); 1e-5 of the largest value leaves room for
other conv algorithms and stays far below any folding mistake (the mutation tests: >= 0.1).
"""

from __future__ import annotations

import pytest
import torch

import leo_video.models.i3d_frame as i3d_frame
from leo_video.metrics.i3d_k400 import InceptionI3d
from leo_video.models.i3d_frame import BN_EPS, FEATURE_LAYERS, I3DFrameFeatures

FRAMES = 24  # the shortest clip (a multiple of 4) whose Mixed_3c frame T/4 sees no temporal padding
REL_TOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def random_i3d() -> InceptionI3d:
    """Random convolutions and random BatchNorm statistics and offsets (so that a wrong fold shows)."""
    torch.manual_seed(0)
    i3d = InceptionI3d().eval().requires_grad_(False)
    for name, tensor in [*i3d.named_buffers(), *i3d.named_parameters()]:
        if name.endswith("running_mean"):
            tensor.normal_(0.0, 0.2)
        elif name.endswith("running_var"):
            tensor.uniform_(0.5, 2.0)
        elif name.endswith("beta"):
            tensor.normal_(0.0, 0.3)
    return i3d


def relative_errors(i3d: InceptionI3d, image: torch.Tensor) -> dict[str, float]:
    """max |2-D - 3-D frame T/4| / max |3-D frame T/4| per feature layer, for ``image (B, 3, H, W)``."""
    clip = image.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1).contiguous()  # (B, 3, T, H, W), all frames equal
    with torch.no_grad():
        reference = [m[:, :, FRAMES // 4] for m in i3d.end_points(clip, FEATURE_LAYERS)]
        ours = I3DFrameFeatures(i3d.state_dict())(image)
    errors = {}
    for name, ref, out in zip(FEATURE_LAYERS, reference, ours):
        assert out.shape == ref.shape, name
        errors[name] = ((out - ref).abs().max() / ref.abs().max()).item()
    return errors


def test_random_weights_fold_exactly_non_square_odd_sizes(random_i3d):
    """40 x 36: sizes 20 x 18, 10 x 9, 5 x 5 (TF's asymmetric SAME padding and rounding up at each stride)."""
    torch.manual_seed(1)
    image = torch.rand(2, 3, 40, 36) * 2 - 1
    errors = relative_errors(random_i3d, image)
    assert max(errors.values()) <= REL_TOL, errors
    shapes = [tuple(m.shape) for m in I3DFrameFeatures(random_i3d.state_dict())(image)]
    assert shapes == [(2, 64, 20, 18), (2, 192, 10, 9), (2, 480, 5, 5)]


def center_tap_only(state, prefix):
    weight = state[f"{prefix}.conv.weight"]
    kept = torch.zeros_like(weight)
    kept[:, :, weight.shape[2] // 2] = weight[:, :, weight.shape[2] // 2]
    return FOLD(state | {f"{prefix}.conv.weight": kept}, prefix)


def mean_not_subtracted(state, prefix):
    return FOLD(state | {f"{prefix}.running_mean": torch.zeros_like(state[f"{prefix}.running_mean"])}, prefix)


def scale_not_applied(state, prefix):
    weight, bias = FOLD(state, prefix)
    return weight * (state[f"{prefix}.running_var"] + BN_EPS).sqrt()[:, None, None, None], bias


FOLD = i3d_frame.fold_unit


@pytest.mark.parametrize("wrong_fold", [center_tap_only, mean_not_subtracted, scale_not_applied])
def test_a_wrong_fold_fails_the_comparison(random_i3d, wrong_fold, monkeypatch):
    """The comparison above can fail: temporal taps not summed, or BatchNorm folded wrong, miss by >= 0.1."""
    monkeypatch.setattr(i3d_frame, "fold_unit", wrong_fold)
    torch.manual_seed(1)
    errors = relative_errors(random_i3d, torch.rand(2, 3, 40, 36) * 2 - 1)
    assert max(errors.values()) >= 0.1, errors


def test_real_weights_fold_exactly(i3d_k400):
    """The Kinetics-400 weights, on a smooth image and on noise (large activations)."""
    torch.manual_seed(2)
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8) * 2 - 1, size=(64, 64), mode="bilinear")
    for image in (smooth, torch.rand(1, 3, 64, 64) * 2 - 1):
        errors = relative_errors(i3d_k400, image)
        assert max(errors.values()) <= REL_TOL, errors


def test_frozen_and_fold_once(random_i3d):
    net = I3DFrameFeatures(random_i3d.state_dict())
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    # the three 1x1 units that read Mixed_3b's input are one convolution: 64 + 96 + 16 outputs
    assert net.Mixed_3b.reduce.weight.shape == (176, 192, 1, 1) and net.Mixed_3b.splits == (64, 96, 16)
    assert net.Conv3d_1a_7x7.weight.shape == (64, 3, 7, 7) and net.Conv3d_1a_7x7.weight.dtype == torch.float32


@pytest.mark.gpu
def test_fold_is_exact_on_cuda_in_channels_last(i3d_k400):
    """cuDNN's fp32 convolutions (TF32 off), the folded network in channels_last as bf16 training lays it out."""
    from leo_video.models.stylegan2 import set_memory_format

    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(2)
        image = torch.rand(2, 3, 64, 64, device="cuda") * 2 - 1
        clip = image.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1).contiguous()
        with torch.no_grad():
            i3d = InceptionI3d().requires_grad_(False)
            i3d.load_state_dict(i3d_k400.state_dict())  # a CUDA copy: the session's CPU model stays as it is
            reference = [m[:, :, FRAMES // 4] for m in i3d.cuda().eval().end_points(clip, FEATURE_LAYERS)]
            net = set_memory_format(I3DFrameFeatures(i3d_k400.state_dict()).cuda(), torch.channels_last)
            ours = net(image.contiguous(memory_format=torch.channels_last))
        for name, ref, out in zip(FEATURE_LAYERS, reference, ours):
            assert ((out - ref).abs().max() / ref.abs().max()).item() <= REL_TOL, name
    finally:
        torch.backends.cudnn.allow_tf32 = tf32

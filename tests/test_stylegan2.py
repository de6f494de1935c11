"""StyleGAN2 building blocks against literal formulas (float64, tiny shapes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from leo_video.models.fir import Blur, Upsample, fir_by_matmul, fir_by_taps, fir_matrix, make_fir_kernel
from leo_video.models.stylegan2 import (
    ConvLayer,
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    NoiseInjection,
    ResDownBlock,
    StyledConv,
    ToFlow,
    ToRGB,
    biased_leaky_relu,
    identity_grid,
    per_source,
    warp,
)
from reference.lia_functional import fir
from reference.lia_functional import to_flow as reference_to_flow
from reference.lia_functional import to_rgb as reference_to_rgb

G = torch.Generator().manual_seed(0)


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def upfirdn2d(x, k, up=1, down=1, pad=(0, 0)):
    """The reference upfirdn (tests/reference) in the (pad0, pad1) pair spelling."""
    return fir(x, k, up=up, pad0=pad[0], pad1=pad[1], down=down)


def scipy_upfirdn(x: np.ndarray, k: np.ndarray, up: int, pad0: int, pad1: int) -> np.ndarray:
    """Independent upfirdn for one channel: zero insertion, padding, full 2-D convolution ('valid')."""
    z = np.zeros((x.shape[0] * up, x.shape[1] * up))
    z[::up, ::up] = x
    z = np.pad(z, ((pad0, pad1), (pad0, pad1)))
    return convolve2d(z, k, mode="valid")


def test_fir_kernel_values():
    k = make_fir_kernel()
    assert k.shape == (4, 4) and torch.allclose(k.sum(), torch.tensor(1.0))
    assert torch.equal(k * 64, torch.tensor([[1, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]]).float())
    assert torch.equal(make_fir_kernel(gain=4.0), 4 * k)


@pytest.mark.parametrize("up,pad", [(1, (2, 2)), (1, (1, 1)), (2, (2, 1)), (2, (1, 1))])
def test_upfirdn2d_matches_scipy_with_asymmetric_taps(up, pad):
    x = randn(1, 2, 5, 6)
    k = make_fir_kernel((1.0, 2.0, 5.0, 3.0)).double()  # asymmetric: catches a missing flip
    out = upfirdn2d(x, k, up=up, pad=pad)
    for c in range(2):
        expected = scipy_upfirdn(x[0, c].numpy(), k.numpy(), up, *pad)
        np.testing.assert_allclose(out[0, c].numpy(), expected, atol=1e-13)


def test_blur_and_upsample_fast_paths_equal_upfirdn():
    x = randn(2, 3, 8, 8)
    taps = (1.0, 2.0, 5.0, 3.0)
    up = Upsample(taps).double()
    fast = up(x)
    assert fast.shape == (2, 3, 16, 16) and torch.allclose(fast, upfirdn2d(x, up.kernel, up=2, pad=(2, 1)), atol=1e-14)
    blur = Blur(padding=2, taps=taps).double()
    assert blur(x).shape == (2, 3, 9, 9)
    assert torch.allclose(blur(x), upfirdn2d(x, blur.kernel, pad=(2, 2)), atol=1e-14)


def test_fir_by_taps_equals_blur():
    """The torch.compile form of Blur (shifted taps) against upfirdn2d, asymmetric taps."""
    x, taps = randn(2, 3, 8, 8), (1.0, 2.0, 5.0, 3.0)
    blur = Blur(padding=2, taps=taps).double()
    out = fir_by_taps(x, blur.kernel, 2)
    assert out.shape == (2, 3, 9, 9) and torch.allclose(out, upfirdn2d(x, blur.kernel, pad=(2, 2)), atol=1e-14)


@pytest.mark.parametrize("up,down,pad", [(1, 1, (2, 2)), (1, 2, (1, 1)), (2, 1, (2, 1)), (1, 1, (-1, 3)), (2, 2, (1, 2))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fir_by_matmul_equals_upfirdn(up, down, pad, channels_last):
    """The banded-matmul form (Blur and Upsample on CUDA), asymmetric taps, non-square input, gain, crops."""
    taps, gain = (1.0, 2.0, 4.0, 1.0), 4.0  # sum 8: the float32 kernel of upfirdn2d is exact
    x = randn(2, 3, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = fir_by_matmul(x, taps, gain, up=up, down=down, pad=pad)
    expected = upfirdn2d(x.contiguous(), make_fir_kernel(taps, gain).double(), up=up, down=down, pad=pad)
    assert out.shape == expected.shape and torch.allclose(out, expected, atol=1e-13)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last  # the layout is kept


def test_fir_matrix_rows():
    m = fir_matrix(4, (1.0, 3.0, 3.0, 1.0), pad=(2, 2), dtype=torch.float64)  # blur of 4 samples: 5 outputs
    assert m.shape == (5, 4) and torch.equal(m[0], torch.tensor([3.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.equal(m[2], torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64))


def test_blur_down_keeps_every_other_output():
    x = randn(2, 3, 8, 8)
    full = Blur(padding=1).double()
    down = Blur(padding=1, down=2).double()
    assert torch.equal(down(x), full(x)[:, :, ::2, ::2])


def test_fir_filters_refuse_a_different_kernel_on_load():
    blur = Blur(padding=2)
    blur.load_state_dict({"kernel": make_fir_kernel()})  # LIA's kernel loads
    with pytest.raises(RuntimeError, match="kernel is not the FIR kernel"):
        blur.load_state_dict({"kernel": make_fir_kernel((1.0, 2.0, 1.0, 0.0))})
    up = Upsample()
    up.load_state_dict({"kernel": make_fir_kernel(gain=4.0)})
    with pytest.raises(RuntimeError, match="kernel is not the FIR kernel"):
        up.load_state_dict({"kernel": make_fir_kernel()})  # gain 1 where 4 belongs


def test_biased_leaky_relu_formula():
    x, b = randn(2, 3, 4, 4), randn(3)
    y = x + b.view(1, 3, 1, 1)
    expected = torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2)
    assert torch.allclose(biased_leaky_relu(x, b), expected)
    assert torch.allclose(biased_leaky_relu(x, b.view(1, 3, 1, 1)), expected)
    assert torch.allclose(biased_leaky_relu(x[:, :, 0, 0], b), expected[:, :, 0, 0])  # (B, C) input


def test_equal_conv_and_linear_scale_weights_at_run_time():
    conv = EqualConv2d(4, 5, 3, padding=1).double()
    x = randn(2, 4, 6, 6)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight / 6.0, conv.bias, padding=1))
    lin = EqualLinear(8, 3, bias_init=0.5, lr_mul=0.01).double()
    assert torch.allclose(lin.bias, torch.full((3,), 50.0, dtype=torch.float64))
    v = randn(2, 8)
    expected = v @ (lin.weight * 0.01 / math.sqrt(8)).t() + lin.bias * 0.01
    assert torch.allclose(lin(v), expected)
    lin.activate = True
    assert torch.allclose(lin(v), F.leaky_relu(expected, 0.2) * math.sqrt(2))


def test_conv_layer_keys_and_shapes():
    down = ConvLayer(4, 8, 3, downsample=True)
    assert list(down.state_dict()) == ["0.kernel", "1.weight", "2.bias"]
    assert down.state_dict()["2.bias"].shape == (1, 8, 1, 1)
    assert down(torch.randn(1, 4, 16, 16)).shape == (1, 8, 8, 8)
    skip = ConvLayer(4, 8, 1, downsample=True, bias=False, activate=False)
    assert list(skip.state_dict()) == ["0.kernel", "1.weight"]
    assert skip(torch.randn(1, 4, 16, 16)).shape == (1, 8, 8, 8)
    plain = ConvLayer(4, 8, 3, activate=False)  # bias on the conv itself
    assert list(plain.state_dict()) == ["0.weight", "0.bias"]


def test_res_down_block_formula():
    block = ResDownBlock(4, 8).double()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(generator=G)
    x = randn(2, 4, 8, 8)
    a = block.conv1(x)
    a = biased_leaky_relu(F.conv2d(upfirdn2d(a, block.conv2[0].kernel, pad=(2, 2)),
                                   block.conv2[1].weight / 6.0, stride=2), block.conv2[2].bias)
    s = F.conv2d(upfirdn2d(x, block.skip[0].kernel, pad=(1, 1)), block.skip[1].weight / 2.0, stride=2)
    assert torch.allclose(block(x), (a + s) / math.sqrt(2), atol=1e-12)
    assert block(x).shape == (2, 8, 4, 4)


def _literal_modconv(layer: ModulatedConv2d, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """Per-sample formula of layout section 4.5."""
    outs = []
    cin, k = layer.weight.shape[2], layer.weight.shape[-1]
    for b in range(x.shape[0]):
        s = layer.modulation.weight @ latent[b] / math.sqrt(latent.shape[1]) + layer.modulation.bias
        w = layer.weight[0] / math.sqrt(cin * k * k) * s.view(1, -1, 1, 1)
        if layer.demodulate:
            w = w / torch.sqrt(w.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
        if layer.upsample:
            o = F.conv_transpose2d(x[b : b + 1], w.transpose(0, 1), stride=2)
            o = upfirdn2d(o, layer.blur.kernel, pad=(1, 1))
        else:
            o = F.conv2d(x[b : b + 1], w, padding=k // 2)
        outs.append(o)
    return torch.cat(outs)


@pytest.mark.parametrize("demodulate,upsample,k", [(True, False, 3), (True, True, 3), (False, False, 1)])
def test_modulated_conv_matches_formula(demodulate, upsample, k):
    layer = ModulatedConv2d(6, 5, k, style_dim=7, demodulate=demodulate, upsample=upsample).double()
    with torch.no_grad():
        layer.modulation.bias.add_(randn(6))
    x, latent = randn(3, 6, 4, 4), randn(3, 7)
    expected = _literal_modconv(layer, x, latent)
    fast = layer(x, latent)
    assert fast.shape == ((3, 5, 8, 8) if upsample else (3, 5, 4, 4))
    assert torch.allclose(fast, expected, atol=1e-12)
    if demodulate and not upsample:  # batch-shared weight: sample b does not depend on others
        assert torch.allclose(layer(x[1:2], latent[1:2]), expected[1:2], atol=1e-12)


def test_noise_injection_is_identity_without_noise():
    noise = NoiseInjection()
    with torch.no_grad():
        noise.weight.fill_(3.0)
    x = torch.randn(1, 2, 3, 3)
    assert noise(x) is x
    assert torch.allclose(noise(x, torch.ones_like(x)), x + 3)
    styled = StyledConv(2, 4, 3, style_dim=5, upsample=True)
    assert list(styled.state_dict())[:2] == ["conv.weight", "conv.blur.kernel"]
    assert styled(x, torch.randn(1, 5)).shape == (1, 4, 6, 6)


def _as_decoder_state(prefix: str, head: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A head's state dict under its LIA key (the reference reads LIA's state-dict layout)."""
    return {prefix + key: value for key, value in head.state_dict().items()}


@pytest.mark.parametrize("shared", [False, True])
def test_to_rgb_on_warped_features_matches_lia(shared):
    """conv1x1(grid_sample(F) * mask) = grid_sample(conv1x1(F)) * mask: the head on the projected source
    features against LIA's literal order (warp C channels, then the head; leaky ReLU before the output bias)."""
    head = ToRGB(4).double()
    assert list(head.state_dict()) == ["bias", "upsample.kernel", "conv.0.weight", "conv.1.bias"]
    assert list(ToRGB(4, upsample=False).state_dict()) == ["bias", "conv.0.weight", "conv.1.bias"]
    with torch.no_grad():
        head.bias.fill_(-5.0)
        head.conv[1].bias.copy_(randn(1, 3, 1, 1))
    feature = randn(1, 4, 8, 8).expand(3, -1, -1, -1) if shared else randn(3, 4, 8, 8)
    grid = identity_grid(8, torch.float64, feature.device) + 0.3 * randn(3, 8, 8, 2)  # some samples fall outside
    mask, skip = torch.sigmoid(randn(3, 1, 8, 8)), randn(3, 3, 4, 4)
    warped = F.grid_sample(feature, grid, align_corners=False) * mask
    expected = reference_to_rgb(_as_decoder_state("dec.to_rgbs.0.", head), 0, warped, skip)
    assert torch.allclose(head(feature, grid, mask, skip), expected, atol=1e-12)


def test_per_source_computes_a_broadcast_batch_once():
    seen = []

    def fn(t):
        seen.append(t.shape[0])
        return t * 2

    one = randn(1, 2, 3, 3)
    out = per_source(fn, one.expand(5, -1, -1, -1))
    assert seen == [1] and out.shape == (5, 2, 3, 3) and out.stride(0) == 0 and torch.equal(out[4], one[0] * 2)
    dense = randn(4, 2, 3, 3)
    assert torch.equal(per_source(fn, dense), dense * 2) and seen == [1, 4]


def test_identity_grid_layout_and_cache():
    grid = identity_grid(5, torch.float64, torch.device("cpu"))
    lin = torch.tensor(np.linspace(-1, 1, 5).astype(np.float32), dtype=torch.float64)
    assert grid.shape == (1, 5, 5, 2)
    assert torch.equal(grid[0, 2, :, 0], lin) and torch.equal(grid[0, :, 3, 1], lin)  # (x_j, y_i)
    assert identity_grid(5, torch.float64, torch.device("cpu")) is grid
    # LIA rounds the grid to float32 even in float64 runs
    g7 = identity_grid(7, torch.float64, torch.device("cpu"))
    assert torch.equal(g7, g7.float().double())


def test_to_flow_matches_lia():
    flow = ToFlow(4, style_dim=6).double()
    assert list(flow.state_dict()) == ["bias", "upsample.kernel", "conv.weight", "conv.modulation.weight",
                                       "conv.modulation.bias"]
    x, latent, feat, skip = randn(2, 4, 8, 8), randn(2, 6), randn(2, 4, 8, 8), randn(2, 3, 4, 4)
    grid, mask, logits = flow(x, latent, skip)
    sd = _as_decoder_state("dec.to_flows.0.", flow)
    warped, inpainted, o = reference_to_flow(sd, 0, x, latent, feat, skip)
    assert torch.allclose(logits, o, atol=1e-12)
    assert torch.allclose(warp(feat, grid, feat) * mask, warped, atol=1e-12)
    assert torch.allclose(torch.lerp(x, warp(feat, grid, x), mask), inpainted, atol=1e-12)  # the decoder's inpainting


def test_blocks_follow_input_dtype():
    layer = StyledConv(3, 4, 3, style_dim=5)
    x, latent = torch.randn(1, 3, 4, 4), torch.randn(1, 5)
    assert layer(x, latent).dtype == torch.float32
    assert layer.double()(x.double(), latent.double()).dtype == torch.float64


def test_inference_in_place_ops_leave_inputs_alone_and_match_autograd_path():
    layer = ConvLayer(3, 4, 3, downsample=True)
    styled = StyledConv(4, 4, 3, style_dim=5)
    x, latent = torch.randn(2, 3, 8, 8), torch.randn(2, 5)
    with torch.no_grad():
        keep = x.clone()
        fast = styled(layer(x), latent)
        y = torch.randn(2, 3, 4, 4)
        y_keep = y.clone()
        act = FusedLeakyReLU(3)(y)
    assert torch.equal(x, keep) and torch.equal(y, y_keep)
    assert torch.equal(fast, styled(layer(x), latent).detach())  # autograd path: same ops, new buffers
    assert torch.equal(act, biased_leaky_relu(y_keep, torch.zeros(3)))


@pytest.mark.gpu
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_fir_matmul_matches_cpu_depthwise(channels_last):
    """On CUDA, Blur (plain and down=2) and Upsample run as banded matmuls: values and input gradients as the
    CPU depthwise convolutions give them, in float32 (TF32 off) and within bf16 rounding in bfloat16."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = False
    x = randn(2, 8, 35, 35)
    for module in (Blur(2), Blur(1, down=2), Blur(1, gain=4.0), Upsample()):
        module = module.double()
        ref_in = x.clone().requires_grad_(True)
        ref = module(ref_in)
        ref.square().sum().backward()
        for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 3e-2)):
            gpu = x.cuda().to(dtype)
            if channels_last:
                gpu = gpu.contiguous(memory_format=torch.channels_last)
            gpu.requires_grad_(True)
            out = module.cuda().to(dtype)(gpu)
            out.float().square().sum().backward()
            scale = ref.abs().max().item()
            assert (out.double().cpu() - ref).abs().max().item() <= tol * scale, (module, dtype)
            assert (gpu.grad.double().cpu() - ref_in.grad).abs().max().item() <= 2 * tol * ref_in.grad.abs().max().item()
            module.cpu().double()

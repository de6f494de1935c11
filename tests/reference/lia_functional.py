"""An independent functional re-derivation of LIA's generator forward, written from
``lia_checkpoint_layout.md`` section 4 only. Plain functions over a state dict; shares no code
with ``leo_video.models``. Meant for float64 evaluation (per-sample loops, literal formulas).

This is the one literal reference of LIA's arithmetic: the models in ``src/`` run only their fast forms,
and the parity tests (``test_lia.py``, ``test_stylegan2.py``) compare them with these functions. The
benchmarks import it too (:class:`ReferenceGenerator` times LIA's per-frame demo with LIA's ops;
:func:`literal_fir_forwards` makes FLOP counts count FIR filters as the depthwise convolutions they are).

``lia_reference(sd, source, driving, h_start=None)`` returns (B, 3, S, S).
"""

from __future__ import annotations

import contextlib
import math
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def lrelu_bias(x, b):
    """leaky_relu(x + b, 0.2) * sqrt 2, b has C values."""
    y = x + b.reshape(1, -1, 1, 1)
    return torch.where(y >= 0, y, 0.2 * y) * SQRT2


def fir(x, k, up=1, pad0=0, pad1=0, down=1):
    """upfirdn: zero insertion by ``up``, zero padding (pad0, pad1) on both axes (negative crops), true 2-D
    convolution with k, every ``down``-th sample kept."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    kk = torch.flip(k.to(x.dtype), [0, 1])
    out = F.conv2d(x.reshape(b * c, 1, x.shape[2], x.shape[3]), kk[None, None], stride=down)  # each channel alone
    return out.reshape(b, c, out.shape[2], out.shape[3])


def eq_conv(x, w, stride=1, padding=0):
    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
    return F.conv2d(x, w / math.sqrt(fan_in), stride=stride, padding=padding)


def eq_linear(x, w, b):
    return x @ (w / math.sqrt(w.shape[1])).t() + b


# ----------------------------------------------------------------- encoder


def encoder_features(sd, x):
    """Returns (w (B, 512), list of stage outputs [S, S/2, ..., 4, 1])."""
    p = "enc.net_app.convs."
    n = 1 + max(int(k[len(p):].split(".")[0]) for k in sd if k.startswith(p))
    outs = []
    h = lrelu_bias(eq_conv(x, sd[p + "0.0.weight"]), sd[p + "0.1.bias"])
    outs.append(h)
    for i in range(1, n - 1):
        q = f"{p}{i}."
        a = lrelu_bias(eq_conv(h, sd[q + "conv1.0.weight"], padding=1), sd[q + "conv1.1.bias"])
        a = fir(a, sd[q + "conv2.0.kernel"], pad0=2, pad1=2)
        a = lrelu_bias(eq_conv(a, sd[q + "conv2.1.weight"], stride=2), sd[q + "conv2.2.bias"])
        s = eq_conv(fir(h, sd[q + "skip.0.kernel"], pad0=1, pad1=1), sd[q + "skip.1.weight"], stride=2)
        h = (a + s) / SQRT2
        outs.append(h)
    h = eq_conv(h, sd[f"{p}{n - 1}.weight"])
    outs.append(h)
    return h.reshape(h.shape[0], -1), outs


def motion_code(sd, w):
    for i in range(5):
        w = eq_linear(w, sd[f"enc.fc.{i}.weight"], sd[f"enc.fc.{i}.bias"])
    return w


# ----------------------------------------------------------------- decoder


def style_of(sd, prefix, latent):
    return eq_linear(latent, sd[prefix + "modulation.weight"], sd[prefix + "modulation.bias"])


def modulated_conv(sd, prefix, x, latent, demod=True, up=False):
    """Per-sample literal modulated convolution; prefix ends with 'conv.'."""
    weight = sd[prefix + "weight"][0]  # (out, in, k, k)
    cout, cin, k, _ = weight.shape
    styles = style_of(sd, prefix, latent)
    outs = []
    for b in range(x.shape[0]):
        wb = weight / math.sqrt(cin * k * k) * styles[b].reshape(1, cin, 1, 1)
        if demod:
            wb = wb / torch.sqrt((wb**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xb = x[b : b + 1]
        if up:
            o = F.conv_transpose2d(xb, wb.permute(1, 0, 2, 3), stride=2, padding=0)
            o = fir(o, sd[prefix + "blur.kernel"], pad0=1, pad1=1)
        else:
            o = F.conv2d(xb, wb, padding=k // 2)
        outs.append(o)
    return torch.cat(outs)


def styled_conv(sd, prefix, x, latent, up=False):
    return lrelu_bias(modulated_conv(sd, prefix + "conv.", x, latent, up=up), sd[prefix + "activate.bias"])


def upsample2(sd, prefix, x):
    return fir(x, sd[prefix + "upsample.kernel"], up=2, pad0=2, pad1=1)


def base_grid(r, dtype, device=None):
    lin = np.linspace(-1, 1, r)
    gx, gy = np.meshgrid(lin, lin)  # default 'xy': gx varies along columns
    return torch.from_numpy(np.stack([gx, gy], axis=2).astype(np.float32)).to(device=device, dtype=dtype)


def to_flow(sd, k, x, latent, feat, prev):
    p = f"dec.to_flows.{k}."
    o = modulated_conv(sd, p + "conv.", x, latent, demod=False) + sd[p + "bias"]
    if prev is not None:
        o = o + upsample2(sd, p, prev)
    r = o.shape[2]
    grid = torch.tanh(o[:, 0:2]).permute(0, 2, 3, 1) + base_grid(r, o.dtype, o.device)[None]
    mask = torch.sigmoid(o[:, 2:3])
    warped = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * mask
    return warped, warped + x * (1 - mask), o


def to_rgb(sd, k, x, prev):
    p = f"dec.to_rgbs.{k}."
    fan = x.shape[1]
    rgb = lrelu_bias(F.conv2d(x, sd[p + "conv.0.weight"] / math.sqrt(fan)), sd[p + "conv.1.bias"]) + sd[p + "bias"]
    if prev is not None:
        rgb = rgb + upsample2(sd, p, prev)
    return rgb


def directions(sd):
    q, _ = torch.linalg.qr(sd["dec.direction.weight"] + 1e-8, mode="reduced")
    return q


def displacement(sd, a):
    q = directions(sd)
    return sum(a[:, i : i + 1] * q[:, i][None] for i in range(q.shape[1]))


def decoder(sd, latent, feats):
    b = latent.shape[0]
    x = sd["dec.input.input"].repeat(b, 1, 1, 1)
    x = styled_conv(sd, "dec.conv1.", x, latent)
    rgb = flow = None
    for k in range(len(feats)):
        x = styled_conv(sd, f"dec.convs.{2 * k}.", x, latent, up=True)
        x = styled_conv(sd, f"dec.convs.{2 * k + 1}.", x, latent)
        warped, x, flow = to_flow(sd, k, x, latent, feats[k], flow)
        rgb = to_rgb(sd, k, warped, rgb)
    return rgb


def lia_reference(sd, source, driving, h_start=None):
    """LIA Generator.forward(source, driving, h_start) from the layout description."""
    return lia_reference_modes(sd, source, driving, [h_start])[0]


def lia_reference_modes(sd, source, driving, h_starts):
    """Generator outputs for each h_start in ``h_starts`` (None = absolute), encoding the images once."""
    wa, outs = encoder_features(sd, source)
    feats = list(reversed(outs))[2:]
    alpha_t = motion_code(sd, encoder_features(sd, driving)[0])
    results = []
    for h_start in h_starts:
        if h_start is None:
            latent = wa + displacement(sd, alpha_t)
        else:
            alpha_s = motion_code(sd, wa)
            latent = wa + (displacement(sd, alpha_t) - displacement(sd, h_start)) + displacement(sd, alpha_s)
        results.append(decoder(sd, latent, feats))
    return results


def reference_motion(sd, images):
    """Motion codes (B, M) of images."""
    return motion_code(sd, encoder_features(sd, images)[0])


# ----------------------------------------------------------------- seeded test data


def random_lia_state(template: dict, seed: int) -> dict:
    """A seeded random LIA state dict with the shapes of ``template`` (float32, CPU).

    Weights ~ N(0, 1) (equalized init), biases 0.1 N(0, 1), modulation biases 1 + 0.1 N(0, 1);
    FIR kernel buffers (2-D keys ending in 'kernel') are copied from the template.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, t in template.items():
        if key.endswith("kernel"):
            out[key] = t.detach().clone().float()
            continue
        value = torch.randn(tuple(t.shape), generator=g)
        if key.endswith("modulation.bias"):
            value = 1 + 0.1 * value
        elif key.endswith("bias"):
            value = 0.1 * value
        out[key] = value
    return out


def seeded_images(batch: int, size: int, seed: int) -> torch.Tensor:
    """Smooth-ish seeded images in [-1, 1], (B, 3, S, S) float32."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, size // 8, size // 8, generator=g) * 2 - 1
    fine = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    up = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return (0.8 * up + 0.2 * fine).clamp(-1, 1)


# ----------------------------------------------------------------- for the benchmarks


class ReferenceGenerator:
    """The calls LIA's demo makes (``encode_motion``, ``forward(source, driving, h_start)``) with LIA's literal
    ops, on the weights of a :class:`~leo_video.models.lia.LatentImageAnimator` (any dtype and device)."""

    def __init__(self, model):
        self.sd = {key: value.detach() for key, value in model.state_dict().items()}

    def encode_motion(self, images):
        return reference_motion(self.sd, images)

    def __call__(self, source, driving, h_start=None):
        return lia_reference(self.sd, source, driving, h_start)


@contextlib.contextmanager
def literal_fir_forwards():
    """Within the block, ``Blur`` and ``Upsample`` layers compute upfirdn literally (:func:`fir`) on every
    device: what FLOP counts should count (their banded-matmul form on CUDA does more arithmetic in less time)."""
    from leo_video.models.fir import Blur, Upsample

    def blur(layer, x):
        return fir(x, layer.kernel, pad0=layer.padding, pad1=layer.padding, down=layer.down)

    def upsample(layer, x):
        return fir(x, layer.kernel, up=layer.factor, pad0=layer.pad[0], pad1=layer.pad[1])

    with mock.patch.object(Blur, "forward", blur), mock.patch.object(Upsample, "forward", upsample):
        yield

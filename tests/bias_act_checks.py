"""Parity checks of the fused biased leaky ReLU against its reference, shared by ``test_bias_act.py``'s CUDA tests
and its Triton-interpreter cases, which run in a child process: ``python tests/bias_act_checks.py OUT.json``
with ``TRITON_INTERPRET=1`` writes ``{case: "ok" | traceback}``.

Why a child process: Triton reads ``TRITON_INTERPRET`` when ``@triton.jit`` decorates a function, both ours and
triton's own library (``tl.sum`` ...) at ``import triton``, and triton 3.9 asserts at launch that the two agree; a
process that imported triton for GPUs cannot switch, and one that did with the variable set would run every kernel
in the interpreter. So it is set once, before anything imports triton, in a process of its own.

Tolerances follow from the arithmetic. The yardstick is the reference in float64 on the very values the kernel
reads, so only the kernel's rounding counts: it computes in float32 (unit roundoff u32 = 2^-24) and rounds each
output once to its dtype (u = 2^-24 float32, 2^-8 bfloat16, 2^-11 float16). Per element: z = g * (x * s + b)
takes a product and a fused multiply-add on g * s and g * b (each rounded): |Δz| <= 4 u32 (|g x s| + |g b|);
dx = (g s) dz: 3 roundings. The parameter gradients are blocked float32 sums (at most 12 tree levels in a tile,
8 tiles per row, 12 levels adding the rows, x2 margin): |Δ| <= 64 u32 sum |terms|. Inputs keep |z| >= 0.05
(z drawn at least 0.1 from the kink, x then rounded), so no rounding flips a leaky ReLU branch.
"""

from __future__ import annotations

import json
import math
import sys
import traceback

import torch

from leo_video.kernels.bias_act import bias_act_reference

SLOPE, GAIN = 0.2, math.sqrt(2.0)
U32 = 2.0**-24
UNIT_ROUNDOFF = {torch.float32: U32, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
# Results below the smallest normal number are rounded to a fixed spacing (fp16: 2^-24), not relatively: half of it
# is their absolute rounding error (random fp16 gradients times 0.2 x sqrt(2) land there).
SUBNORMAL_HALF_SPACING = {dtype: torch.finfo(dtype).smallest_normal * u for dtype, u in UNIT_ROUNDOFF.items()}
SUM_LEVELS = 64  # the blocked sums' bound in u32 (module docstring)


def make_inputs(shape, dtype, channels_last: bool, with_scale: bool, device="cpu", seed=0) -> dict:
    """x (dtype, layout), bias (C,) float32 (a parameter), scale (B, C, 1, ...) in dtype (autocast's demodulation)
    or None, dy (dtype); every pre-activation at least 0.05 from 0."""
    g = torch.Generator().manual_seed(seed)
    B, C = shape[:2]
    ones = (1,) * (len(shape) - 2)
    bias = torch.randn(C, generator=g)
    scale = (torch.rand(B, C, *ones, generator=g) + 0.5).to(dtype) if with_scale else None
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    z = z.sign() * (0.1 + z.abs())  # pre-activations away from the kink
    s = 1.0 if scale is None else scale.double()
    x = ((z / GAIN - bias.double().view(1, C, *ones)) / s).to(dtype)
    assert (GAIN * (x.double() * s + bias.double().view(1, C, *ones))).abs().min() >= 0.05  # x's rounding kept it
    dy = torch.randn(shape, generator=g).to(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x, dy = (t.contiguous(memory_format=fmt).to(device) for t in (x, dy))
    return {"x": x, "bias": bias.to(device), "scale": None if scale is None else scale.to(device), "dy": dy}


def run(op, inputs: dict, cast=lambda t: t) -> tuple[torch.Tensor, dict]:
    """y and the gradients of x, bias, scale after ``y.backward(dy)``, on fresh leaves converted by ``cast``."""
    leaves = {k: cast(v).detach().requires_grad_(True) for k, v in inputs.items() if k != "dy" and v is not None}
    y = op(leaves["x"], leaves["bias"], SLOPE, GAIN, leaves.get("scale"))
    y.backward(cast(inputs["dy"]))
    return y, {k: v.grad for k, v in leaves.items()}


def forward_bound(x64, bias64, scale64, y64, u: float) -> torch.Tensor:
    """Per element: rounding y to its dtype (u) plus float32's on z (module docstring); float64 arguments."""
    b = bias64.view(1, -1, *([1] * (x64.dim() - 2)))
    return u * y64.abs() + 4 * U32 * GAIN * ((x64 * (1.0 if scale64 is None else scale64)).abs() + b.abs())


def check_parity(op, inputs: dict, truncating: bool = False) -> None:
    """``op`` (the fused path) within the module docstring's bounds of the float64 reference, in x's layout.

    ``truncating``: the kernel's float32 -> bfloat16 stores drop bits instead of rounding to nearest (Triton's
    interpreter does; GPUs round), which doubles their error bound."""
    x, dtype = inputs["x"], inputs["x"].dtype
    u = UNIT_ROUNDOFF[dtype] * (2 if truncating and dtype == torch.bfloat16 else 1)
    y, grads = run(op, inputs)
    y64, grads64 = run(bias_act_reference, inputs, cast=lambda t: t.double())
    assert y.dtype == dtype and y.shape == x.shape and y.stride() == x.stride()  # dtype and layout kept
    x64, scale64 = x.double(), None if inputs["scale"] is None else inputs["scale"].double()
    assert ((y.double() - y64).abs() <= forward_bound(x64, inputs["bias"].double(), scale64, y64, u)).all(), "y"

    dx, dx64 = grads["x"].double(), grads64["x"]
    assert grads["x"].dtype == dtype and ((dx - dx64).abs() <= (u + 4 * U32) * dx64.abs() + SUBNORMAL_HALF_SPACING[dtype]).all(), "dx"
    dz_abs = (inputs["dy"].double() * torch.where(y64 > 0, 1.0, SLOPE)).abs() * GAIN  # |g dz|
    spatial = tuple(range(2, x.dim()))
    db, db64 = grads["bias"].double(), grads64["bias"]
    assert ((db - db64).abs() <= SUM_LEVELS * U32 * dz_abs.sum((0, *spatial)) + U32 * db64.abs()).all(), "db"
    if scale64 is not None:
        ds, ds64 = grads["scale"].double(), grads64["scale"]
        terms = dz_abs * x64.abs()
        u_torch = UNIT_ROUNDOFF[dtype]  # torch rounds the float32 sums to the scale's dtype
        bound = SUM_LEVELS * U32 * (terms.sum(spatial, keepdim=True) if spatial else terms) + u_torch * ds64.abs()
        assert grads["scale"].dtype == dtype and ((ds - ds64).abs() <= bound).all(), "ds"


# ----------------------------------------------------------------------------- interpreter cases (child process)

# (2, 6, 97, 95): partial tiles on both axes, 2-3 backward programs of up to 8 tiles (NCHW: 1024-pixel tiles of
# 4 channels; NHWC: 512 x 8); (2, 130, 5, 3): NHWC's 128-channel tiles twice; (4, 20): an EqualLinear's (B, C).
SHAPES = [(2, 6, 97, 95), (2, 130, 5, 3), (4, 20)]


def parity_cases() -> dict[str, tuple]:
    """name -> (shape, dtype, channels_last, with_scale) of every layout / dtype / scale combination."""
    cases = {}
    for shape in SHAPES:
        for channels_last in (False, True)[: 2 if len(shape) == 4 else 1]:
            for dtype, dname in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
                for with_scale in (False, True):
                    name = "-".join(["x".join(map(str, shape)), "nhwc" if channels_last else "nchw", dname,
                                     "scale" if with_scale else "bias"])
                    cases[name] = (shape, dtype, channels_last, with_scale)
    return cases


def case_no_grad_odd_strides(fused) -> None:
    """No autograd: the forward kernel alone; a transposed map (neither NCHW- nor NHWC-dense) is copied first."""
    inputs = make_inputs((2, 5, 7, 6), torch.float32, False, True)
    x, bias, scale = inputs["x"].transpose(2, 3), inputs["bias"], inputs["scale"]  # (2, 5, 6, 7)
    with torch.no_grad():
        y = fused(x, bias, SLOPE, GAIN, scale)
        y64 = bias_act_reference(x.double(), bias.double(), SLOPE, GAIN, scale.double())
    assert not y.requires_grad and y.shape == x.shape
    assert ((y.double() - y64).abs() <= forward_bound(x.double(), bias.double(), scale.double(), y64, U32)).all()


def case_gradient_in_another_layout(fused) -> None:
    """The gradient of an NHWC map may arrive NCHW, or expanded (from a sum): the same values."""
    inputs = make_inputs((2, 4, 6, 5), torch.float32, True, False)
    y, grads = run(fused, {**inputs, "dy": inputs["dy"].contiguous()})
    y2, grads2 = run(fused, inputs)
    assert torch.equal(y, y2) and all(torch.equal(grads[k], grads2[k]) for k in grads)
    x = inputs["x"].requires_grad_(True)
    fused(x, inputs["bias"], SLOPE, GAIN).sum().backward()  # dy: ones with stride 0
    torch.testing.assert_close(x.grad, torch.where(y > 0, GAIN, GAIN * SLOPE), rtol=2 * U32, atol=0)


def penalty_grads(op, inputs: dict, cast) -> dict:
    """R1-like: grads of ||d<y, w>/dx||^2 w.r.t. w (= dy), bias and scale (create_graph through ``op``'s backward)."""
    leaves = {k: cast(v).detach().requires_grad_(True) for k, v in inputs.items() if v is not None}
    y = op(leaves["x"], leaves["bias"], SLOPE, GAIN, leaves.get("scale"))
    (dx,) = torch.autograd.grad((y * leaves["dy"]).sum(), leaves["x"], create_graph=True)
    dx.square().sum().backward()
    return {k: v.grad for k, v in leaves.items() if k != "x"}


def case_double_backward(fused, with_scale: bool) -> None:
    """R1's penalty differentiates D's input gradient: the fused Function's backward is differentiable; second-order
    gradients within a few products and one float32 sum of float64's."""
    inputs = make_inputs((2, 3, 5, 4), torch.float32, False, with_scale)
    ours = penalty_grads(fused, inputs, lambda t: t)
    exact = penalty_grads(bias_act_reference, inputs, torch.Tensor.double)
    assert set(ours) == set(exact) == {"bias", "dy"} | ({"scale"} if with_scale else set())
    assert not exact["bias"].any() and (ours["bias"] is None or not ours["bias"].any())  # lrelu'' = 0
    for name in set(ours) - {"bias"}:
        torch.testing.assert_close(ours[name].double(), exact[name], rtol=SUM_LEVELS * U32, atol=SUM_LEVELS * U32)


def interpreter_cases() -> dict:
    """Every case the child runs: name -> function of the fused op."""
    cases = {name: (lambda op, c=c, i=i: check_parity(op, make_inputs(*c, seed=i), truncating=True))
             for i, (name, c) in enumerate(parity_cases().items())}  # fmt: skip
    cases["no-grad-odd-strides"] = case_no_grad_odd_strides
    cases["gradient-in-another-layout"] = case_gradient_in_another_layout
    cases["double-backward-bias"] = lambda op: case_double_backward(op, False)
    cases["double-backward-scale"] = lambda op: case_double_backward(op, True)
    return cases


def main(out: str) -> None:
    """Run every interpreter case on CPU (``TRITON_INTERPRET=1`` set before this process imports triton)."""
    torch.set_num_threads(1)
    from leo_video.kernels import bias_act_triton

    assert type(bias_act_triton._bias_act_forward).__name__ == "InterpretedFunction", "TRITON_INTERPRET=1 not in effect"
    results = {}
    for name, case in interpreter_cases().items():
        try:
            case(bias_act_triton.biased_leaky_relu)
            results[name] = "ok"
        except Exception:  # reported per case by the parent test
            results[name] = traceback.format_exc()
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])

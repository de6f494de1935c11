"""The fused biased leaky ReLU (``leo_video.kernels``): the Triton kernel against the plain-PyTorch reference.

On CPU the kernels run in Triton's interpreter, in one child process with ``TRITON_INTERPRET=1``
(``bias_act_checks.py`` says why and derives the tolerances); each case is reported here as its own test.
What only the compiler checks is covered by compiling the kernels for the H100 (sm_90) without a GPU. Without
triton these tests skip, except under ``CI=true``, where they fail. The ``gpu`` tests run the automatic path on
CUDA tensors with the same checks, and the discriminator's R1 step through it.
"""

from __future__ import annotations


import copy
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bias_act_checks import GAIN, SLOPE, U32, check_parity, interpreter_cases, make_inputs

import leo_video
from leo_video import kernels
from leo_video.kernels.bias_act import bias_act, bias_act_reference, fusable, fused_applies

CHECKS = Path(__file__).with_name("bias_act_checks.py")


# ----------------------------------------------------------------------------- Triton's interpreter (CPU)


def require_triton() -> None:
    """Skip without triton, except under ``CI=true``: there the CPU checks of the kernels must run."""
    if importlib.util.find_spec("triton") is None:
        message = "triton is not installed (make install, or pip install triton)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports this checkout's package, on one thread."""
    src = str(Path(leo_video.__file__).parents[1])  # whatever else is installed
    path = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory) -> dict[str, str]:
    """``{case: "ok" | traceback}`` from one child process running every case in Triton's interpreter."""
    require_triton()
    out = tmp_path_factory.mktemp("interpreter") / "results.json"
    done = subprocess.run([sys.executable, str(CHECKS), str(out)], env=child_env(TRITON_INTERPRET="1"),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0 and out.is_file(), done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("case", list(interpreter_cases()))
def test_interpreted_kernel(interpreted, case):
    """Forward and backward (x, bias, scale gradients) in fp32 and bf16, NCHW and NHWC, odd shapes; no-grad;
    gradients in another layout; R1's double backward."""
    assert interpreted[case] == "ok", interpreted[case]


# ----------------------------------------------------------------------------- dispatch (no triton needed)


def test_cpu_always_runs_the_reference():
    inputs = make_inputs((2, 3, 4, 4), torch.float32, False, True)
    x, bias, scale = inputs["x"], inputs["bias"], inputs["scale"]
    assert not fused_applies(x, bias, SLOPE, GAIN, scale)
    assert torch.equal(bias_act(x, bias, SLOPE, GAIN, scale), bias_act_reference(x, bias, SLOPE, GAIN, scale))


def test_fusable_covers_what_the_kernel_computes():
    x = torch.zeros(2, 3, 4, 4)
    bias, scale = torch.zeros(1, 3, 1, 1), torch.ones(2, 3, 1, 1)
    assert fusable(x, bias, SLOPE, GAIN, scale) and fusable(x.bfloat16(), bias, SLOPE, GAIN)
    assert fusable(x[:, :, 0, 0], bias, SLOPE, GAIN, scale[:, :, 0, 0])  # EqualLinear's (B, C)
    assert not fusable(x.double(), bias, SLOPE, GAIN)  # float64: the parity tests' reference
    assert not fusable(x, torch.zeros(4), SLOPE, GAIN)  # bias of another width
    assert not fusable(x, bias, SLOPE, GAIN, torch.ones(1, 3, 1, 1))  # a scale broadcast over the batch
    assert not fusable(x, bias, -0.1, GAIN) and not fusable(x, bias, SLOPE, -1.0)  # z's sign is not y's
    assert not fusable(x[:0], bias, SLOPE, GAIN)  # empty


def test_switches(monkeypatch):
    monkeypatch.setattr(kernels, "triton_available", lambda: True)
    monkeypatch.delenv(kernels.FUSED_ENV, raising=False)
    assert kernels.fused_enabled()
    monkeypatch.setenv(kernels.FUSED_ENV, "0")
    assert not kernels.fused_enabled()
    monkeypatch.setenv(kernels.FUSED_ENV, "1")
    kernels.set_fused(False)  # conftest restores the switch after the test
    assert not kernels.fused_enabled()
    kernels.set_fused(True)
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    assert not kernels.fused_enabled()


def test_package_runs_without_triton():
    """With ``import triton`` failing, the StyleGAN2 layers import and train, and the switch says no."""
    code = (
        "import sys; sys.modules['triton'] = None\n"  # `import triton` raises ImportError
        "import torch\n"
        "from leo_video.models.stylegan2 import StyledConv\n"
        "from leo_video.kernels import fused_enabled\n"
        "layer = StyledConv(3, 4, 3, style_dim=5)\n"
        "layer(torch.randn(2, 3, 8, 8), torch.randn(2, 5)).sum().backward()\n"
        "assert layer.activate.bias.grad.shape == (1, 4, 1, 1) and not fused_enabled()\n"
        "assert 'leo_video.kernels.bias_act_triton' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


# ----------------------------------------------------------------------------- CUDA


# Maps of the 256² LIA generator (smaller batches): 64 channels at 128², 512 at 8², the RGB head's 3 channels,
# the discriminator's EqualLinear (B, C).
GPU_SHAPES = [(2, 64, 128, 128), (8, 512, 8, 8), (4, 3, 64, 64), (8, 512)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("with_scale", [False, True], ids=["bias", "scale"])
def test_cuda_fused_matches_reference(shape, channels_last, dtype, with_scale):
    if channels_last and len(shape) != 4:
        pytest.skip("channels_last is a 4-D layout")
    assert kernels.fused_enabled(), "triton must import on the GPU machine (and LEO_FUSED not be 0)"
    inputs = make_inputs(shape, dtype, channels_last, with_scale, device="cuda")
    assert fusable(inputs["x"], inputs["bias"], SLOPE, GAIN, inputs["scale"])
    check_parity(functools.partial(bias_act, impl="triton"), inputs)


@pytest.mark.gpu
def test_cuda_fused_past_int32_offsets():
    """A bf16 map of more than 2^31 elements (4.3 GB): the samples' starts need int64 offsets. The first and last
    samples against the reference run on them alone (bf16 rounding of float32); the bias gradient against its
    exact value g * (positives + slope * negatives) per channel (dy = 1)."""
    x = torch.randn(33, 64, 1024, 1024, device="cuda", dtype=torch.bfloat16).requires_grad_(True)
    assert x.numel() > 2**31
    bias = torch.randn(64, device="cuda", requires_grad=True)
    y = bias_act(x, bias, SLOPE, GAIN)
    y.backward(torch.ones_like(y))
    for n in (0, 32):
        xn = x.detach()[n : n + 1].float().requires_grad_(True)
        yn = bias_act_reference(xn, bias.detach(), SLOPE, GAIN)
        yn.backward(torch.ones_like(yn))
        # bf16 rounding of y, plus float32's of either path on z: 4 u32 (|g x| + |g b|) < 1e-5 for |x| < 7, |b| < 5
        torch.testing.assert_close(y[n : n + 1].float(), yn, rtol=2**-8, atol=1e-5)
        torch.testing.assert_close(x.grad[n : n + 1].float(), xn.grad, rtol=2**-8, atol=0)
    positives = (y > 0).sum((0, 2, 3), dtype=torch.float64)
    exact = GAIN * (positives + SLOPE * (y[0].numel() // 64 * 33 - positives))
    assert ((bias.grad.double() - exact).abs() <= 64 * U32 * GAIN * y[0, 0].numel() * 33).all()


@pytest.mark.gpu
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_cuda_discriminator_with_r1_keeps_parity(channels_last, monkeypatch):
    """D's loss with the R1 penalty (a double backward through every fused activation) on CUDA in float32: its
    gradients as close to float64's as the plain ops' are (measured in the interpreter on CPU: 2.6e-7 relative,
    either path)."""
    from leo_video.models.discriminator import Discriminator
    from leo_video.train.losses import r1_penalty

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    critic, real = Discriminator(64, channel_max=32).double(), torch.randn(4, 3, 64, 64, dtype=torch.float64)

    def grads(device: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        fmt = torch.channels_last if channels_last and device == "cuda" else torch.contiguous_format
        d = copy.deepcopy(critic).to(device=device, dtype=dtype).to(memory_format=fmt)
        x = real.to(device, dtype).contiguous(memory_format=fmt).requires_grad_(True)
        logits = d(x)
        (torch.nn.functional.softplus(logits).mean() + 5 * r1_penalty(logits, x)).backward()
        return {name: p.grad.double().cpu() for name, p in d.named_parameters()}

    exact = grads("cpu", torch.float64)
    assert kernels.fused_enabled(), "triton must import on the GPU machine (and LEO_FUSED not be 0)"

    def relative_error(g: dict) -> float:
        squares = sum(((g[name] - e) ** 2).sum() for name, e in exact.items())
        return (squares / sum((e**2).sum() for e in exact.values())).sqrt().item()

    fused = grads("cuda", torch.float32)
    monkeypatch.setenv(kernels.FUSED_ENV, "0")
    assert relative_error(fused) <= 1.5 * relative_error(grads("cuda", torch.float32)) + 1e-6


# ----------------------------------------------------------------------------- compiling for the H100, without one


def test_kernels_compile_for_sm90():
    """Triton's interpreter runs Python, so it misses what only the compiler checks (types, constexpr branches,
    block shapes): compile the variants the 256² animator launches, bf16 maps in both layouts, for sm_90
    (the H100) through triton's own ptxas, no GPU needed."""
    require_triton()
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from leo_video.kernels import bias_act_triton as K

    if "constexprs" not in inspect.signature(ASTSource).parameters:
        pytest.skip(f"triton {triton.__version__}: ASTSource takes another signature (3.3+ needed for this check)")
    divisible = [["tt.divisibility", 16]]  # what the launcher tells the compiler about 16-aligned pointers and sizes

    def compile_kernel(fn, types: dict[str, str], constexprs: dict) -> None:
        signature = {**types, **{name: "constexpr" for name in constexprs}}
        attrs = {(i,): divisible for i, t in enumerate(types.values()) if t.startswith("*") or t == "i32"}
        options = {"num_warps": K._warps(constexprs["BLOCK_S"], constexprs["BLOCK_C"]), "enable_fp_fusion": True}
        triton.compile(ASTSource(fn, signature, constexprs, attrs), target=GPUTarget("cuda", 90, 32), options=options)

    scalars = {"S": "i32", "C": "i32", "slope": "fp32", "gain": "fp32"}
    # (C, pixels, NHWC, scale): 64 channels at 256² in both layouts (with the demodulation scale in NHWC), the RGB
    # head's 3 channels in NHWC, 512 at 8² with a scale, and an EqualLinear's (B, C) (one pixel)
    for C, S, channels_last, has_scale in [(64, 65536, False, False), (64, 65536, True, True), (3, 65536, True, False),
                                           (512, 64, True, True), (512, 1, False, False)]:  # fmt: skip
        flags = {"HAS_SCALE": has_scale, "CHANNELS_LAST": channels_last}
        block_s, block_c = K._blocks(S, C, channels_last)
        types = {"x_ptr": "*bf16", "bias_ptr": "*fp32", "scale_ptr": "*bf16", "y_ptr": "*bf16", **scalars}
        compile_kernel(K._bias_act_forward, types, {**flags, "BLOCK_S": block_s, "BLOCK_C": block_c})
        block_s, block_c, iters, _ = K.backward_tiles(S, C, channels_last)
        types = {"dy_ptr": "*bf16", "saved_ptr": "*bf16", "bias_ptr": "*fp32", "scale_ptr": "*bf16",
                 "dx_ptr": "*bf16", "db_ptr": "*fp32", "ds_ptr": "*fp32", **scalars}
        compile_kernel(K._bias_act_backward, types, {**flags, "SAVED_X": has_scale, "WANT_DX": True,
                                                     "WANT_DS": has_scale, "BLOCK_S": block_s, "BLOCK_C": block_c,
                                                     "ITERS": iters})

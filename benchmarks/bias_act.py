"""Issue 22: the biased leaky ReLU alone, Triton kernel vs the plain-PyTorch reference, at LIA's training maps.

The maps are those of one forward of the ``--size`` animator and discriminator (recorded at batch 1 under bf16
autocast in channels_last, as ``train lia`` runs on a GPU), at ``--batch`` samples: map dtype and layout, bias
(float32 parameter) and demodulation scale as the layers pass them. Each map is timed forward (inputs requiring
grad, as in training) and forward + backward (``torch.autograd.grad`` of x, bias and scale: no accumulation
pass), ``--iters`` calls per timing, best of ``--repeats``. "GB/s" is the fused path's minimum traffic (forward:
read x, write y; backward: read dy and y or x, write dx) over its time; an H100's HBM3 peak is about 3,350 GB/s.

    python benchmarks/bias_act.py                                    # CUDA: 256², batch 32, bf16 channels_last
    python benchmarks/bias_act.py --device cpu --size 64 --channel-max 16 --style-dim 32 --batch 2 --repeats 1 \\
        --iters 1                                                    # smoke size (the reference only)
"""

from __future__ import annotations

import argparse
from collections import Counter
from unittest import mock

import _bench
import torch

from leo_video.kernels.bias_act import bias_act
from leo_video.models.discriminator import Discriminator
from leo_video.models.lia import LatentImageAnimator
from leo_video.models.stylegan2 import LEAKY_GAIN, LEAKY_SLOPE

# (network, C, H, W, channels_last, map dtype, scale dtype or None): one kind of call
Call = tuple[str, int, int, int, bool, torch.dtype, "torch.dtype | None"]


def recorded_calls(args: argparse.Namespace, device: torch.device) -> Counter[Call]:
    """How often each kind of map reaches the activation in one forward of the animator and of the discriminator."""
    calls: Counter[Call] = Counter()
    networks = {"G": LatentImageAnimator(args.size, style_dim=args.style_dim, channel_max=args.channel_max),
                "D": Discriminator(args.size, channel_max=args.channel_max)}  # fmt: skip
    shape = (1, 3, args.size, args.size)
    images = [(torch.rand(shape, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)
              for _ in range(2)]  # source, driving  # fmt: skip
    for name, net in networks.items():
        net = net.to(device, memory_format=torch.channels_last)

        def record(x, bias, slope, gain, scale=None, name=name):
            cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
            H, W = (x.shape[2], x.shape[3]) if x.dim() == 4 else (1, 1)
            calls[(name, x.shape[1], H, W, cl, x.dtype, None if scale is None else scale.dtype)] += 1
            return bias_act(x, bias, slope, gain, scale)

        with mock.patch("leo_video.models.stylegan2.bias_act", record), torch.no_grad(), \
                torch.autocast(device.type, torch.bfloat16):  # fmt: skip
            net(*images) if name == "G" else net(images[0])
        del net
    return calls


def map_inputs(call: Call, batch: int, device: torch.device) -> dict[str, torch.Tensor | None]:
    """Random x, bias, scale (requiring grad) and dy for one kind of call at ``batch`` samples."""
    _, C, H, W, cl, dtype, scale_dtype = call
    shape = (batch, C, H, W) if (H, W) != (1, 1) or cl else (batch, C)
    x = torch.randn(shape, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last) if cl else x
    bias = torch.randn(1, C, 1, 1, device=device)
    scale = None if scale_dtype is None else torch.rand(batch, C, 1, 1, device=device, dtype=scale_dtype) + 0.5
    leaves = [t.requires_grad_(True) for t in (x, bias, scale) if t is not None]
    return {"x": x, "bias": bias, "scale": scale, "dy": torch.randn_like(x), "leaves": leaves}


def time_map(inputs: dict, impl: str, args: argparse.Namespace, device: torch.device) -> tuple[float, float, list]:
    """(forward s, forward + backward s) of one call, and the outputs (y, grads) of the last."""
    def forward():
        return bias_act(inputs["x"], inputs["bias"], LEAKY_SLOPE, LEAKY_GAIN, inputs["scale"], impl=impl)

    def loop(fn):
        return lambda: [fn() for _ in range(args.iters)]

    fwd = _bench.best_time(loop(forward), device, args.repeats) / args.iters
    fwd_bwd = _bench.best_time(loop(lambda: torch.autograd.grad(forward(), inputs["leaves"], inputs["dy"])),
                               device, args.repeats) / args.iters
    y = forward()
    return fwd, fwd_bwd, [y.detach(), *torch.autograd.grad(y, inputs["leaves"], inputs["dy"])]


def traffic(inputs: dict) -> tuple[int, int]:
    """Minimum bytes moved by the fused forward and backward passes."""
    x = inputs["x"]
    nbytes = x.numel() * x.element_size()
    return 2 * nbytes, 3 * nbytes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_common_args(parser)
    parser.add_argument("--name", default="bias_act", help="report name (<out>/<name>.md)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--iters", type=int, default=10, help="calls per timing")
    args = parser.parse_args(argv)
    device = _bench.setup(args)
    calls = recorded_calls(args, device)
    impls = ["reference"] + (["triton"] if device.type == "cuda" else [])
    report = _bench.Report(args.name, "Fused biased leaky ReLU (issue 22)", device)
    rows, totals = [], {impl: [0.0, 0.0] for impl in impls}
    with _bench.interruptible(report):
        for call in sorted(calls, key=lambda c: (c[0], -c[2], c[1], c[6] is None)):
            inputs = map_inputs(call, args.batch, device)
            measured = {impl: time_map(inputs, impl, args, device) for impl in impls}
            for impl, (fwd, both, _) in measured.items():
                totals[impl][0] += calls[call] * fwd
                totals[impl][1] += calls[call] * both
            rows.append(map_row(call, calls[call], inputs, measured))
            report.data["x".join(map(str, call[1:4])) + f"/{call[0]}/{'scale' if call[6] else 'bias'}"] = {
                impl: {"forward_s": m[0], "forward_backward_s": m[1]} for impl, m in measured.items()}
            del inputs, measured
    columns = ["net", "map (C x H x W)", "layout", "scale", "calls", "fwd ref ms", "fwd Triton ms",
               "fwd+bwd ref ms", "fwd+bwd Triton ms", "speed-up fwd+bwd", "Triton GB/s fwd+bwd", "max |Δ| y / dx"]
    rows.append(total_row(totals, len(columns)))
    report.table(f"One call per map at batch {args.batch}, {args.size}² animator (G) and discriminator (D)",
                 columns, rows)
    report.data["total"] = {impl: {"forward_s": t[0], "forward_backward_s": t[1]} for impl, t in totals.items()}
    report.notes.append(f"Maps recorded from one bf16-autocast forward of each network; best of {args.repeats} x "
                        f"{args.iters} calls; 'total' weighs each map by its calls per forward.")
    report.write(args.out)


def map_row(call: Call, count: int, inputs: dict, measured: dict) -> list[str]:
    net, C, H, W, cl, dtype, scale_dtype = call
    ref = measured["reference"]
    tri = measured.get("triton")
    ms = lambda s: f"{1000 * s:.3f}"  # noqa: E731
    linear = (H, W) == (1, 1) and not cl  # an EqualLinear's (B, C)
    row = [net, f"{C} (B, C)" if linear else f"{C} x {H} x {W}", "—" if linear else "NHWC" if cl else "NCHW",
           str(scale_dtype).replace("torch.", "") if scale_dtype else "—", str(count), ms(ref[0]),
           ms(tri[0]) if tri else "—", ms(ref[1]), ms(tri[1]) if tri else "—"]
    if not tri:
        return row + ["—", "—", "—"]
    fwd_bytes, bwd_bytes = traffic(inputs)
    diffs = [(a.float() - b.float()).abs().max().item() for a, b in zip(tri[2][:2], ref[2][:2])]
    return row + [f"{ref[1] / tri[1]:.2f}x", f"{(fwd_bytes + bwd_bytes) / tri[1] / 1e9:,.0f}",
                  " / ".join(f"{d:.2g}" for d in diffs)]


def total_row(totals: dict, width: int) -> list[str]:
    ref, tri = totals["reference"], totals.get("triton")
    ms = lambda s: f"{1000 * s:.2f}"  # noqa: E731
    row = ["**total**", "", "", "", "", ms(ref[0]), ms(tri[0]) if tri else "—", ms(ref[1]),
           ms(tri[1]) if tri else "—", f"{ref[1] / tri[1]:.2f}x" if tri else "—"]
    return row + [""] * (width - len(row))


if __name__ == "__main__":
    main()

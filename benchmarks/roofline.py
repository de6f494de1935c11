"""Issue 22: the roofline of one training step — the fastest a card could run it, operator by operator.

Every ATen operator of one real training step is recorded below autograd, as a device would run it: LIA's
``LIATrainingTask.train_step`` (G step + D step, the ``taichi256`` recipe, random pairs; ``--stage lia``) or the
cDDPM's (``training_loss`` + AdamW; ``--stage cddpm``). For each: its FLOPs (torch's own FLOP formulas, the ones
``FlopCounterMode`` sums) and the bytes it must move (every distinct tensor it reads and writes, once, at
2 bytes per floating element as under bf16 autocast). On a card with peak ``P`` FLOP/s and memory bandwidth
``W`` bytes/s an operator cannot take less than ``max(FLOPs / P, bytes / W)``; the sum over the step is its
roofline time, and FLOPs / P over that is the highest MFU the step can reach **without fusing more operators**.
``--fused on`` records LIA's large activations as the Triton bias-act kernel's one pass each way, as ``train lia``
runs them on CUDA. Compare the classes with the measured profile's "kernel time by class"
(``train_throughput.py --profile``) to see how far each class's kernels are from their floor.

The step is recorded on the CPU (fp32, contiguous, foreach Adam) at two batch sizes, then every op's FLOPs and
bytes are extrapolated linearly to ``--batch`` (activations scale with the batch; weights and Adam do not).
What this leaves out, on purpose: casts (autocast's copies, in the GPU profile's "copies and casts"), the lazy
R1 step (every 16th D step), and launch gaps. On CUDA the FIR filters run as two banded matmuls on the tensor
cores, whose intermediate map moves about twice the bytes; here they are the one-pass depthwise convolutions
they compute, so their floor is the lower one.

    python benchmarks/roofline.py --card H100 --size 256 --batch 32 64   # ~10 min on 2 CPU cores
    python benchmarks/roofline.py --stage cddpm --size 256 --batch 16     # the cDDPM 'base' step, ~6 min
    python benchmarks/roofline.py --size 64 --channel-max 32 --style-dim 32 --no-vgg --batch 16   # smoke size
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from collections import defaultdict
from types import SimpleNamespace
from unittest import mock

import _bench
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

# Dense bf16 peak (FLOP/s) and memory bandwidth (bytes/s) of the cards the roofline is drawn for (datasheets).
CARDS = {"H100": (989e12, 3.35e12), "H200": (989e12, 4.8e12), "H100 PCIe": (756e12, 2.0e12), "A100": (312e12, 2.04e12)}
BYTES_PER_ELEMENT = 2  # bf16 autocast: activations, their gradients and the casts' outputs are 2 bytes


def op_class(name: str, depthwise: bool, optimizer: bool) -> str:
    """The class of one ATen op (``name`` like ``aten.convolution.default``)."""
    if optimizer:
        return "optimizer"
    if name.startswith(("aten.convolution", "aten._convolution")):
        return "FIR filters (depthwise convolutions)" if depthwise else "dense convolutions"
    if name.startswith(("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm")):
        return "matmuls"
    if "grid_sampler" in name:
        return "grid_sample"
    if "scaled_dot_product" in name or "_flash_attention" in name or "_efficient_attention" in name:
        return "attention"
    if name.startswith(("aten.native_group_norm", "aten.native_layer_norm", "aten.native_batch_norm")):
        return "normalizations"
    if name.startswith(("aten.sum", "aten.mean", "aten.norm", "aten.linalg_vector_norm", "aten.amax", "aten.var",
                        "aten.max_pool", "aten.avg_pool")):
        return "reductions"
    return "pointwise and the rest"


def _depthwise(func, args) -> bool:
    """Whether a convolution (or its backward) reads one input channel per filter: the FIR filters, whose literal
    form convolves every channel alone."""
    name = str(func)
    if name.startswith(("aten.convolution", "aten._convolution")):
        weight = args[2] if name.startswith("aten.convolution_backward") else args[1]
        return weight.shape[1] == 1
    return False


class OpRecorder(TorchDispatchMode):
    """Sums (ops, FLOPs, bytes) per class of every ATen op run inside it; views move no data and are skipped."""

    def __init__(self):
        super().__init__()
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        self.by_op: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # the same, per ATen op
        self.in_optimizer = False
        self.paused = False

    def add(self, cls: str, op: str, flops: float, moved: float) -> None:
        for entry in (self.totals[cls], self.by_op[f"{cls}: {op}"]):
            entry[0] += 1
            entry[1] += flops
            entry[2] += moved

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.paused or func.is_view or func in (torch.ops.aten.detach.default, torch.ops.prim.device.default):
            return out
        flop_fn = flop_registry.get(func._overloadpacket)
        flops = flop_fn(*args, **kwargs, out_val=out) if flop_fn is not None else _cpu_attention_flops(func, args)
        seen, moved = set(), 0
        for t in tree_flatten((args, kwargs))[0] + [None] + tree_flatten(out)[0]:
            if t is None:  # reads above, writes below: an in-place op reads and writes the same tensor
                seen = set()
                continue
            if isinstance(t, torch.Tensor) and t.numel() and (t.data_ptr(), t.numel()) not in seen:
                seen.add((t.data_ptr(), t.numel()))
                moved += t.numel() * (BYTES_PER_ELEMENT if t.is_floating_point() else t.element_size())
        self.add(op_class(str(func), _depthwise(func, args), self.in_optimizer), func._overloadpacket.__name__,
                 flops, moved)
        return out


def _cpu_attention_flops(func, args) -> int:
    """FLOPs of the CPU's flash attention, which torch's FLOP formulas leave out (they count the CUDA kernels):
    the same formulas by shape (batch, heads, length, head dim)."""
    name = str(func)
    if name.startswith("aten._scaled_dot_product_flash_attention_for_cpu_backward"):
        return sdpa_backward_flop_count(*(t.shape for t in args[:4]))
    if name.startswith("aten._scaled_dot_product_flash_attention_for_cpu"):
        return sdpa_flop_count(*(t.shape for t in args[:3]))
    return 0


def _bytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() * BYTES_PER_ELEMENT for t in tensors if t is not None)


class FusedBiasActModel(torch.autograd.Function):
    """The Triton bias-act kernel's traffic, for the roofline of the step as CUDA runs it: computes with the
    reference ops unrecorded, and records one pass per direction as the kernel makes it (forward: read x, write
    y; backward: read dy and the saved map, write dx; the bias and scale gradients are reduced in that pass)."""

    @staticmethod
    def forward(ctx, x, bias, scale, slope, gain, recorder):
        from leo_video.kernels.bias_act import bias_act_reference

        recorder.paused = True
        try:
            y = bias_act_reference(x, bias, slope, gain, scale)
        finally:
            recorder.paused = False
        recorder.add("pointwise and the rest", "fused bias_act (Triton) forward", 0, _bytes(x, y))
        ctx.save_for_backward(x, bias, scale)
        ctx.slope, ctx.gain, ctx.recorder = slope, gain, recorder
        return y

    @staticmethod
    def backward(ctx, dy):
        from leo_video.kernels.bias_act import bias_act_reference

        x, bias, scale = ctx.saved_tensors
        ctx.recorder.paused = True
        try:
            with torch.enable_grad():
                inputs = [t.detach().requires_grad_(need) for t, need in zip((x, bias, scale), ctx.needs_input_grad)
                          if t is not None]  # fmt: skip
                y = bias_act_reference(*inputs[:2], ctx.slope, ctx.gain, inputs[2] if scale is not None else None)
                wanted = [t for t in inputs if t.requires_grad]
                grads = iter(torch.autograd.grad(y, wanted, dy))
        finally:
            ctx.recorder.paused = False
        out = [next(grads) if t is not None and need else None for t, need in zip((x, bias, scale), ctx.needs_input_grad)]
        ctx.recorder.add("pointwise and the rest", "fused bias_act (Triton) backward", 0,
                         _bytes(dy, x, out[0]))
        return (*out, None, None, None)


@contextlib.contextmanager
def fused_bias_act(recorder: OpRecorder, batch: int):
    """Within the block the StyleGAN2 activations whose map would have at least ``FUSED_MIN_ELEMENTS`` at
    ``batch`` run (and are recorded) as the Triton kernel does on CUDA (:class:`FusedBiasActModel`); smaller
    ones take the reference ops, as there."""
    from leo_video.kernels import bias_act as module
    from leo_video.models import stylegan2

    def routed(x, bias, slope, gain, scale=None):
        if x.numel() // x.shape[0] * batch >= module.FUSED_MIN_ELEMENTS and module.fusable(x, bias, slope, gain, scale):
            return FusedBiasActModel.apply(x, bias, scale, slope, gain, recorder)
        return module.bias_act_reference(x, bias, slope, gain, scale)

    with mock.patch.object(stylegan2, "bias_act", routed):
        yield


def lia_step(args: argparse.Namespace, batch: int):
    """One warmed-up LIA training step at ``batch`` on the CPU, as a callable (each call is the next step; the
    step numbers skip every 16th, the lazy R1 step)."""
    import train_throughput

    task_args = SimpleNamespace(size=args.size, channel_max=args.channel_max, style_dim=args.style_dim, batch=batch,
                                no_vgg=args.no_vgg, perceptual="vgg19")
    device = torch.device("cpu")
    task = train_throughput.lia_task(task_args, "fp32", device, "foreach", "off")
    pairs = train_throughput.random_pairs(task_args, device, 0)
    numbers = (n for n in range(1, 1 << 30) if n % 16)

    def step():
        task.train_step(pairs, next(numbers))

    step.optimizers = [getattr(o, "optimizer", o) for o in task.optimizers.values()]  # inside accelerate's wrapper
    step()  # warm-up: lazily built buffers (VGG, grids) out of the record
    return step


def cddpm_step(args: argparse.Namespace, batch: int):
    """One warmed-up cDDPM training step (``training_loss`` + AdamW with gradient clipping, the
    ``--cddpm-preset`` at ``--size``) at ``batch`` on the CPU, as a callable."""
    import train_throughput

    from leo_video.diffusion.start_frame import StartFrameDiffusion
    from leo_video.train.common import optimizer_step

    model = StartFrameDiffusion.from_preset(args.cddpm_preset, sample_size=args.size)
    task = train_throughput._single_model_task(model, "fp32", torch.device("cpu"), "foreach")
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, args.size, args.size, generator=g) * 2 - 1
    codes = torch.randn(batch, model.motion_dim, generator=g)

    def step():
        loss = task.models["model"](images, codes)
        optimizer_step(task, "model", loss, grad_clip=1.0)

    step.optimizers = [getattr(o, "optimizer", o) for o in task.optimizers.values()]
    step()
    return step


STEPS = {"lia": lia_step, "cddpm": cddpm_step}


def record(step, by_op: bool = False, fused_at: int | None = None) -> dict[str, list[float]]:
    """(ops, FLOPs, bytes) per class of one call of ``step`` (from :func:`lia_step`); ``by_op``: per
    ``"<class>: <ATen op>"`` instead; ``fused_at``: the activations the Triton kernel takes at that batch as
    its passes (:func:`fused_bias_act`)."""
    recorder = OpRecorder()

    def mark(optimizer, *_):
        recorder.in_optimizer = not recorder.in_optimizer  # pre hook: in, post hook: out

    hooks = [h for o in step.optimizers for h in (o.register_step_pre_hook(mark), o.register_step_post_hook(mark))]
    try:
        # the CPU's FIR filters: depthwise (transposed) convolutions, no separate padding pass
        with fused_bias_act(recorder, fused_at) if fused_at else contextlib.nullcontext(), recorder:
            step()
    finally:
        for h in hooks:
            h.remove()
    return dict(recorder.by_op if by_op else recorder.totals)


def roofline(classes: dict[str, list[float]], peak: float, bandwidth: float) -> dict[str, float]:
    """Per class: the roofline seconds ``max(FLOPs / peak, bytes / bandwidth)`` of its ops taken together (ops
    within a class are alike: all bound by compute or all by memory, so the bound of the sums is close to the sum
    of the bounds)."""
    return {c: max(f / peak, b / bandwidth) for c, (_, f, b) in classes.items()}


def extrapolate(small: dict, large: dict, b0: int, b1: int, batch: int) -> dict[str, list[float]]:
    """Each class's (ops, FLOPs, bytes) at ``batch``, linear in the batch through the records at b0 and b1."""
    out = {}
    for c in set(small) | set(large):
        s, g = small.get(c, [0, 0.0, 0.0]), large.get(c, [0, 0.0, 0.0])
        out[c] = [g[0]] + [s[i] + (g[i] - s[i]) * (batch - b0) / (b1 - b0) for i in (1, 2)]
    return out


def draw(report: _bench.Report, ops: dict[str, list[float]], args: argparse.Namespace, batch: int,
         fused: str) -> dict:
    """Add the class table and the top ops by bytes of one extrapolated record to ``report``; returns its data."""
    peak, bandwidth = CARDS[args.card]
    classes: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for key, values in ops.items():
        classes[key.split(": ")[0]] = [a + b for a, b in zip(classes[key.split(": ")[0]], values)]
    seconds = roofline(classes, peak, bandwidth)
    total_s, total_flops = sum(seconds.values()), sum(f for _, f, _ in classes.values())
    rows = []
    for c in sorted(classes, key=lambda c: -seconds[c]):
        calls, flops, moved = classes[c]
        bound = "compute" if flops / peak >= moved / bandwidth else "memory"
        rows.append([c, f"{int(calls):,}", f"{flops / 1e9:,.0f}", f"{moved / 1e9:,.2f}", f"{flops / max(moved, 1):,.0f}",
                     bound, f"{1e3 * seconds[c]:.1f}", f"{100 * seconds[c] / total_s:.1f}%"])
    ceiling = total_flops / peak / total_s
    rows.append(["**step**", "", f"{total_flops / 1e9:,.0f}", f"{sum(b for *_, b in classes.values()) / 1e9:,.2f}",
                 "", "", f"**{1e3 * total_s:.1f}**", f"MFU ceiling **{100 * ceiling:.1f}%**"])
    what = ("plain ops" if fused == "off" or args.stage != "lia" else
            "the Triton bias-act on maps of at least FUSED_MIN_ELEMENTS, as `train lia` runs on CUDA")
    model = f"channel_max {args.channel_max}" if args.stage == "lia" else f"'{args.cddpm_preset}' U-Net"
    report.table(f"{args.size}², batch {batch}, {model}, {what}: roofline on {args.card} "
                 f"({peak / 1e12:.0f} TFLOP/s bf16, {bandwidth / 1e12:.2f} TB/s)",
                 ["class", "ops", "GFLOP", "GB moved", "FLOP/byte", "bound by", "roofline ms", "share"], rows)
    top = sorted(ops.items(), key=lambda kv: -kv[1][2])[:args.top_ops]
    total_bytes = sum(v[2] for v in ops.values())
    report.table(f"{args.size}², batch {batch}, {what}: the {len(top)} ATen ops that move the most bytes",
                 ["class: op", "calls", "GB moved", "roofline ms at the bandwidth", "share of the step's bytes"],
                 [[k, f"{int(n):,}", f"{b / 1e9:,.2f}", f"{1e3 * b / bandwidth:.1f}", f"{100 * b / total_bytes:.1f}%"]
                  for k, (n, _, b) in top])
    return {"classes": dict(classes), "ops": ops, "seconds": seconds, "mfu_ceiling": ceiling}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--name", default="roofline")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stage", choices=sorted(STEPS), default="lia",
                        help="lia: the LIA step (G + D); cddpm: the start-frame diffusion's step (--cddpm-preset)")
    parser.add_argument("--cddpm-preset", default="base")
    parser.add_argument("--card", choices=sorted(CARDS), default="H100")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--no-vgg", action="store_true", help="perceptual loss off (smoke runs)")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64], help="batches the roofline is drawn for")
    parser.add_argument("--record-batches", type=int, nargs=2, default=[4, 8], metavar=("B0", "B1"),
                        help="the two batches recorded on the CPU (linear extrapolation from them; both multiples of "
                             "the discriminator's minibatch-std group of 4, whose statistics are not linear below it)")
    parser.add_argument("--fused", nargs="+", choices=("off", "on"), default=["off", "on"],
                        help="the step with plain ops and/or with the Triton bias-act kernel's passes, a table each")
    parser.add_argument("--top-ops", type=int, default=15, help="rows of the table of ops by bytes moved")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b0, b1 = args.record_batches
    peak, bandwidth = CARDS[args.card]
    stage = {"lia": "LIA", "cddpm": f"cDDPM '{args.cddpm_preset}'"}[args.stage]
    report = _bench.Report(args.name, f"Roofline of one {stage} training step on {args.card} (issue 22)",
                           torch.device("cpu"))
    report.data["setting"] = {"size": args.size, "channel_max": args.channel_max, "card": args.card, "peak": peak,
                              "bandwidth": bandwidth, "record_batches": [b0, b1]}
    steps = {b: STEPS[args.stage](args, b) for b in (b0, b1)}
    plain = {b: record(steps[b], by_op=True) for b in (b0, b1)}  # classes are sums of their ops
    for batch, fused in itertools.product(args.batch, args.fused if args.stage == "lia" else ["off"]):
        # the kernel's size threshold applies to the maps at the drawn batch, not the recorded ones
        records = plain if fused == "off" else {b: record(steps[b], by_op=True, fused_at=batch) for b in (b0, b1)}
        ops = extrapolate(records[b0], records[b1], b0, b1, batch)
        report.data[f"batch{batch}" + ("" if fused == "off" else "_fused")] = draw(report, ops, args, batch, fused)
    report.notes.append(f"Recorded on the CPU at batches {b0} and {b1} (fp32 run, bytes at {BYTES_PER_ELEMENT} per "
                        "floating element), extrapolated linearly; casts, lazy R1 and launch gaps not included.")
    report.write(args.out)


if __name__ == "__main__":
    main()

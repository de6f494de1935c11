"""Shared helpers of the benchmark scripts: timing, FLOP counting, the card's peak, markdown tables.

Every script imports this as ``_bench`` (the scripts' folder is first on ``sys.path`` when they run as
``python benchmarks/<name>.py``). Results are printed as markdown and written to ``--out`` (default
``$OUT`` or ``./bench_out``) as ``<name>.md`` and ``<name>.json``, with the machine, dtype and date.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

# the literal reference of LIA's ops lives with the tests (tests/reference/): importable as ``reference``
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# Dense (no sparsity) bf16 tensor-core peak in FLOP/s, by a substring of the device name.
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "H20": 148e12, "A100": 312e12,
             "L40S": 362e12, "A10G": 70e12, "RTX 4090": 165e12}  # fmt: skip


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--out``, ``--threads``, ``--repeats`` shared by every benchmark."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=os.environ.get("OUT", "bench_out"), help="folder for <name>.md/.json")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (the best is kept)")


def setup(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads``, TF32 off for fp32 (fp32 means fp32 here), seed; returns the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    return torch.device(args.device)


def machine(device: torch.device) -> str:
    """One line naming the card (or CPU), torch version and date."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if device.type == "cuda":
        name = f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(device)}"
        extra = f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
    else:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        name = f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores, load {load:.1f})"
        extra = f"{torch.get_num_threads()} threads"
    return f"{name}; torch {torch.__version__}, {extra}; {date}"


def peak_flops(device: torch.device) -> float | None:
    """The card's dense bf16 peak (FLOP/s), or None when unknown (CPU, unlisted card)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Best wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def count_flops(fn: Callable[[], object]) -> int:
    """Model FLOPs (2 x multiply-adds) of matmuls and convolutions in ``fn()`` (forward and any backward it
    runs). FIR filters count as the depthwise convolutions they are: their banded-matmul form on CUDA does
    more arithmetic (dense rows) for less time, which would inflate a utilisation figure."""
    from torch.utils.flop_counter import FlopCounterMode

    from reference.lia_functional import literal_fir_forwards

    with FlopCounterMode(display=False) as counter, literal_fir_forwards():
        fn()
    return counter.get_total_flops()


def profile_once(fn: Callable[[], object], device: torch.device, record_shapes: bool = False):
    """torch.profiler's record of one call of ``fn()`` (already warmed up), from a synchronised start to a
    synchronised end: host ops, and the CUDA kernels on a GPU."""
    from torch.profiler import ProfilerActivity, profile

    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=record_shapes) as prof:
        fn()
        sync(device)
    return prof


def profile_table(fn: Callable[[], object], device: torch.device, rows: int = 15,
                  dump: str | os.PathLike | None = None) -> tuple[list[list[str]], float]:
    """Top ``rows`` CUDA kernels (or CPU ops) by self time in one call of ``fn()`` (already warmed up):
    rows [name, calls, self ms, share], and the total ms of all kernels (ops). ``dump``: also write
    torch.profiler's own table of the top 100 ops and kernels, grouped by input shape, to that file."""
    cuda = device.type == "cuda"
    prof = profile_once(fn, device, record_shapes=dump is not None)
    if dump is not None:
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        text = prof.key_averages(group_by_input_shape=True).table(sort_by=sort, row_limit=100, max_name_column_width=70)
        Path(dump).parent.mkdir(parents=True, exist_ok=True)
        Path(dump).write_text(text)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key) > 0]
    if cuda:  # kernels only: ops' self device time is their kernels', counted once
        events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(getattr(e, key) for e in events)
    if dump is not None and cuda:
        classes = kernel_classes([(e.key, e.count, getattr(e, key) / 1e3) for e in events])
        lines = ["", "Kernel time by class (one step):", "| class | kernels | ms | share |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {n} | {ms:.2f} | {100 * ms / max(total / 1e3, 1e-9):.1f}% |" for name, n, ms in classes]
        with open(dump, "a") as f:
            f.write("\n".join(lines) + "\n")
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    table = [[e.key[:90].replace("|", "/"), str(e.count), f"{getattr(e, key) / 1e3:.2f}",
              f"{100 * getattr(e, key) / max(total, 1):.1f}%"] for e in events[:rows]]  # fmt: skip
    return table, total / 1e3


# Kernel-name patterns of each class, first match wins (cuDNN/cuBLAS/CUTLASS names vary by version and card).
KERNEL_CLASSES = (
    ("layout transposes", ("nchwtonhwc", "nhwctonchw", "transpose")),
    ("convolution / matmul (tensor cores)", ("xmma", "cudnn", "gemm", "cutlass", "wgrad", "dgrad", "fprop",
                                             "implicit_convolve", "conv2d", "sm90_", "sm80_", "nvjet")),
    ("Triton (fused bias-act and compiled code)", ("triton", "_bias_act_")),
    ("optimizer (multi-tensor)", ("multi_tensor", "fused_adam", "adam")),
    ("grid_sample", ("grid_sampler",)),
    ("reductions", ("reduce_kernel", "reduce", "norm_kernel")),
    ("pooling", ("pool",)),
    ("copies and casts", ("copy", "catarray")),
    ("pointwise (elementwise)", ("elementwise",)),
)


def kernel_classes(kernels: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """(name, calls, ms) of device kernels -> (class, calls, ms) per :data:`KERNEL_CLASSES` class plus
    ``other``, by descending ms: how one step's device time divides between arithmetic and memory passes."""
    sums: dict[str, list] = {}
    for name, calls, ms in kernels:
        low = name.lower()
        cls = next((c for c, pats in KERNEL_CLASSES if any(p in low for p in pats)), "other")
        entry = sums.setdefault(cls, [0, 0.0])
        entry[0] += calls
        entry[1] += ms
    return sorted(((c, n, ms) for c, (n, ms) in sums.items()), key=lambda r: -r[2])


def count_launches(fn: Callable[[], object], device: torch.device) -> dict[str, int | None]:
    """``{"aten_calls", "kernels"}`` of one call of ``fn()`` (already warmed up): the ATen operator calls the host
    dispatches (nested ones included) and, on CUDA, the device kernels that run (None elsewhere). A step whose
    time divided by its kernels is a few microseconds is bound by launching them, not by arithmetic."""
    cuda = device.type == "cuda"
    events = profile_once(fn, device).key_averages()
    aten = sum(e.count for e in events if e.key.startswith("aten::"))
    kernels = sum(e.count for e in events if e.device_type == torch.autograd.DeviceType.CUDA) if cuda else None
    return {"aten_calls": aten, "kernels": kernels}


@contextlib.contextmanager
def budget_guard(seconds: float | None):
    """Yields a callable telling whether ``seconds`` have passed (never, for None)."""
    start = time.perf_counter()
    yield lambda: seconds is not None and time.perf_counter() - start > seconds


@contextlib.contextmanager
def interruptible(report: "Report"):
    """Turn SIGINT (``timeout -s INT``) into a note, so the rows measured so far are still written."""
    try:
        yield
    except KeyboardInterrupt:
        report.notes.append("Interrupted (time limit): the rows after the last table are missing.")


@dataclass
class Report:
    """A named set of markdown tables with notes, written as ``<name>.md`` and ``<name>.json``."""

    name: str
    title: str
    device: torch.device
    sections: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def table(self, heading: str, columns: list[str], rows: list[list[str]]) -> None:
        self.sections.append((heading, columns, rows))

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", f"Machine: {machine(self.device)}", ""]
        for heading, columns, rows in self.sections:
            lines += [f"### {heading}", "", "| " + " | ".join(columns) + " |",
                      "|" + "|".join("---" for _ in columns) + "|"]  # fmt: skip
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def write(self, out: str | os.PathLike) -> Path:
        """Print the markdown and write ``<out>/<name>.md`` and ``.json``; returns the .md path."""
        print(self.markdown(), flush=True)
        return self.save(out)

    def save(self, out: str | os.PathLike) -> Path:
        """Write ``<out>/<name>.md`` and ``.json`` without printing (after every row: a killed run keeps them)."""
        text = self.markdown()
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.md").write_text(text)
        payload = {"machine": machine(self.device), **self.data}
        (folder / f"{self.name}.json").write_text(json.dumps(payload, indent=1, default=str))
        return folder / f"{self.name}.md"


def fmt(value: float | None, digits: int | None = None) -> str:
    """Thousands-separated number (one decimal below 100 unless ``digits`` says), or an em dash for None."""
    if value is None:
        return "—"
    digits = (1 if abs(value) < 100 else 0) if digits is None else digits
    return f"{value:,.{digits}f}"

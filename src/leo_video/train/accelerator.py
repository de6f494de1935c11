"""The accelerate plumbing of the training loop: one :class:`accelerate.Accelerator` per run, and the
process group torn down after the last step."""

from __future__ import annotations

from typing import Any

import torch

from ..configs import LoopConfig


def make_accelerator(loop: LoopConfig, find_unused_parameters: bool = False) -> Any:
    import os

    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # accelerate only sets up multi-process CPU training (gloo) when told cpu=True; without it each
    # torchrun process on a GPU-less machine would silently train alone on the same run folder.
    cpu = loop.cpu or not torch.cuda.is_available()
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched == 1:
        # accelerate keeps its state in process-wide singletons that refuse a second Accelerator with
        # other settings (say bf16 after fp32) in one process (tests, notebooks, the web UI). With a
        # single process there is no process group to lose, so start from a clean state. Private API, kept on
        # purpose: accelerate has no public reset (its own test utilities call this); test_train_loop.py runs it.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    ddp = DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)
    acc = Accelerator(mixed_precision=loop.mixed_precision, gradient_accumulation_steps=loop.grad_accum_steps,
                      cpu=cpu, log_with=None, kwargs_handlers=[ddp], dynamo_plugin=dynamo_plugin(loop))  # fmt: skip
    if acc.num_processes != launched:
        raise RuntimeError(f"launched {launched} processes but accelerate sees {acc.num_processes}")
    return acc


def dynamo_plugin(loop: LoopConfig) -> Any:
    """accelerate's torch.compile settings: ``train.dynamo_backend`` with ``train.compile_mode`` (None: eager)."""
    from accelerate.utils import TorchDynamoPlugin

    if loop.dynamo_backend == "no":
        return TorchDynamoPlugin(backend="no")
    # the mode always from the config: left None, accelerate would read ACCELERATE_DYNAMO_MODE instead
    return TorchDynamoPlugin(backend=loop.dynamo_backend, mode=loop.compile_mode)


def optimizer_kernel(impl: str, device: torch.device) -> dict[str, bool]:
    """The ``fused`` / ``foreach`` arguments of torch's Adam and AdamW for ``train.optimizer_impl``.

    ``auto``: ``fused`` on CUDA (one fused pass over the parameters instead of foreach's dozen
    multi-tensor passes), ``foreach`` elsewhere. ``for-loop`` is torch's per-parameter reference path.
    """
    if impl == "auto":
        impl = "fused" if device.type == "cuda" else "foreach"
    return {"fused": impl == "fused", "foreach": impl == "foreach"}


def channels_last(setting: str, when_auto: bool | None, device: torch.device, mixed_precision: str) -> bool:
    """Whether a stage's image networks and maps train in channels_last (NHWC, the layout of cuDNN's tensor-core
    convolutions: contiguous maps cost a transpose before and after each) for ``train.memory_format`` ``setting``.

    ``when_auto``: the stage's choice for ``auto`` on CUDA with bf16/fp16: True where a benchmark showed its step
    faster in NHWC (LIA), False where it measured slower (the cDDPM); None: the stage has no image maps and ignores the
    setting (cLMDM, the start-code prior).
    """
    if when_auto is None:
        return False
    if setting == "auto":
        return when_auto and device.type == "cuda" and mixed_precision != "no"
    return setting == "channels_last"


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)``, keeping this run's kernel (``fused`` / ``foreach``): torch would
    restore the saved run's flags with its hyperparameters, and places Adam's step counters by them."""
    kernels = [{k: group[k] for k in ("fused", "foreach") if k in group} for group in optimizer.param_groups]
    groups = [{**saved, **kernel} for saved, kernel in zip(state["param_groups"], kernels)]
    optimizer.load_state_dict({**state, "param_groups": groups})


def gather_ints(accelerator, value: int) -> list[int]:
    """``value`` of every process, by rank (``[value]`` without a process group)."""
    if accelerator.num_processes == 1:
        return [value]
    return [int(v) for v in accelerator.gather(torch.tensor([value], device=accelerator.device)).cpu()]


# Seconds the main thread sleeps (GIL released) after tearing a gloo process group down; see end_distributed.
GLOO_DRAIN_SECONDS = 0.5


def end_distributed(accelerator) -> None:
    """Tear the process group down after the last step, then let gloo's worker threads finish.

    A gloo worker thread marks a collective complete *before* it drops its reference to the work, and that
    drop can free tensors that Python made (an all-gather's outputs, kept alive by the barriers queued after
    it) and so needs the GIL. If the interpreter starts shutting down in between, the thread is killed
    inside a C++ destructor and the process aborts ("terminate called without an active exception",
    SIGABRT) after a run that finished well. A core dump showed exactly this (``ProcessGroupGloo::runLoop``
    → ``~AsyncBarrierWork`` → ``~AsyncAllgatherWork`` → ``take_gil`` during ``Py_FinalizeEx``), in about 1
    of 20 two-process CPU runs under load. ``destroy_process_group`` does not join those threads (the DDP
    wrappers still hold the group) and torch has no call that waits for them, so the main thread sleeps
    briefly with the GIL released: they need milliseconds, the sleep is ``GLOO_DRAIN_SECONDS``.
    """
    import time

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gloo = torch.distributed.get_backend() == "gloo"
        accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()
        if gloo:
            time.sleep(GLOO_DRAIN_SECONDS)

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
                      cpu=cpu, log_with=None, kwargs_handlers=[ddp], dynamo_backend=loop.dynamo_backend)  # fmt: skip
    if acc.num_processes != launched:
        raise RuntimeError(f"launched {launched} processes but accelerate sees {acc.num_processes}")
    return acc


def gather_ints(accelerator, value: int) -> list[int]:
    """``value`` of every process, by rank (``[value]`` without a process group)."""
    if accelerator.num_processes == 1:
        return [value]
    return [int(v) for v in accelerator.gather(torch.tensor([value], device=accelerator.device)).cpu()]


def end_distributed(accelerator) -> None:
    """Tear the process group down after the last step (gloo can abort at interpreter exit otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()

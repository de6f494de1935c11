"""CPU threads for torch on a machine other processes share (issue 24).

Two defaults, both measured in ``benchmarks/cpu_threads.py`` (``benchmarks/RESULTS.md``, "CPU threads"):

* ``OMP_WAIT_POLICY=PASSIVE`` (set by ``leo-video`` before torch loads, unless already set). PyTorch's
  OpenMP threads otherwise spin for a while after each parallel region, waiting for the next one; on a
  busy machine those spinning threads take the cores from the threads with work, and the small ops of a
  64x64 model (thousands of parallel regions a second) made ``leo-video demo`` 4-8x slower with the
  default two threads than with one.
* :func:`auto_threads`: as many intra-op threads as cores that are free (the CPUs this process may use,
  less the 1-minute load average), at least one. An explicit ``OMP_NUM_THREADS`` is respected.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under ``taskset`` or a container)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def auto_threads() -> int:
    """Intra-op threads for now: the available CPUs not already busy (1-minute load average), at least 1."""
    cpus = available_cpus()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cpus, int(cpus - load + 0.5)))


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` torch intra-op threads (None: :func:`auto_threads`, or torch's own
    choice when ``OMP_NUM_THREADS`` is set); the previous count is restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    if threads is None:
        threads = previous if "OMP_NUM_THREADS" in os.environ else auto_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)

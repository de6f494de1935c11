"""Seeding and the resumable data order of the training loop.

* :func:`derive_seed` turns integer keys (seed, stream, rank, step ...) into independent seeds, so
  every random choice of a run is a pure function of ``train.seed`` and where it happens.
* :class:`ResumableSampler` is an endless, rank-sharded sample order whose whole state is one
  integer (the position in the global sample stream it starts at); the global order does not depend
  on the process count.
* :class:`SampleIndex` carries a per-sample seed to the dataset, so random frame pairs and
  augmentations are the same whichever DataLoader worker loads them and after a resume.
"""

from __future__ import annotations

import random
import signal
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

# Independent random streams derived from train.seed.
STREAM_STEP, STREAM_PERM, STREAM_SAMPLE, STREAM_INIT, STREAM_LOADER = range(5)


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys, e.g. ``derive_seed(seed, rank, step)`` (NumPy SeedSequence)."""
    lo, hi = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return (int(hi) << 32 | int(lo)) & (2**63 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (all devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class SampleIndex(int):
    """A dataset index that carries ``seed``: a per-sample seed fixed by the run's seed and the
    sample's position in the data stream (not by which worker loads it)."""

    seed: int

    def __new__(cls, index: int, seed: int) -> "SampleIndex":
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self) -> tuple:  # keep the seed when sent to DataLoader workers
        return (SampleIndex, (int(self), self.seed))


class ResumableSampler(Sampler[int]):
    """An endless, seeded, rank-sharded sample order whose position is one integer.

    The global stream is the concatenation of per-epoch permutations of ``range(length)``. The ``s``-th
    micro-step takes stream positions ``start_sample + [s*G, (s+1)*G)`` with ``G = micro_batch *
    world_size``; rank ``r`` takes its ``micro_batch`` slice of them. The stream and each position's
    sample seed depend only on the seed, so they are the same for any number of processes, and
    starting at ``start_sample`` (the samples a run has consumed) resumes it exactly, even with
    another process count, accumulation or batch size.
    """

    def __init__(self, length: int, seed: int, micro_batch: int, rank: int = 0, world_size: int = 1,
                 start_sample: int = 0) -> None:  # fmt: skip
        if length < 1:
            raise ValueError("empty dataset")
        self.length, self.seed, self.micro_batch = length, seed, micro_batch
        self.rank, self.world_size, self.start = rank, world_size, start_sample
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def __iter__(self) -> Iterator[SampleIndex]:
        group = self.micro_batch * self.world_size
        first = self.start + self.rank * self.micro_batch
        while True:
            for position in range(first, first + self.micro_batch):
                yield SampleIndex(self._index_at(position), derive_seed(self.seed, STREAM_SAMPLE, position))
            first += group

    def _index_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.length)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_PERM, epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.length, generator=generator)
        return int(self._perm[offset])


def worker_init(worker_id: int) -> None:
    """DataLoader workers: seed from torch's per-worker seed; leave Ctrl-C and a scheduler's SIGTERM to the main
    process, which saves a checkpoint and stops (:class:`~leo_video.train.stop_signals.StopSignals`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _forgive_one_sigterm)
    seed_everything(torch.initial_seed() % 2**63)


def _forgive_one_sigterm(signum: int, frame: object) -> None:
    """A scheduler's SIGTERM (SLURM's scancel, time limit or preemption; ``pkill -f``) reaches every process of the
    job, workers included. A worker it killed would take the main process down ("DataLoader worker ... is killed by
    signal: Terminated") before its checkpoint is written, so the first SIGTERM is ignored: the worker serves on until
    the main process shuts the loader down. A second one (the loader's or the interpreter's exit ending a stuck
    worker) ends it as before. Test: test_train_loop.py."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

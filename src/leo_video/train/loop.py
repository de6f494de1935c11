"""The shared training loop of every stage (LIA, cLMDM, alpha prior, cDDPM), on HuggingFace accelerate.

The same code runs on CPU, one GPU, and several GPUs or nodes (``accelerate launch`` or
``torchrun``, DDP), in fp32, bf16 or fp16, with gradient accumulation. The loop owns data order,
seeding, checkpoints, resume, signals, NaN checks, EMA updates and logging; a stage plugs in its
networks and losses as a :class:`TrainingTask`.

The TrainingTask contract
-------------------------
Subclass :class:`TrainingTask` and implement four methods. Before ``setup`` the trainer sets
``self.accelerator``, ``self.config`` (the whole resolved config) and ``self.loop`` (its ``train``
section, a :class:`~leo_video.configs.LoopConfig`).

``setup()``
    Build networks, optimizers (Adam/AdamW with ``**self.optimizer_kernel``) and schedulers; pass
    modules and optimizers through ``self.accelerator.prepare`` and store them in ``self.models`` /
    ``self.optimizers`` / ``self.schedulers`` (dicts by name). Call ``self.track_ema(name)`` for models
    whose EMA you want (a no-op unless ``train.ema``). Raise user errors here (e.g. ``MissingWeightsError``
    for VGG19): they surface before the first step. Global RNGs are seeded from ``train.seed``, so
    initialisation is reproducible.
``dataset() -> torch.utils.data.Dataset``
    A map-style dataset. Batches are ``collate(items)`` (default ``default_collate``) moved to
    ``accelerator.device``. Each index the trainer passes is a :class:`SampleIndex`: an ``int`` with
    a ``.seed`` attribute; a dataset that draws random numbers (frame pairs, crops) should seed
    them from ``getattr(index, "seed", None)`` so that a resumed run sees exactly the same samples.
``train_step(batch, step) -> dict[str, Tensor | float]``
    One micro-batch: forward, ``self.accelerator.backward(loss)``, ``optimizer.step()``, ``optimizer.zero_grad()``
    (the prepared optimizers skip steps while accumulating). Keep LR schedulers out of ``accelerator.prepare``
    (it would step them once per process, though ``train.batch_size`` is already global) and call
    ``scheduler.step()`` only when ``self.accelerator.sync_gradients`` is true, i.e. once per optimizer step.
    ``step`` is the number of optimizer steps completed before this one. Return the scalar losses to log as
    tensors, without reading them (``.item()`` would make the host wait for the GPU every step): the loop reads
    them once per log step and before each save, and a non-finite value stops the run with
    :class:`~leo_video.errors.NumericalError` naming its step, before anything after it is saved. Torch, NumPy
    and Python RNGs are seeded from (seed, rank, step) before every call.
``state_dict()`` / ``load_state_dict(state)``
    The default saves ``models`` (unwrapped), ``optimizers``, ``schedulers`` and ``emas``; extend it
    for extra state. Store only tensors and plain containers (checkpoints load ``weights_only``).

GANs (LIA): one ``train_step`` does the generator update, then the discriminator update, each with its own
prepared optimizer. In the generator step, freeze D (``requires_grad_(False)``, as LIA did, so no gradient
accumulates in D) and score the fakes with the *unwrapped* discriminator (``self.unwrap("discriminator")``):
gradients still reach G through it, while D's DDP wrapper, which expects gradients for D's weights, stays out
of that backward pass.

Optional: ``evaluate(step) -> dict[str, float]`` (called on every rank every ``train.eval_every`` steps;
logged as ``eval/NAME``) and ``log_images(step, logger)`` (main process only, every ``train.image_every``
steps; use unwrapped models, e.g. ``self.unwrap("generator")``, and ``logger.image_grid(tag, rows, step)``).

Example::

    class ToyTask(TrainingTask):
        def setup(self):
            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            self.models["net"], self.optimizers["net"] = self.accelerator.prepare(model, optimizer)
            self.track_ema("net")

        def dataset(self):
            return torch.utils.data.TensorDataset(torch.randn(256, 4), torch.randn(256, 1))

        def train_step(self, batch, step):
            x, y = batch                                         # (B, 4), (B, 1)
            loss = (self.models["net"](x) - y).pow(2).mean()
            self.accelerator.backward(loss)
            self.optimizers["net"].step()
            self.optimizers["net"].zero_grad()
            return {"mse": loss}

    cfg = resolve_config("lia", "synthetic64", ["train.max_steps=100"])   # any config with .train
    result = Trainer(ToyTask(), cfg).fit()

Resume = rerun the same command: ``fit`` loads the newest complete checkpoint of ``train.run_dir`` (skipping a
corrupt newest one with a warning) and continues exactly where it stopped: model/optimizer/EMA state and the
samples consumed are in the checkpoint, and every micro-step reseeds the RNGs from (seed, rank, micro-step). Any
process count may resume any checkpoint (docs/TRAINING.md, "Batch and seed semantics"). SIGTERM/SIGINT finish the
current step, save a checkpoint and return (a second SIGINT aborts).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..config import save_config, to_dict
from ..configs import LoopConfig
from ..errors import CheckpointError, ConfigError, InputError, NumericalError
from . import checkpoint as ckpt
from .accelerator import (channels_last, end_distributed, gather_ints, load_optimizer_state, make_accelerator,
                          optimizer_kernel)
from .logging import LossWindow, RunLogger
from .stop_signals import StopSignals
from .sampler import (
    STREAM_INIT,
    STREAM_LOADER,
    STREAM_STEP,
    ResumableSampler,
    SampleIndex,
    derive_seed,
    seed_everything,
    worker_init,
)

AGREE_EVERY = 8  # steps between agreements on stop flags when there are several processes

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# The task contract


class TrainingTask:
    """A stage's networks, optimizers and losses; see the module docstring for the contract."""

    accelerator: Any
    config: Any
    loop: LoopConfig
    #: DDP option: set True if some parameters of a prepared model get no gradient in a step.
    find_unused_parameters: bool = False
    channels_last_when_auto: bool | None = None  # train.memory_format auto on CUDA: accelerator.channels_last

    def __init__(self) -> None:
        self.stop_reason: str | None = None  # set by monitor(): the run stops, saying why
        self.models: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.emas: dict[str, Any] = {}

    def setup(self) -> None:
        """Build and ``accelerator.prepare`` models and optimizers into the dicts above."""
        raise NotImplementedError

    def dataset(self) -> Dataset:
        """The training set (map-style)."""
        raise NotImplementedError

    def collate(self, items: list) -> Any:
        """Batch a list of dataset items."""
        return default_collate(items)

    def train_step(self, batch: Any, step: int) -> dict[str, torch.Tensor | float]:
        """One micro-batch of training; returns scalar losses by name."""
        raise NotImplementedError

    def evaluate(self, step: int) -> dict[str, float]:
        """Optional periodic evaluation (every rank); returns metrics by name."""
        return {}

    def monitor(self, step: int) -> dict[str, float]:
        """Optional cheap health numbers, every ``train.log_every`` steps on every rank (logged as
        ``monitor/NAME`` and in the log line). Setting ``self.stop_reason`` here stops the run after a
        checkpoint, with that reason as a warning (e.g. LIA's collapsed motion code)."""
        return {}

    def log_images(self, step: int, logger: RunLogger) -> None:
        """Optional image logging (main process)."""

    def start_note(self) -> str:
        """Optional task settings for the run's first line (e.g. ``", channels_last"``)."""
        return ", channels_last" if self.channels_last else ""

    # ---- helpers ----

    @property
    def channels_last(self) -> bool:
        """Whether this stage's image networks and maps train NHWC (``train.memory_format``)."""
        return channels_last(self.loop.memory_format, self.channels_last_when_auto, self.accelerator.device,
                             self.loop.mixed_precision)

    @property
    def optimizer_kernel(self) -> dict[str, bool]:
        """``fused`` / ``foreach`` for torch's Adam(W): ``train.optimizer_impl`` on this run's device."""
        return optimizer_kernel(self.loop.optimizer_impl, self.accelerator.device)

    def unwrap(self, name: str) -> torch.nn.Module:
        """``models[name]`` without DDP / compile wrappers."""
        return self.accelerator.unwrap_model(self.models[name], keep_torch_compile=False)

    def track_ema(self, name: str, decay: float | None = None) -> None:
        """Keep an EMA (diffusers ``EMAModel``) of ``models[name]`` if ``train.ema`` is on."""
        if not self.loop.ema:
            return
        from diffusers.training_utils import EMAModel

        decay = self.loop.ema_decay if decay is None else decay
        self.emas[name] = EMAModel(self.unwrap(name).parameters(), decay=decay, foreach=True)

    @contextlib.contextmanager
    def ema_weights(self, name: str) -> Iterator[torch.nn.Module]:
        """Temporarily load the EMA weights into ``models[name]`` (plain weights without EMA)."""
        module = self.unwrap(name)
        ema = self.emas.get(name)
        if ema is None:
            yield module
            return
        ema.store(module.parameters())
        ema.copy_to(module.parameters())
        try:
            yield module
        finally:
            ema.restore(module.parameters())

    def state_dict(self) -> dict:
        """Models (unwrapped), optimizers, schedulers and EMAs, by name."""
        return {
            "models": {name: self.unwrap(name).state_dict() for name in self.models},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "emas": {name: ema.state_dict() for name, ema in self.emas.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        for name in self.models:
            self.unwrap(name).load_state_dict(state["models"][name])
        for name, opt in self.optimizers.items():
            load_optimizer_state(opt, state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        for name, ema in self.emas.items():
            if name in state.get("emas", {}):
                ema.load_state_dict(state["emas"][name])
                ema.to(device=self.accelerator.device)


# --------------------------------------------------------------------------------------------
# The trainer


@dataclass
class TrainResult:
    """How :meth:`Trainer.fit` ended."""

    step: int  # optimizer steps completed
    interrupted: bool  # stopped by SIGTERM/SIGINT (a checkpoint was saved)
    checkpoint: Path | None  # the newest checkpoint written or resumed from
    resumed_from: int | None  # the step resumed from, or None for a fresh run
    stop_reason: str | None = None  # the task stopped the run (TrainingTask.stop_reason): why


class Trainer:
    """Runs a :class:`TrainingTask` under ``config.train`` (a :class:`LoopConfig`).

    Args:
        task: the stage's task.
        config: the resolved config dataclass (saved as ``run_dir/config.yaml`` and in every
            checkpoint); its ``train`` section drives the loop.
        accelerator: an existing ``accelerate.Accelerator``; by default one is made from
            ``train.mixed_precision``, ``train.grad_accum_steps``, ``train.cpu`` and ``train.dynamo_backend``.
    """

    def __init__(self, task: TrainingTask, config: Any, accelerator: Any = None) -> None:
        self.task, self.config, self.loop = task, config, config.train
        self.run_dir = Path(self.loop.run_dir)
        self.accelerator = accelerator or make_accelerator(self.loop, task.find_unused_parameters)
        self.last_checkpoint: Path | None = None

    @property
    def micro_batch(self) -> int:
        """Samples per process per micro-batch."""
        acc, loop = self.accelerator, self.loop
        parts = acc.num_processes * loop.grad_accum_steps
        if loop.batch_size % parts:
            raise ConfigError(f"train.batch_size = {loop.batch_size} is not divisible by processes x "
                              f"grad_accum_steps = {parts}")  # fmt: skip
        return loop.batch_size // parts

    def fit(self) -> TrainResult:
        """Train until ``train.max_steps`` (resuming if the run has a checkpoint) or a stop signal."""
        acc, task, loop = self.accelerator, self.task, self.loop
        task.accelerator, task.config, task.loop = acc, self.config, loop
        micro_batch = self.micro_batch
        seed_everything(derive_seed(loop.seed, STREAM_INIT))  # same initial weights on every rank
        task.setup()
        self._prepare_run_dir()
        start = self._resume()
        batches = self._batches(task.dataset(), micro_batch, start)
        with RunLogger(self.run_dir, acc.is_main_process, start, loop.max_steps) as log, StopSignals() as stop:
            log.write(self._start_line(start, micro_batch))
            result = self._run(batches, start, log, stop)
        end_distributed(acc)
        return result

    def _start_line(self, start: int, micro_batch: int) -> str:
        """One line saying where and how the run trains, e.g. ``training on 2 processes (cuda), mixed precision
        bf16, batch 64 = 2 x 32, 30 steps, run runs/lia``."""
        acc, loop = self.accelerator, self.loop
        processes = f"{acc.num_processes} process{'es' if acc.num_processes > 1 else ''}"
        accumulation = f" x {loop.grad_accum_steps} accumulated" if loop.grad_accum_steps > 1 else ""
        steps = f"steps {start} -> {loop.max_steps}" if start else f"{loop.max_steps} steps"
        extras = f", torch.compile ({loop.dynamo_backend})" if loop.dynamo_backend != "no" else ""
        extras += self.task.start_note()
        return (f"training on {processes} ({acc.device.type}), mixed precision {acc.mixed_precision}{extras}, batch "
                f"{loop.batch_size} = {acc.num_processes} x {micro_batch}{accumulation}, {steps}, run {self.run_dir}")

    # ---- the loop ----

    def _run(self, batches: Iterator, start: int, log: RunLogger, stop: StopSignals) -> TrainResult:
        """The steps. Nothing here waits for the GPU between log steps (see :class:`LossWindow`): losses are
        read, checked for NaN/inf (exactly, per step) and averaged once per log step and before each save."""
        task, loop = self.task, self.loop
        window, step = LossWindow(), start
        self._clock = (time.perf_counter(), start)
        deadline = time.perf_counter() + loop.max_minutes * 60 if loop.max_minutes else float("inf")
        while step < loop.max_steps:
            self._optimizer_step(batches, step, window)
            step += 1
            self._data_position += loop.batch_size
            stop_now, time_up = self._agree_flags(step, stop.requested, time.perf_counter() >= deadline)
            for name, ema in task.emas.items():
                ema.step(task.unwrap(name).parameters())
            log_step = step % loop.log_every == 0 or step == loop.max_steps
            save = step % loop.checkpoint_every == 0 or step == loop.max_steps or stop_now or time_up
            if log_step or save:
                self._check_finite(window)
            if log_step:
                self._log(step, window, log)
                # the task's monitor ran: every rank stops if any rank's monitor stopped the run
                if any(gather_ints(self.accelerator, int(bool(task.stop_reason)))):
                    task.stop_reason = task.stop_reason or "another process's monitor stopped the run (its log says why)"
            else:
                log.progress(step)
            self._periodic(step, log)
            if save or task.stop_reason:
                self._save(step)
            if task.stop_reason:
                log.write(f"WARNING: stopped at step {step}: {task.stop_reason}; checkpoint {self.last_checkpoint}")
                return TrainResult(step, False, self.last_checkpoint, self._resumed_from, task.stop_reason)
            if stop_now:
                log.write(f"stopped by signal at step {step}; checkpoint {self.last_checkpoint}; rerun to resume")
                return TrainResult(step, True, self.last_checkpoint, self._resumed_from)
            if time_up:  # a finished run, shorter than max_steps (train.max_minutes)
                log.write(f"train.max_minutes={loop.max_minutes} reached at step {step}; checkpoint {self.last_checkpoint}")
                break
        return TrainResult(step, False, self.last_checkpoint, self._resumed_from)

    def _log(self, step: int, window: LossWindow, log: RunLogger) -> None:
        """Scalars (mean losses since the last log, averaged over processes, learning rates, items/s)."""
        now = time.perf_counter()
        since, since_step = self._clock
        rate = (step - since_step) * self.loop.batch_size / max(now - since, 1e-9)
        means, health = self._mean_over_processes(window.pop_means()), self.task.monitor(step)
        log.scalars({**{f"loss/{k}": v for k, v in means.items()}, **{f"monitor/{k}": v for k, v in health.items()},
                     **self._lrs(), "items_per_s": rate}, step)  # fmt: skip
        log.progress(step, {**means, **health})
        self._clock = (now, step)

    def _optimizer_step(self, batches: Iterator, step: int, window: LossWindow) -> None:
        """``grad_accum_steps`` micro-batches through ``task.train_step``; their losses go to ``window``
        under ``step + 1`` (steps completed), unread."""
        acc, task, loop = self.accelerator, self.task, self.loop
        for micro in range(loop.grad_accum_steps):
            seed_everything(derive_seed(loop.seed, STREAM_STEP, acc.process_index, step * loop.grad_accum_steps + micro))
            batch = next(batches)
            with acc.accumulate(*task.models.values()):
                window.add(step + 1, task.train_step(batch, step))

    def _agree_flags(self, step: int, *flags: bool) -> tuple[bool, ...]:
        """Each flag (stop signal, time up) true on every process if any set it. On one process: as given,
        every step. On several, agreeing is a collective that waits for the GPU, so they agree every
        ``AGREE_EVERY`` steps (a signal or the time limit stops them all within that many steps)."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return flags
        if step % AGREE_EVERY and step != self.loop.max_steps:
            return tuple(False for _ in flags)
        votes = torch.tensor([float(f) for f in flags], dtype=torch.float64, device=acc.device)
        return tuple(bool(v > 0) for v in acc.reduce(votes, reduction="sum").cpu())

    def _mean_over_processes(self, means: dict[str, float]) -> dict[str, float]:
        """Each loss averaged over processes (every rank logs the same names at the same steps)."""
        acc = self.accelerator
        if acc.num_processes == 1 or not means:
            return means
        names = sorted(means)
        values = torch.tensor([means[n] for n in names], dtype=torch.float64, device=acc.device)
        values = acc.reduce(values, reduction="sum").cpu()
        return {n: float(v) / acc.num_processes for n, v in zip(names, values)}

    def _check_finite(self, window: LossWindow) -> None:
        """NumericalError naming the first non-finite loss of the window (on any process): before a save."""
        found = window.first_non_finite()
        steps = [s for s in gather_ints(self.accelerator, found[0] if found else 0) if s > 0]
        if not steps:
            return
        here = found is not None and found[0] == min(steps)
        what = f"loss '{found[1]}' is {found[2]}" if here else "a loss is not finite"
        where = "" if here else " on another process"
        raise NumericalError(
            f"{self.run_dir}: {what} at step {min(steps)}{where}; stopped without saving (last good checkpoint: "
            f"{self.last_checkpoint or 'none'}; lower the lr or use fp32, then rerun to resume)"
        )

    def _periodic(self, step: int, log: RunLogger) -> None:
        loop, task = self.loop, self.task
        if loop.eval_every and step % loop.eval_every == 0:
            metrics = task.evaluate(step)
            log.scalars({f"eval/{k}": float(v) for k, v in metrics.items()}, step)
        if loop.image_every and step % loop.image_every == 0 and self.accelerator.is_main_process:
            task.log_images(step, log)

    def _lrs(self) -> dict[str, float]:
        return {f"lr/{name}": float(opt.param_groups[0]["lr"]) for name, opt in self.task.optimizers.items()}

    # ---- data ----

    def _batches(self, dataset: Dataset, micro_batch: int, start: int) -> Iterator:
        acc, loop = self.accelerator, self.loop
        if len(dataset) == 0:
            raise InputError(f"{type(dataset).__name__}: the training set is empty")
        sampler = ResumableSampler(len(dataset), loop.seed, micro_batch, acc.process_index, acc.num_processes,
                                   start_sample=self._data_position)  # fmt: skip
        # Not passed through accelerator.prepare: its dataloader wrappers resume by skipping batches,
        # while this sampler resumes in O(1) from the position stored in the checkpoint.
        generator = torch.Generator().manual_seed(derive_seed(loop.seed, STREAM_LOADER, acc.process_index, start))
        loader = DataLoader(
            dataset, batch_size=micro_batch, sampler=sampler, num_workers=loop.num_workers,
            collate_fn=self.task.collate, pin_memory=acc.device.type == "cuda", generator=generator,
            worker_init_fn=worker_init, persistent_workers=loop.num_workers > 0,
        )  # fmt: skip
        from accelerate.utils import send_to_device

        for batch in loader:
            yield send_to_device(batch, acc.device, non_blocking=True)

    # ---- run folder, checkpoints ----

    def _prepare_run_dir(self) -> None:
        if self.accelerator.is_main_process:
            ckpt.checkpoint_dir(self.run_dir).mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temp_files(self.run_dir)
            save_config(self.config, self.run_dir / "config.yaml")
        self.accelerator.wait_for_everyone()

    def _resume(self) -> int:
        self._resumed_from, self._data_position = None, 0
        found = ckpt.load_latest(self.run_dir)
        self._check_same_start(found)
        if found is None:
            return 0
        path, state = found
        ckpt.warn_config_changes(state["config"], to_dict(self.config), path)
        try:
            self.task.load_state_dict(state["task"])
        except (KeyError, RuntimeError, ValueError) as exc:  # another model, size or dims
            detail = " ".join(str(exc).split())[:240] or type(exc).__name__  # one line
            raise CheckpointError(f"{path}: does not fit this run's models ({detail}); "
                                  f"use another train.run_dir or the matching config") from exc  # fmt: skip
        scaler = self.accelerator.scaler
        if scaler is not None and "scaler" in state.get("loop", {}):
            scaler.load_state_dict(state["loop"]["scaler"])
        if self.accelerator.is_main_process:
            ckpt.restore_rng_state(state["rng"])
        self._data_position = ckpt.samples_consumed(state)
        self.last_checkpoint, self._resumed_from = path, int(state["step"])
        logger.info("resuming from %s (step %d)", path, state["step"])
        return int(state["step"])

    def _check_same_start(self, found: tuple[Path, dict] | None) -> None:
        """Every process must resume from the same step: on several nodes, one that cannot see rank 0's
        checkpoints would otherwise start afresh and train another model under the same DDP."""
        steps = gather_ints(self.accelerator, -1 if found is None else int(found[1]["step"]))
        if len(set(steps)) > 1:
            seen = ", ".join(f"rank {r}: {'none' if s < 0 else f'step {s}'}" for r, s in enumerate(steps))
            raise CheckpointError(f"{self.run_dir}: the processes found different checkpoints ({seen}); "
                                  "train.run_dir must be one folder that every node sees (a shared file system)")

    def _save(self, step: int) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            state = {
                "format": ckpt.CHECKPOINT_FORMAT,
                "version": ckpt.CHECKPOINT_VERSION,
                "step": step,
                "task": self.task.state_dict(),
                "rng": ckpt.capture_rng_state(),
                "data_position": self._data_position,
                "loop": {"scaler": acc.scaler.state_dict()} if acc.scaler is not None else {},
                "config": to_dict(self.config),
                "world_size": acc.num_processes,
            }
            path = ckpt.save_checkpoint(state, ckpt.checkpoint_path(self.run_dir, step))
            ckpt.prune_checkpoints(self.run_dir, self.loop.keep_last)
            self.last_checkpoint = path
        acc.wait_for_everyone()
        self.last_checkpoint = ckpt.checkpoint_path(self.run_dir, step)


__all__ = [
    "TrainingTask", "Trainer", "TrainResult", "ResumableSampler", "SampleIndex", "derive_seed",
    "seed_everything",
]

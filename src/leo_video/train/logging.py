"""Run logging for the training loop: TensorBoard scalars and image grids, ``metrics.jsonl``, tqdm.

Everything here is active on the main process only (other ranks get a logger whose methods do
nothing), so tasks can call it unconditionally.

* TensorBoard event files go to ``RUN_DIR/tb`` (``tensorboard --logdir RUN_DIR/tb``). On resume the
  writer purges events after the resumed step, so curves have no doubled segment.
* ``RUN_DIR/metrics.jsonl`` gets one JSON line per log step (``{"step": 100, "loss/l1": ...}``),
  for scripts and benchmarks that do not read TensorBoard; lines after the resumed step are dropped.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import torch
from einops import rearrange

from ..utils.progress import progress_enabled


class LossWindow:
    """The losses of every step since the last log step, left where they were computed.

    A training step's losses are device tensors; reading one (``.item()``) makes the host wait for the
    GPU to finish that step, so the CPU could no longer queue the next step's kernels while the GPU runs
    this one. The window keeps the tensors and reads them all at once — one device-to-host copy per log
    step or checkpoint — with every step's values, so the first non-finite step is still found exactly.
    Steps may log different names (LIA's ``r1`` only every ``d_reg_every`` steps).
    """

    def __init__(self) -> None:
        self._rows: list[tuple[int, dict[str, Any]]] = []  # (step, {name: 0-d tensor or float})

    def add(self, step: int, losses: dict[str, Any]) -> None:
        self._rows.append((step, {k: v.detach() if torch.is_tensor(v) else float(v) for k, v in losses.items()}))

    def read(self) -> list[tuple[int, dict[str, float]]]:
        """Every step's losses as floats (one host sync for all of them, none when already read)."""
        tensors = [v for _, row in self._rows for v in row.values() if torch.is_tensor(v)]
        if tensors:
            device = tensors[0].device
            values = iter(torch.stack([t.reshape(()).float().to(device) for t in tensors]).tolist())
            self._rows = [(step, {k: next(values) if torch.is_tensor(v) else v for k, v in row.items()})
                          for step, row in self._rows]  # fmt: skip
        return self._rows

    def first_non_finite(self) -> tuple[int, str, float] | None:
        """``(step, name, value)`` of the first non-finite loss in the window, or None."""
        for step, row in self.read():
            for name, value in row.items():
                if not math.isfinite(value):
                    return step, name, value
        return None

    def pop_means(self) -> dict[str, float]:
        """Each name's mean over the steps that logged it; empties the window."""
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for _, row in self.read():
            for name, value in row.items():
                sums[name] += value
                counts[name] += 1
        self._rows = []
        return {name: sums[name] / counts[name] for name in sums}


class RunLogger:
    """TensorBoard + JSONL + progress bar for one run (no-op where ``enabled`` is False).

    Args:
        run_dir: the run folder.
        enabled: True on the main process.
        start_step: the step training resumes from (0 for a fresh run).
        max_steps: total steps, for the progress bar's ETA.
    """

    def __init__(self, run_dir: str | Path, enabled: bool, start_step: int, max_steps: int) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.tb = None
        self.bar = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.tb = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=start_step or None)
        self._jsonl = self.run_dir / "metrics.jsonl"
        _truncate_jsonl(self._jsonl, start_step)
        self.bar = tqdm(total=max_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        file=sys.stderr, desc="train",
                        disable=not progress_enabled())  # fmt: skip

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log named scalars (``"loss/l1"``, ``"lr/generator"``, ``"items_per_s"``) at ``step``."""
        if not self.enabled:
            return
        for name, value in values.items():
            self.tb.add_scalar(name, value, step)
        line = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}}
        with open(self._jsonl, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    def image_grid(self, tag: str, rows: Sequence[torch.Tensor], step: int) -> None:
        """Log images as one grid: each tensor of ``rows`` is a row, ``(B, 3, H, W)`` in [-1, 1].

        E.g. ``logger.image_grid("recon", [source, driving, reconstruction], step)`` shows
        source | driving | reconstruction as three rows of B columns.
        """
        if not self.enabled:
            return
        stack = torch.stack([r.detach().float().cpu() for r in rows])  # (R, B, 3, H, W)
        grid = rearrange(stack, "r b c h w -> c (r h) (b w)")  # (3, R*H, B*W)
        self.tb.add_image(tag, ((grid + 1) / 2).clamp(0, 1), step)

    def progress(self, step: int, postfix: dict[str, float] | None = None) -> None:
        """Advance the progress bar to ``step`` (and show ``postfix`` values)."""
        if not self.enabled:
            return
        self.bar.update(step - self.bar.n)
        if postfix:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def write(self, message: str) -> None:
        """Print a line without breaking the progress bar."""
        if self.enabled:
            self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        if not self.enabled:
            return
        self.tb.flush()
        self.tb.close()
        self.bar.close()

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _truncate_jsonl(path: Path, start_step: int) -> None:
    """Keep only the lines of steps <= ``start_step`` (a resumed run rewrites the rest)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= start_step:
                kept.append(line)
        except (json.JSONDecodeError, AttributeError):  # a torn last line from a kill
            continue
    from ..utils.atomic import atomic_write_text

    atomic_write_text(path, "".join(f"{line}\n" for line in kept))

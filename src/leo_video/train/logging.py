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


class MeanTracker:
    """Running means of named scalars between two log steps."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._sums[name] += value
            self._counts[name] += 1

    def pop(self) -> dict[str, float]:
        """The means since the last ``pop``; resets the tracker."""
        means = {name: self._sums[name] / self._counts[name] for name in self._sums}
        self._sums.clear()
        self._counts.clear()
        return means


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

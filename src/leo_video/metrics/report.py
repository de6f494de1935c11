"""Evaluation reports: ``report.json`` (machine-readable), ``report.md`` (for people), PNG plots.

A report is a plain dict (see :func:`write_report`)::

    {"title": str, "created": ISO time, "leo_video_version": str,
     "inputs": {name: description},                       # e.g. real/fake folders and video counts
     "protocol": {...FVDProtocol.to_dict(), "hash": ...},  # or None
     "metrics": [{"name", "value" | "mean"+"std"+"values", "samples", "note"?, ...}],
     "plots": [{"title", "file"}], "samples": [{"title", "file"}]}

Every metric states its sample count in ``samples`` (e.g. "2048 real / 2048 generated clips").
Plots are drawn with Pillow (matplotlib is not a dependency): simple bar charts with value labels
and optional error bars; that is all a report of a handful of numbers needs.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..utils.atomic import atomic_write_text

__all__ = ["bar_plot", "mean_std", "render_markdown", "write_report"]

REPORT_FORMAT = "leo-eval-report"
REPORT_VERSION = 1
COLOURS = [(52, 101, 164), (204, 85, 0), (78, 154, 6), (117, 80, 123), (193, 125, 17), (164, 0, 0)]


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "values", "runs"}``; std is the sample std (ddof=1), 0.0 for a single run."""
    v = np.asarray(values, dtype=np.float64)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "values": [float(x) for x in v], "runs": int(v.size)}


# ------------------------------------------------------------------------------------------ plots


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]`` (steps of 1, 2 or 5 x 10^k)."""
    span = high - low if high > low else max(abs(high), 1.0)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int(math.ceil((high - start) / step)) + 1)]


def bar_plot(
    path: str | os.PathLike,
    labels: Sequence[str],
    values: Sequence[float],
    errors: Sequence[float] | None = None,
    title: str = "",
    size: tuple[int, int] = (560, 360),
) -> Path:
    """A bar chart PNG (Pillow): one bar per label, value printed above, optional ±error bars.

    Handles negative values (the axis is drawn at 0). Written atomically; returns ``path``.
    """
    from ..media.image import save_image

    width, height = size
    left, right, top, bottom = 70, 20, 40, 50
    vals = [float(v) for v in values]
    errs = [float(e) for e in errors] if errors is not None else [0.0] * len(vals)
    finite = [v for v in vals if math.isfinite(v)] or [0.0]
    low = min(0.0, min(v - e for v, e in zip(finite, errs)))
    high = max(0.0, max(v + e for v, e in zip(finite, errs)))
    ticks = _nice_ticks(low, high)
    low, high = min(low, ticks[0]), max(high, ticks[-1])
    high = high if high > low else low + 1.0

    def y_of(v: float) -> int:
        return int(round(top + (high - v) / (high - low) * (height - top - bottom)))

    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((left, 12), title, fill=(0, 0, 0))
    for t in ticks:  # horizontal grid and y labels
        y = y_of(t)
        draw.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        draw.text((6, y - 6), f"{t:.4g}", fill=(60, 60, 60))
    draw.line([(left, top), (left, height - bottom)], fill=(0, 0, 0))
    draw.line([(left, y_of(0.0)), (width - right, y_of(0.0))], fill=(0, 0, 0))
    slot = (width - left - right) / max(len(vals), 1)
    for i, (label, v, e) in enumerate(zip(labels, vals, errs)):
        x0, x1 = int(left + slot * (i + 0.2)), int(left + slot * (i + 0.8))
        if math.isfinite(v):
            draw.rectangle([x0, min(y_of(v), y_of(0.0)), x1, max(y_of(v), y_of(0.0))], fill=COLOURS[i % len(COLOURS)])
            if e > 0:
                xm = (x0 + x1) // 2
                draw.line([(xm, y_of(v - e)), (xm, y_of(v + e))], fill=(0, 0, 0), width=2)
                draw.line([(xm - 6, y_of(v + e)), (xm + 6, y_of(v + e))], fill=(0, 0, 0), width=2)
                draw.line([(xm - 6, y_of(v - e)), (xm + 6, y_of(v - e))], fill=(0, 0, 0), width=2)
        text = f"{v:.4g}" + (f" ± {e:.2g}" if e > 0 else "")
        label_y = min(y_of(v + e), y_of(0.0)) if math.isfinite(v) else y_of(0.0)
        draw.text((x0, label_y - 14), text, fill=(0, 0, 0))
        draw.text((x0, height - bottom + 8), str(label)[:24], fill=(0, 0, 0))
    return save_image(path, image)


# ----------------------------------------------------------------------------------------- report


def _format_metric(m: dict[str, Any]) -> str:
    if "mean" in m:
        runs = m.get("runs", len(m.get("values", [])))
        return f"{m['mean']:.6g} ± {m['std']:.3g} ({runs} run{'s' if runs != 1 else ''})"
    return f"{m['value']:.6g}"


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable ``report.md`` of a report dict (see the module docstring)."""
    lines = [f"# {report.get('title', 'leo-video evaluation')}", ""]
    lines += [f"Created {report.get('created', '?')} by leo-video {report.get('leo_video_version', '?')}.", ""]
    for key, value in report.get("inputs", {}).items():
        lines.append(f"- **{key}**: {value}")
    protocol = report.get("protocol")
    if protocol:
        lines += ["", "## Protocol", "", "| field | value |", "|---|---|"]
        lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in protocol.items()]
        lines += ["", "Real clips: one per video at a seeded random offset, videos shorter than the clip span "
                  "dropped; generated clips: frames 0, step, … of each generated video. FVD uses the "
                  "protocol's covariance (`ddof`); KVD is the unbiased polynomial-kernel MMD², unscaled "
                  "(see docs/EVALUATION.md)."]
    lines += ["", "## Results", "", "| metric | value | samples | notes |", "|---|---|---|---|"]
    for m in report.get("metrics", []):
        lines.append(f"| {m['name']} | {_format_metric(m)} | {m.get('samples', '')} | {m.get('note', '')} |")
    if any("mean" in m and m.get("runs", 1) > 1 for m in report.get("metrics", [])):
        lines += ["", "± is the sample standard deviation (ddof = 1) over runs with different real-clip seeds."]
    for section, key in (("Plots", "plots"), ("Samples", "samples")):
        items = report.get(key) or []
        if items:
            lines += ["", f"## {section}", ""]
            for item in items:
                lines += [f"**{item['title']}**", "", f"![{item['title']}]({item['file']})", ""]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    text = "\n".join(lines).rstrip() + "\n"
    while "\n\n\n" in text:  # one blank line between blocks
        text = text.replace("\n\n\n", "\n\n")
    return text


def write_report(out_dir: str | os.PathLike, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and then ``report.md`` into ``out_dir`` (each atomically); return both paths.

    Plot and sample files named in the report must already be in ``out_dir``. ``format`` and
    ``version`` keys are added to the JSON.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"format": REPORT_FORMAT, "version": REPORT_VERSION, **report}
    json_path, md_path = out / "report.json", out / "report.md"
    atomic_write_text(json_path, json.dumps(payload, indent=2, default=_jsonable) + "\n")
    atomic_write_text(md_path, render_markdown(payload))
    return json_path, md_path


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, (np.ndarray, tuple)):
        return list(x)
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")

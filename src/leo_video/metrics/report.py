"""Evaluation reports: ``report.json`` (machine-readable), ``report.md`` (for people), PNG plots.

A report is a plain dict (see :func:`write_report`)::

    {"title": str, "created": ISO time, "leo_video_version": str,
     "inputs": {name: description},                       # e.g. real/fake folders and video counts
     "protocol": {...FVDProtocol.to_dict(), "hash": ...},  # or None
     "metrics": [{"name", "value" | "mean"+"std"+"values", "samples", "note"?, ...}],
     "plots": [{"title", "file"}], "samples": [{"title", "file"}]}

Every metric states its sample count in ``samples`` (e.g. "2048 real / 2048 generated clips").
Plots are matplotlib bar charts with value labels and optional error bars.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..utils.atomic import atomic_path, atomic_write_text

__all__ = ["bar_plot", "mean_std", "render_markdown", "write_report"]

REPORT_FORMAT = "leo-eval-report"
REPORT_VERSION = 1


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "values", "runs"}``; std is the sample std (ddof=1), 0.0 for a single run."""
    v = np.asarray(values, dtype=np.float64)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "values": [float(x) for x in v], "runs": int(v.size)}


# ------------------------------------------------------------------------------------------ plots


def bar_plot(
    path: str | os.PathLike,
    labels: Sequence[str],
    values: Sequence[float],
    errors: Sequence[float] | None = None,
    title: str = "",
    size: tuple[int, int] = (560, 360),
) -> Path:
    """A bar chart PNG of ``size`` pixels: one bar per label, its value printed at the bar, optional ±error bars.

    Non-finite values get no bar. Written atomically; returns ``path``.
    """
    figure, axes = _figure(size)
    vals = [float(v) if math.isfinite(v) else 0.0 for v in values]
    errs = [float(e) for e in errors] if errors is not None else None
    yerr = [e if e > 0 else math.nan for e in errs] if errs is not None else None  # no cap for a zero error
    bars = axes.bar([str(label)[:24] for label in labels], vals, yerr=yerr, capsize=6,
                    color=[f"C{i}" for i in range(len(vals))])
    axes.bar_label(bars, labels=[_bar_text(v, e) for v, e in zip(values, errs or [0.0] * len(vals))], padding=2)
    axes.axhline(0.0, color="black", linewidth=0.8)
    return _save_plot(figure, axes, title, path)


def grouped_bar_plot(
    path: str | os.PathLike,
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    line: tuple[float, str] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (640, 380),
) -> Path:
    """A PNG of bars side by side per group, one colour per series (``{name: a value per group}``), each value
    printed at its bar, and an optional dashed horizontal ``line = (value, label)``. Written atomically."""
    figure, axes = _figure(size)
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = axes.bar(xs, [float(v) for v in values], width, label=name, color=f"C{i}")
        axes.bar_label(bars, labels=[f"{v:.3g}" for v in values], padding=2, fontsize=8)
    if line is not None:
        axes.axhline(line[0], color="black", linestyle="--", linewidth=1, label=line[1])
    highest = max([float(v) for values in series.values() for v in values] + [line[0] if line else 0.0])
    axes.set_ylim(0, 1.15 * highest if highest > 0 else 1)  # room for the value labels
    axes.set_xticks(range(len(groups)), [str(g) for g in groups], fontsize=8)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel(ylabel)
    axes.legend(fontsize=8, loc="upper left")
    return _save_plot(figure, axes, title, path)


def _figure(size: tuple[int, int]):
    """A matplotlib Figure of ``size`` pixels (without pyplot: no global state, any thread) and its one axes."""
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    return figure, figure.add_subplot()


def _save_plot(figure, axes, title: str, path: str | os.PathLike) -> Path:
    """The plots' shared finish: title, light horizontal grid under the bars, PNG written atomically."""
    axes.set_title(title, fontsize=9)
    axes.grid(axis="y", color="0.9")
    axes.set_axisbelow(True)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def _bar_text(value: float, error: float) -> str:
    return f"{value:.4g}" + (f" ± {error:.2g}" if error > 0 else "")


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

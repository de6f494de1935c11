"""Collect the suite's reports into ``<out>/SUMMARY.md`` with issue 9's targets, met or missed by how much.

    python benchmarks/summarize.py bench_out
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PARTS = ("render", "generate", "generate_fast", "train", "train_ddp", "bias_act", "train_fused")


def load(out: Path, name: str, **setting) -> dict:
    """A part's JSON rows, or {} when missing or measured at other settings than the target's (smoke runs)."""
    path = out / f"{name}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    if any(data.get("setting", {}).get(k) != v for k, v in setting.items()):
        return {}
    return {k: v for k, v in data.items() if k not in ("machine", "setting")}


def best(section: dict, prefix: str) -> tuple[float | None, str]:
    """Highest frames/s among ``prefix*`` rows of one size's section, and its row name."""
    rows = {k[len(prefix):]: v["frames_per_s"] for k, v in section.items() if k.startswith(prefix)}
    if not rows:
        return None, "not measured"
    name = max(rows, key=rows.get)
    return rows[name], name


def shown(fps: float | None, name: str) -> str:
    return "—" if fps is None else f"{fps:,.0f} frames/s ({name})"


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    ratio = value / target if higher_is_better else target / value
    return "met" if ok else f"**missed** ({ratio:.2f}x of the target)"


def targets(out: Path) -> list[list[str]]:
    """Rows: target, measured, verdict."""
    render = load(out, "render").get("256", {})
    target = {"size": 256, "frames": 128}
    generate = {**{f"{k} (eager)": v for k, v in load(out, "generate", **target).items()},
                **{f"{k} (fast)": v for k, v in load(out, "generate_fast", **target).items()}}
    lia = {"size": 256, "batch": 32, "channel_max": 512}
    train, ddp = load(out, "train", **lia), load(out, "train_ddp", **lia)
    rows = []
    fps, name = best({k: v for k, v in render.items() if "bf16" in k}, "render/")
    rows.append(["rendering 256², bf16: >= 3,000 frames/s", shown(fps, name), verdict(fps, 3000)])
    fps, name = best({k: v for k, v in render.items() if "official" not in k}, "transfer/")
    rows.append(["motion transfer 256²: >= 1,500 frames/s", shown(fps, name), verdict(fps, 1500)])
    official = render.get("transfer/official", {}).get("frames_per_s")
    speedup = fps / official if fps and official else None
    rows.append(["motion transfer 256² vs LIA's per-frame pattern: >= 20x (issue 3)",
                 "—" if speedup is None else f"{speedup:.1f}x", verdict(speedup, 20)])
    singles = {k: v["end_to_end_s"] for k, v in generate.items() if "/1 " in k}
    key = min(singles, key=singles.get) if singles else None
    rows.append(["128-frame 256² video from a still: < 1 s", f"{singles[key]:.2f} s ({key})" if key else "—",
                 verdict(singles[key] if key else None, 1.0, higher_is_better=False)])
    lia1 = train.get("lia/bf16/1gpu", {})
    bf16_rows = {k.split("/")[1]: v for k, v in train.items() if k.startswith("lia/bf16") and k.endswith("/1gpu")}
    fastest = max(bf16_rows, key=lambda k: bf16_rows[k].get("mfu") or 0, default=None)  # eager or compiled
    mfu = bf16_rows[fastest].get("mfu") if fastest else None
    rows.append(["LIA training 256², bf16, batch 32: >= 35% MFU", "—" if mfu is None else f"{100 * mfu:.1f}% ({fastest})",
                 verdict(None if mfu is None else 100 * mfu, 35)])
    lia2 = ddp.get("lia/bf16/2gpu", {})
    if lia1 and lia2:
        speedup = lia2["images_per_s"] / lia1["images_per_s"]
        rows.append(["LIA training on two GPUs: >= 1.8x", f"{speedup:.2f}x", verdict(speedup, 1.8)])
    return rows


def main(out: str = "bench_out") -> None:
    out = Path(out)
    lines = ["# Issue 9 benchmark suite", "", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in targets(out)]
    for name in PARTS:
        path = out / f"{name}.md"
        if path.is_file():
            lines += ["", path.read_text().rstrip()]
    text = "\n".join(lines) + "\n"
    (out / "SUMMARY.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])

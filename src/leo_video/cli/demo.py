"""`leo-video demo`: the main job on the embedded default, runnable on a fresh CPU-only machine.

For now it renders a small synthetic-humans dataset and previews of it (a grid video, a GIF and a
contact sheet); later issues replace it with generation by the shipped demo LEO model.
"""

from __future__ import annotations

import argparse

ORDER = 1
DEMO_VIDEOS = 6
DEMO_FRAMES = 32
DEMO_COLUMNS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="Run the demo on the embedded default (synthetic humans); writes videos and a contact sheet.",
        description=(
            "Render a small synthetic-humans dataset to OUT/dataset and write OUT/preview.mp4 (the videos "
            "side by side), OUT/preview.gif and OUT/contact_sheet.png. Takes a few seconds on a CPU. "
            "Rerunning replaces the demo's own files."
        ),
        epilog="example: leo-video demo --out demo --size 64",
    )
    parser.add_argument("--out", default="demo", metavar="DIR", help="output folder (default demo)")
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels, 32..512 (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic videos (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.synthetic import SyntheticHumanConfig, make_synthetic_dataset, render_synthetic_video, split_counts
    from ..media.grid import make_grid, save_contact_sheet
    from ..media.image import numpy_to_frames
    from ..media.video import write_video

    out = Path(args.out)
    fps = SyntheticHumanConfig().fps
    dataset = make_synthetic_dataset(out / "dataset", DEMO_VIDEOS, DEMO_FRAMES, args.size, args.seed,
                                     progress=False, overwrite=True)
    # Rendering is deterministic, so re-rendering gives exactly the dataset's frames without decoding them.
    videos = [numpy_to_frames(render_synthetic_video(args.seed, DEMO_FRAMES, args.size, index=i))
              for i in range(DEMO_VIDEOS)]  # N x (T, 3, S, S) in [-1, 1]
    grid = make_grid(videos, ncols=DEMO_COLUMNS)  # (T, 3, H', W')
    paths = {
        "preview video": write_video(out / "preview.mp4", grid, fps=fps),
        "preview gif": write_video(out / "preview.gif", grid, fps=fps),
        "contact sheet": save_contact_sheet(out / "contact_sheet.png", videos, num_frames=8),
    }
    train, test = split_counts(DEMO_VIDEOS, 0.2)
    print(f"synthetic dataset: {dataset}  ({train} train + {test} test videos, {DEMO_FRAMES} frames, "
          f"{args.size}x{args.size})")
    for label, path in paths.items():
        print(f"{label + ':':18} {path}")
    return 0

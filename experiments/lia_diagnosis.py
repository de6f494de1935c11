"""Why an animator fails (issue 23, docs/TRAINING.md): numbers about the training pairs and about a trained animator.

    python experiments/lia_diagnosis.py pairs --data runs/demo/data --size 64              # what training sees
    python experiments/lia_diagnosis.py animator --checkpoint EXPORT --data runs/demo/data  # where the error is
    python experiments/lia_diagnosis.py levels --checkpoint EXPORT --data runs/demo/data    # which level draws it
    python experiments/lia_diagnosis.py clips --checkpoint EXPORT --data runs/real128 --splits train test  # per clip
    python experiments/lia_diagnosis.py cross --checkpoint EXPORT --clips TRAIN_CLIP TEST_CLIP --sheet cross.png

``pairs``: frame gaps of LIA training pairs (``VideoDataset(mode="pairs")``, as ``train lia`` draws them) and the
L1 on [0, 1] between source and driving frame: what copying the source scores on training pairs, i.e. the
loss the still-frame shortcut reaches without learning any motion.

``animator``: on held-out videos, the self-reenactment L1 split into the *identity* error (frame 0 driven by
itself: pure encode/decode loss) and the rest, next to the still and shuffled-codes baselines, and the motion
code's spread (``train.lia.motion_spread``). The identity error is split into a low band (shapes misplaced or
miscoloured, below a Gaussian of ``BAND_SIGMA`` px) and a high band (detail lost), with the drawing's share of
the image's detail (``detail_ratio``).

``levels``: frame 0 of each video drawn from itself, decoder level by level (docs/TRAINING.md, finding 10). LIA's
image is the sum over levels r = 8 .. S of ``to_rgbs[k]`` applied to the masked, warped encoder map (each
upsampled to S): per level the standard deviation of that level's own RGB term, the mean |flow offset| in
pixels of the level (``tanh`` of the flow logits x r / 2: non-zero although nothing moves) and the mean mask.
An animator that redraws the source sharply draws it at the finest level; one that draws it at r = S/2 and
upsamples is blurred by construction.

``clips``: per clip of each split, how much it moves (the still's L1 over ``--frames`` evenly spaced frames: their
mean distance to frame 0) and how far its motion codes move (``train.lia.motion_spread`` over the same frames),
with their ratio. A held-out spread below the training clips' means an encoder that does not read unseen people
only where the held-out clips move as much; clips that barely move have small spreads whoever they show
(docs/TRAINING.md, finding 16).

``cross``: which half fails on an unseen face, the encoder reading it or the decoder drawing it (finding 17). Two
clips A and B (a training and a held-out one, say), each at frame 0 and its ``--frames`` - 1 most-moved frames
(largest still's L1 among ``CANDIDATES`` evenly spaced ones): each clip drawn from its own codes, and each clip's
motion (codes relative to its frame 0) drawn on the *other* clip's first frame. Per clip the still's L1 of those
frames, the L1 of its own rendering, and how far its codes move (``|alpha_t - alpha_0|``) per unit of the still's
L1: an encoder that reads one face's motion and not the other's shows it there, a decoder that cannot draw an
expression shows it in the sheet's rows (``--sheet``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def pairs(args: argparse.Namespace) -> dict:
    from leo_video.data.video_dataset import VideoDataset

    dataset = VideoDataset(args.data, split="train", size=args.size, seed=0, repeats=args.samples)  # indexes only
    gaps, l1 = [], []
    for index in range(min(args.samples, len(dataset))):
        item = dataset[index]
        gaps.append(abs(int(item["frames"][1]) - int(item["frames"][0])))
        l1.append(float((item["source"] - item["driving"]).abs().mean() / 2))
    lengths = [len(r) for r in dataset.readers]
    return {"data": args.data, "videos": len(lengths), "frames_per_video_median": float(np.median(lengths)),
            "gap_median": float(np.median(gaps)), "gap_below_5_share": float(np.mean(np.array(gaps) < 5)),
            "source_vs_driving_l1": float(np.mean(l1)), "pairs": len(gaps)}  # fmt: skip


BAND_SIGMA = 2.0  # px: identity_bands' split between shapes (low) and detail (high)


@torch.no_grad()
def read_frames(reader, indices, size: int) -> torch.Tensor:
    """The frames at ``indices`` of an open VideoReader as (T, 3, size, size) in [-1, 1]."""
    from leo_video.media.image import numpy_to_frames

    frames = numpy_to_frames(reader.read(indices))
    return torch.nn.functional.interpolate(frames, size=(size, size), mode="bilinear", antialias=True)


def first_frame(reader, size: int) -> torch.Tensor:
    """Frame 0 of an open VideoReader as (1, 3, size, size) in [-1, 1]."""
    return read_frames(reader, [0], size)


def videos_of_splits(data: str, splits, limit: int):
    """``(split, path)`` of the first ``limit`` videos of each split folder of the dataset ``data``."""
    from pathlib import Path

    from leo_video.data.video_dataset import split_folder
    from leo_video.metrics.evaluate import list_videos

    for split in splits:
        for path in list_videos(split_folder(Path(data), split))[:limit]:
            yield split, path


def rows_of_split(rows: dict, split: str) -> list:
    """The values of ``rows``, keyed ``"split/name"`` as ``videos_of_splits`` yields them, that belong to ``split``."""
    return [row for key, row in rows.items() if key.startswith(f"{split}/")]


def animator(args: argparse.Namespace) -> dict:
    from leo_video.data.video_dataset import VideoDataset
    from leo_video.media.video import VideoReader
    from leo_video.metrics.recon import self_reenactment_errors
    from leo_video.models.loading import load_lia
    from leo_video.train.lia import motion_spread, probe_clips

    model = load_lia(args.checkpoint, device="cpu")
    size = model.config.size
    rows = []
    for _, path in videos_of_splits(args.data, ["test"], args.videos):
        with VideoReader(path) as reader:
            errors = self_reenactment_errors(model, reader, args.frames, shuffled=True)
            first = first_frame(reader, size)
        with torch.no_grad():
            drawn = model(first, first)
        rows.append({**errors, "identity_l1": float((drawn - first).abs().mean() / 2), **identity_bands(drawn, first)})
    test = VideoDataset(args.data, split="test", size=size)
    spread = motion_spread(model, probe_clips(test, args.videos, 8))
    keys = ("l1", "still_l1", "shuffled_l1", "identity_l1", "identity_low", "identity_high", "detail_ratio")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"checkpoint": args.checkpoint, **mean, "l1_over_still": mean["l1"] / mean["still_l1"],
            "motion_spread_test": spread, "videos": len(rows)}  # fmt: skip


def identity_bands(drawn: torch.Tensor, image: torch.Tensor, sigma: float = BAND_SIGMA) -> dict[str, float]:
    """Where the identity error (``drawn``: ``image`` (1, 3, S, S) in [-1, 1] drawn from itself) lies: L1 on
    [0, 1] of the low band (both blurred with a Gaussian of ``sigma`` px: misplaced or miscoloured shapes) and
    of the high band (what the blur removes: lost or false detail), and ``detail_ratio``, the high band's std
    in the drawing over that in the image (1: as sharp; below 1: blurred)."""
    import cv2

    def low(x: torch.Tensor) -> np.ndarray:  # (S, S, 3) float32, edges replicated
        return cv2.GaussianBlur(x[0].permute(1, 2, 0).numpy(), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)

    d, x = drawn.float(), image.float()
    d_low, x_low = low(d), low(x)
    d_high, x_high = d[0].permute(1, 2, 0).numpy() - d_low, x[0].permute(1, 2, 0).numpy() - x_low
    return {"identity_low": float(np.abs(d_low - x_low).mean() / 2),
            "identity_high": float(np.abs(d_high - x_high).mean() / 2),
            "detail_ratio": float(d_high.std() / max(x_high.std(), 1e-12))}


def decoder_levels(model, image: torch.Tensor) -> tuple[torch.Tensor, dict[int, dict]]:
    """Draw ``image`` (B, 3, S, S) from itself; returns the output and, per level r = 8 .. S, the level's own RGB
    term ``rgb`` (B, 3, r, r), the mean |flow offset| ``offset_px`` in pixels of r and the mean ``mask``.
    The output is rgb_S + up(rgb_{S/2} + up(...)), ``up`` being the level's ``to_rgbs[k].upsample``."""
    found: dict[int, dict] = {}

    def on_flow(module, inputs, output):  # ToFlow(x, latent, logits) -> (grid, mask, logits)
        _, mask, logits = output
        r = mask.shape[-1]
        found.setdefault(r, {}).update(offset_px=float(torch.tanh(logits[:, :2]).abs().mean() * r / 2),
                                       mask=float(mask.mean()))

    def on_rgb(module, inputs, output):  # ToRGB(feature, grid, mask, skip) -> own term + upsample(skip)
        skip = inputs[3] if len(inputs) > 3 else None
        found.setdefault(output.shape[-1], {})["rgb"] = output if skip is None else output - module.upsample(skip)

    hooks = [m.register_forward_hook(on_flow) for m in model.dec.to_flows]
    hooks += [m.register_forward_hook(on_rgb) for m in model.dec.to_rgbs]
    try:
        with torch.no_grad():
            out = model(image, image)
    finally:
        for hook in hooks:
            hook.remove()
    return out, dict(sorted(found.items()))


def levels(args: argparse.Namespace) -> dict:
    from leo_video.media.video import VideoReader
    from leo_video.models.loading import load_lia

    model = load_lia(args.checkpoint, device="cpu")
    per_video = {}
    for split, path in videos_of_splits(args.data, args.splits, args.videos):
        with VideoReader(path) as reader:
            first = first_frame(reader, model.config.size)
        out, found = decoder_levels(model, first)
        per_video[f"{split}/{path.stem}"] = {
            "identity_l1": float((out - first).abs().mean() / 2),
            "levels": {r: {"rgb_std": float(v["rgb"].std()), "offset_px": v["offset_px"], "mask": v["mask"]}
                       for r, v in found.items()}}  # fmt: skip
    summary = {}  # per split: the drawing floor on faces it trained on against faces it did not, and mean masks
    for split in args.splits:
        mine = rows_of_split(per_video, split)
        if mine:
            floors = [v["identity_l1"] for v in mine]
            summary[split] = {"clips": len(mine), "identity_l1_mean": float(np.mean(floors)),
                              "identity_l1_median": float(np.median(floors)),
                              "mask": {r: float(np.mean([v["levels"][r]["mask"] for v in mine])) for r in mine[0]["levels"]}}  # fmt: skip
    return {"checkpoint": args.checkpoint, "summary": summary, "per_video": per_video}


def clips(args: argparse.Namespace) -> dict:
    from leo_video.media.video import VideoReader
    from leo_video.models.loading import load_lia
    from leo_video.train.lia import motion_spread

    model = load_lia(args.checkpoint, device="cpu")
    rows = {}
    for split, path in videos_of_splits(args.data, args.splits, args.videos):
        with VideoReader(path) as reader:
            frames = read_frames(reader, np.linspace(0, len(reader) - 1, args.frames).round().astype(int),
                                 model.config.size)  # (T, 3, S, S)
        still = float((frames - frames[:1]).abs().mean() / 2)  # the frames' mean distance to frame 0
        with torch.no_grad():
            spread = motion_spread(model, frames[None])
        rows[f"{split}/{path.stem}"] = {"still_l1": still, "motion_spread": spread,
                                        "spread_per_still": spread / still if still > 0 else None}
    summary = {}
    for split in args.splits:
        mine = rows_of_split(rows, split)
        ratios = [r["spread_per_still"] for r in mine if r["spread_per_still"] is not None]  # None: never moves
        if mine:
            summary[split] = {"clips": len(mine), "still_l1_median": float(np.median([r["still_l1"] for r in mine])),
                              "spread_per_still_median": float(np.median(ratios)) if ratios else None}
    return {"checkpoint": args.checkpoint, "frames": args.frames, "summary": summary, "per_clip": rows}


CANDIDATES = 48  # evenly spaced frames of a clip among which ``cross`` picks the most-moved ones


def most_moved_frames(frames: torch.Tensor, count: int) -> list[int]:
    """Frame 0 and the ``count`` - 1 frames farthest from it (mean |x_t - x_0|), in time order; frames (T, 3, S, S)."""
    still = (frames - frames[:1]).abs().mean(dim=(1, 2, 3))
    still[0] = -1.0  # frame 0 is always the first, never picked twice
    picked = torch.topk(still, min(count, len(frames)) - 1).indices.tolist() if count > 1 else []
    return [0] + sorted(picked)


@torch.no_grad()
def cross(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from leo_video.media.grid import save_contact_sheet
    from leo_video.media.video import VideoReader
    from leo_video.models.loading import load_lia

    model = load_lia(args.checkpoint, device="cpu")
    size = model.config.size
    shown = {}
    for path in args.clips:
        with VideoReader(path) as reader:
            candidates = np.linspace(0, len(reader) - 1, min(CANDIDATES, len(reader))).round().astype(int)
            frames = read_frames(reader, candidates, size)  # (C, 3, S, S)
        picked = most_moved_frames(frames, args.frames)
        shown[Path(path).name] = (candidates[picked].tolist(), frames[picked])
    (name_a, (_, a)), (name_b, (_, b)) = shown.items()
    codes = {name: model.encode_motion(x) for name, (_, x) in shown.items()}
    result, rows, labels = {"checkpoint": args.checkpoint, "clips": {}}, [], []
    for name, x, other_name, other in ((name_a, a, name_b, b), (name_b, b, name_a, a)):
        own = model.render(model.encode_appearance(x[:1]), codes[name], start_motion=codes[name][0])
        moved = model.render(model.encode_appearance(other[:1]), codes[name], start_motion=codes[name][0])
        still = (x - x[:1]).abs().mean(dim=(1, 2, 3)) / 2  # on [0, 1]
        displacement = (codes[name] - codes[name][:1]).norm(dim=1)
        result["clips"][name] = {
            "frames": shown[name][0], "still_l1": still.tolist(),
            "l1": ((own - x).abs().mean(dim=(1, 2, 3)) / 2).tolist(), "code_displacement": displacement.tolist(),
            "code_displacement_per_still": float(displacement[1:].mean() / still[1:].mean()) if len(x) > 1 and still[1:].mean() > 0 else None}  # fmt: skip
        rows += [x, own, moved]
        labels += [f"{name}", f"{name} from its own codes", f"{other_name}'s first frame, {name}'s motion"]
    if args.sheet:
        save_contact_sheet(args.sheet, rows, num_frames=args.frames, labels=labels)
        result["sheet"] = str(args.sheet)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("--data", required=True)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--samples", type=int, default=400)
    a = sub.add_parser("animator")
    a.add_argument("--checkpoint", required=True)
    a.add_argument("--data", required=True)
    a.add_argument("--videos", type=int, default=8)
    a.add_argument("--frames", type=int, default=32)
    lv = sub.add_parser("levels")
    lv.add_argument("--checkpoint", required=True)
    lv.add_argument("--data", required=True)
    lv.add_argument("--splits", nargs="+", default=["test"], choices=("train", "test"))
    lv.add_argument("--videos", type=int, default=8, help="per split")
    cl = sub.add_parser("clips")
    cl.add_argument("--checkpoint", required=True)
    cl.add_argument("--data", required=True)
    cl.add_argument("--splits", nargs="+", default=["train", "test"], choices=("train", "test"))
    cl.add_argument("--videos", type=int, default=1000, help="per split")
    cl.add_argument("--frames", type=int, default=24, help="evenly spaced frames per clip")
    cr = sub.add_parser("cross")
    cr.add_argument("--checkpoint", required=True)
    cr.add_argument("--clips", nargs=2, required=True, metavar=("A", "B"), help="two clips (frame folders or videos)")
    cr.add_argument("--frames", type=int, default=6, help="frame 0 and the most-moved others, per clip")
    cr.add_argument("--sheet", default=None, metavar="PNG", help="the six rows as a labelled contact sheet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = {"pairs": pairs, "animator": animator, "levels": levels, "clips": clips, "cross": cross}
    print(json.dumps(tasks[args.what](args)))


if __name__ == "__main__":
    main()

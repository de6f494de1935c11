"""Synthetic humans: procedural videos of articulated figures doing slow, Tai-Chi-like motion.

The embedded default dataset for demos and for tests that train. Every video is one
:class:`Person` (body proportions, clothing, skin, hair, background and motion parameters) drawn
from ``numpy.random.default_rng([seed, index])`` and rendered by
:func:`leo_video.data.synthetic_render.render_person`; the same ``(seed, index)`` gives
bit-identical frames on any machine, at any resolution from 32 to 512 pixels.
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..utils.atomic import OutputExistsError, atomic_write_text
from .synthetic_render import _JOINT_NAMES, _JOINTS, Body, Look, Motion, Person, Scene, render_person

DATASET_KIND = "leo-video synthetic humans"
GENERATOR_VERSION = 1  # bump when the same seed would render different videos
FORMATS = ("mp4", "frames")
MIN_SIZE, MAX_SIZE = 32, 512
_NUM_OSCILLATORS = 3  # slow sinusoids per joint, with frequencies shared by the whole body


@dataclass(frozen=True)
class SyntheticHumanConfig:
    """Rendering and motion settings shared by every video of a synthetic dataset."""

    size: int = 64  # frame side in pixels (square frames)
    frames: int = 32  # frames per video
    fps: float = 15.0  # frame rate the motion is timed in (and written with)
    motion_speed: float = 1.0  # multiplies every motion frequency (0 = a still pose)
    sway: float = 1.0  # multiplies the global weight shift and camera drift
    height_range: tuple[float, float] = (0.82, 0.92)  # standing figure height / frame height

    def validate(self) -> "SyntheticHumanConfig":
        """Raise :class:`ConfigError` naming the first out-of-range field; return self."""
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ConfigError(f"size: {self.size} is outside {MIN_SIZE}..{MAX_SIZE}")
        if self.frames < 1:
            raise ConfigError(f"frames: {self.frames} must be >= 1")
        if not 0 < self.fps <= 240:
            raise ConfigError(f"fps: {self.fps} must be in (0, 240]")
        if not 0 <= self.motion_speed <= 20:
            raise ConfigError(f"motion_speed: {self.motion_speed} must be in [0, 20]")
        if not 0 <= self.sway <= 5:
            raise ConfigError(f"sway: {self.sway} must be in [0, 5]")
        low, high = self.height_range
        if not 0.3 <= low <= high <= 0.98:
            raise ConfigError(f"height_range: {self.height_range} must satisfy 0.3 <= low <= high <= 0.98")
        return self


# ----------------------------------------------------------------------------- sampling a person


_SKIN_TONES = np.array(  # light to deep, interpolated
    [[0.98, 0.87, 0.78], [0.94, 0.78, 0.66], [0.87, 0.67, 0.52], [0.76, 0.55, 0.40],
     [0.62, 0.42, 0.29], [0.47, 0.31, 0.21], [0.33, 0.22, 0.16]]
)
_HAIR_COLOURS = ((0.06, 0.05, 0.05), (0.20, 0.13, 0.08), (0.38, 0.25, 0.14), (0.75, 0.62, 0.38),
                 (0.55, 0.25, 0.12), (0.62, 0.62, 0.62))


def _rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def _sample_body(rng: np.random.Generator) -> Body:
    u = rng.uniform
    bulk = u(0.85, 1.2)  # slim .. heavy
    hip_width = u(0.13, 0.16) * bulk
    return Body(
        head=u(0.12, 0.14), neck=u(0.03, 0.05), torso=u(0.28, 0.32), upper_arm=u(0.16, 0.19),
        forearm=u(0.14, 0.17), hand=u(0.06, 0.08), thigh=u(0.23, 0.26), shin=u(0.22, 0.25),
        ankle=u(0.035, 0.045), foot=u(0.10, 0.13), shoulder_width=u(0.20, 0.25) * math.sqrt(bulk),
        waist_width=u(0.14, 0.17) * bulk, hip_width=hip_width, torso_depth=u(0.11, 0.14) * bulk,
        arm_radius=u(0.024, 0.032) * bulk, leg_radius=u(0.035, 0.045) * bulk,
        stance=hip_width * u(1.0, 2.6), stagger=u(-0.08, 0.08), turnout=u(0.2, 0.7),
    )


def _clothing_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.25:  # white or black Tai-Chi uniforms
        value = rng.uniform(0.82, 0.96) if rng.random() < 0.6 else rng.uniform(0.08, 0.2)
        return _rgb(rng.random(), rng.uniform(0.0, 0.08), value)
    return _rgb(rng.random(), rng.uniform(0.25, 0.85), rng.uniform(0.25, 0.9))


def _sample_look(rng: np.random.Generator, avoid: tuple[float, float, float]) -> Look:
    u = rng.uniform
    shirt = _clothing_colour(rng)
    for _ in range(20):  # keep the clothes distinguishable from the wall behind them
        if _distance(shirt, avoid) > 0.3:
            break
        shirt = _clothing_colour(rng)
    pants = _clothing_colour(rng)
    tone = u(0, len(_SKIN_TONES) - 1)
    low = min(int(tone), len(_SKIN_TONES) - 2)
    skin = tuple(float(c) for c in _SKIN_TONES[low] + (tone - low) * (_SKIN_TONES[low + 1] - _SKIN_TONES[low]))
    stripe_shift = u(0.25, 0.5) * (1 if sum(shirt) < 1.5 else -1)
    return Look(
        skin=skin,
        hair=_HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))],
        shirt=shirt,
        stripe=tuple(float(min(max(c + stripe_shift, 0.0), 1.0)) for c in shirt),
        pants=pants,
        shoes=_rgb(rng.random(), u(0.0, 0.4), u(0.05, 0.35)),
        pattern=("solid", "solid", "solid", "hstripes", "vstripes")[int(rng.integers(5))],
        stripe_period=u(0.05, 0.10),
        long_sleeves=bool(rng.random() < 0.6),
        hair_style=("short", "short", "long", "bald")[int(rng.integers(4))],
        tunic=u(0.06, 0.18) if rng.random() < 0.3 else 0.0,  # Tai-Chi jackets hang over the hips
    )


def _sample_scene(rng: np.random.Generator, height: float, standing: float) -> Scene:
    u = rng.uniform
    if rng.random() < 0.3:  # outdoors: sky over grass or paving
        wall_top, wall_bottom = _rgb(u(0.55, 0.62), u(0.3, 0.6), u(0.75, 0.95)), _rgb(u(0.5, 0.6), u(0.1, 0.3), u(0.8, 0.95))
        floor_hue = u(0.2, 0.35) if rng.random() < 0.6 else u(0.05, 0.12)
        floor_far, floor_near = _rgb(floor_hue, u(0.2, 0.5), u(0.4, 0.6)), _rgb(floor_hue, u(0.3, 0.6), u(0.3, 0.5))
    else:  # indoors: a muted wall over a floor
        hue = rng.random()
        wall_top = _rgb(hue, u(0.05, 0.35), u(0.5, 0.9))
        wall_bottom = _rgb(hue + u(-0.05, 0.05), u(0.05, 0.35), u(0.4, 0.8))
        floor_hue = rng.random()
        floor_far, floor_near = _rgb(floor_hue, u(0.1, 0.5), u(0.35, 0.7)), _rgb(floor_hue, u(0.1, 0.5), u(0.25, 0.6))
    ground_y = u(0.93, 0.97)
    return Scene(
        wall_top=wall_top, wall_bottom=wall_bottom, floor_far=floor_far, floor_near=floor_near,
        horizon=ground_y - u(0.15, 0.45), wall_texture=("plain", "panels", "bricks")[int(rng.integers(3))],
        floor_texture=("plain", "planks", "tiles")[int(rng.integers(3))], texture_period=u(0.06, 0.16),
        center_x=u(0.44, 0.56), ground_y=ground_y, scale=height / standing,
    )


def _sample_motion(rng: np.random.Generator) -> Motion:
    J, K = len(_JOINT_NAMES), _NUM_OSCILLATORS
    energy = rng.uniform(0.6, 1.2)
    freqs = np.sort(rng.uniform(0.08, 0.4, size=K))
    center = np.array([rng.uniform(*_JOINTS[name][2]) for name in _JOINT_NAMES])
    scale = np.array([_JOINTS[name][3] for name in _JOINT_NAMES])
    amp = scale[:, None] * energy * rng.uniform(0.2, 1.0, size=(J, K))
    phase = rng.uniform(0, 2 * np.pi, size=(J, K))
    # Tai-Chi arms move together: the right arm repeats the left one in phase or in opposition.
    offset = np.pi * float(rng.integers(2)) + rng.normal(0, 0.3, size=K)
    for part in ("raise", "swing", "elbow_raise", "elbow_swing"):
        left, right = _JOINT_NAMES.index(f"l_{part}"), _JOINT_NAMES.index(f"r_{part}")
        phase[right] = phase[left] + offset
        center[right] = 0.5 * (center[right] + center[left])
    return Motion(freqs=freqs, center=center, amp=amp, phase=phase)


def _standing_height(body: Body) -> float:
    return body.ankle + body.shin + body.thigh + body.torso + body.neck + body.head


def sample_person(rng: np.random.Generator, config: SyntheticHumanConfig | None = None) -> Person:
    """Draw one person (proportions, look, background, motion) from ``rng``; deterministic in its state."""
    config = config or SyntheticHumanConfig()
    body = _sample_body(rng)
    scene = _sample_scene(rng, rng.uniform(*config.height_range), _standing_height(body))
    look = _sample_look(rng, avoid=scene.wall_bottom)
    return Person(body=body, look=look, scene=scene, motion=_sample_motion(rng))


# ----------------------------------------------------------------------------- videos


def render_synthetic_video(seed: int, num_frames: int = 32, size: int = 64, *, index: int = 0,
                           config: SyntheticHumanConfig | None = None, start_frame: int = 0) -> np.ndarray:
    """Render synthetic video ``index`` of the dataset drawn with ``seed``: ``(T, size, size, 3)`` uint8.

    Bit-identical for the same arguments on any machine. ``config`` supplies fps, motion speed,
    sway and figure height; ``num_frames`` and ``size`` override its ``frames`` and ``size``.
    """
    config = SyntheticHumanConfig(**{**_config_dict(config), "size": size, "frames": num_frames}).validate()
    if seed < 0 or index < 0:
        raise ConfigError(f"seed/index: {seed}/{index} must be >= 0")
    person = sample_person(np.random.default_rng([seed, index]), config)
    return render_person(person, num_frames, size, config.fps, config.motion_speed, config.sway, start_frame)


def render_transfer(seed: int, identity: int, motion: int, num_frames: int = 32, size: int = 64, *,
                    config: SyntheticHumanConfig | None = None) -> np.ndarray:
    """Person ``identity`` of the dataset drawn with ``seed`` performing person ``motion``'s routine.

    Body, look and scene (background, framing) come from ``identity``, joint trajectories (and sway) from
    ``motion``: the ground truth of motion transfer. ``identity == motion`` is exactly
    :func:`render_synthetic_video` of that index. Returns ``(T, size, size, 3)`` uint8.
    """
    config = SyntheticHumanConfig(**{**_config_dict(config), "size": size, "frames": num_frames}).validate()
    if min(seed, identity, motion) < 0:
        raise ConfigError(f"seed/identity/motion: {seed}/{identity}/{motion} must be >= 0")
    person = sample_person(np.random.default_rng([seed, identity]), config)
    mover = sample_person(np.random.default_rng([seed, motion]), config)
    person = dataclasses.replace(person, motion=mover.motion)
    return render_person(person, num_frames, size, config.fps, config.motion_speed, config.sway)


def render_transfer_pair(seed: int, index: int, num_frames: int = 32, size: int = 64, *,
                         config: SyntheticHumanConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Transfer pair ``index`` of ``seed``: ``(driving, target)``, each ``(T, size, size, 3)`` uint8.

    Person A = index ``2 * index``, person B = ``2 * index + 1`` of the dataset drawn with ``seed``;
    ``driving`` is B's own video, ``target`` is A performing B's motion (:func:`render_transfer`).
    Animating ``target[0]`` (A in B's first pose) with ``driving`` should give ``target``.
    """
    a, b = 2 * index, 2 * index + 1
    driving = render_synthetic_video(seed, num_frames, size, index=b, config=config)
    return driving, render_transfer(seed, a, b, num_frames, size, config=config)


def make_transfer_pairs(out_dir: str | os.PathLike, num_pairs: int, num_frames: int = 32, size: int = 64,
                        seed: int = 9001, fmt: str = "mp4", progress: bool = True, *, overwrite: bool = False,
                        config: SyntheticHumanConfig | None = None) -> Path:
    """Write ``num_pairs`` ground-truth motion-transfer pairs: ``out/pairs/pair_XXXXX/{driving,target}``.

    Each pair is :func:`render_transfer_pair` ``(seed, index)`` (``.mp4`` or, with ``fmt="frames"``, PNG
    folders), read back by :func:`leo_video.metrics.transfer.list_transfer_pairs`. ``out/dataset.json``
    records the parameters. The same refusal rules as :func:`make_synthetic_dataset`. Returns ``out_dir``.
    """
    from tqdm.auto import tqdm

    config = SyntheticHumanConfig(**{**_config_dict(config), "size": size, "frames": num_frames}).validate()
    if num_pairs < 1:
        raise ConfigError(f"pairs: {num_pairs} must be >= 1")
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if seed < 0:
        raise ConfigError(f"seed: {seed} must be >= 0")
    out = _prepare_output(Path(out_dir), overwrite, splits=("pairs",))
    meta = {"kind": DATASET_KIND, "complete": False, "generator_version": GENERATOR_VERSION, "seed": seed,
            "num_pairs": num_pairs, "format": fmt, "config": _config_dict(config),
            "pairs": "pair i: target = person 2i performing the motion of person 2i+1 (driving)"}
    atomic_write_text(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
    for index in tqdm(range(num_pairs), desc="transfer pairs", unit="pair", disable=not progress):
        driving, target = render_transfer_pair(seed, index, num_frames, size, config=config)
        folder = out / "pairs" / f"pair_{index:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_video(folder / "driving", driving, fmt, config.fps)
        _write_video(folder / "target", target, fmt, config.fps)
    meta.update(complete=True)
    atomic_write_text(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
    return out


def _config_dict(config: SyntheticHumanConfig | None) -> dict:
    return asdict(config or SyntheticHumanConfig())


# ----------------------------------------------------------------------------- datasets


def split_counts(num_videos: int, test_fraction: float) -> tuple[int, int]:
    """``(train, test)`` counts: test is ``round(N * fraction)``, at least 1 when the fraction is > 0 and N >= 2."""
    test = round(num_videos * test_fraction)
    if test_fraction > 0 and num_videos >= 2:
        test = min(max(test, 1), num_videos - 1)
    return num_videos - test, test


def make_synthetic_dataset(out_dir: str | os.PathLike, num_videos: int, num_frames: int = 32, size: int = 64,
                           seed: int = 0, test_fraction: float = 0.2, fmt: str = "mp4", progress: bool = True, *,
                           overwrite: bool = False, config: SyntheticHumanConfig | None = None,
                           workers: int = 1) -> Path:
    """Render a synthetic-humans dataset: ``out/train/synth_XXXXX.mp4``, ``out/test/...`` and ``out/dataset.json``.

    Video ``i`` is :func:`render_synthetic_video` ``(seed, index=i)``; the last ``test`` indices form
    the test split. ``fmt="frames"`` writes folders of PNG frames instead of mp4s (lossless). A
    non-empty ``out_dir`` is refused unless ``overwrite``, and even then only a previous synthetic
    dataset (one with our ``dataset.json``, complete or interrupted) is replaced. ``dataset.json``
    says ``"complete": false`` until the last video is written. ``workers`` > 1 renders that many
    videos at once in separate processes; every video depends on ``(seed, i)`` only, so the files are
    the same whatever the number of workers. Returns ``out_dir``.
    """
    from tqdm.auto import tqdm

    config = SyntheticHumanConfig(**{**_config_dict(config), "size": size, "frames": num_frames}).validate()
    if num_videos < 1:
        raise ConfigError(f"videos: {num_videos} must be >= 1")
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction: {test_fraction} must be in [0, 1)")
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if seed < 0:
        raise ConfigError(f"seed: {seed} must be >= 0")
    if workers < 1:
        raise ConfigError(f"workers: {workers} must be >= 1")
    out = _prepare_output(Path(out_dir), overwrite)
    num_train, _ = split_counts(num_videos, test_fraction)
    names: dict[str, list[str]] = {"train": [], "test": []}
    meta = {"kind": DATASET_KIND, "complete": False, "generator_version": GENERATOR_VERSION, "seed": seed,
            "num_videos": num_videos, "test_fraction": test_fraction, "format": fmt, "config": _config_dict(config)}
    atomic_write_text(out / "dataset.json", json.dumps(meta, indent=2) + "\n")  # marks the folder as ours
    jobs = [(out / ("train" if i < num_train else "test") / f"synth_{i:05d}", seed, i, fmt, config)
            for i in range(num_videos)]
    with tqdm(total=num_videos, desc="synthetic humans", unit="video", disable=not progress) as bar:
        if workers == 1:
            for job in jobs:
                _render_and_write(job)
                bar.update(1)
        else:
            import concurrent.futures
            import multiprocessing

            # spawn, not fork: the caller may hold threads (torch's) that a forked child would inherit locked
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(min(workers, num_videos), mp_context=context) as pool:
                for _ in pool.map(_render_and_write, jobs, chunksize=4):
                    bar.update(1)
    for stem, *_ in jobs:
        names[stem.parent.name].append(stem.name)
    meta.update(complete=True, **names)
    atomic_write_text(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
    return out


def _render_and_write(job: tuple[Path, int, int, str, SyntheticHumanConfig]) -> None:
    """One video of :func:`make_synthetic_dataset`: ``(stem, seed, index, fmt, config)`` rendered and written."""
    stem, seed, index, fmt, config = job
    frames = render_synthetic_video(seed, config.frames, config.size, index=index, config=config)  # (T, S, S, 3)
    _write_video(stem, frames, fmt, config.fps)


def is_synthetic_dataset(path: str | os.PathLike) -> bool:
    """True if ``path`` holds a ``dataset.json`` written by :func:`make_synthetic_dataset`."""
    try:
        return json.loads((Path(path) / "dataset.json").read_text()).get("kind") == DATASET_KIND
    except (OSError, ValueError, AttributeError):
        return False


def _prepare_output(out: Path, overwrite: bool, splits: tuple[str, ...] = ("train", "test")) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out}: folder is not empty; pass --overwrite to replace the dataset in it")
        if not is_synthetic_dataset(out):  # never delete a folder we did not make
            raise OutputExistsError(f"{out}: not empty and not a synthetic dataset (no dataset.json of ours); "
                                    "choose another output folder")
        (out / "dataset.json").unlink()
        for split in ("train", "test", "pairs"):
            shutil.rmtree(out / split, ignore_errors=True)
    for split in splits:
        (out / split).mkdir(parents=True, exist_ok=True)
    return out


def _write_video(stem: Path, frames: np.ndarray, fmt: str, fps: float) -> None:
    """``frames (T, H, W, 3)`` uint8 -> ``stem.mp4`` or a folder ``stem/`` of ``0000000.png ...`` (prepare's)."""
    if fmt == "mp4":
        from ..media.video import write_video

        write_video(stem.with_suffix(".mp4"), frames, fps=fps)
        return
    from .clip_output import frame_folder_writer

    with frame_folder_writer(stem, "png") as sink:  # atomic: a half-written video never appears
        for frame in frames:
            sink.write(frame)
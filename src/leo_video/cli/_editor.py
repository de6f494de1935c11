"""`leo-video edit --editor controlnet`: the editor's command-line options, turned into a
:class:`~leo_video.editing.config.ControlNetEditorConfig` for :func:`leo_video.editing.first_frame.controlnet_first_frame`.

Nothing heavy is imported at module level (``--help`` stays fast).
"""

from __future__ import annotations

import argparse
import dataclasses

from ..editing.config import ControlNetEditorConfig
from ..errors import ConfigError

# flag -> ControlNetEditorConfig field; None on the command line means "the config's default"
CONTROLNET_FLAGS = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "base_model": "base_model",
    "controlnet": "controlnet",
    "edit_steps": "steps",
    "edit_guidance": "guidance_scale",
    "edit_strength": "strength",
    "control_scale": "controlnet_conditioning_scale",
    "edit_size": "resolution",
    "seed": "seed",
}


def add_controlnet_args(parser: argparse.ArgumentParser) -> None:
    """The options of ``--editor controlnet`` (all refused without it); defaults come from the config."""
    d = {f.name: f.default for f in dataclasses.fields(ControlNetEditorConfig)}
    g = parser.add_argument_group("ControlNet first-frame editor (with --editor controlnet; docs/EDITING.md)")
    g.add_argument("--prompt", help="what the edited first frame shows (required with --editor controlnet)")
    g.add_argument("--negative-prompt", help=f"what to avoid (default {d['negative_prompt']!r})")
    g.add_argument("--base-model",
                   help=f"SD 1.5-compatible diffusers folder or cached Hub id (default {d['base_model']})")
    g.add_argument("--controlnet", help=f"Canny ControlNet folder or cached Hub id (default {d['controlnet']})")
    g.add_argument("--edit-steps", type=int,
                   help=f"denoising steps; img2img runs steps x strength (default {d['steps']})")
    g.add_argument("--edit-guidance", type=float,
                   help=f"classifier-free guidance scale (default {d['guidance_scale']})")
    g.add_argument("--edit-strength", type=float, help="img2img strength in (0, 1]; 1 keeps only the edges "
                                                       f"(default {d['strength']})")
    g.add_argument("--control-scale", type=float,
                   help=f"ControlNet conditioning scale (default {d['controlnet_conditioning_scale']})")
    g.add_argument("--edit-size", type=int, help=f"square side the editor works at (default {d['resolution']})")
    g.add_argument("--seed", type=int, help=f"seed of the edit (default {d['seed']})")
    g.add_argument("--save-edited-frame", help="also save the edited first frame (at the animator's size) as an image")


def check_controlnet_args(args: argparse.Namespace) -> None:
    """Refuse editor options without ``--editor controlnet``; with it, check ``--prompt``, the values,
    the optional dependency and ``--save-edited-frame`` before anything is loaded."""
    from ..errors import InputError
    from ..utils.atomic import check_output_path

    given = [name for name in [*CONTROLNET_FLAGS, "save_edited_frame"] if getattr(args, name) is not None]
    if args.editor is None and given:
        raise InputError(f"--{given[0].replace('_', '-')}: only with --editor controlnet")
    if args.editor is not None:
        from ..editing.first_frame import check_editor_ready

        if args.prompt is None:
            raise InputError(f"--editor {args.editor}: needs --prompt \"...\" describing the edit")
        check_editor_ready(config_from_args(args))
    if args.save_edited_frame is not None:
        check_output_path(args.save_edited_frame, args.overwrite)


def config_from_args(args: argparse.Namespace) -> ControlNetEditorConfig:
    """The editor config from the command line; a bad value's error names its flag, not the field."""
    fields = {field: getattr(args, flag) for flag, field in CONTROLNET_FLAGS.items() if getattr(args, flag) is not None}
    try:
        return ControlNetEditorConfig(**fields, device=args.device, dtype=args.dtype)
    except ConfigError as exc:
        message = str(exc)
        for flag, field in CONTROLNET_FLAGS.items():
            if message.startswith((f"{field}=", f"{field}:")):
                rest = message[len(field):]  # "=value: why" or ": why"
                message = f"--{flag.replace('_', '-')}" + (f" {rest[1:]}" if rest[0] == "=" else rest)
                break
        raise ConfigError(message) from exc

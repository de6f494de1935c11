"""User-facing errors.

Anything a user can cause (a missing file, a corrupt video, a checkpoint of the wrong model, a bad
config value) raises :class:`LeoError` with a one-line message that names the input. The CLI prints
that line and exits non-zero without a traceback; programming errors keep their tracebacks.
"""

from __future__ import annotations


class LeoError(Exception):
    """An error caused by user input; its message is one line that names the input."""

    exit_code: int = 2


class InputError(LeoError):
    """A file or value given by the user cannot be used (missing, corrupt, wrong shape or mode)."""


class CheckpointError(LeoError):
    """A checkpoint or exported model folder is unreadable, unsafe or of the wrong model/shape."""


class ConfigError(LeoError):
    """A config file or `--set` override is invalid (unknown key, wrong type, out of range)."""


class MissingWeightsError(LeoError):
    """Pretrained weights (VGG19, I3D, face net, ControlNet ...) are not present locally."""


class NumericalError(LeoError):
    """NaN or inf appeared in inputs, losses or model outputs."""

    exit_code = 3

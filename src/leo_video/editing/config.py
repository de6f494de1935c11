"""The ControlNet first-frame editor's settings (no torch here: the CLI reads its defaults for ``--help``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ControlNetEditorConfig", "DEFAULT_BASE_MODEL", "DEFAULT_CONTROLNET", "CONTROL_TYPES"]

# the maintained copy of runwayml/stable-diffusion-v1-5 (that repository is gone from the Hub)
DEFAULT_BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CONTROLNET = "lllyasviel/sd-controlnet-canny"
CONTROL_TYPES = ("canny",)


@dataclass
class ControlNetEditorConfig:
    """Everything the ControlNet editor needs; defaults are the paper-style SD 1.5 + Canny setup.

    ``base_model`` / ``controlnet``: a local diffusers folder or a Hub id already in the local cache.
    ``strength``: how much of the original survives (img2img; 1.0 = text-to-image with ControlNet).
    ``resolution``: the square side the editor works at (SD 1.5: 512; a multiple of 8).
    ``dtype``: the weights' dtype (``fp32``, ``fp16``, ``bf16``; fp16 wants CUDA).
    ``safety_checker``: keep the base model's safety checker when it ships one.
    """

    prompt: str = ""
    negative_prompt: str = "lowres, blurry, deformed, extra limbs, bad anatomy"
    base_model: str = DEFAULT_BASE_MODEL
    controlnet: str = DEFAULT_CONTROLNET
    control_type: str = "canny"
    canny_low: float = 100.0
    canny_high: float = 200.0
    steps: int = 30
    guidance_scale: float = 7.5
    strength: float = 0.8
    controlnet_conditioning_scale: float = 1.0
    resolution: int = 512
    seed: int = 0
    device: str = "auto"
    dtype: str = "fp32"
    safety_checker: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.control_type in CONTROL_TYPES,
             f"control_type={self.control_type!r}: choose one of {', '.join(CONTROL_TYPES)}"),
            (bool(self.prompt.strip()), "prompt: empty; describe the edit, e.g. 'a person in a red robe'"),
            (self.steps >= 1, f"steps={self.steps}: must be at least 1"),
            (0 < self.strength <= 1, f"strength={self.strength}: must be in (0, 1]"),
            (int(self.steps * self.strength) >= 1, f"steps={self.steps}, strength={self.strength}: "
                                                   "steps x strength must be at least 1 (img2img runs that many)"),
            (self.guidance_scale >= 0, f"guidance_scale={self.guidance_scale}: must be >= 0"),
            (self.controlnet_conditioning_scale >= 0,
             f"controlnet_conditioning_scale={self.controlnet_conditioning_scale}: must be >= 0"),
            (self.resolution >= 64 and self.resolution % 8 == 0,
             f"resolution={self.resolution}: must be a multiple of 8, at least 64"),
            (0 <= self.canny_low <= self.canny_high, f"canny_low={self.canny_low}, canny_high={self.canny_high}: "
                                                     "need 0 <= low <= high"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

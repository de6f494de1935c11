"""The sampler names, without diffusers or torch: the CLI offers them as choices (``--help`` stays light);
:data:`leo_video.diffusion.schedulers.SAMPLERS` maps each to its diffusers scheduler and checks it has them all."""

SAMPLER_NAMES: tuple[str, ...] = ("ddpm", "ddim", "dpm++")

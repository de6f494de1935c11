"""Diffusion processes (diffusers schedulers), the LMC construction, sampling loops."""

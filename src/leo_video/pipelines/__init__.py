"""Inference pipelines: motion transfer, generation, editing, the full LEO pipeline."""

"""Datasets: video folders (pairs and clips), dataset preparation, synthetic humans, motion codes."""

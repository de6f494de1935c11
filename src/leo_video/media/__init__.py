"""Video and image I/O (PyAV, Pillow): reading, probing, writing mp4/gif, grids and contact sheets."""

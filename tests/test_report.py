"""The evaluation report's bar plots (matplotlib)."""

from __future__ import annotations

import math

from PIL import Image

from leo_video.metrics.report import bar_plot


def test_bar_plot_writes_a_png_of_the_asked_size_with_negative_and_missing_values(tmp_path):
    path = bar_plot(tmp_path / "fvd.png", ["real", "generated", "broken"], [3.5, -1.25, math.nan],
                    errors=[0.5, 0.0, 0.0], title="FVD per run", size=(480, 300))
    assert path == tmp_path / "fvd.png" and sorted(p.name for p in tmp_path.iterdir()) == ["fvd.png"]
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (480, 300)
        counts = {colour: n for n, colour in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    c0, c1, c2 = (31, 119, 180), (255, 127, 14), (44, 160, 44)  # matplotlib's first three bar colours
    assert counts.get(c0, 0) > 1000 and counts.get(c1, 0) > 300  # the 3.5 bar, and the -1.25 one below zero
    assert c2 not in counts  # no bar for a value that is not a number

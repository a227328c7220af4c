"""The report figures' shared helpers."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.figures._style import bars, png_bytes


def test_bars_is_one_patch_with_the_histogram_counts() -> None:
    """bars draws one filled step patch whose heights are numpy's histogram of the finite values."""
    x = np.array([0.5, 1.5, 1.6, 2.5, 2.6, 2.7, np.nan])
    ax = Figure().subplots()
    bars(ax, x, 3, "#000000", (0.0, 3.0))
    (patch,) = ax.patches
    np.testing.assert_array_equal(patch.get_data().values, [1, 2, 3])
    np.testing.assert_array_equal(patch.get_data().edges, [0.0, 1.0, 2.0, 3.0])


def test_bars_draws_the_same_pixels_as_hist() -> None:
    """Filled steps render exactly like ax.hist's bars at the report's alpha."""
    x = np.random.default_rng(3).gamma(2.0, 60.0, size=2000)

    def png(draw) -> bytes:  # noqa: ANN001
        fig = Figure(figsize=(4, 3), dpi=72)
        draw(fig.subplots())
        return png_bytes(fig)

    assert png(lambda ax: bars(ax, x, 40, "#2563eb")) == png(
        lambda ax: ax.hist(x, bins=40, color="#2563eb", alpha=0.85)
    )


def test_bars_ticks_counts_at_whole_numbers() -> None:
    """A histogram of a few values (counts of 1 to 3) has whole-number count ticks only."""
    ax = Figure().subplots()
    bars(ax, np.array([17.5, 17.6, 17.7, 21.0, 22.4, 22.5, 25.0, 28.0]), 20, "#16a34a")
    ticks = [t for t in ax.get_yticks() if 0 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks

"""The report figures' shared helpers."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from reports.figures import _style
from reports.figures._style import (
    Frame,
    Margins,
    bars,
    build_spare_frames,
    clock_axis,
    compose,
    compose_frame,
    png_bytes,
    style_axes,
)


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


def _panels() -> list:
    """Three panels with titles, legends, a clock axis and a hidden-tick axes (as a map has)."""
    x = np.linspace(0.0, 10800.0, 37)

    def line(ax) -> None:  # noqa: ANN001
        style_axes(ax)
        ax.plot(x, np.sin(x / 900.0) * 40 + 50, label="requests")
        ax.set_title("Demand", loc="left")
        ax.legend(frameon=False, fontsize=8)
        clock_axis(ax, "07:00", 10800.0)

    def hist(ax) -> None:  # noqa: ANN001
        style_axes(ax)
        bars(ax, np.random.default_rng(1).gamma(2.0, 60.0, 500), 40, "#2563eb")
        ax.set_xlabel("seconds")

    def blank(ax) -> None:  # noqa: ANN001
        ax.set_xticks([])
        ax.set_yticks([])

    return [line, hist, blank]


def test_a_spare_frame_draws_the_same_png(monkeypatch: pytest.MonkeyPatch) -> None:
    """compose draws on the spare figure build_spare_frames made for its layout (once), and the
    PNG has the same bytes as on a figure made on the spot."""
    monkeypatch.setattr(_style, "_SPARE", {})
    layout = {"rows": 3, "sharex": True, "margins": Margins(right=1.45)}
    fresh = png_bytes(compose(_panels(), 9.0, 7.8, **layout))
    frame = Frame(9.0, 7.8, rows=3, sharex=True, margins=Margins(right=1.45))
    build_spare_frames([frame])
    ((spare_fig, _),) = _style._SPARE[frame]
    fig = compose(_panels(), 9.0, 7.8, **layout)
    assert fig is spare_fig and not _style._SPARE[frame]
    assert png_bytes(fig) == fresh
    assert png_bytes(compose(_panels(), 9.0, 7.8, **layout)) == fresh  # none left: made anew


def test_compose_frame_refuses_more_panels_than_axes() -> None:
    """A frame with fewer axes than panels is an error, not a figure missing a panel."""
    with pytest.raises(ValueError, match="3 panels for 1 x 2 axes"):
        compose_frame(_panels(), Frame(6.0, 3.0, cols=2))

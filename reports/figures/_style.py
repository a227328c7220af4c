"""Shared look of report figures: sizes, colours, clock-time axes, composing panels, PNG.

Every figure function draws on an ``ax`` it is given, so the report and the notebooks compose
them as they like. Nothing here picks a matplotlib backend: the report renders its figures to
PNG through an explicit Agg canvas, and a notebook keeps its inline plots.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

BLUE = "#2563eb"
GREEN = "#16a34a"
RED = "#dc2626"
ORANGE = "#ea580c"
GREY = "#9ca3af"
PURPLE = "#7c3aed"
STATE_COLOURS = {"idle": GREY, "repositioning": PURPLE, "to pickup": ORANGE, "with rider": GREEN}

DPI = 96
DAY = 86400

Panel = Callable[[Axes], None]


def new_figure(width: float = 9.0, height: float = 3.6) -> Figure:
    """A blank figure with the report's defaults (constrained layout: for figures drawn once,
    e.g. in a notebook; :func:`compose` lays the report's out with fixed margins instead)."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


@dataclass(frozen=True)
class Margins:
    """Fixed margins and gaps in inches: the report's figures all have a title, axis labels
    and tick labels of the same size, so a fixed frame fits them and saves the constrained
    layout solver's work (a quarter of the report's rendering time)."""

    left: float = 0.8
    right: float = 0.25
    bottom: float = 0.6
    top: float = 0.35
    wspace: float = 0.75
    hspace: float = 0.55


def compose(
    panels: Sequence[Panel],
    width: float,
    height: float,
    *,
    rows: int = 1,
    sharex: bool = False,
    width_ratios: Sequence[float] | None = None,
    height_ratios: Sequence[float] | None = None,
    margins: Margins = Margins(),
) -> Figure:
    """A figure with one axes per panel (``rows`` rows), each panel drawn on its own axes."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    cols = -(-len(panels) // rows)
    inner_w = width - margins.left - margins.right - margins.wspace * (cols - 1)
    inner_h = height - margins.bottom - margins.top - margins.hspace * (rows - 1)
    axes = fig.subplots(
        rows,
        cols,
        squeeze=False,
        sharex=sharex,
        width_ratios=width_ratios,
        height_ratios=height_ratios,
        gridspec_kw={
            "left": margins.left / width,
            "right": 1 - margins.right / width,
            "bottom": margins.bottom / height,
            "top": 1 - margins.top / height,
            "wspace": margins.wspace / max(inner_w / cols, 0.1),
            "hspace": margins.hspace / max(inner_h / rows, 0.1),
        },
    ).ravel()
    # Titles at a fixed height: the report's axes have no top ticks for a title to dodge, so
    # this is where matplotlib would put them anyway, without its layout pass at every draw.
    with rc_context({"axes.titley": 1.0}):
        for ax, draw in zip(axes, panels, strict=False):
            draw(ax)
    return fig


def style_axes(ax: Axes) -> None:
    """Light grid, no top/right spines."""
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def clock_formatter(start: str, horizon_s: float = 0.0) -> FuncFormatter:
    """Tick labels as local clock time (HH:MM) for seconds since a "HH:MM" start; runs longer
    than a day label their ticks "day N HH:MM" (or "day N" at midnight)."""
    try:
        h, m = (int(p) for p in start.split(":")[:2])
        offset = h * 3600 + m * 60
    except ValueError:
        offset = 0
    multi_day = horizon_s > DAY

    def fmt(x: float, _pos: int | None = None) -> str:
        t = int(round(offset + x))
        s = t % DAY
        clock = f"{s // 3600:02d}:{s % 3600 // 60:02d}"
        if not multi_day:
            return clock
        day = t // DAY + 1
        return f"day {day}" if s == 0 else f"day {day}\n{clock}"

    return FuncFormatter(fmt)


STEPS_S = (300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, DAY, 2 * DAY, 7 * DAY)


def clock_axis(ax: Axes, start: str, horizon_s: float) -> None:
    """Clock-time tick labels at a round step (5 min ... a week) giving at most ~8 ticks."""
    step = next((s for s in STEPS_S if horizon_s / s <= 8), STEPS_S[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(clock_formatter(start, horizon_s))


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, drawn on an Agg canvas (no backend switch)."""
    buf = io.BytesIO()
    canvas = FigureCanvasAgg(fig)
    # metadata={"Software": None} keeps the bytes free of the matplotlib version string; a
    # low zlib level: the report's plots are flat colours, and encoding dominated render time.
    canvas.print_png(buf, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG (for embedding in a data: URI)."""
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def bars(
    ax: Axes,
    x: np.ndarray,
    bins: int,
    colour: str,
    value_range: tuple[float, float] | None = None,
) -> None:
    """A histogram of ``x`` drawn as one filled step outline: the same bars as ``ax.hist``
    without one patch per bar (40 patches cost more to add and draw than the rest of a panel)."""
    x = np.asarray(x, dtype=np.float64)
    counts, edges = np.histogram(x[np.isfinite(x)], bins=bins, range=value_range)
    ax.stairs(counts, edges, fill=True, color=colour, alpha=0.85, linewidth=0)
    # Counts are whole: a small run (15 drivers) must not get ticks at "0.5 drivers". Otherwise
    # matplotlib's default (AutoLocator's own settings), so larger counts tick as before.
    ax.yaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))


def empty_note(ax: Axes, text: str) -> None:
    """Write a centred note on an axes that has no data."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    ax.set_xticks([])
    ax.set_yticks([])

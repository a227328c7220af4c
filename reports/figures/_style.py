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


@dataclass(frozen=True)
class Frame:
    """The layout of a composed figure: its size in inches, its grid of axes and margins."""

    width: float
    height: float
    rows: int = 1
    cols: int = 1
    sharex: bool = False
    width_ratios: tuple[float, ...] | None = None
    height_ratios: tuple[float, ...] | None = None
    margins: Margins = Margins()


_SPARE: dict[Frame, list[tuple[Figure, np.ndarray]]] = {}
"""Blank figures built ahead by :func:`build_spare_frames`, each for one :func:`compose`."""

SPARE_TICKS = 10
"""Major ticks made ahead on each axis of a spare frame: as many as the report's axes draw."""


def _blank(frame: Frame) -> tuple[Figure, np.ndarray]:
    """A new figure laid out as ``frame``, and its axes (row by row)."""
    w, h, m = frame.width, frame.height, frame.margins
    fig = Figure(figsize=(w, h), dpi=DPI)
    inner_w = w - m.left - m.right - m.wspace * (frame.cols - 1)
    inner_h = h - m.bottom - m.top - m.hspace * (frame.rows - 1)
    axes = fig.subplots(
        frame.rows,
        frame.cols,
        squeeze=False,
        sharex=frame.sharex,
        width_ratios=frame.width_ratios,
        height_ratios=frame.height_ratios,
        gridspec_kw={
            "left": m.left / w,
            "right": 1 - m.right / w,
            "bottom": m.bottom / h,
            "top": 1 - m.top / h,
            "wspace": m.wspace / max(inner_w / frame.cols, 0.1),
            "hspace": m.hspace / max(inner_h / frame.rows, 0.1),
        },
    ).ravel()
    return fig, axes


def build_spare_frames(frames: Sequence[Frame]) -> None:
    """Build a blank figure for each of ``frames`` now, with :data:`SPARE_TICKS` major ticks on
    every axis, for this process's next :func:`compose` of that layout to draw on (each is used
    once). A process that will draw figures later (the report helper while the run goes on)
    moves this work, a fifth of drawing the report's figures, out of the way: matplotlib
    makes ticks when a figure is first drawn, and applies settings made later to those that
    exist, so the PNG has the same bytes either way."""
    for frame in frames:
        fig, axes = _blank(frame)
        for ax in axes:
            ax.xaxis.get_major_ticks(SPARE_TICKS)
            ax.yaxis.get_major_ticks(SPARE_TICKS)
        _SPARE.setdefault(frame, []).append((fig, axes))


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
    frame = Frame(
        width,
        height,
        rows,
        -(-len(panels) // rows),
        sharex,
        None if width_ratios is None else tuple(width_ratios),
        None if height_ratios is None else tuple(height_ratios),
        margins,
    )
    return compose_frame(panels, frame)


def compose_frame(panels: Sequence[Panel], frame: Frame) -> Figure:
    """A figure laid out as ``frame`` with each panel drawn on its own axes, row by row (on a
    spare blank figure of this layout when :func:`build_spare_frames` made one)."""
    if len(panels) > frame.rows * frame.cols:
        raise ValueError(f"{len(panels)} panels for {frame.rows} x {frame.cols} axes")
    spare = _SPARE.get(frame)
    fig, axes = spare.pop() if spare else _blank(frame)
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

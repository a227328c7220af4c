"""Shared look of report figures: sizes, colours, clock-time axes, PNG encoding."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # reports never open a window; also fixes the backend for pyplot users

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MultipleLocator  # noqa: E402

BLUE = "#2563eb"
GREEN = "#16a34a"
RED = "#dc2626"
ORANGE = "#ea580c"
GREY = "#9ca3af"
PURPLE = "#7c3aed"
STATE_COLOURS = {"idle": GREY, "repositioning": PURPLE, "to pickup": ORANGE, "with rider": GREEN}

DPI = 110


def new_figure(width: float = 9.0, height: float = 3.6) -> Figure:
    """A blank figure with the report's defaults."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def style_axes(ax) -> None:
    """Light grid, no top/right spines."""
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def clock_formatter(start: str) -> FuncFormatter:
    """Tick labels as local clock time (HH:MM) for seconds since a "HH:MM" start."""
    try:
        h, m = (int(p) for p in start.split(":")[:2])
        offset = h * 3600 + m * 60
    except ValueError:
        offset = 0

    def fmt(x: float, _pos: int | None = None) -> str:
        s = int(round(offset + x)) % 86400
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}"

    return FuncFormatter(fmt)


def clock_axis(ax, start: str, horizon_s: float) -> None:
    """Clock-time tick labels at a round step (5 min ... 3 h) giving at most ~10 ticks."""
    step = next((s for s in (300, 600, 900, 1800, 3600, 7200, 10800) if horizon_s / s <= 10), 21600)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(clock_formatter(start))


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG (for embedding in a data: URI)."""
    buf = io.BytesIO()
    # metadata={"Software": None} keeps the bytes free of the matplotlib version string.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def empty_note(ax, text: str) -> None:
    """Write a centred note on an axes that has no data."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    ax.set_xticks([])
    ax.set_yticks([])

"""Over simulated clock time: requests, trips and cancellations per hour, quote conversion per
bin (runs whose riders see quotes), and what online drivers were doing; one panel per axes."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from reports.figures._style import (
    BLUE,
    GREEN,
    GREY,
    PURPLE,
    RED,
    STATE_COLOURS,
    clock_axis,
    style_axes,
)
from reports.run import RunData


def _bins(run: RunData) -> tuple[dict, np.ndarray, float]:
    m = run.metrics["market"]
    b = float(m["bin_s"])
    return m, np.asarray(m["t_start_s"], dtype=float) + b / 2, b


def _time_axis(ax: Axes, run: RunData) -> None:
    style_axes(ax)
    ax.set_xlim(0, max(run.horizon_s, 1.0))
    clock_axis(ax, run.start_clock, run.horizon_s)


def has_quotes(run: RunData) -> bool:
    """Whether riders were shown quotes (so conversion per bin means something)."""
    return bool((run.metrics.get("funnel") or {}).get("quotes_logged"))


def draw_demand(ax: Axes, run: RunData) -> None:
    """Quotes (when shown), requests, completed trips and cancellations per hour."""
    m, t, b = _bins(run)
    per_h = 3600.0 / b
    if has_quotes(run):
        ax.plot(t, np.asarray(m["quotes"]) * per_h, color=GREY, label="quotes")
    ax.plot(t, np.asarray(m["requests"]) * per_h, color=BLUE, label="requests")
    ax.plot(t, np.asarray(m["completed"]) * per_h, color=GREEN, label="completed trips")
    ax.plot(t, np.asarray(m["cancelled"]) * per_h, color=RED, label="cancellations")
    ax.set_ylabel("per hour")
    ax.set_title("Demand and trips", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _time_axis(ax, run)
    ax.set_ylim(bottom=0)


def draw_conversion(ax: Axes, run: RunData) -> None:
    """Share of each bin's quoted riders who requested."""
    m, t, _ = _bins(run)
    conv = np.array([np.nan if v is None else v for v in m["conversion"]], dtype=float)
    ax.plot(t, 100 * conv, color=PURPLE, marker=".")
    ax.set_ylabel("% of quotes")
    ax.set_ylim(0, 105)
    ax.set_title("Quote conversion (share of quoted riders who requested)", loc="left")
    _time_axis(ax, run)


def draw_driver_states(ax: Axes, run: RunData) -> None:
    """Online drivers stacked by what they were doing (time-averaged per bin)."""
    m, t, _ = _bins(run)
    states = {
        "idle": np.asarray(m["drivers_idle"]),
        "repositioning": np.asarray(m.get("drivers_repositioning", np.zeros(len(t)))),
        "to pickup": np.asarray(m["drivers_to_pickup"]),
        "with rider": np.asarray(m["drivers_with_rider"]),
    }
    shown = [k for k, v in states.items() if k != "repositioning" or v.any()]
    ax.stackplot(
        t,
        *(states[k] for k in shown),
        labels=shown,
        colors=[STATE_COLOURS[k] for k in shown],
        alpha=0.85,
    )
    ax.set_ylabel("drivers")
    ax.set_title("What online drivers were doing (average per bin)", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _time_axis(ax, run)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated clock time")

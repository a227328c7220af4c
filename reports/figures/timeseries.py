"""Time series: requests, completed and cancelled trips per hour, quote conversion (when riders
see quotes), and what drivers were doing."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.figures._style import (
    BLUE,
    GREEN,
    GREY,
    PURPLE,
    RED,
    STATE_COLOURS,
    clock_axis,
    new_figure,
    style_axes,
)
from reports.run import RunData


def timeseries_figure(run: RunData) -> Figure:
    """Panels over simulated clock time: demand and trips (per hour), quote conversion per bin
    (only when the run logged quotes), and driver states."""
    m = run.metrics["market"]
    b = float(m["bin_s"])
    t = np.asarray(m["t_start_s"], dtype=float) + b / 2
    per_h = 3600.0 / b
    quotes = bool((run.metrics.get("funnel") or {}).get("quotes_logged")) and "conversion" in m
    fig = new_figure(9.0, 7.2 if quotes else 5.2)
    axes = fig.subplots(3 if quotes else 2, 1, sharex=True)
    top, bottom = axes[0], axes[-1]
    if quotes:
        mid = axes[1]
        conv = np.array([np.nan if v is None else v for v in m["conversion"]], dtype=float)
        mid.plot(t, 100 * conv, color=PURPLE, marker=".", label="quotes that became requests")
        mid.set_ylabel("%")
        mid.set_ylim(0, 105)
        mid.set_title("Quote conversion (share of quoted riders who requested)", loc="left")
        mid.legend(frameon=False, loc="lower left")
        style_axes(mid)
        mid.set_xlim(0, max(run.horizon_s, 1.0))
    if quotes:
        top.plot(t, np.asarray(m["quotes"]) * per_h, color=GREY, label="quotes")
    top.plot(t, np.asarray(m["requests"]) * per_h, color=BLUE, label="requests")
    top.plot(t, np.asarray(m["completed"]) * per_h, color=GREEN, label="completed trips")
    top.plot(t, np.asarray(m["cancelled"]) * per_h, color=RED, label="cancellations")
    top.set_ylabel("per hour")
    top.set_title("Demand and trips", loc="left")
    top.legend(frameon=False, ncols=4, loc="upper left")
    states = [
        np.asarray(m["drivers_idle"]),
        np.asarray(m.get("drivers_repositioning", np.zeros(len(t)))),
        np.asarray(m["drivers_to_pickup"]),
        np.asarray(m["drivers_with_rider"]),
    ]
    bottom.stackplot(
        t, *states, labels=list(STATE_COLOURS), colors=list(STATE_COLOURS.values()), alpha=0.85
    )
    bottom.set_ylabel("drivers")
    bottom.set_title("What online drivers were doing (average per bin)", loc="left")
    bottom.legend(frameon=False, ncols=4, loc="upper left")
    clock_axis(bottom, run.start_clock, run.horizon_s)
    bottom.set_xlabel("simulated clock time")
    for ax in (top, bottom):
        style_axes(ax)
        ax.set_xlim(0, max(run.horizon_s, 1.0))
        ax.set_ylim(bottom=0)
    return fig

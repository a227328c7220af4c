"""Time series: requests, completed and cancelled trips per hour, and what drivers were doing."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.figures._style import (
    BLUE,
    GREEN,
    RED,
    STATE_COLOURS,
    clock_axis,
    new_figure,
    style_axes,
)
from reports.run import RunData


def timeseries_figure(run: RunData) -> Figure:
    """Two panels over simulated clock time: demand and trips (per hour), and driver states."""
    m = run.metrics["market"]
    b = float(m["bin_s"])
    t = np.asarray(m["t_start_s"], dtype=float) + b / 2
    per_h = 3600.0 / b
    fig = new_figure(9.0, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(t, np.asarray(m["requests"]) * per_h, color=BLUE, label="requests")
    top.plot(t, np.asarray(m["completed"]) * per_h, color=GREEN, label="completed trips")
    top.plot(t, np.asarray(m["cancelled"]) * per_h, color=RED, label="cancellations")
    top.set_ylabel("per hour")
    top.set_title("Demand and trips", loc="left")
    top.legend(frameon=False, ncols=3, loc="upper left")
    states = [
        np.asarray(m["drivers_idle"]),
        np.asarray(m["drivers_to_pickup"]),
        np.asarray(m["drivers_with_rider"]),
    ]
    bottom.stackplot(
        t, *states, labels=list(STATE_COLOURS), colors=list(STATE_COLOURS.values()), alpha=0.85
    )
    bottom.set_ylabel("drivers")
    bottom.set_title("What online drivers were doing (average per bin)", loc="left")
    bottom.legend(frameon=False, ncols=3, loc="upper left")
    clock_axis(bottom, run.start_clock, run.horizon_s)
    bottom.set_xlabel("simulated clock time")
    for ax in (top, bottom):
        style_axes(ax)
        ax.set_xlim(0, max(run.horizon_s, 1.0))
        ax.set_ylim(bottom=0)
    return fig

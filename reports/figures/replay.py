"""Replay fidelity: simulated against recorded trip durations of the replayed trips."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from cities.travel import DAY_TYPES
from reports.figures._style import BLUE, GREEN, GREY, ORANGE, empty_note, new_figure, style_axes
from reports.replay import comparison
from reports.run import RunData


def replay_figure(run: RunData) -> Figure:
    """Simulated vs recorded ride minutes on log axes limited to the central 99% of both
    (robust: a few 24-hour records do not squash the rest); points beyond sit on the edge."""
    fig = new_figure(5.6, 4.8)
    ax = fig.subplots()
    style_axes(ax)
    ax.set_title("Ride time: simulated vs recorded", loc="left")
    if run.trips is None:
        empty_note(ax, "no replayed trips in this run")
        return fig
    sim, rec, _ = comparison(run.trips, run.riders)
    if sim.size == 0:
        empty_note(ax, "no completed replayed trip with a recorded time")
        return fig
    sim, rec = sim / 60.0, rec / 60.0
    both = np.concatenate([sim, rec])
    lo, hi = np.percentile(both, [0.5, 99.5]) if both.size >= 20 else (both.min(), both.max())
    lo, hi = float(lo) / 1.2, float(hi) * 1.2
    out = (sim < lo) | (sim > hi) | (rec < lo) | (rec > hi)
    cs, cr = np.clip(sim, lo, hi), np.clip(rec, lo, hi)
    size, alpha = (6, 0.4) if sim.size > 500 else (24, 0.8)
    ax.scatter(cr[~out], cs[~out], s=size, alpha=alpha, color=BLUE, linewidths=0, rasterized=True)
    if out.any():
        ax.scatter(
            cr[out],
            cs[out],
            s=size,
            alpha=alpha,
            color=ORANGE,
            marker="^",
            linewidths=0,
            label=f"{int(out.sum())} beyond the axes (on the edge)",
        )
    ax.plot(
        [lo, hi], [lo, hi], color=GREY, linestyle="--", linewidth=1, label="simulated = recorded"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("recorded ride (minutes, log scale)")
    ax.set_ylabel("simulated ride (minutes, log scale)")
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return fig


def travel_factors_figure(table: np.ndarray, trips_per_cell: np.ndarray) -> Figure:
    """Fitted travel-time factors by clock hour, one line per day type (marker size: trips)."""
    fig = new_figure(7.5, 3.6)
    ax = fig.subplots()
    style_axes(ax)
    ax.set_title("Travel-time factor over free flow, by day type and hour", loc="left")
    hours = np.arange(24)
    for row, (name, colour) in enumerate(zip(DAY_TYPES, (BLUE, ORANGE, GREEN), strict=True)):
        ax.plot(hours, table[row], color=colour, linewidth=1.5, label=name)
        sizes = 6 + 60 * trips_per_cell[row] / max(float(trips_per_cell.max()), 1.0)
        ax.scatter(hours, table[row], s=sizes, color=colour, linewidths=0, alpha=0.8)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel("clock hour")
    ax.set_ylabel("factor (x free-flow time)")
    ax.legend(frameon=False, fontsize=8)
    return fig

"""Replay fidelity: simulated against recorded trip durations of the replayed trips."""

from __future__ import annotations

from matplotlib.figure import Figure

from reports.figures._style import BLUE, GREY, empty_note, new_figure, style_axes
from reports.run import RunData


def replay_figure(run: RunData) -> Figure:
    """Scatter of simulated vs recorded in-vehicle minutes with the y = x line."""
    from reports.replay import pairs

    fig = new_figure(5.6, 4.8)
    ax = fig.subplots()
    style_axes(ax)
    ax.set_title("Trip time: simulated vs recorded", loc="left")
    if run.trips is None:
        empty_note(ax, "no replayed trips in this run")
        return fig
    sim, rec = pairs(run.trips, run.riders)
    if sim.size == 0:
        empty_note(ax, "no completed replayed trip with a recorded time")
        return fig
    sim, rec = sim / 60.0, rec / 60.0
    size, alpha = (6, 0.4) if sim.size > 500 else (24, 0.8)
    ax.scatter(rec, sim, s=size, alpha=alpha, color=BLUE, linewidths=0, rasterized=True)
    hi = float(max(sim.max(), rec.max())) * 1.05
    ax.plot([0, hi], [0, hi], color=GREY, linestyle="--", linewidth=1, label="simulated = recorded")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("recorded trip (minutes)")
    ax.set_ylabel("simulated trip (minutes)")
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return fig

"""Distributions of rider waits and of pickup-ETA error."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.figures._style import BLUE, ORANGE, PURPLE, empty_note, new_figure, style_axes
from reports.run import RunData


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _hist(ax, x: np.ndarray, colour: str, title: str, xlabel: str, unit: float = 1.0) -> None:
    style_axes(ax)
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    if x.size == 0:
        empty_note(ax, "no data in this run")
        return
    ax.hist(x / unit, bins=40, color=colour, alpha=0.85)
    for q, ls in ((50, "-"), (95, "--")):
        v = np.percentile(x, q) / unit
        ax.axvline(v, color="#111827", linestyle=ls, linewidth=1)
        ax.annotate(
            f"p{q}",
            (v, 1),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            xytext=(2, -10),
            textcoords="offset points",
        )


def distributions_figure(run: RunData) -> Figure:
    """Histograms of time to match, pickup wait and ETA error (actual - quoted), with p50/p95."""
    r = run.riders
    req = r["request_t"].to_numpy()
    fig = new_figure(10.0, 3.4)
    a, b, c = fig.subplots(1, 3)
    _hist(a, _finite(r["assign_t"].to_numpy() - req), BLUE, "Time to match", "seconds")
    _hist(b, _finite(r["pickup_t"].to_numpy() - req), ORANGE, "Pickup wait", "minutes", 60.0)
    # Rounded to the millisecond: exact quotes otherwise show float noise (1e-13 s) as spread.
    err = np.round(_finite(r["actual_eta"].to_numpy() - r["quoted_eta"].to_numpy()), 3)
    _hist(c, err, PURPLE, "Pickup ETA error (late > 0)", "seconds")
    if err.size:
        c.axvline(0, color="#6b7280", linewidth=0.8)
    a.set_ylabel("riders")
    return fig


def wait_overlay_figure(runs: list[tuple[str, RunData]]) -> Figure:
    """Pickup-wait distributions of several runs overlaid (empirical CDFs), one line per run."""
    fig = new_figure(9.0, 3.8)
    ax = fig.subplots()
    style_axes(ax)
    plotted = 0
    for label, run in runs:
        r = run.riders
        w = np.sort(_finite(r["pickup_t"].to_numpy() - r["request_t"].to_numpy())) / 60.0
        if w.size == 0:
            continue
        ax.step(w, np.arange(1, w.size + 1) / w.size, where="post", label=label)
        plotted += 1
    if not plotted:
        empty_note(ax, "no rider was picked up in these runs")
        return fig
    ax.set_xlabel("pickup wait (minutes)")
    ax.set_ylabel("share of picked-up riders")
    ax.set_ylim(0, 1.01)
    ax.set_title("Pickup wait: share of riders picked up within x minutes", loc="left")
    ax.legend(frameon=False, fontsize=8)
    return fig

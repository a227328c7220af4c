"""Matcher latency per batch from perf.json: measured wall-clock time, not simulated time."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.figures._style import BLUE, empty_note, new_figure, style_axes
from reports.run import RunData


def latency_figure(run: RunData) -> Figure:
    """Wall-clock milliseconds per matcher batch against batch size, and their distribution."""
    batches = run.batches
    fig = new_figure(10.0, 3.2)
    scatter, hist = fig.subplots(1, 2)
    for ax in (scatter, hist):
        style_axes(ax)
    scatter.set_title("Matcher time per batch (wall-clock)", loc="left")
    hist.set_title("Distribution (wall-clock)", loc="left")
    if batches.ndim != 2 or batches.shape[0] == 0 or batches.shape[1] < 5:
        empty_note(scatter, "no matcher batch timings in this run")
        empty_note(hist, "no matcher batch timings in this run")
        return fig
    size = batches[:, 2] * np.maximum(batches[:, 3], 1.0)
    ms = batches[:, 4]
    scatter.scatter(size, ms, s=6, alpha=0.5, color=BLUE, linewidths=0)
    scatter.set_xlabel("requests × drivers in the batch")
    scatter.set_ylabel("milliseconds")
    hist.hist(ms, bins=40, color=BLUE, alpha=0.85)
    hist.set_xlabel("milliseconds per batch")
    hist.set_ylabel("batches")
    return fig

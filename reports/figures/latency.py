"""Matcher time per batch from matcher_calls.parquet: measured wall-clock, not simulated."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from reports.figures._style import BLUE, bars, empty_note, style_axes
from reports.run import RunData


def has_batches(run: RunData) -> bool:
    """Whether the run recorded matcher calls."""
    return run.batches.shape[0] > 0


def draw_latency_scatter(ax: Axes, run: RunData) -> None:
    """Wall-clock milliseconds per matcher call against its size."""
    style_axes(ax)
    ax.set_title("Matcher time per call (wall-clock)", loc="left")
    b = run.batches
    if b.shape[0] == 0:
        empty_note(ax, "no matcher calls in this run")
        return
    size = b[:, 2] * np.maximum(b[:, 3], 1.0)
    ax.scatter(size, b[:, 4], s=6, alpha=0.5, color=BLUE, linewidths=0, rasterized=True)
    ax.set_xlabel("requests × drivers in the call")
    ax.set_ylabel("milliseconds")


def draw_latency_hist(ax: Axes, run: RunData) -> None:
    """Distribution of wall-clock milliseconds per matcher call."""
    style_axes(ax)
    ax.set_title("Distribution (wall-clock)", loc="left")
    b = run.batches
    if b.shape[0] == 0:
        empty_note(ax, "no matcher calls in this run")
        return
    bars(ax, b[:, 4], 40, BLUE)
    ax.set_xlabel("milliseconds per call")
    ax.set_ylabel("calls")

"""Distributions of rider waits and of pickup-time error, one histogram per axes, and the
pickup-wait curves of several runs (for comparisons)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from reports.figures._style import BLUE, ORANGE, PURPLE, bars, empty_note, style_axes
from reports.run import RunData


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _fmt(v: float, unit_name: str) -> str:
    return f"{v:.0f} {unit_name}" if abs(v) >= 10 else f"{v:.1f} {unit_name}"


def histogram(
    ax: Axes,
    x: np.ndarray,
    colour: str,
    title: str,
    xlabel: str,
    unit: float = 1.0,
    unit_name: str = "s",
    signed: bool = False,
) -> None:
    """A histogram of ``x / unit`` over its bulk (the 99% between the 0.5th and 99.5th
    percentiles, the rest piled into the end bars), so a few outliers do not squash the data
    into two bars. Marked in the legend: p50 and p95 for a duration; for a ``signed`` error
    the median and the band holding 90% of the errors by size."""
    style_axes(ax)
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    if x.size == 0:
        empty_note(ax, "no data in this run")
        return
    v = x / unit
    if np.ptp(v) == 0:
        empty_note(ax, f"all {v.size:,}: {_fmt(float(v[0]), unit_name)}")
        return
    lo, hi = np.percentile(v, [0.5, 99.5]) if signed else (0.0, np.percentile(v, 99.5))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bars(ax, np.clip(v, lo, hi), 40, colour, (lo, hi))
    if signed:
        med = float(np.median(v))
        p90 = float(np.percentile(np.abs(v), 90))
        ax.axvline(med, color="#111827", linewidth=1, label=f"median: {med:+.0f} {unit_name}")
        ax.axvspan(
            -p90, p90, color="#111827", alpha=0.08, label=f"90% within ±{p90:.0f} {unit_name}"
        )
    else:
        for q, ls in ((50, "-"), (95, "--")):
            p = float(np.percentile(v, q))
            ax.axvline(
                p, color="#111827", linestyle=ls, linewidth=1, label=f"p{q}: {_fmt(p, unit_name)}"
            )
    ax.set_xlim(lo, hi)
    ax.legend(frameon=False, fontsize=8, loc="upper right")


def draw_time_to_match(ax: Axes, run: RunData) -> None:
    """Seconds from request to the driver's assignment."""
    r = run.riders
    x = _finite(r["assign_t"].to_numpy() - r["request_t"].to_numpy())
    histogram(ax, x, BLUE, "Time to match", "seconds")
    ax.set_ylabel("riders")


def draw_pickup_wait(ax: Axes, run: RunData) -> None:
    """Minutes from request to pickup."""
    r = run.riders
    x = _finite(r["pickup_t"].to_numpy() - r["request_t"].to_numpy())
    histogram(ax, x, ORANGE, "Pickup wait", "minutes", 60.0, "min")


def pickup_time_error(run: RunData) -> tuple[np.ndarray, str]:
    """(actual - promised seconds, what was promised): the rider's quote against the actual
    wait when riders saw quotes, else the matcher's ETA against the actual drive."""
    r = run.riders
    quote = r["quote_eta"].to_numpy()
    completed = (r["outcome"] == "completed").to_numpy()
    if np.isfinite(quote[completed]).any():
        wait = r["pickup_t"].to_numpy() - r["request_t"].to_numpy()
        # Rounded to the millisecond: exact quotes otherwise show float noise as spread.
        err = np.where(completed, wait - quote, np.nan)
        return np.round(_finite(err), 3), "quoted pickup time"
    # Rounded to the millisecond: exact ETAs otherwise show float noise (1e-13 s) as spread.
    err = r["actual_eta"].to_numpy() - r["quoted_eta"].to_numpy()
    return np.round(_finite(err), 3), "driver's ETA at assignment"


def draw_pickup_error(ax: Axes, run: RunData) -> None:
    """Actual minus promised pickup time (late > 0)."""
    err, what = pickup_time_error(run)
    histogram(ax, err, PURPLE, f"Pickup vs {what}", "seconds late (early < 0)", signed=True)
    if err.size:
        ax.axvline(0, color="#6b7280", linewidth=0.8)


def draw_wait_curves(ax: Axes, runs: Sequence[tuple[str, RunData]]) -> None:
    """Pickup-wait distributions of several runs as empirical CDFs, one line per run."""
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
        return
    ax.set_xlabel("pickup wait (minutes)")
    ax.set_ylabel("share of picked-up riders")
    ax.set_ylim(0, 1.01)
    ax.set_title("Pickup wait: share of riders picked up within x minutes", loc="left")
    ax.legend(frameon=False, fontsize=8)

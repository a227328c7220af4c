"""Surge pricing: multipliers over time, the share of areas surging, and the mean multiplier
per area on the city map."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from reports.figures._style import ORANGE, RED, clock_axis, empty_note, style_axes
from reports.figures.city_map import draw_zone_values
from reports.run import RunData
from reports.surge import surge_frame


def _series(run: RunData) -> tuple[dict, np.ndarray, float] | None:
    ts = (run.metrics.get("surge") or {}).get("timeseries")
    if not ts:
        return None
    b = float(ts["bin_s"])
    return ts, np.asarray(ts["t_start_s"], dtype=float) + b / 2, b


def _arr(ts: dict, key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in ts[key]], dtype=float)


def _time_axis(ax: Axes, run: RunData) -> None:
    style_axes(ax)
    ax.set_xlim(0, max(run.horizon_s, 1.0))
    clock_axis(ax, run.start_clock, run.horizon_s)


def draw_surge_multiplier(ax: Axes, run: RunData) -> None:
    """Mean and highest multiplier over the city's areas per time bin."""
    s = _series(run)
    if s is None:
        empty_note(ax, "no surge pricing in this run")
        return
    ts, t, _ = s
    ax.plot(t, _arr(ts, "max_multiplier"), color=RED, label="highest area")
    ax.plot(t, _arr(ts, "mean_multiplier"), color=ORANGE, label="mean over areas")
    ax.axhline(1.0, color="#6b7280", linewidth=0.8)
    ax.set_ylabel("price multiplier")
    ax.set_title("Surge multiplier over time", loc="left")
    ax.legend(frameon=False, ncols=2, loc="upper left", fontsize=8)
    _time_axis(ax, run)


def draw_surge_share(ax: Axes, run: RunData) -> None:
    """Share of areas whose price was above 1 per time bin."""
    s = _series(run)
    if s is None:
        empty_note(ax, "no surge pricing in this run")
        return
    ts, t, b = s
    ax.bar(t, 100 * _arr(ts, "share_surging"), width=b * 0.9, color=ORANGE, alpha=0.7)
    ax.set_ylabel("% of areas")
    ax.set_title("Areas surging (multiplier above 1)", loc="left")
    _time_axis(ax, run)
    ax.set_ylim(0, 100)
    ax.set_xlabel("simulated clock time")


def surge_cell_means(run: RunData) -> tuple[list[str], np.ndarray]:
    """(cells, mean multiplier per cell) from surge.parquet, cells sorted."""
    if run.surge is None:
        return [], np.zeros(0)
    g = surge_frame(run.surge).groupby("cell", sort=True)["multiplier"].mean()
    return [str(c) for c in g.index], g.to_numpy(dtype=float)


def draw_surge_map(ax: Axes, run: RunData) -> None:
    """Mean surge multiplier per area over the run, on the run's zones."""
    cells, means = surge_cell_means(run)
    vmax = max(float(np.nanmax(means)) if means.size else 1.0, 1.0 + 1e-6)
    draw_zone_values(
        ax,
        run,
        cells,
        means,
        cmap="OrRd",
        title="Mean surge multiplier by area",
        label="mean multiplier",
        clim=(1.0, vmax),
    )

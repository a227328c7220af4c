"""Surge pricing: multipliers over time, and the mean multiplier per cell on the city map."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from reports.figures._style import (
    ORANGE,
    RED,
    clock_axis,
    empty_note,
    new_figure,
    style_axes,
)
from reports.run import RunData


def surge_timeseries_figure(run: RunData) -> Figure:
    """Mean and highest multiplier over the city's cells per time bin, and the share of cells
    surging."""
    fig = new_figure(9.0, 4.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    ts = (run.metrics.get("surge") or {}).get("timeseries")
    if not ts:
        empty_note(top, "no surge pricing in this run")
        return fig
    b = float(ts["bin_s"])
    t = np.asarray(ts["t_start_s"], dtype=float) + b / 2

    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in ts[key]], dtype=float)

    top.plot(t, arr("max_multiplier"), color=RED, label="highest cell")
    top.plot(t, arr("mean_multiplier"), color=ORANGE, label="mean over cells")
    top.axhline(1.0, color="#6b7280", linewidth=0.8)
    top.set_ylabel("multiplier")
    top.set_title("Surge multiplier over time", loc="left")
    top.legend(frameon=False, ncols=2, loc="upper left")
    bottom.bar(t, 100 * arr("share_surging"), width=b * 0.9, color=ORANGE, alpha=0.7)
    bottom.set_ylabel("% of cells")
    bottom.set_title("Cells surging (multiplier > 1)", loc="left")
    clock_axis(bottom, run.start_clock, run.horizon_s)
    bottom.set_xlabel("simulated clock time")
    for ax in (top, bottom):
        style_axes(ax)
        ax.set_xlim(0, max(run.horizon_s, 1.0))
    bottom.set_ylim(0, 100)
    return fig


def surge_cell_means(run: RunData) -> tuple[list[str], np.ndarray]:
    """(cells, mean multiplier per cell) from surge.parquet, cells sorted."""
    from reports.surge import surge_frame

    df = surge_frame(run.surge)
    g = df.groupby("cell", sort=True)["multiplier"].mean()
    return [str(c) for c in g.index], g.to_numpy(dtype=float)


def surge_map_figure(run: RunData) -> Figure:
    """Mean surge multiplier per cell over the run, on the city map: H3 cells as hexagons, other
    cell ids as dots at the centre of their nodes (from the ``cell`` column of nodes.parquet)."""
    import h3

    from reports.figures.city_map import _lonlat_to_xy, road_segments

    fig = new_figure(7.0, 5.6)
    ax = fig.subplots()
    if run.surge is None or run.nodes is None or run.nodes.num_rows == 0:
        empty_note(ax, "no surge prices or no city nodes in this run")
        return fig
    cells, means = surge_cell_means(run)
    nodes = run.nodes
    x, y = nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy()
    segs = road_segments(run)
    if segs is not None:
        ax.add_collection(
            LineCollection(segs, colors="#6b7280", linewidths=0.35, zorder=1, rasterized=True)
        )
    cmap = matplotlib.colormaps["OrRd"]
    vmax = max(float(np.nanmax(means)) if means.size else 1.0, 1.0 + 1e-6)
    geo = "lon" in nodes.column_names and nodes["lon"].null_count < nodes.num_rows
    is_h3 = bool(cells) and geo and all(h3.is_valid_cell(c) for c in cells)
    coef = _lonlat_to_xy(nodes) if is_h3 else None
    if coef is not None:
        polys = []
        for c in cells:
            ring = np.asarray(h3.cell_to_boundary(c))
            polys.append(np.column_stack([ring[:, 1], ring[:, 0], np.ones(len(ring))]) @ coef)
        art = PolyCollection(
            polys, array=means, cmap=cmap, alpha=0.7, edgecolors="white", linewidths=0.4,
            zorder=2,
        )  # fmt: skip
        art.set_clim(1.0, vmax)
        ax.add_collection(art)
    elif "cell" in nodes.column_names:
        nd = nodes.select(["cell", "x_m", "y_m"]).to_pandas()
        nd["cell"] = nd["cell"].astype(str)
        centre = nd.groupby("cell")[["x_m", "y_m"]].mean().reindex(cells)
        ok = centre["x_m"].notna().to_numpy()
        art = ax.scatter(
            centre["x_m"].to_numpy()[ok], centre["y_m"].to_numpy()[ok], c=means[ok], cmap=cmap,
            vmin=1.0, vmax=vmax, s=120, marker="s", edgecolors="white", zorder=2,
        )  # fmt: skip
    else:
        empty_note(ax, "surge cells cannot be placed on this city's map")
        return fig
    fig.colorbar(art, ax=ax, shrink=0.8, label="mean multiplier")
    ax.set_title("Mean surge multiplier by cell", loc="left")
    pad = 0.03 * max(np.ptp(x), np.ptp(y), 1.0)
    ax.set_xlim(x.min() - pad, x.max() + pad)
    ax.set_ylim(y.min() - pad, y.max() + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return fig

"""City maps: roads in thin grey, and per-zone values (mean pickup wait, match rate, surge
multiplier) drawn on the run's own zones: H3 hexagons on real cities, squares of the zoning's
side on synthetic ones (both from nodes.parquet: reports never compute zones)."""

from __future__ import annotations

from typing import Any

import h3
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection

from reports.figures._style import empty_note
from reports.run import RunData


def lonlat_to_xy(nodes: Any) -> np.ndarray | None:
    """Affine map [lon, lat, 1] -> [x, y] fitted to the nodes (least squares). At city scale the
    city's own projection is affine to within a pixel, and it keeps reports off cities/."""
    lon = nodes["lon"].to_numpy(zero_copy_only=False)
    lat = nodes["lat"].to_numpy(zero_copy_only=False)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.sum() < 3:
        return None
    a = np.column_stack([lon[ok], lat[ok], np.ones(ok.sum())])
    b = np.column_stack([nodes["x_m"].to_numpy()[ok], nodes["y_m"].to_numpy()[ok]])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return coef


def zone_polygons(run: RunData, cells: list[str]) -> list[np.ndarray] | None:
    """Planar outline (k, 2) of each of ``cells`` in the run's zoning, or None when the run
    has no zoning to place them with."""
    z = run.zoning
    if z is None:
        return None
    p = z.params
    if z.scheme == "grid" and p.get("cell_m"):
        s = float(p["cell_m"])
        x0, y0 = float(p.get("origin_x_m", 0.0)), float(p.get("origin_y_m", 0.0))
        out = []
        for c in cells:
            ix, iy = (int(v) for v in c[1:].split("_"))
            ax_, ay = x0 + ix * s, y0 + iy * s
            out.append(np.array([[ax_, ay], [ax_ + s, ay], [ax_ + s, ay + s], [ax_, ay + s]]))
        return out
    if z.scheme == "h3" and run.nodes is not None:
        coef = lonlat_to_xy(run.nodes)
        if coef is None:
            return None
        out = []
        for c in cells:
            ring = np.asarray(h3.cell_to_boundary(c))  # (lat, lng) pairs
            out.append(np.column_stack([ring[:, 1], ring[:, 0], np.ones(len(ring))]) @ coef)
        return out
    return None


def draw_roads(ax: Axes, run: RunData) -> None:
    """The road network as one thin grey polyline broken between segments (one artist, so
    a real city's 10^5 segments draw fast), rasterised."""
    r = run.roads
    if r is None or not r.num_rows:
        return
    nan = np.full(r.num_rows, np.nan)
    xs = np.column_stack([r["x0"].to_numpy(), r["x1"].to_numpy(), nan]).ravel()
    ys = np.column_stack([r["y0"].to_numpy(), r["y1"].to_numpy(), nan]).ravel()
    ax.plot(xs, ys, color="#6b7280", linewidth=0.35, zorder=1, rasterized=True)


def draw_zone_values(
    ax: Axes,
    run: RunData,
    cells: list[str],
    values: np.ndarray,
    *,
    cmap: str,
    title: str,
    label: str,
    clim: tuple[float, float] | None = None,
) -> None:
    """Per-zone ``values`` coloured over the roads, with a colour bar named ``label``."""
    ax.set_title(title, loc="left")
    nodes = run.nodes
    if nodes is None or nodes.num_rows == 0:
        empty_note(ax, "no city nodes in this run")
        return
    draw_roads(ax, run)
    polys = zone_polygons(run, cells) if cells else None
    x, y = nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy()
    if not polys:
        empty_note(ax, "no zones to draw in this run")
        return
    pc = PolyCollection(
        polys,
        array=np.ma.masked_invalid(np.asarray(values, dtype=float)),
        cmap=matplotlib.colormaps[cmap].with_extremes(bad="#e5e7eb"),
        alpha=0.65,
        edgecolors="white",
        linewidths=0.4,
        zorder=2,
    )
    if clim is not None:
        pc.set_clim(*clim)
    ax.add_collection(pc)
    ax.figure.colorbar(pc, ax=ax, shrink=0.8, label=label)
    pts = np.concatenate(polys)
    pad = 0.03 * max(np.ptp(x), np.ptp(y), 1.0)
    ax.set_xlim(min(x.min(), pts[:, 0].min()) - pad, max(x.max(), pts[:, 0].max()) + pad)
    ax.set_ylim(min(y.min(), pts[:, 1].min()) - pad, max(y.max(), pts[:, 1].max()) + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _zone_cells(run: RunData) -> tuple[list[str], list[dict[str, Any]]]:
    cells = (run.metrics.get("zones") or {}).get("cells") or {}
    return list(cells), list(cells.values())


def draw_wait_map(ax: Axes, run: RunData) -> None:
    """Mean pickup wait (minutes) of rides starting in each zone."""
    cells, rows = _zone_cells(run)
    wait = np.array([np.nan if r["mean_wait_s"] is None else r["mean_wait_s"] / 60 for r in rows])
    draw_zone_values(
        ax, run, cells, wait, cmap="YlOrRd", title="Mean pickup wait by area", label="minutes"
    )


def draw_match_map(ax: Axes, run: RunData) -> None:
    """Share of requests that got a driver, per zone."""
    cells, rows = _zone_cells(run)
    match = np.array([100 * r["match_rate"] for r in rows], dtype=float)
    draw_zone_values(
        ax,
        run,
        cells,
        match,
        cmap="RdYlGn",
        title="Match rate by area",
        label="% of requests matched",
        clim=(0.0, 100.0),
    )

"""City map: roads in thin grey, and per-zone mean pickup wait and match rate on top."""

from __future__ import annotations

from typing import Any

import h3
import matplotlib
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from reports.figures._style import empty_note, new_figure
from reports.run import RunData


def _lonlat_to_xy(nodes) -> np.ndarray | None:
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


def cell_polygons(zones: dict[str, Any], nodes) -> list[np.ndarray]:
    """Planar outline (k, 2) of each zone in ``zones["cells"]`` (same order)."""
    cells = list(zones["cells"])
    if zones["scheme"] == "grid":
        s = float(zones["cell_m"])
        out = []
        for c in cells:
            ix, iy = (int(v) for v in c[1:].split("_"))
            x0 = zones.get("origin_x_m", 0.0) + ix * s
            y0 = zones.get("origin_y_m", 0.0) + iy * s
            out.append(np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]]))
        return out
    coef = _lonlat_to_xy(nodes)
    out = []
    for c in cells:
        ring = np.asarray(h3.cell_to_boundary(c))  # (lat, lng) pairs
        lonlat1 = np.column_stack([ring[:, 1], ring[:, 0], np.ones(len(ring))])
        out.append(lonlat1 @ coef)
    return out


def road_segments(run: RunData) -> np.ndarray | None:
    """Road segments as an (n, 2, 2) array for a LineCollection, or None without roads."""
    if run.roads is None or not run.roads.num_rows:
        return None
    r = run.roads
    return np.stack(
        [
            np.column_stack([r["x0"].to_numpy(), r["y0"].to_numpy()]),
            np.column_stack([r["x1"].to_numpy(), r["y1"].to_numpy()]),
        ],
        axis=1,
    )


def city_map_figure(run: RunData) -> Figure:
    """Two maps side by side: mean pickup wait per zone and match rate per zone."""
    from reports.zones import zone_kpis

    fig = new_figure(10.5, 5.0)
    axes = fig.subplots(1, 2)
    if run.nodes is None or run.nodes.num_rows == 0:
        for ax in axes:
            empty_note(ax, "no city nodes in this run")
        return fig
    zones = run.metrics.get("zones") or zone_kpis(run.riders, run.nodes)
    polys = cell_polygons(zones, run.nodes) if zones["cells"] else []
    cells = list(zones["cells"].values())
    wait_min = np.array(
        [np.nan if c["mean_wait_s"] is None else c["mean_wait_s"] / 60.0 for c in cells]
    )
    match = np.array([c["match_rate"] for c in cells], dtype=float)
    segs = road_segments(run)
    x = run.nodes["x_m"].to_numpy()
    y = run.nodes["y_m"].to_numpy()
    panels = (
        (axes[0], wait_min, "YlOrRd", "Mean pickup wait by zone (minutes)", None),
        (axes[1], match, "RdYlGn", "Match rate by zone", (0.0, 1.0)),
    )
    for ax, values, cmap, title, clim in panels:
        ax.set_title(title, loc="left")
        if segs is not None:
            # Rasterised: a real city has 10^5 segments, too many for vector output.
            ax.add_collection(
                LineCollection(segs, colors="#6b7280", linewidths=0.35, zorder=1, rasterized=True)
            )
        if polys:
            pc = PolyCollection(
                polys,
                array=np.ma.masked_invalid(values),
                cmap=matplotlib.colormaps[cmap].with_extremes(bad="#e5e7eb"),
                alpha=0.65,
                edgecolors="white",
                linewidths=0.4,
                zorder=2,
            )
            if clim is not None:
                pc.set_clim(*clim)
            ax.add_collection(pc)
            fig.colorbar(pc, ax=ax, shrink=0.8)
        else:
            empty_note(ax, "no requests")
        pad = 0.03 * max(np.ptp(x), np.ptp(y), 1.0)
        pts = np.concatenate(polys) if polys else np.column_stack([x, y])
        ax.set_xlim(min(x.min(), pts[:, 0].min()) - pad, max(x.max(), pts[:, 0].max()) + pad)
        ax.set_ylim(min(y.min(), pts[:, 1].min()) - pad, max(y.max(), pts[:, 1].max()) + pad)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    return fig

"""Rider service by zone: match rate and mean pickup wait per cell of the pickup location.

Cells are H3 cells (resolution 8 by default, about 0.7 km²) when the city's nodes carry
lon/lat, and squares of ``cell_m`` metres over the planar coordinates for synthetic cities
(ids ``g<ix>_<iy>`` with ``ix = floor((x_m - min x_m) / cell_m)``, the grid anchored at the
smallest node coordinate, recorded as ``origin_x_m`` / ``origin_y_m``). Only zones with at least
``min_requests`` requests rank for the worst-served zone and the spread between zones, so one
unlucky request in an empty corner does not dominate.
"""

from __future__ import annotations

from typing import Any

import h3
import numpy as np
import pandas as pd
import pyarrow as pa

from reports.kpis import Columns, as_columns, rider_table

H3_RESOLUTION = 8
GRID_CELL_M = 1000.0
MIN_REQUESTS = 10


def grid_origin(all_v: np.ndarray) -> float:
    """Where the square grid starts on one axis: the smallest node coordinate."""
    finite = all_v[np.isfinite(all_v)]
    return float(finite.min()) if finite.size else 0.0


def _grid_index(v: np.ndarray, all_v: np.ndarray, cell_m: float) -> np.ndarray:
    """Cell index along one axis, counted from the smallest node coordinate; nodes exactly on
    the far edge fold into the last cell, so a 4 km city gets four 1 km cells, not a sliver."""
    lo = grid_origin(all_v)
    finite = all_v[np.isfinite(all_v)]
    n = max(1, int(np.ceil((finite.max() - lo) / cell_m))) if finite.size else 1
    return np.minimum(np.floor((v - lo) / cell_m), n - 1)


def node_cells(
    nodes: pa.Table,
    node_ids: np.ndarray,
    resolution: int = H3_RESOLUTION,
    cell_m: float = GRID_CELL_M,
) -> tuple[str, np.ndarray]:
    """(scheme, cell id per node in ``node_ids``); scheme is ``h3`` or ``grid``."""
    df = nodes.to_pandas().set_index("node")
    sub = df.reindex(node_ids)
    geo = (
        "lon" in df.columns
        and "lat" in df.columns
        and len(df) > 0
        and df["lon"].notna().all()
        and df["lat"].notna().all()
    )
    if geo:
        # One h3 call per distinct node (not per event): the API is scalar.
        lat, lon = sub["lat"].to_numpy(), sub["lon"].to_numpy()
        cells = np.array(
            [
                h3.latlng_to_cell(a, o, resolution) if np.isfinite(a) else ""
                for a, o in zip(lat, lon, strict=True)
            ],
            dtype=object,
        )
        return "h3", cells
    ix = _grid_index(sub["x_m"].to_numpy(), df["x_m"].to_numpy(), cell_m)
    iy = _grid_index(sub["y_m"].to_numpy(), df["y_m"].to_numpy(), cell_m)
    ok = np.isfinite(ix) & np.isfinite(iy)
    cells = np.full(len(sub), "", dtype=object)
    cells[ok] = (
        pd.Series(ix[ok].astype(np.int64)).astype(str).radd("g")
        + "_"
        + pd.Series(iy[ok].astype(np.int64)).astype(str)
    ).to_numpy()
    return "grid", cells


def riders_of(events: pa.Table | Columns | pd.DataFrame) -> pd.DataFrame:
    """The rider table of an event table, of columns, or the rider table itself."""
    return events if isinstance(events, pd.DataFrame) else rider_table(as_columns(events))


def zone_table(
    events: pa.Table | Columns | pd.DataFrame,
    nodes: pa.Table,
    resolution: int = H3_RESOLUTION,
    cell_m: float = GRID_CELL_M,
) -> tuple[str, pd.DataFrame]:
    """(scheme, one row per zone with requests): requests, matched, completed, match_rate,
    mean_wait_s and the zone's centre x_m / y_m (mean of its request nodes). ``events`` may
    be the event table, its columns or the rider table."""
    riders = riders_of(events)
    req_nodes = riders["node"].to_numpy()
    uniq, inv = np.unique(req_nodes.astype(np.int64), return_inverse=True)
    scheme, cells_u = node_cells(nodes, uniq, resolution, cell_m)
    xy = nodes.to_pandas().set_index("node").reindex(uniq)[["x_m", "y_m"]].to_numpy()
    df = pd.DataFrame(
        {
            "cell": cells_u[inv] if uniq.size else np.array([], dtype=object),
            "matched": np.isfinite(riders["assign_t"].to_numpy()),
            "completed": (riders["outcome"] == "completed").to_numpy(),
            "wait": riders["pickup_t"].to_numpy() - riders["request_t"].to_numpy(),
            "x_m": xy[inv, 0] if uniq.size else np.array([]),
            "y_m": xy[inv, 1] if uniq.size else np.array([]),
        }
    )
    df = df[df["cell"] != ""]
    g = df.groupby("cell", sort=True)
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "matched": g["matched"].sum(),
            "completed": g["completed"].sum(),
            "mean_wait_s": g["wait"].mean(),
            "x_m": g["x_m"].mean(),
            "y_m": g["y_m"].mean(),
        }
    )
    out["match_rate"] = out["matched"] / out["requests"]
    return scheme, out


def zone_kpis(
    events: pa.Table | Columns | pd.DataFrame,
    nodes: pa.Table,
    resolution: int = H3_RESOLUTION,
    cell_m: float = GRID_CELL_M,
    min_requests: int = MIN_REQUESTS,
) -> dict[str, Any]:
    """The ``zones`` section of metrics.json: per-zone service, worst zone, spread."""
    scheme, z = zone_table(events, nodes, resolution, cell_m)
    ranked = z[z["requests"] >= min_requests]
    worst_match = worst_wait = None
    spread: dict[str, Any] = {"match_rate": None, "mean_wait_s": None}
    if len(ranked):
        # Ties broken by the other measure, then by cell id, so the answer is deterministic.
        r = ranked.reset_index()
        w = r.sort_values(
            ["match_rate", "mean_wait_s", "cell"], ascending=[True, False, True], na_position="last"
        ).iloc[0]
        worst_match = {
            "cell": w["cell"],
            "match_rate": w["match_rate"],
            "mean_wait_s": w["mean_wait_s"],
            "requests": int(w["requests"]),
        }
        waits = r.dropna(subset=["mean_wait_s"])
        if len(waits):
            w = waits.sort_values(["mean_wait_s", "cell"], ascending=[False, True]).iloc[0]
            worst_wait = {
                "cell": w["cell"],
                "match_rate": w["match_rate"],
                "mean_wait_s": w["mean_wait_s"],
                "requests": int(w["requests"]),
            }
            spread["mean_wait_s"] = float(waits["mean_wait_s"].max() - waits["mean_wait_s"].min())
        spread["match_rate"] = float(r["match_rate"].max() - r["match_rate"].min())
    params: dict[str, Any] = (
        {"resolution": resolution}
        if scheme == "h3"
        else {
            "cell_m": cell_m,
            "origin_x_m": grid_origin(nodes["x_m"].to_numpy()),
            "origin_y_m": grid_origin(nodes["y_m"].to_numpy()),
        }
    )
    return {
        "scheme": scheme,
        **params,
        "min_requests": min_requests,
        "count": int(len(z)),
        "ranked": int(len(ranked)),
        "worst_match_rate": worst_match,
        "worst_mean_wait": worst_wait,
        "spread": spread,
        "cells": {
            str(cell): {
                "requests": int(row.requests),
                "matched": int(row.matched),
                "completed": int(row.completed),
                "match_rate": float(row.match_rate),
                "mean_wait_s": float(row.mean_wait_s),
                "x_m": float(row.x_m),
                "y_m": float(row.y_m),
            }
            for cell, row in zip(z.index, z.itertuples(index=False), strict=True)
        },
    }

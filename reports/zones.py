"""Rider service by zone: match rate and mean pickup wait per cell of the pickup location.

The zones are the run's own zoning, computed once by the run from its scenario (H3 cells on
real cities, squares on synthetic spaces: :mod:`cities.zones`) and written to
``nodes.parquet``: a ``cell`` column (each node's cell id) and the schema metadata key
``ridesim.zones`` (scheme, H3 resolution or square side, and the squares' origin). Reports
read it and never compute zones of their own, so the zones here are the cells surge priced.

Only zones with at least ``min_requests`` requests rank for the worst-served zone and the
spread between zones, so one unlucky request in an empty corner does not dominate.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reports.tables import Columns, as_columns, dictionary_indices, rider_table

MIN_REQUESTS = 10
ZONES_METADATA_KEY = b"ridesim.zones"
"""Schema metadata key of ``nodes.parquet`` holding the zoning's parameters (JSON)."""


@dataclass(frozen=True, eq=False)
class Zoning:
    """The run's zoning as written to ``nodes.parquet``: ``code[i]`` is node ``i``'s position
    in ``names`` (the distinct cell ids, ascending; -1 for a node added after the zoning was
    computed), ``x_m``/``y_m`` its position, and ``params`` the scheme and its parameters
    (``scheme``, ``resolution`` or ``cell_m``, ``origin_x_m``, ``origin_y_m``)."""

    code: np.ndarray
    names: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    params: dict[str, Any]

    @property
    def scheme(self) -> str:
        return str(self.params.get("scheme", "unknown"))

    @cached_property
    def cell(self) -> np.ndarray:
        """Each node's cell id (object array; "" for a node without one)."""
        return self._lookup(self.code)

    def _lookup(self, codes: np.ndarray) -> np.ndarray:
        # Cell ids of codes, "" for -1 (one string object per cell, shared by its nodes).
        lut = np.array([*self.names.tolist(), ""], dtype=object)
        return lut[np.where(codes < 0, self.names.size, codes)]

    def codes_of(self, nodes: np.ndarray) -> np.ndarray:
        """Positions in ``names`` of the cells of node ids (-1 for an unknown node)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        ok = (nodes >= 0) & (nodes < self.code.size)
        return np.where(ok, self.code[np.where(ok, nodes, 0)], -1)

    def cells_of(self, nodes: np.ndarray) -> np.ndarray:
        """Cell ids of node ids (object array; "" for an unknown node)."""
        return self._lookup(self.codes_of(nodes))


def zoning_metadata(params: dict[str, Any]) -> dict[bytes, bytes]:
    """The ``nodes.parquet`` schema metadata that records a zoning's parameters."""
    return {ZONES_METADATA_KEY: json.dumps(params, sort_keys=True).encode()}


def _cell_codes(cells: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, distinct cell ids ascending) of a string or dictionary column; a null
    or empty cell id gets code -1."""
    if not pa.types.is_dictionary(cells.type):
        cells = pc.dictionary_encode(cells)
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.unify_dictionaries().combine_chunks() if cells.num_chunks else None
    if cells is None:
        return np.zeros(0, dtype=np.int64), np.array([], dtype=object)
    words = cells.dictionary.to_pylist()
    names = sorted({w for w in words if w})
    rank = {w: i for i, w in enumerate(names)}
    lut = np.array([*(rank.get(w, -1) if w else -1 for w in words), -1], dtype=np.int64)
    return lut[dictionary_indices(cells)], np.array(names, dtype=object)


def read_zoning(nodes: pa.Table | None) -> Zoning | None:
    """The zoning of a run's ``nodes.parquet`` table, or None when it carries none (no
    ``cell`` column: a run written before every run had its zoning). The ``cell`` column may
    be read as strings or as a dictionary."""
    if nodes is None or "cell" not in nodes.column_names:
        return None
    meta = nodes.schema.metadata or {}
    params = json.loads(meta[ZONES_METADATA_KEY]) if ZONES_METADATA_KEY in meta else {}
    node = nodes["node"].to_numpy().astype(np.int64)
    n = int(node.max()) + 1 if node.size else 0
    row_code, names = _cell_codes(nodes["cell"])
    code = np.full(n, -1, dtype=np.int64)
    code[node] = row_code
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    x[node] = nodes["x_m"].to_numpy()
    y[node] = nodes["y_m"].to_numpy()
    return Zoning(code=code, names=names, x_m=x, y_m=y, params=params)


def riders_of(events: pa.Table | Columns | pd.DataFrame) -> pd.DataFrame:
    """The rider table of an event table, of columns, or the rider table itself."""
    return events if isinstance(events, pd.DataFrame) else rider_table(as_columns(events))


def zone_table(events: pa.Table | Columns | pd.DataFrame, zoning: Zoning) -> pd.DataFrame:
    """One row per zone with requests (index: cell id, sorted): requests, matched, completed,
    match_rate, mean_wait_s and the zone's centre x_m / y_m (mean of its request nodes).
    ``events`` may be the event table, its columns or the rider table."""
    riders = riders_of(events)
    req_nodes = riders["node"].to_numpy().astype(np.int64)
    ok = (req_nodes >= 0) & (req_nodes < zoning.code.size)
    safe = np.where(ok, req_nodes, 0)
    # Grouped by the cell's code (ranked as the ids): integers group faster than strings.
    df = pd.DataFrame(
        {
            "code": zoning.codes_of(req_nodes),
            "matched": np.isfinite(riders["assign_t"].to_numpy()),
            "completed": (riders["outcome"] == "completed").to_numpy(),
            "wait": riders["pickup_t"].to_numpy() - riders["request_t"].to_numpy(),
            "x_m": np.where(ok, zoning.x_m[safe], np.nan),
            "y_m": np.where(ok, zoning.y_m[safe], np.nan),
        }
    )
    df = df[df["code"] >= 0]
    g = df.groupby("code", sort=True)
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
    out.index = pd.Index(zoning.names[out.index.to_numpy(dtype=np.int64)], name="cell")
    out["match_rate"] = out["matched"] / out["requests"]
    return out


def _zone_row(w: pd.Series) -> dict[str, Any]:
    return {
        "cell": w["cell"],
        "match_rate": w["match_rate"],
        "mean_wait_s": w["mean_wait_s"],
        "requests": int(w["requests"]),
        "x_m": w["x_m"],
        "y_m": w["y_m"],
    }


def zone_kpis(
    events: pa.Table | Columns | pd.DataFrame, zoning: Zoning, min_requests: int = MIN_REQUESTS
) -> dict[str, Any]:
    """The ``zones`` section of metrics.json: per-zone service, worst zone, spread, and the
    city centre (mean position of the nodes) that zone names are given relative to."""
    z = zone_table(events, zoning)
    ranked = z[z["requests"] >= min_requests]
    worst_match = worst_wait = None
    spread: dict[str, Any] = {"match_rate": None, "mean_wait_s": None}
    if len(ranked):
        # Ties broken by the other measure, then by cell id, so the answer is deterministic.
        r = ranked.reset_index()
        w = r.sort_values(
            ["match_rate", "mean_wait_s", "cell"], ascending=[True, False, True], na_position="last"
        ).iloc[0]
        worst_match = _zone_row(w)
        waits = r.dropna(subset=["mean_wait_s"])
        if len(waits):
            w = waits.sort_values(["mean_wait_s", "cell"], ascending=[False, True]).iloc[0]
            worst_wait = _zone_row(w)
            spread["mean_wait_s"] = float(waits["mean_wait_s"].max() - waits["mean_wait_s"].min())
        spread["match_rate"] = float(r["match_rate"].max() - r["match_rate"].min())
    return {
        **zoning.params,
        "scheme": zoning.scheme,
        "centre_x_m": float(np.nanmean(zoning.x_m)) if zoning.x_m.size else None,
        "centre_y_m": float(np.nanmean(zoning.y_m)) if zoning.y_m.size else None,
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


COMPASS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def zone_name(x_m: float | None, y_m: float | None, zones: dict[str, Any]) -> str:
    """A zone named for people: where it lies from the city centre ("2.4 km NE of the centre",
    "the centre" within 300 m), from the zone's centre and the ``zones`` section."""
    cx, cy = zones.get("centre_x_m"), zones.get("centre_y_m")
    if x_m is None or y_m is None or cx is None or cy is None:
        return "an unnamed zone"
    dx, dy = float(x_m) - float(cx), float(y_m) - float(cy)
    dist = math.hypot(dx, dy)
    if dist < 300.0:
        return "the city centre"
    sector = int(round(math.degrees(math.atan2(dy, dx)) / 45.0)) % 8
    return f"{dist / 1000.0:.1f} km {COMPASS[sector]} of the centre"

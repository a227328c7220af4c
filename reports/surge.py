"""Surge pricing KPIs from ``surge.parquet`` (written when a surge policy runs).

One row per pricing interval and cell: ``t`` (start of the interval), ``cell``, ``multiplier``
and the supply/demand the policy saw (``open_requests``, ``quotes``, ``unconverted_quotes``,
``idle_drivers``, ``en_route_drivers``, ``recent_pickup_eta_s``). The section reports:

* over *cell-intervals*: how often a cell surged (multiplier > 1) and the distribution of
  multipliers, and for the most expensive cells; per time bin, the mean and highest multiplier
  and the share of cells surging among the prices in force during the bin (a price is in force
  from its ``t`` for one interval);
* over *requests* (and quotes): each request is joined to the interval of its pickup cell in
  force when it was made (the row of that cell with the latest ``t`` <= request time, no older
  than one interval). Requests whose cell had no row then paid no surge (counted as 1,
  ``unpriced``). A request's cell is its pickup node's in the run's zoning (the ``cell``
  column of ``nodes.parquet``, :mod:`reports.zones`); without it the request view is null;
* the supply/demand the policy saw in surging vs calm cell-intervals.

The fare-weighted multiplier is not computable from the log (fares do not carry it), so the
distribution is given over cell-intervals and over requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import InputError
from reports.market import bin_edges
from reports.tables import QUOTE, Columns, describe
from reports.zones import Zoning

REQUIRED = ("t", "cell", "multiplier")
SUPPLY_DEMAND = (
    "open_requests",
    "quotes",
    "unconverted_quotes",
    "idle_drivers",
    "en_route_drivers",
    "recent_pickup_eta_s",
)
SURGING = 1.0 + 1e-9
TOP_CELLS = 5


def surge_frame(table: pa.Table, where: str = "surge.parquet") -> pd.DataFrame:
    """The surge table as a DataFrame sorted by (t, cell), checked for its required columns."""
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(where, "", f"missing column(s) {', '.join(missing)}")
    df = table.to_pandas()
    df["cell"] = df["cell"].astype(str)
    df["t"] = df["t"].astype(np.float64)
    df["multiplier"] = df["multiplier"].astype(np.float64)
    return df.sort_values(["t", "cell"], kind="stable").reset_index(drop=True)


def interval_s(df: pd.DataFrame) -> float | None:
    """The pricing interval: the median gap between distinct interval starts."""
    ts = np.unique(df["t"].to_numpy())
    return float(np.median(np.diff(ts))) if ts.size >= 2 else None


def join_multipliers(
    df: pd.DataFrame, t: np.ndarray, cells: np.ndarray, interval: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, priced) for events at times ``t`` in ``cells``: the row of that cell with the
    latest start <= t, no older than one interval; 1.0 and not priced otherwise."""
    n = t.size
    if n == 0 or len(df) == 0:
        return np.ones(n), np.zeros(n, dtype=bool)
    codes, _ = pd.factorize(np.concatenate([df["cell"].to_numpy(dtype=object), cells]))
    row_code, ev_code = codes[: len(df)], codes[len(df) :]
    row_t = df["t"].to_numpy()
    k = row_t.size
    # Merge rows and events ordered by (cell, time, rows before events): each event's interval
    # row is the last row before it in that order, if it belongs to the same cell.
    is_ev = np.concatenate([np.zeros(k, dtype=np.int8), np.ones(n, dtype=np.int8)])
    order = np.lexsort((is_ev, np.concatenate([row_t, t]), np.concatenate([row_code, ev_code])))
    last_row = np.maximum.accumulate(np.where(is_ev[order] == 0, np.arange(order.size), -1))
    ev_at = np.flatnonzero(is_ev[order] == 1)
    idx = np.full(n, -1, dtype=np.int64)
    found = last_row[ev_at] >= 0
    idx[order[ev_at[found]] - k] = order[last_row[ev_at[found]]]
    idx = np.where((idx >= 0) & (row_code[np.maximum(idx, 0)] == ev_code), idx, -1)
    mult = df["multiplier"].to_numpy()
    ok = idx >= 0
    safe = np.maximum(idx, 0)
    if interval is not None:
        ok &= t - row_t[safe] < interval
    ok &= cells != ""
    return np.where(ok, mult[safe], 1.0), ok


def prices_in_force(
    df: pd.DataFrame, edges: np.ndarray, interval: float | None, horizon_s: float
) -> pd.DataFrame:
    """One row per (time bin, cell-interval in force during some of that bin): columns ``bin``,
    ``m`` (multiplier) and ``s`` (surging). A price is in force from its ``t`` for one interval
    (to the horizon when the run had a single interval)."""
    t = df["t"].to_numpy()
    span = interval if interval is not None else max(horizon_s - float(t.min(initial=0.0)), 0.0)
    nb = edges.size - 1
    first = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, nb - 1)
    last = np.clip(np.searchsorted(edges, t + span, side="left") - 1, first, nb - 1)
    count = last - first + 1
    rows = np.repeat(np.arange(t.size), count)
    offset = np.arange(rows.size) - np.repeat(np.cumsum(count) - count, count)
    mult = df["multiplier"].to_numpy()[rows]
    return pd.DataFrame({"bin": first[rows] + offset, "m": mult, "s": mult > SURGING})


def surge_kpis(
    table: pa.Table,
    where: Path | str,
    c: Columns,
    riders: pd.DataFrame,
    zoning: Zoning | None,
    horizon_s: float,
) -> dict[str, Any]:
    """The ``surge`` section from ``surge.parquet``'s table (``where`` names it in errors)."""
    return surge_summary(surge_frame(table, str(where)), c, riders, zoning, horizon_s)


def _means(df: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"cell_intervals": int(len(df))}
    for col in SUPPLY_DEMAND:
        if col in df.columns:
            v = df[col].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            out[f"mean_{col}"] = float(v.mean()) if v.size else None
    return out


def surge_summary(
    df: pd.DataFrame,
    c: Columns,
    riders: pd.DataFrame,
    zoning: Zoning | None,
    horizon_s: float,
) -> dict[str, Any]:
    """Everything in the ``surge`` section from the sorted surge frame."""
    mult = df["multiplier"].to_numpy()
    surging = mult > SURGING
    interval = interval_s(df)
    edges = bin_edges(horizon_s)
    nb = edges.size - 1
    in_force = prices_in_force(df, edges, interval, horizon_s)
    per_bin = in_force.groupby("bin")

    def by_bin(series: pd.Series) -> list[float | None]:
        out = np.full(nb, np.nan)
        out[series.index.to_numpy()] = series.to_numpy(dtype=np.float64)
        return out.tolist()

    cells = df.groupby("cell", sort=True)["multiplier"]
    top = (
        pd.DataFrame(
            {
                "mean": cells.mean(),
                "max": cells.max(),
                "share": cells.apply(lambda s: float((s.to_numpy() > SURGING).mean())),
            }
        )
        .reset_index()
        .sort_values(["mean", "cell"], ascending=[False, True])
        .head(TOP_CELLS)
    )
    out: dict[str, Any] = {
        "interval_s": interval,
        "cell_intervals": {
            "count": int(len(df)),
            "cells": int(df["cell"].nunique()),
            "intervals": int(df["t"].nunique()),
            "share_surging": float(surging.mean()) if len(df) else None,
            "multiplier": describe(mult),
        },
        "top_cells": [
            {"cell": r.cell, "mean": r.mean, "max": r.max, "share_surging": r.share}
            for r in top.itertuples(index=False)
        ],
        "surging_vs_calm": {"surging": _means(df[surging]), "calm": _means(df[~surging])},
        "timeseries": {
            "bin_s": int(round(edges[1] - edges[0])),
            "t_start_s": edges[:-1].tolist(),
            "mean_multiplier": by_bin(per_bin["m"].mean()),
            "max_multiplier": by_bin(per_bin["m"].max()),
            "share_surging": by_bin(per_bin["s"].mean()),
        },
        "cell_source": None,
        "requests": None,
        "quotes": None,
    }
    req_nodes = riders["node"].to_numpy().astype(np.int64)
    q_rows = np.flatnonzero((c.kind == QUOTE) & (c.rider >= 0))
    q_nodes = c.node[q_rows]
    if zoning is None:
        return out
    out["cell_source"] = "column"
    ev_cells = zoning.cells_of(np.concatenate([req_nodes, q_nodes]))
    r_cells, q_cells = ev_cells[: req_nodes.size], ev_cells[req_nodes.size :]
    r_mult, r_priced = join_multipliers(df, riders["request_t"].to_numpy(), r_cells, interval)
    has_cell = r_cells != ""
    rm = r_mult[has_cell]
    out["requests"] = {
        "count": int(req_nodes.size),
        "without_cell": int((~has_cell).sum()),
        "priced": int(r_priced.sum()),
        "unpriced": int((has_cell & ~r_priced).sum()),
        "share_surging": float((rm > SURGING).mean()) if rm.size else None,
        "multiplier": describe(rm),
    }
    if q_rows.size:
        q_mult, _ = join_multipliers(df, c.t[q_rows], q_cells, interval)
        requested = c.detail[q_rows] == c.detail_code("request")
        s = (q_mult > SURGING) & (q_cells != "")
        calm = ~s & (q_cells != "")
        out["quotes"] = {
            "count": int(q_rows.size),
            "surging": int(s.sum()),
            "conversion_surging": float(requested[s].mean()) if s.any() else None,
            "conversion_calm": float(requested[calm].mean()) if calm.any() else None,
        }
    return out

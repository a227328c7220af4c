"""Helpers for KPI tests: small event logs and run directories written by hand, for edge cases
and exact hand-computed values. They use only what the engine writes (its event kinds and
cancel reasons, its perf.json fields); report tests run on real runs (see conftest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import EVENTS_SCHEMA
from reports.zones import zoning_metadata

Row = tuple  # (t, kind, rider, driver, node, dest_node, value, detail, fare); None for missing


def make_events(rows: list[Row]) -> pa.Table:
    """An event table in the log schema from (t, kind, rider, driver, node, dest, value, detail,
    fare) tuples; missing trailing fields and None mean null."""
    full = [tuple(r) + (None,) * (9 - len(r)) for r in rows]
    cols = list(zip(*full, strict=True)) if full else [()] * 9
    return pa.table(
        {
            "seq": pa.array(range(len(full)), pa.int64()),
            "t": pa.array(cols[0], pa.float64()),
            "kind": pa.array(cols[1], pa.string()),
            "rider": pa.array(cols[2], pa.int64()),
            "driver": pa.array(cols[3], pa.int64()),
            "node": pa.array(cols[4], pa.int64()),
            "dest_node": pa.array(cols[5], pa.int64()),
            "value": pa.array(cols[6], pa.float64()),
            "fare": pa.array(cols[8], pa.float64()),
            "detail": pa.array(cols[7], pa.string()),
        },
        schema=EVENTS_SCHEMA,
    )


def manifest(
    name: str = "tiny",
    seed: int = 1,
    duration_s: float = 3600.0,
    city: str = "grid",
    slo: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A run manifest shaped like the engine's."""
    scenario: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "time": {"start": "07:00", "duration_s": duration_s},
        "dispatch": {
            "matcher": "greedy",
            "params": {},
            "batch_window_s": 10.0,
            "max_pickup_eta_s": 900.0,
        },
    }
    if slo is not None:
        scenario["slo"] = slo
    return {
        "run_id": run_id or f"{name}-s{seed}",
        "scenario": scenario,
        "matcher": {"name": "greedy", "params": {}},
        "versions": {"ridesim": "0.1.0"},
        "inputs": {},
        "city": {"name": city, "n_nodes": 0, "content_hash": "abc123"},
    }


def write_run(
    run_dir: Path,
    events: pa.Table,
    man: dict[str, Any],
    nodes: pa.Table | None = None,
    roads: pa.Table | None = None,
    perf: dict[str, Any] | None = None,
) -> Path:
    """Write a run directory the way the engine lays it out."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(events, run_dir / "events.parquet")
    (run_dir / "manifest.json").write_text(json.dumps(man, indent=2))
    if nodes is not None:
        pq.write_table(nodes, run_dir / "nodes.parquet")
    if roads is not None:
        pq.write_table(roads, run_dir / "roads.parquet")
    if perf is not None:
        (run_dir / "perf.json").write_text(json.dumps(perf, indent=2))
    return run_dir


def grid_nodes(n_side: int = 10, spacing_m: float = 400.0, geo: bool = False) -> pa.Table:
    """A square grid of nodes with their zoning as a run writes it: 1 km squares from the
    origin, or with ``geo`` lon/lat near Berlin and H3 cells of resolution 8."""
    ix, iy = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
    x = ix.ravel() * spacing_m
    y = iy.ravel() * spacing_m
    lon = 13.40 + x / 67_800.0 if geo else [None] * x.size
    lat = 52.50 + y / 111_200.0 if geo else [None] * x.size
    if geo:
        cells = [h3.latlng_to_cell(a, o, 8) for a, o in zip(lat, lon, strict=True)]
        params: dict[str, Any] = {"scheme": "h3", "resolution": 8}
    else:
        cells = [f"g{int(a // 1000)}_{int(b // 1000)}" for a, b in zip(x, y, strict=True)]
        params = {"scheme": "grid", "cell_m": 1000.0, "origin_x_m": 0.0, "origin_y_m": 0.0}
    return pa.table(
        {
            "node": pa.array(np.arange(x.size), pa.int64()),
            "x_m": pa.array(x, pa.float64()),
            "y_m": pa.array(y, pa.float64()),
            "lon": pa.array(lon, pa.float64()),
            "lat": pa.array(lat, pa.float64()),
            "cell": pa.array(cells, pa.string()),
        }
    ).replace_schema_metadata(zoning_metadata(params))


def grid_roads(n_side: int = 10, spacing_m: float = 400.0) -> pa.Table:
    """Road segments joining grid neighbours."""
    ix, iy = np.meshgrid(np.arange(n_side - 1), np.arange(n_side), indexing="ij")
    h = np.stack([ix.ravel(), iy.ravel(), ix.ravel() + 1, iy.ravel()], axis=1)
    v = h[:, [1, 0, 3, 2]]
    seg = np.concatenate([h, v]).astype(np.float64) * spacing_m
    return pa.table({k: pa.array(seg[:, i]) for i, k in enumerate(("x0", "y0", "x1", "y1"))})


def synthetic_events(
    seed: int,
    n_riders: int = 300,
    n_drivers: int = 80,
    horizon_s: float = 3600.0,
    n_nodes: int = 100,
) -> pa.Table:
    """A plausible event log: each rider takes the driver free soonest, or gives up waiting;
    riders in the first 15 nodes (a corner) see slower pickups, so zones differ."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    free_at = rng.uniform(0, 300, n_drivers)
    off_at = np.where(np.arange(n_drivers) % 5 == 4, rng.uniform(2400, 3300, n_drivers), np.inf)
    for d in range(n_drivers):
        rows.append((float(free_at[d]), "driver_online", None, d, int(rng.integers(n_nodes))))
        if np.isfinite(off_at[d]):
            rows.append((float(off_at[d]), "driver_offline", None, d, 0))
    req_t = np.sort(rng.uniform(0, horizon_s * 0.95, n_riders))
    for r in range(n_riders):
        t0 = float(req_t[r])
        node = int(rng.integers(n_nodes))
        corner = node < 15
        rows.append((t0, "request", r, None, node, int(rng.integers(n_nodes)), 600.0))
        avail = np.where(off_at > t0 + 1800, free_at, np.inf)
        d = int(np.argmin(avail))
        patience = float(rng.uniform(60, 300))
        ta = max(t0, float(avail[d])) + float(rng.exponential(8))
        if ta > t0 + patience:
            rows.append((t0 + patience, "cancel", r, None, node, None, None, "patience"))
            continue
        q = float(rng.uniform(60, 400))
        rows.append((ta, "assign", r, d, 0, node, q, f"b{int(ta // 10)}"))
        if rng.uniform() < 0.03:
            rows.append((ta + 30.0, "cancel", r, d, node, None, None, "after_match"))
            free_at[d] = ta + 30.0
            continue
        a = q * float(rng.uniform(0.7, 1.5)) * (2.0 if corner else 1.0)
        ride = float(rng.uniform(240, 900))
        rows.append((ta + a, "pickup", r, d, node, None, a))
        rows.append((ta + a + ride, "dropoff", r, d, node, None, ride))
        free_at[d] = ta + a + ride
    rows.sort(key=lambda row: row[0])  # test data only: a few hundred rows
    return make_events(rows)


def perf_json() -> dict[str, Any]:
    """A perf.json shaped like the engine's."""
    lat = {"calls": 360, "p50_ms": 1.2, "p95_ms": 3.4, "p99_ms": 5.6, "max_ms": 9.1}
    return {
        "wall_s": 2.5,
        "events_per_s": 12000.0,
        "requests_per_s": 120.0,
        "peak_rss_mb": 210.0,
        "city_load_s": 0.3,
        "matcher": {**lat, "per_shard": {"0": lat}},
    }

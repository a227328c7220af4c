"""Reading a run directory back: the only way reports see a run.

Every loader raises :class:`core.errors.InputError` naming the path and what is missing, so a
half-written run directory gives a clear message instead of a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import InputError
from reports.tables import (
    Columns,
    commission_of,
    driver_table,
    horizon_of,
    read_columns,
    rider_table,
)
from reports.zones import Zoning, read_zoning

REQUIRED = ("manifest.json", "events.parquet")


def _need(path: Path, what: str) -> None:
    try:
        found = path.is_file()
    except PermissionError as e:  # a folder on the path is not ours to search
        raise InputError(str(path), "", f"cannot read {what}: {e.strerror}") from None
    if not found:
        raise InputError(str(path), "", f"missing {what} (is this a complete run directory?)")


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``, or InputError when absent, unreadable or not valid JSON."""
    _need(path, what)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except PermissionError as e:
        raise InputError(str(path), "", f"cannot read {what}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise InputError(str(path), "", f"{what} is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InputError(str(path), "", f"{what} must be a JSON object")
    return obj


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The run manifest, checked for the fields reports rely on."""
    path = Path(run_dir) / "manifest.json"
    m = load_json(path, "the run manifest")
    scenario = m.get("scenario")
    if not isinstance(scenario, dict):
        raise InputError(str(path), "scenario", "expected the canonical scenario object")
    try:
        horizon_of(m)
    except (KeyError, TypeError, ValueError):
        raise InputError(
            str(path),
            "scenario.time",
            "expected the scenario duration (duration_s or duration_h)",
        ) from None
    return m


def load_columns(run_dir: Path) -> Columns:
    """The event log of a run as numpy columns (streamed; see :func:`reports.kpis.read_columns`)."""
    path = Path(run_dir) / "events.parquet"
    _need(path, "the event log")
    try:
        return read_columns(path)
    except (ValueError, OSError, pa.ArrowException) as e:
        raise InputError(str(path), "", f"unreadable event log ({e})") from None


def _load_parquet(path: Path, what: str, required: bool) -> pa.Table | None:
    if not path.is_file():
        if required:
            _need(path, what)
        return None
    return pq.read_table(path)


def load_nodes(run_dir: Path, required: bool = True) -> pa.Table | None:
    """``nodes.parquet`` (node, x_m, y_m, lon, lat), or None when absent and not required."""
    return _load_parquet(Path(run_dir) / "nodes.parquet", "the city nodes", required)


def load_zoning(run_dir: Path) -> Zoning | None:
    """The run's zoning from ``nodes.parquet`` (:func:`reports.zones.read_zoning`), reading
    only the columns it needs; None when the file or its ``cell`` column is absent."""
    path = Path(run_dir) / "nodes.parquet"
    if not path.is_file():
        return None
    wanted = ("node", "x_m", "y_m", "cell")
    if not set(wanted) <= set(pq.read_schema(path).names):
        return read_zoning(pq.read_table(path))
    # Cell ids come as a dictionary: a few thousand cells for up to millions of nodes.
    return read_zoning(pq.read_table(path, columns=list(wanted), read_dictionary=["cell"]))


def load_trips(run_dir: Path) -> pa.Table | None:
    """``trips.parquet`` (rider, recorded_trip_s) of a replayed run, or None when absent."""
    return _load_parquet(Path(run_dir) / "trips.parquet", "the replayed trips", False)


def load_surge(run_dir: Path) -> pa.Table | None:
    """``surge.parquet`` (one row per pricing interval and cell), or None when absent."""
    return _load_parquet(Path(run_dir) / "surge.parquet", "the surge prices", False)


def load_roads(run_dir: Path, required: bool = True) -> pa.Table | None:
    """``roads.parquet`` (x0, y0, x1, y1), or None when absent and not required."""
    return _load_parquet(Path(run_dir) / "roads.parquet", "the road segments", required)


@dataclass(frozen=True)
class RunData:
    """Everything a report needs from one run directory."""

    run_dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    nodes: pa.Table | None
    roads: pa.Table | None
    perf: dict[str, Any] | None

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.run_dir.name))

    @property
    def horizon_s(self) -> float:
        return horizon_of(self.manifest)

    @property
    def start_clock(self) -> str:
        """The scenario's local start time ("07:00"), for clock-time axes."""
        time = self.manifest["scenario"].get("time", {})
        return str(time.get("start", "00:00"))

    @cached_property
    def batches(self) -> np.ndarray:
        """Matcher batches as an (n, 5) array: batch id, shard id, requests, drivers, wall ms
        (from ``matcher_calls.parquet``; empty without it)."""
        path = self.run_dir / "matcher_calls.parquet"
        if path.is_file():
            t = pq.read_table(path)
            cols = ("batch_id", "shard_id", "n_requests", "n_drivers", "wall_ms")
            if all(c in t.column_names for c in cols):
                return np.column_stack([t[c].to_numpy().astype(np.float64) for c in cols])
        return np.zeros((0, 5))

    @property
    def geographic(self) -> bool:
        """Whether the city has real geography (an OpenStreetMap city): lon/lat on its nodes."""
        flag = self.manifest.get("city", {}).get("geographic")
        if flag is not None:
            return bool(flag)
        if self.nodes is None or self.nodes.num_rows == 0 or "lon" not in self.nodes.column_names:
            return False
        return self.nodes["lon"].null_count < self.nodes.num_rows

    @cached_property
    def columns(self) -> Columns:
        """The event log as numpy columns (read on first use)."""
        return load_columns(self.run_dir)

    @cached_property
    def riders(self) -> pd.DataFrame:
        """One row per request with the time of each stage (:func:`reports.tables.rider_table`)."""
        return rider_table(self.columns)

    @cached_property
    def drivers(self) -> pd.DataFrame:
        """One row per driver with the time split (see :func:`reports.tables.driver_table`)."""
        return driver_table(self.columns, self.horizon_s, commission_of(self.manifest))

    @cached_property
    def zoning(self) -> Zoning | None:
        """The run's zoning (each node's cell, from ``nodes.parquet``), or None without it."""
        return read_zoning(self.nodes)

    @cached_property
    def surge(self) -> pa.Table | None:
        """``surge.parquet`` when the run priced with a surge policy."""
        return load_surge(self.run_dir)

    @cached_property
    def trips(self) -> pa.Table | None:
        """``trips.parquet`` when the run replayed recorded trips."""
        return load_trips(self.run_dir)


def check_run_dir(run_dir: Path) -> None:
    """Raise InputError unless ``run_dir`` is a directory holding the files reports need."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(str(run_dir), "", "not a run directory (does not exist)")
    for name in REQUIRED:
        _need(run_dir / name, name)


def load_run(run_dir: Path) -> RunData:
    """Load a complete run directory (``metrics.json`` included: see
    :func:`reports.kpis.ensure_metrics` for a run that lacks it)."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    manifest = load_manifest(run_dir)
    metrics = load_json(run_dir / "metrics.json", "the run metrics")
    perf_path = run_dir / "perf.json"
    return RunData(
        run_dir=run_dir,
        manifest=manifest,
        metrics=metrics,
        nodes=load_nodes(run_dir, required=False),
        roads=load_roads(run_dir, required=False),
        perf=load_json(perf_path, "the perf figures") if perf_path.is_file() else None,
    )

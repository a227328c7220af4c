"""Scenario builders shared by the engine and harness tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cities import load_city
from core.schemas import read_events
from harness.run import RunResult, run_scenario
from harness.scenario import Scenario, parse_scenario
from sim.invariants import check_event_log


def small_scenario(**overrides: Any) -> Scenario:
    """A one-hour grid scenario small enough for unit tests; a table given for a key updates
    that table (``city`` is replaced whole)."""
    data: dict[str, Any] = {
        "name": "small",
        "seed": 11,
        "city": {"kind": "grid", "rows": 12, "cols": 12, "block_m": 150, "speed_kmh": 30},
        "time": {"start": "08:00", "duration_h": 1},
        "demand": {
            "requests_per_h": 400,
            "hotspot_share": 0.3,
            "hotspots": [{"x_m": 900, "y_m": 900, "weight": 1, "radius_m": 300}],
        },
        "fleet": {
            "size": 40,
            "shifts": [
                {"start": "06:00", "hours": 8, "share": 0.7},
                {"start": "08:20", "hours": 0.5, "share": 0.3},
            ],
        },
        "dispatch": {"matcher": "batched_greedy", "batch_window_s": 10, "max_pickup_eta_s": 420},
        "riders": {"patience_s": 180},
    }
    for key, value in overrides.items():
        if key != "city" and isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_scenario(data, "test")


def run(scenario: Scenario, tmp_path: Path, cache_dir: Path, name: str = "runs") -> RunResult:
    """Run ``scenario`` into ``tmp_path/name`` (the harness's real path)."""
    return run_scenario(
        scenario, source="test", base_dir=tmp_path, out=tmp_path / name, cache_dir=cache_dir
    )


def assert_invariants(
    result: RunResult, scenario: Scenario, tmp_path: Path, cache_dir: Path
) -> None:
    """The run's event log passes every invariant of :mod:`sim.invariants`."""
    if getattr(scenario.city, "kind", None) == "plane":
        # A plane's nodes are the run's own points: rebuild its metric from nodes.parquet.
        xy = pq.read_table(result.run_dir / "nodes.parquet").to_pandas()[["x_m", "y_m"]].to_numpy()
        speed = scenario.city.speed_mps

        def travel_time(a, b):
            return np.hypot(*(xy[a] - xy[b]).T) / speed
    else:
        travel_time = load_city(
            scenario.city, base_dir=tmp_path, source="test", cache_dir=cache_dir
        ).travel_time
    problems = check_event_log(read_events(result.run_dir / "events.parquet"), travel_time)
    assert problems == []

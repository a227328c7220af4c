"""Scenario builders for engine tests."""

from __future__ import annotations

from typing import Any

from sim.scenario import Scenario, parse_scenario


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

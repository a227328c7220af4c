"""Short runs on every small real OpenStreetMap extract, in XML and PBF form."""

from __future__ import annotations

from pathlib import Path

import pytest

from cities import load_city
from core.schemas import read_events
from harness.run import run_scenario
from harness.scenario import parse_scenario
from sim.invariants import check_event_log
from tests.shared import SMALL_EXTRACTS


@pytest.mark.parametrize("extract", SMALL_EXTRACTS)
def test_short_run_on_real_extract(
    extract: str, shared_data: Path, tmp_path: Path, cache_dir: Path
) -> None:
    """Half an hour of a real city: the run completes rides and its log satisfies the invariants."""
    scenario = parse_scenario(
        {
            "name": "real",
            "seed": 3,
            "city": {"osm": str(shared_data / extract)},
            "time": {"start": "17:00", "duration_h": 0.5},
            "demand": {"requests_per_h": 300},
            "fleet": {"size": 25},
            "dispatch": {"matcher": "assignment", "batch_window_s": 10},
        },
        "test",
    )
    result = run_scenario(
        scenario, source="test", base_dir=tmp_path, out=tmp_path / "runs", cache_dir=cache_dir
    )
    space = load_city(scenario.city, base_dir=tmp_path, source="test", cache_dir=cache_dir)
    events = read_events(result.run_dir / "events.parquet")
    assert check_event_log(events, space.travel_time) == []
    kinds = events.column("kind").to_pylist()
    assert kinds.count("dropoff") > 10


def test_chicago_replay_scenario(shared_data: Path, tmp_path: Path, cache_dir: Path) -> None:
    """The shipped replay scenario runs on real taxi trips: every file row is accounted for in
    the manifest, and trips.parquet keeps the recorded durations for the fidelity KPIs."""
    import json

    import pyarrow.parquet as pq

    from harness.scenario import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / "chicago_replay.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 6})
    result = run_scenario(
        scenario, source=str(path), base_dir=path.parent, out=tmp_path / "runs", cache_dir=cache_dir
    )
    stats = json.loads((result.run_dir / "manifest.json").read_text())["demand"]
    dropped = sum(v for k, v in stats.items() if k.startswith("dropped_"))
    assert stats["rows_read"] == 15002 and stats["records_kept"] + dropped == stats["rows_read"]
    trips = pq.read_table(result.run_dir / "trips.parquet").to_pandas()
    assert len(trips) == stats["trips"] and trips.recorded_trip_s.notna().any()
    assert "trips.0" in json.loads((result.run_dir / "manifest.json").read_text())["inputs"]

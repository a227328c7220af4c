"""Fixtures for report tests: complete run directories built by :mod:`report_helpers`."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_helpers import grid_nodes, grid_roads, manifest, perf_json, synthetic_events, write_run


@pytest.fixture
def grid_run(tmp_path: Path) -> Path:
    """A complete run directory on a synthetic (planar) city."""
    return write_run(
        tmp_path / "grid-run",
        synthetic_events(1),
        manifest(),
        grid_nodes(),
        grid_roads(),
        perf_json(),
    )


@pytest.fixture
def osm_run(tmp_path: Path) -> Path:
    """A complete run directory on a city with lon/lat (as an OSM city has)."""
    man = manifest(
        name="berlin-am",
        city="berlin",
        slo={"time_to_match_p99_s": 60, "match_rate_min": 0.95, "cancel_rate_max": 0.5},
    )
    man["city"]["source"] = "osm"
    return write_run(
        tmp_path / "osm-run",
        synthetic_events(2),
        man,
        grid_nodes(geo=True),
        grid_roads(),
        perf_json(),
    )

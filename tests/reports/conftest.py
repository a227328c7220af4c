"""Fixtures for report tests: real runs of the shipped scenarios (what the engine really
writes), run once per session, and hand-made run directories for edge cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_helpers import grid_nodes, grid_roads, manifest, perf_json, synthetic_events, write_run

from harness.run import run_scenario
from harness.scenario import load_scenario
from reports.html import write_report
from tests.shared import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
ONE_HOUR = {"time.duration_h": 1}
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("default.toml", ONE_HOUR),
    "grid_small": ("grid_small.toml", {}),
    "surge": ("wild_goose_chase_surge.toml", {}),
    "faults": (
        "default.toml",
        {
            **ONE_HOUR,
            "faults.driver_crash_per_h": 0.5,
            "faults.matcher_outages": [{"start": "07:20", "minutes": 5}],
        },
    ),
    "multi_day": ("grid_small.toml", {"time.duration_h": 50, "demand.multiplier": 0.1}),
    "chicago_replay": (
        "chicago_replay.toml",
        {
            "city.osm": str(SHARED_DATA / "chicago-osm-graphdecomposition/chicago.drive.osm.bz2"),
            "demand.path": str(SHARED_DATA / "chicago-taxi-tfx/chicago_taxi_tfx_simple.csv"),
            "time.duration_h": 6,
        },
    ),
}
"""One real run per scenario family: the shipped scenario and overrides keeping it short."""


def run_family(
    name: str, out: Path, cache_dir: Path, seed: int | None = None, **extra: Any
) -> Path:
    """Run family ``name`` (with ``extra`` overrides, and ``seed`` when given) into ``out``;
    returns the run directory."""
    file, overrides = FAMILIES[name]
    if name == "chicago_replay" and not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} does not exist")
    path = ROOT / "scenarios" / file
    scenario = load_scenario(path, overrides={**overrides, **extra})
    scenario = scenario.with_seed(seed) if seed is not None else scenario
    result = run_scenario(
        scenario, source=str(path), base_dir=path.parent, out=out, cache_dir=cache_dir
    )
    return result.run_dir


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):  # noqa: ANN201
    """``real_run(family)``: the run directory of a real run of that family (run once)."""
    out = tmp_path_factory.mktemp("real-runs")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            done[name] = run_family(name, out, cache_dir)
        return done[name]

    return get


@pytest.fixture(scope="session")
def reports(real_run):  # noqa: ANN001, ANN201
    """``reports(family)``: (run dir, report page) of a real run of that family, written once."""
    done: dict[str, tuple[Path, str]] = {}

    def get(name: str) -> tuple[Path, str]:
        if name not in done:
            run = real_run(name)
            done[name] = (run, write_report(run).read_text(encoding="utf-8"))
        return done[name]

    return get


@pytest.fixture
def grid_run(tmp_path: Path) -> Path:
    """A hand-made run directory on a synthetic (planar) city, for KPI edge cases."""
    return write_run(
        tmp_path / "grid-run",
        synthetic_events(1),
        manifest(),
        grid_nodes(),
        grid_roads(),
        perf_json(),
    )

"""The nightly gate and sweeps flag runs whose matcher service was down: such a run fails a
``service:matcher_service`` gate, is never stored in a baseline, and is marked in the table."""

from __future__ import annotations

import json
from pathlib import Path

from harness.check import run_check
from harness.sweep import SweepPoint, run_sweep
from tests.harness.test_check import GRID, grid_1x, write_suite

DOWN = "tests.sim.unavailable_matcher:DownBetween"
DOWN_SET = {
    "dispatch.matcher": DOWN,
    "dispatch.params.down_from_s": 1200,
    "dispatch.params.down_until_s": 1800,
}


def test_check_fails_a_scenario_whose_matcher_service_was_down(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A suite entry whose service is down for 10 minutes: the check fails with one
    service:matcher_service gate naming the outage; the baseline it writes leaves that
    scenario out and keeps the clean one."""
    suite = write_suite(
        tmp_path / "suite.toml",
        [grid_1x(), {**grid_1x(**DOWN_SET), "name": "grid_down"}],
        name="smoke",
        seeds=[1],
    )
    base = tmp_path / "base"
    result = run_check(
        suite,
        tmp_path / "out",
        baseline=base,
        update_baseline=True,
        workers=1,
        cache_dir=cache_dir,
        reports="none",
    )
    assert result.status == "fail"
    failed = [(g.scenario, g.case) for g in result.failed]
    assert failed == [("grid_down", "service:matcher_service")]
    gate = result.failed[0]
    assert "could not be reached (1 outage, seed 1)" in gate.message
    assert "not a clean run" in gate.message
    stored = json.loads((base / "baseline.json").read_text())["scenarios"]
    assert set(stored) == {"grid_1x"}


def test_sweep_table_marks_a_run_whose_service_was_down(tmp_path: Path, cache_dir: Path) -> None:
    """A sweep's row for a run with a service outage carries service_outages; the table of a
    sweep of clean runs has no such column."""
    clean = SweepPoint(str(GRID), {"time.duration_h": 1})
    down = SweepPoint(str(GRID), {"time.duration_h": 1, **DOWN_SET})
    table = run_sweep([clean, down], tmp_path / "runs", workers=1, cache_dir=cache_dir)
    assert table["service_outages"].isna().tolist() == [True, False]
    assert table["service_outages"].iloc[1] == 1
    only_clean = run_sweep([clean], tmp_path / "runs", workers=1, cache_dir=cache_dir)
    assert "service_outages" not in only_clean.columns

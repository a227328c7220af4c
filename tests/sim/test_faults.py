"""Faults: matcher outages and driver app crashes, planned up front and applied by the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError
from core.schemas import read_events
from harness.run import run_scenario
from sim.faults import FaultSpec, plan_faults
from tests.scenarios import small_scenario


def test_fixed_and_random_outages_are_merged_and_clipped() -> None:
    """Fixed windows repeat daily from the clock, random ones come from the stream; overlapping
    windows merge and everything is clipped to the horizon."""
    spec = FaultSpec(matcher_outages=[{"start": "07:50", "minutes": 20}], matcher_mtbf_h=2)
    plan = plan_faults(np.random.default_rng(3), spec, 8 * 3600.0, 3 * 86400.0, 10)
    down = plan.matcher_down
    assert down[0, 0] == 0.0 and down[0, 1] == pytest.approx(600.0)  # 07:50-08:10, seen at 08:00
    assert np.all(down[1:, 0] > down[:-1, 1]) and down[-1, 1] <= 3 * 86400.0
    assert len(down) > 3  # the daily repeats plus random failures
    again = plan_faults(np.random.default_rng(3), spec, 8 * 3600.0, 3 * 86400.0, 10)
    assert np.array_equal(down, again.matcher_down)


def test_outage_stops_assignments_and_backlog_clears_after(tmp_path: Path, cache_dir: Path) -> None:
    """Nobody is assigned while the matcher is down; requests left waiting are assigned once
    it is back (batched and immediate dispatch)."""
    for dispatch in ({}, {"matcher": "immediate_greedy", "batch_window_s": 0}):
        scenario = small_scenario(
            dispatch=dispatch,
            faults={"matcher_outages": [{"start": "08:20", "minutes": 10}]},
            drivers={"accept": "always"},  # an assign is then the decision itself
        )
        result = run_scenario(
            scenario, source="t", base_dir=tmp_path, out=tmp_path / "r", cache_dir=cache_dir
        )
        ev = read_events(result.run_dir / "events.parquet").to_pandas()
        faults = ev[ev.kind == "fault"]
        assert list(faults.detail) == ["matcher_down", "matcher_up"]
        assert list(faults.t) == [1200.0, 1800.0]
        assign = ev[ev.kind.isin(["assign", "offer"])]
        assert not ((assign.t > 1200.0) & (assign.t < 1800.0)).any()
        waited = ev[(ev.kind == "request") & (ev.t > 1200.0) & (ev.t < 1800.0)].rider
        assert assign[assign.rider.isin(waited)].t.min() >= 1800.0


def test_driver_app_crashes_log_off_idle_drivers_then_reconnect(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A crash takes an idle driver offline (detail crash) and they reconnect exactly
    driver_reconnect_min later; the event log keeps every invariant."""
    scenario = small_scenario(faults={"driver_crash_per_h": 2.0, "driver_reconnect_min": 3})
    result = run_scenario(
        scenario, source="t", base_dir=tmp_path, out=tmp_path / "r", cache_dir=cache_dir
    )
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    crash = ev[(ev.kind == "driver_offline") & (ev.detail == "crash")]
    back = ev[(ev.kind == "driver_online") & (ev.detail == "reconnect")]
    assert len(crash) > 0 and len(back) > 0
    first = crash.groupby("driver").t.min()
    nxt = back.groupby("driver").t.min()
    both = first.index.intersection(nxt.index)
    assert np.allclose(nxt[both] - first[both], 180.0)
    from tests.scenarios import assert_invariants

    assert_invariants(result, scenario, tmp_path, cache_dir)


def test_bad_fault_table_is_an_input_error() -> None:
    """A bad clock time in [faults] is reported with its field path."""
    with pytest.raises(InputError, match=r"faults.matcher_outages.0.start"):
        small_scenario(faults={"matcher_outages": [{"start": "25:99", "minutes": 5}]})


def test_fault_kpis_and_report_section(tmp_path: Path, cache_dir: Path) -> None:
    """metrics.json counts outages, downtime and crashes as logged; the report shows them."""
    from reports.html import write_report

    scenario = small_scenario(
        faults={"matcher_outages": [{"start": "08:20", "minutes": 10}], "driver_crash_per_h": 2.0}
    )
    result = run_scenario(
        scenario, source="t", base_dir=tmp_path, out=tmp_path / "r", cache_dir=cache_dir
    )
    f = result.metrics["faults"]
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    assert f["matcher_outages"] == 1 and f["matcher_downtime_s"] == pytest.approx(600.0)
    assert f["matcher_downtime_share"] == pytest.approx(600.0 / 3600.0, rel=1e-5)  # 6 digits
    assert f["driver_crashes"] == int(
        ((ev.kind == "driver_offline") & (ev.detail == "crash")).sum()
    )
    html = write_report(result.run_dir).read_text()
    assert "<h2>Faults</h2>" in html and "matcher outages" in html

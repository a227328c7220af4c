"""Faults: matcher outages and driver app crashes, planned up front and applied by the engine."""

from __future__ import annotations

import json
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


DOWN = "tests.sim.unavailable_matcher:DownBetween"
"""A matcher that raises MatcherUnavailable for decisions in [down_from_s, down_until_s)."""


def _service_run(tmp_path: Path, cache_dir: Path, name: str, **dispatch: object):
    """A small run whose matcher service is down from 1200 s to 1800 s of simulated time."""
    scenario = small_scenario(
        dispatch={"matcher": DOWN, "params": {"down_from_s": 1200, "down_until_s": 1800}}
        | dispatch,
        drivers={"accept": "always"},  # an assign is then the decision itself
    )
    return run_scenario(
        scenario, source="t", base_dir=tmp_path, out=tmp_path / name, cache_dir=cache_dir
    )


def test_unreachable_service_is_a_fault_and_the_run_carries_on(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A matcher raising MatcherUnavailable: service_down at the first unanswered decision,
    service_up (value: unanswered decisions) at the first answered one; nobody is assigned in
    between, the requests left waiting are assigned after; metrics, manifest and the report's
    Faults section say so."""
    result = _service_run(tmp_path, cache_dir, "r")
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    faults = ev[ev.kind == "fault"]
    assert list(faults.detail) == ["service_down", "service_up"]
    assert list(faults.t) == [1200.0, 1800.0]
    assert faults.value.iloc[1] == 60.0  # one decision per 10 s window, all unanswered
    assign = ev[ev.kind.isin(["assign", "offer"])]
    assert not ((assign.t >= 1200.0) & (assign.t < 1800.0)).any()
    waited = ev[(ev.kind == "request") & (ev.t > 1200.0) & (ev.t < 1800.0)].rider
    assert assign[assign.rider.isin(waited)].t.min() == 1800.0
    assert assign.t.max() > 1800.0  # and the run went on to the end
    f = result.metrics["faults"]
    assert f["service_outages"] == 1 and f["service_downtime_s"] == 600.0
    assert f["matcher_outages"] == 0  # not a planned outage
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["matcher_service"] == {"outages": 1, "unanswered_calls": 60}
    from reports.html import write_report  # deferred: only this test writes a report

    html = write_report(result.run_dir).read_text()
    assert "<h2>Faults</h2>" in html and "matcher service unreachable (not planned)" in html


def test_service_outage_run_is_deterministic_given_the_failures(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The same calls failing give byte-identical events and metrics; a run whose service was
    up differs, and its metrics have no service keys."""
    a = _service_run(tmp_path, cache_dir, "a")
    b = _service_run(tmp_path, cache_dir, "b")
    for name in ("events.parquet", "metrics.json"):
        assert (a.run_dir / name).read_bytes() == (b.run_dir / name).read_bytes()
    clean = _service_run(tmp_path, cache_dir, "c", params={"down_until_s": 0})
    assert (clean.run_dir / "events.parquet").read_bytes() != (
        a.run_dir / "events.parquet"
    ).read_bytes()
    assert not any(k.startswith("service_") for k in clean.metrics["faults"])
    manifest = json.loads((clean.run_dir / "manifest.json").read_text())
    assert manifest["matcher_service"] == {"outages": 0, "unanswered_calls": 0}


def test_immediate_dispatch_asks_about_the_backlog_when_the_service_is_back(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Immediate dispatch: once a call is answered again, the requests left waiting during the
    outage are asked about at the same moment (as after a planned outage)."""
    result = _service_run(tmp_path, cache_dir, "r", batch_window_s=0)
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    faults = ev[ev.kind == "fault"]
    assert list(faults.detail) == ["service_down", "service_up"]
    down, up = faults.t.tolist()
    assert 1200.0 <= down < up and up >= 1800.0
    assign = ev[ev.kind.isin(["assign", "offer"])]
    assert not ((assign.t >= down) & (assign.t < up)).any()
    waited = ev[(ev.kind == "request") & (ev.t > down) & (ev.t < up)].rider
    got = assign[assign.rider.isin(waited)]
    assert len(got) > 1 and (got.t == up).sum() > 1  # the backlog, not just the new arrival


def test_a_tainted_run_is_never_reused(tmp_path: Path, cache_dir: Path) -> None:
    """skip_existing (sweeps) reruns a run directory whose manifest records a service outage
    instead of reusing it as if it were what its inputs give."""
    scenario = small_scenario(
        dispatch={"matcher": DOWN, "params": {"down_from_s": 1200, "down_until_s": 1800}}
    )
    kw = {"source": "t", "base_dir": tmp_path, "out": tmp_path / "r", "cache_dir": cache_dir}
    first = run_scenario(scenario, **kw)
    again = run_scenario(scenario, skip_existing=True, **kw)
    assert again.run_id == first.run_id and not again.reused
    clean = small_scenario()
    run_scenario(clean, **kw)
    assert run_scenario(clean, skip_existing=True, **kw).reused

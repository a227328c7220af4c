"""Golden KPI values on tiny hand-computed event logs."""

from __future__ import annotations

import json

import pytest
from report_helpers import make_events, manifest, write_run

from reports.kpis import compute_metrics, rnd, write_metrics
from reports.market import gini

H = 3600.0

# Three drivers, six riders (see the comments for what each one does).
TINY = [
    (0.0, "driver_online", None, 1, 5),
    (10.0, "request", 1, None, 10, 11, 300.0),  # R1: completed with D1
    (20.0, "assign", 1, 1, 5, 10, 60.0, "b0"),  # quoted 60 s
    (50.0, "request", 2, None, 12, 13, 200.0),  # R2: nobody matched, gives up
    (100.0, "driver_online", None, 2, 6),
    (100.0, "pickup", 1, 1, 10, None, 80.0),  # actual 80 s: 20 s late
    (170.0, "cancel", 2, None, 12, None, None, "patience"),
    (200.0, "request", 3, None, 14, 15, 600.0),  # R3: completed with D2
    (230.0, "assign", 3, 2, 6, 14, 100.0, "b1"),  # quoted 100 s
    (300.0, "pickup", 3, 2, 14, None, 70.0),  # actual 70 s: 30 s early
    (400.0, "dropoff", 1, 1, 11, None, 300.0),
    (900.0, "dropoff", 3, 2, 15, None, 600.0),
    (1000.0, "request", 4, None, 16, 17, 100.0),  # R4: matched to D1, then cancels
    (1010.0, "assign", 4, 1, 11, 16, 50.0, "b2"),
    (1100.0, "cancel", 4, 1, 16, None, None, "after_match"),
    (1500.0, "surge", None, None, None, None, 1.5),  # a kind reports do not know yet
    (2000.0, "driver_offline", None, 2, 15),
    (3000.0, "driver_online", None, 3, 7),  # D3 stays online to the end
    (3500.0, "request", 5, None, 18, 19, 100.0),  # R5: matched, driver still en route
    (3550.0, "assign", 5, 3, 7, 18, 40.0, "b3"),
    (3590.0, "request", 6, None, 20, 21, 100.0),  # R6: still waiting
]


@pytest.fixture(scope="module")
def tiny() -> dict:
    return compute_metrics(make_events(TINY), H)


def test_request_outcomes(tiny: dict) -> None:
    """Requests split into completed / cancelled by reason / open by state, with shares."""
    r = tiny["requests"]
    assert (r["count"], r["matched"], r["picked_up"]) == (6, 4, 2)
    assert (r["completed"], r["cancelled"], r["open"]) == (2, 2, 2)
    assert r["cancelled_by_reason"] == {"after_match": 1, "no_driver": 0, "patience": 1}
    assert r["open_by_state"] == {"unmatched": 1, "assigned": 1, "in_vehicle": 0}
    assert r["match_rate"] == rnd(4 / 6)
    assert r["completed_share"] == rnd(2 / 6)
    assert r["cancelled_share"] == rnd(2 / 6)
    assert tiny["events"] == len(TINY)


def test_time_distributions(tiny: dict) -> None:
    """Time to match, pickup wait, in-vehicle time and journey match hand-computed values."""
    # Time to match: R1 10, R3 30, R4 10, R5 50 -> sorted [10, 10, 30, 50].
    assert tiny["time_to_match_s"] == {
        "count": 4,
        "mean": 25.0,
        "p50": 20.0,
        "p90": 44.0,
        "p95": 47.0,
        "p99": 49.4,
        "max": 50.0,
    }
    # Pickup wait: R1 90, R3 100.
    assert tiny["pickup_wait_s"] == {
        "count": 2,
        "mean": 95.0,
        "p50": 95.0,
        "p90": 99.0,
        "p95": 99.5,
        "p99": 99.9,
        "max": 100.0,
    }
    assert tiny["in_vehicle_s"]["mean"] == 450.0  # 300 and 600
    assert tiny["journey_s"]["mean"] == 545.0  # 390 and 700
    # Everyone's wait: 90, 120 (gave up), 100, 100 (cancelled), 100 (to horizon), 10.
    assert tiny["wait_all_riders_s"]["count"] == 6
    assert tiny["wait_all_riders_s"]["total_h"] == rnd(520 / 3600)
    assert tiny["wait_all_riders_s"]["mean"] == rnd(520 / 6)


def test_eta_error(tiny: dict) -> None:
    """Quoted vs actual pickup: errors +20 and -30 s."""
    assert tiny["eta_error_s"] == {"count": 2, "mae": 25.0, "bias": -5.0, "p90_abs": 29.0}


def test_driver_time_split(tiny: dict) -> None:
    """Online time closes at the horizon; to-pickup ends at pickup, cancel or horizon."""
    d = tiny["drivers"]
    # Online: D1 3600, D2 1900, D3 600 (to the horizon) = 6100 s.
    # To pickup: D1 80 + 90 (cancelled), D2 70, D3 50 (to horizon) = 290 s.
    # With rider: D1 300, D2 600 = 900 s.
    assert d["count"] == 3
    assert d["online_h"] == rnd(6100 / 3600)
    assert d["to_pickup_h"] == rnd(290 / 3600)
    assert d["with_rider_h"] == rnd(900 / 3600)
    assert d["idle_h"] == rnd(4910 / 3600)
    assert d["utilisation"] == rnd(1190 / 6100)
    assert d["idle_share"] == rnd(4910 / 6100)
    assert d["deadhead_share"] == rnd(290 / 1190)
    t = tiny["throughput"]
    assert t["completed_per_h"] == 2.0
    assert t["requests_per_h"] == 6.0
    assert t["completed_per_online_driver_h"] == rnd(2 / (6100 / 3600))


def test_funnel_and_market(tiny: dict) -> None:
    """Funnel stages and cancellations by stage; time series sums and driver occupancy."""
    f = tiny["funnel"]
    assert f["stages"] == {
        "arrived": 6,
        "requested": 6,
        "offered": 4,
        "matched": 4,
        "picked_up": 2,
        "completed": 2,
    }
    assert f["conversion"] == 1.0 and not f["quotes_logged"] and not f["offers_logged"]
    assert f["cancelled_by_stage"] == {"before_match": 1, "before_pickup": 1, "after_pickup": 0}
    m = tiny["market"]
    assert m["bin_s"] == 60 and len(m["t_start_s"]) == 60
    assert sum(m["requests"]) == 6 and sum(m["completed"]) == 2 and sum(m["cancelled"]) == 2
    # Bin [60, 120): D1 the whole minute, D2 from 100 -> 80 driver-seconds / 60.
    assert m["drivers_online"][1] == rnd(80 / 60)
    # Bin [0, 60): D1 idle until its assign at 20, then driving to pickup.
    assert m["drivers_to_pickup"][0] == rnd(40 / 60)
    assert m["drivers_idle"][0] == rnd(20 / 60)


def test_fairness_proxy(tiny: dict) -> None:
    """Income per online hour uses paid minutes as the proxy while the log has no fares."""
    f = tiny["fairness"]
    assert f["income_basis"] == "in_vehicle_s"
    assert "proxy" in f["income_label"]
    # D1: 5 paid min in 1 h; D2: 10 min in 1900 s; D3: 0 in 600 s (just reaches the minimum).
    rates = [5.0, 10 * 3600 / 1900, 0.0]
    assert f["drivers"] == 3
    assert f["mean"] == rnd(sum(rates) / 3)
    # Gini by hand: sorted [0, 5, a], 2*(2*5 + 3a) / (3*(5 + a)) - 4/3.
    a = 10 * 3600 / 1900
    assert f["gini"] == rnd(2 * (10 + 3 * a) / (3 * (5 + a)) - 4 / 3)
    assert f["lorenz_deciles"][0] == 0.0 and f["lorenz_deciles"][-1] == 1.0


def test_gini_known_values() -> None:
    """Gini is 0 for equal incomes, (n-1)/n when one driver earns everything."""
    assert gini([3.0, 3.0, 3.0]) == 0.0
    assert gini([0.0, 0.0, 0.0, 8.0]) == pytest.approx(0.75)
    assert gini([]) is None


def test_no_events() -> None:
    """An empty log gives zero counts and null distributions, not errors."""
    m = compute_metrics(make_events([]), H)
    assert m["requests"]["count"] == 0
    assert m["requests"]["match_rate"] is None
    assert m["time_to_match_s"]["count"] == 0 and m["time_to_match_s"]["p99"] is None
    assert m["eta_error_s"]["mae"] is None
    assert m["drivers"]["utilisation"] is None
    assert m["fairness"]["gini"] is None
    assert sum(m["market"]["requests"]) == 0
    json.dumps(m, allow_nan=False)


def test_only_cancellations() -> None:
    """A log of requests that all give up: everything cancelled, nothing matched."""
    rows = [(10.0 * i, "request", i, None, 1, 2, 60.0) for i in range(3)]
    rows += [(100.0 + 10.0 * i, "cancel", i, None, 1, None, None, "patience") for i in range(3)]
    m = compute_metrics(make_events(rows), 600.0)
    assert m["requests"]["cancelled"] == 3
    assert m["requests"]["cancelled_share"] == 1.0
    assert m["requests"]["cancelled_by_reason"] == {"after_match": 0, "no_driver": 0, "patience": 3}
    assert m["wait_all_riders_s"]["mean"] == 100.0
    assert m["pickup_wait_s"]["count"] == 0
    assert m["drivers"]["count"] == 0


def test_driver_online_at_end() -> None:
    """A driver who never goes offline is online until the horizon, not beyond."""
    rows = [
        (100.0, "driver_online", None, 7, 1),
        (150.0, "driver_online", None, 7, 1),
        (5000.0, "request", 1, None, 1, 2, 60.0),
    ]
    m = compute_metrics(make_events(rows), 1000.0)
    assert m["drivers"]["online_h"] == rnd(900 / 3600)
    assert m["drivers"]["idle_share"] == 1.0
    assert m["drivers"]["utilisation"] == 0.0


def test_unsorted_seq_is_sorted() -> None:
    """Rows are read in seq order even if the table arrives shuffled."""
    t = make_events(TINY)
    shuffled = t.take(list(reversed(range(t.num_rows))))
    assert compute_metrics(shuffled, H) == compute_metrics(t, H)


def test_write_metrics_is_byte_stable(tmp_path) -> None:
    """write_metrics writes sorted, indented JSON; two writes give identical bytes."""
    run = write_run(tmp_path / "r", make_events(TINY), manifest(duration_s=H))
    m = write_metrics(run)
    first = (run / "metrics.json").read_bytes()
    write_metrics(run)
    assert (run / "metrics.json").read_bytes() == first
    assert first.endswith(b"}\n")
    assert json.loads(first) == json.loads(json.dumps(m))
    assert m["slo"]["source"] == "default"
    assert "zones" not in m  # no nodes.parquet in this run


def test_horizon_from_duration_h(tmp_path) -> None:
    """A scenario giving duration_h instead of duration_s sets the horizon in hours."""
    man = manifest()
    man["scenario"]["time"] = {"start": "08:00", "duration_h": 2.0, "duration_s": None}
    run = write_run(tmp_path / "r", make_events([(0.0, "driver_online", None, 1, 1)]), man)
    m = write_metrics(run)
    assert m["horizon_s"] == 7200.0
    assert m["drivers"]["online_h"] == 2.0

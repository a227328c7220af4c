"""Golden values for the v2 log: quotes, offers, declines, repositioning, after-match cancels,
fares; replay fidelity and surge sections from hand-written run directories."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from report_helpers import grid_nodes, make_events, manifest, write_run
from scipy import stats

from reports.html import write_report
from reports.kpis import compute_metrics, rnd, write_metrics

H = 3600.0

# Three drivers, seven riders; every number below is worked out in the comments.
V2 = [
    (0.0, "driver_online", None, 1, 1),
    (0.0, "driver_online", None, 2, 2),
    (0.0, "driver_online", None, 3, 3),
    # R1: declined once by D1, accepted by D2; picked up 20 s late; pays 12 on a quote of 10.
    (100.0, "quote", 1, None, 10, 20, 120.0, "request", 10.0),
    (100.0, "request", 1, None, 10, 20, 500.0, None, 10.0),
    (110.0, "offer", 1, 1, 1, 10, 90.0, "1"),
    (115.0, "decline", 1, 1, 1, None, None, "declined"),
    (130.0, "offer", 1, 2, 2, 10, 100.0, "2"),
    (135.0, "assign", 1, 2, 2, 10, 100.0, "2"),
    # R2 turns the quote down.
    (200.0, "quote", 2, None, 16, 21, 300.0, "decline", 20.0),
    (255.0, "pickup", 1, 2, 10, None, 120.0),
    # R3: the offer times out, then the rider gives up.
    (300.0, "quote", 3, None, 11, 22, 60.0, "request", 8.0),
    (300.0, "request", 3, None, 11, 22, 400.0, None, 8.0),
    (305.0, "offer", 3, 1, 1, 11, 60.0, "3"),
    (320.0, "decline", 3, 1, 1, None, None, "timeout"),
    (400.0, "cancel", 3, None, 11, None, None, "patience"),
    # R4: zero patience, nobody in range.
    (500.0, "quote", 4, None, 12, 23, 200.0, "request", 15.0),
    (500.0, "request", 4, None, 12, 23, 300.0, None, 15.0),
    (500.0, "cancel", 4, None, 12, None, None, "no_driver"),
    (855.0, "dropoff", 1, 2, 20, None, 600.0, None, 12.0),
    # D2 repositions for 300 s but is offered R7 at 1100: 200 s counted.
    (900.0, "reposition", None, 2, 20, 30, 300.0),
    # R5: cancels after D3 is assigned; D3 still drives on until assign + ETA = 1095.
    (1000.0, "quote", 5, None, 13, 24, 100.0, "request", 9.0),
    (1000.0, "request", 5, None, 13, 24, 300.0, None, 9.0),
    (1010.0, "offer", 5, 3, 3, 13, 80.0, "4"),
    (1015.0, "assign", 5, 3, 3, 13, 80.0, "4"),
    (1055.0, "cancel", 5, 3, 13, None, None, "after_match"),
    # R7: declined by D2, then nobody: still waiting at the end.
    (1100.0, "quote", 7, None, 15, 25, 90.0, "request", 10.0),
    (1100.0, "request", 7, None, 15, 25, 300.0, None, 10.0),
    (1100.0, "offer", 7, 2, 30, 15, 90.0, "5"),
    (1108.0, "decline", 7, 2, 30, None, None, "declined"),
    (1800.0, "driver_offline", None, 3, 13),
    # R6: accepted at once by D1, picked up 10 s early, pays 14 on a quote of 11.
    (2000.0, "quote", 6, None, 14, 26, 50.0, "request", 11.0),
    (2000.0, "request", 6, None, 14, 26, 300.0, None, 11.0),
    (2005.0, "offer", 6, 1, 1, 14, 40.0, "6"),
    (2010.0, "assign", 6, 1, 1, 14, 40.0, "6"),
    (2040.0, "pickup", 6, 1, 14, None, 30.0),
    (2340.0, "dropoff", 6, 1, 26, None, 300.0, None, 14.0),
    # D1 repositions for 1000 s from 3000: cut at the horizon (600 s).
    (3000.0, "reposition", None, 1, 26, 40, 1000.0),
]


@pytest.fixture(scope="module")
def v2() -> dict:
    return compute_metrics(make_events(V2), H, commission=0.2)


def test_v2_funnel(v2: dict) -> None:
    """Seven riders quoted, six requested; offered / matched / picked up / completed by hand."""
    f = v2["funnel"]
    assert f["quotes_logged"] and f["offers_logged"]
    assert f["stages"] == {
        "arrived": 7,
        "requested": 6,
        "offered": 5,
        "matched": 3,
        "picked_up": 2,
        "completed": 2,
    }
    assert f["conversion"] == rnd(6 / 7)
    assert f["shares"]["offered"] == rnd(5 / 6)
    assert f["shares_of_arrived"]["completed"] == rnd(2 / 7)
    assert f["cancelled_by_reason"] == {"after_match": 1, "no_driver": 1, "patience": 1}
    assert f["cancelled_by_stage"] == {"before_match": 2, "before_pickup": 1, "after_pickup": 0}
    r = v2["requests"]
    assert (r["count"], r["cancelled"], r["open"]) == (6, 3, 1)
    assert r["open_by_state"] == {"unmatched": 1, "assigned": 0, "in_vehicle": 0}


def test_v2_offers(v2: dict) -> None:
    """Six offers: three accepted, two declined, one timed out."""
    o = v2["offers"]
    assert o["logged"]
    assert (o["offers"], o["accepted"], o["declined"], o["timeout"], o["rider_gone"]) == (
        6,
        3,
        2,
        1,
        0,
    )
    assert o["pending_at_end"] == 0
    assert o["decline_rate"] == 0.5
    assert o["timeout_share"] == rnd(1 / 6)
    assert o["offers_per_completed"] == 3.0
    assert o["offers_per_match"] == 2.0
    assert o["riders_refused_at_least_once"] == 3


def test_v2_times_and_accuracy(v2: dict) -> None:
    """Time to match counts the assign, not the offer; both ETA promises are checked."""
    # Match: R1 35, R5 15, R6 10.  First offer: R1 10, R3 5, R5 10, R6 5, R7 0.
    assert v2["time_to_match_s"]["mean"] == 20.0 and v2["time_to_match_s"]["p50"] == 15.0
    assert v2["time_to_first_offer_s"]["count"] == 5
    assert v2["time_to_first_offer_s"]["mean"] == 6.0
    # Matcher ETA: R1 120 - 100 = +20, R6 30 - 40 = -10.
    assert v2["eta_error_s"] == {"count": 2, "mae": 15.0, "bias": 5.0, "p90_abs": 19.0}
    # Rider quote: R1 waited 155 on a quote of 120 (+35); R6 40 on 50 (-10).
    assert v2["quote_error_s"] == {"count": 2, "mae": 22.5, "bias": 12.5, "p90_abs": 32.5}


def test_v2_driver_time(v2: dict) -> None:
    """Repositioning cut by the next event or horizon; after-match driving is deadhead."""
    d = v2["drivers"]
    # Online 3600 + 3600 + 1800. To pickup: D2 120, D3 80 (1015 -> 1095), D1 30 = 230.
    # With rider 600 + 300 = 900. Repositioning D2 200 + D1 600 = 800. Idle 9000 - 1930.
    assert d["online_h"] == 2.5
    assert d["to_pickup_h"] == rnd(230 / 3600)
    assert d["with_rider_h"] == 0.25
    assert d["repositioning_h"] == rnd(800 / 3600)
    assert d["idle_h"] == rnd(7070 / 3600)
    assert d["utilisation"] == rnd(1130 / 9000)
    assert d["repositioning_share"] == rnd(800 / 9000)
    assert d["deadhead_share"] == rnd(1030 / 1930)
    m = v2["market"]
    assert m["drivers_repositioning"][15] == 1.0  # [900, 960): D2
    assert m["drivers_repositioning"][50] == 1.0  # [3000, 3060): D1
    assert m["drivers_to_pickup"][17] == 1.0  # [1020, 1080): D3 still driving after the cancel


def test_v2_money_and_fairness(v2: dict) -> None:
    """Fares 12 + 14; drivers keep 80%; income per online hour uses real income."""
    mo = v2["money"]
    assert mo["fares_logged"] and mo["trips_paid"] == 2
    assert mo["rider_spend"] == 26.0
    assert mo["driver_income"] == 20.8
    assert mo["platform_revenue"] == 5.2
    assert mo["rider_spend_per_h"] == 26.0
    assert mo["driver_income_per_online_h"] == rnd(20.8 / 2.5)
    assert mo["fare_per_trip"]["mean"] == 13.0
    assert mo["paid_over_quoted"]["mean"] == rnd((12 / 10 + 14 / 11) / 2)
    assert mo["mean_price_of_requested_quotes"] == 10.5  # (10 + 8 + 15 + 9 + 11 + 10) / 6
    assert mo["mean_price_of_declined_quotes"] == 20.0
    f = v2["fairness"]
    assert f["income_basis"] == "fare"
    # D1 14 x 0.8 in 1 h, D2 12 x 0.8 in 1 h, D3 nothing in 0.5 h.
    assert f["drivers"] == 3
    assert f["mean"] == rnd((11.2 + 9.6 + 0.0) / 3)


def test_v2_quote_timeseries(v2: dict) -> None:
    """Quotes and conversion per minute: R1's bin converts, R2's does not, empty bins null."""
    m = v2["market"]
    assert sum(m["quotes"]) == 7 and sum(m["offers"]) == 6 and sum(m["refusals"]) == 3
    assert m["conversion"][1] == 1.0  # [60, 120): R1
    assert m["conversion"][3] == 0.0  # [180, 240): R2 declined
    assert m["conversion"][0] is None


def test_after_match_drive_cut_by_next_driver_event() -> None:
    """After a rider cancels, the driver's drive ends at its next event when that comes before
    assign + ETA, and never before the cancel itself."""
    rows = [
        (0.0, "driver_online", None, 1, 1),
        (0.0, "request", 1, None, 5, 6, 100.0),
        (10.0, "assign", 1, 1, 1, 5, 200.0, "0"),
        (50.0, "cancel", 1, 1, 5, None, None, "after_match"),
        (90.0, "reposition", None, 1, 5, 7, 30.0),  # next event: drive ends at 90, not 210
        (100.0, "request", 2, None, 5, 6, 100.0),
        (100.0, "assign", 2, 1, 5, 5, 5.0, "1"),
        (160.0, "cancel", 2, 1, 5, None, None, "after_match"),  # late cancel: ETA bound 105
    ]
    d = compute_metrics(make_events(rows), 1000.0)["drivers"]
    assert d["to_pickup_h"] == rnd((80 + 60) / 3600)
    assert d["repositioning_h"] == rnd(10 / 3600)  # 90 -> 100, cut by the assign


def test_absent_quotes_and_offers_are_implicit() -> None:
    """Without quote/offer events every rider requested and every assign was an accepted offer;
    without fares income falls back to the paid-minutes proxy."""
    rows = [
        (0.0, "driver_online", None, 1, 1),
        (10.0, "request", 1, None, 5, 6, 100.0),
        (20.0, "assign", 1, 1, 1, 5, 30.0, "0"),
        (50.0, "pickup", 1, 1, 5, None, 30.0),
        (150.0, "dropoff", 1, 1, 6, None, 100.0),
    ]
    m = compute_metrics(make_events(rows), 3600.0)
    assert not m["funnel"]["quotes_logged"] and m["funnel"]["conversion"] == 1.0
    assert m["offers"]["logged"] is False
    assert (m["offers"]["offers"], m["offers"]["accepted"], m["offers"]["decline_rate"]) == (
        1,
        1,
        0.0,
    )
    assert m["offers"]["offers_per_completed"] == 1.0
    assert m["time_to_first_offer_s"]["mean"] == 10.0
    assert m["quote_error_s"]["count"] == 0 and m["quote_error_s"]["mae"] is None
    assert m["money"]["fares_logged"] is False and m["money"]["rider_spend"] is None
    assert m["fairness"]["income_basis"] == "in_vehicle_s"
    assert m["drivers"]["repositioning_h"] == 0.0


# ---------------------------------------------------------------------------------------------
# Run directories: replay and surge


def _v2_nodes(cell: bool = True) -> pa.Table:
    ids = list(range(50))
    cells = {10: "A", 11: "A", 16: "A", 12: "B", 13: "B", 14: "C", 15: "C"}
    cols = {
        "node": pa.array(ids, pa.int64()),
        "x_m": pa.array([100.0 * i for i in ids]),
        "y_m": pa.array([50.0 * (i % 7) for i in ids]),
        "lon": pa.array([None] * 50, pa.float64()),
        "lat": pa.array([None] * 50, pa.float64()),
    }
    if cell:
        cols["cell"] = pa.array([cells.get(i, "Z") for i in ids], pa.string())
    return pa.table(cols)


SURGE = pa.table(
    {
        "t": pa.array([0.0, 0.0, 600.0, 600.0, 1800.0, 2400.0]),
        "cell": ["A", "B", "A", "B", "C", "C"],
        "multiplier": pa.array([1.5, 1.0, 1.0, 2.0, 1.2, 1.0]),
        "open_requests": pa.array([4, 0, 1, 6, 2, 0], pa.int64()),
        "quotes": pa.array([5, 1, 1, 7, 3, 0], pa.int64()),
        "unconverted_quotes": pa.array([1, 0, 0, 2, 1, 0], pa.int64()),
        "idle_drivers": pa.array([1, 3, 4, 0, 1, 5], pa.int64()),
        "en_route_drivers": pa.array([2, 0, 1, 3, 1, 0], pa.int64()),
        "recent_pickup_eta_s": pa.array([300.0, np.nan, 100.0, 400.0, 200.0, np.nan]),
    }
)


def _v2_run(tmp_path: Path, name: str = "r", cell: bool = True) -> Path:
    man = manifest(duration_s=H)
    man["scenario"]["pricing"] = {"commission": 0.2, "currency": "EUR"}
    return write_run(tmp_path / name, make_events(V2), man, _v2_nodes(cell))


def test_surge_by_cell_interval_and_request(tmp_path: Path) -> None:
    """Cell-intervals, requests and quotes joined to the price of their cell at the time."""
    run = _v2_run(tmp_path)
    pq.write_table(SURGE, run / "surge.parquet")
    s = write_metrics(run)["surge"]
    assert s["interval_s"] == 600.0
    ci = s["cell_intervals"]
    assert (ci["count"], ci["cells"], ci["intervals"]) == (6, 3, 4)
    assert ci["share_surging"] == 0.5
    assert ci["multiplier"]["mean"] == rnd(7.7 / 6) and ci["multiplier"]["max"] == 2.0
    assert s["cell_source"] == "column"
    # R1 A@0 1.5, R3 A@0 1.5, R4 B@0 1.0, R5 B@600 2.0, R7 C: no row yet (1.0), R6 C@1800 1.2.
    r = s["requests"]
    assert (r["count"], r["priced"], r["unpriced"], r["without_cell"]) == (6, 5, 1, 0)
    assert r["share_surging"] == rnd(4 / 6)
    assert r["multiplier"]["mean"] == rnd(8.2 / 6)
    # Quotes under surge: R1, R2, R3, R5, R6 (4 of 5 requested); calm: R4, R7 (both did).
    assert s["quotes"] == {
        "count": 7,
        "surging": 5,
        "conversion_surging": 0.8,
        "conversion_calm": 1.0,
    }
    assert s["top_cells"][0] == {"cell": "B", "mean": 1.5, "max": 2.0, "share_surging": 0.5}
    assert s["surging_vs_calm"]["surging"]["mean_open_requests"] == 4.0  # (4 + 6 + 2) / 3
    assert s["surging_vs_calm"]["calm"]["mean_recent_pickup_eta_s"] == 100.0  # NaNs skipped
    ts = s["timeseries"]
    assert ts["mean_multiplier"][0] == 1.25 and ts["max_multiplier"][0] == 1.5
    assert ts["mean_multiplier"][10] == 1.5 and ts["share_surging"][10] == 0.5
    # Prices stay in force for one interval (600 s = ten bins), then C is unpriced until 1800.
    assert ts["mean_multiplier"][9] == 1.25 and ts["max_multiplier"][19] == 2.0
    assert ts["mean_multiplier"][20] is None and ts["mean_multiplier"][30] == 1.2


def test_surge_stale_price_is_not_applied() -> None:
    """A request more than one interval after its cell's last price pays no surge."""
    from reports.surge import join_multipliers, surge_frame

    df = surge_frame(SURGE)
    mult, priced = join_multipliers(
        df,
        np.array([1300.0, 599.0, 600.0, 10.0]),
        np.array(["A", "A", "A", ""], dtype=object),
        600.0,
    )
    assert mult.tolist() == [1.0, 1.5, 1.0, 1.0]
    assert priced.tolist() == [False, True, True, False]


def test_surge_requests_need_the_runs_zoning(tmp_path: Path) -> None:
    """Without the run's zoning in nodes.parquet, requests are not joined to prices (reports
    never compute cells of their own); the cell-interval view remains."""
    nodes = grid_nodes(geo=True).drop_columns(["cell"])
    rows = [(100.0, "request", 1, None, 5, 6, 300.0, None, 10.0)]
    run = write_run(tmp_path / "r", make_events(rows), manifest(), nodes)
    surge = pa.table({"t": [0.0], "cell": ["88a8736f07fffff"], "multiplier": [1.8]})
    pq.write_table(surge, run / "surge.parquet")
    m = write_metrics(run)
    assert m["surge"]["requests"] is None and m["surge"]["cell_source"] is None
    assert m["surge"]["cell_intervals"]["count"] == 1 and "zones" not in m


def test_replay_fidelity(tmp_path: Path) -> None:
    """Completed rides with a recorded time are compared; others are left out."""
    rows = [(0.0, "driver_online", None, 1, 1)]
    sims = {1: 100.0, 2: 200.0, 3: 300.0, 4: 400.0}
    for r, s in sims.items():
        t = 1000.0 * r
        rows += [
            (t, "request", r, None, 1, 2, s),
            (t + 1, "assign", r, 1, 1, 1, 10.0, "0"),
            (t + 11, "pickup", r, 1, 1, None, 10.0),
            (t + 11 + s, "dropoff", r, 1, 2, None, s),
        ]
    rows += [(50.0, "request", 9, None, 1, 2, 60.0)]  # never completed
    run = write_run(tmp_path / "r", make_events(rows), manifest(duration_s=6000.0))
    trips = pa.table(
        {
            "rider": pa.array([1, 2, 3, 4, 9, 77], pa.int64()),
            "recorded_trip_s": pa.array([110.0, 190.0, 330.0, np.nan, 50.0, 80.0]),
        }
    )
    pq.write_table(trips, run / "trips.parquet")
    r = write_metrics(run)["replay"]
    sim, rec = np.array([100.0, 200.0, 300.0]), np.array([110.0, 190.0, 330.0])
    assert (r["trips_in_file"], r["with_recorded_time"], r["compared"]) == (6, 5, 3)
    assert r["median_ratio"] == rnd(np.median(sim / rec))
    assert r["pearson"] == rnd(stats.pearsonr(sim, rec)[0])
    assert r["spearman"] == 1.0
    # Differences -10, +10, -30.
    assert r["mae_s"] == rnd(50 / 3) and r["bias_s"] == -10.0


def test_sections_absent_without_files(tmp_path: Path) -> None:
    """No trips.parquet / surge.parquet: no replay or surge section, no report section."""
    run = _v2_run(tmp_path)
    m = write_metrics(run)
    assert "replay" not in m and "surge" not in m
    assert m["money"]["currency"] == "EUR" and m["money"]["commission"] == 0.2
    page = write_report(run).read_text(encoding="utf-8")
    assert "Surge pricing" not in page and "Replay fidelity" not in page
    assert "Offers to drivers" in page and "Fares and income" in page


def test_report_shows_new_sections(tmp_path: Path) -> None:
    """With surge and replay files the report gains their sections, tables and figures."""
    run = _v2_run(tmp_path)
    pq.write_table(SURGE, run / "surge.parquet")
    pq.write_table(
        pa.table({"rider": pa.array([1, 6], pa.int64()), "recorded_trip_s": [500.0, 280.0]}),
        run / "trips.parquet",
    )
    page = write_report(run).read_text(encoding="utf-8")
    for text in (
        "Quote conversion",
        "Driver declines",
        "Offers to drivers",
        "repositioning",
        "Fares and income",
        "Surge pricing",
        "Replay fidelity",
        "85.7%",  # conversion 6 / 7
    ):
        assert text in page, text
    assert "Figure unavailable" not in page
    # Over time, waits, income, zones, 2 surge and 1 replay (no matcher calls: no timing).
    assert page.count('src="data:image/png;base64,') == 7
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "## Surge pricing" in md and "## Replay fidelity" in md and "## Offers to drivers" in md
    slo = json.loads((run / "metrics.json").read_text())["slo"]
    keys = {r["key"]: r for r in slo["rows"]}
    assert (
        keys["conversion_min"]["value"] == rnd(6 / 7) and keys["conversion_min"]["status"] == "pass"
    )
    assert keys["driver_decline_rate_max"]["status"] == "fail"  # 0.5 > 0.25
    assert math.isclose(keys["driver_decline_rate_max"]["value"], 0.5)

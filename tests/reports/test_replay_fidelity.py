"""The replay fidelity section: which trips are compared, exclusions by reason, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reports.replay import fidelity_rows, replay_fidelity


def trips_and_riders() -> tuple[pa.Table, pd.DataFrame]:
    """Eight riders: four compared, one of each exclusion reason."""
    rec = [600.0, 300.0, 900.0, 1200.0, np.nan, 400.0, 30.0, 20_000.0]
    pickup = [1, 2, 3, 4, 5, 6, 7, 8]
    dropoff = [9, 9, 9, 9, 9, 6, 9, 9]  # rider 5 starts and ends on node 6
    trips = pa.table(
        {
            "rider": pa.array(np.arange(8, dtype=np.int64)),
            "pickup_node": pa.array(pickup, type=pa.int64()),
            "dropoff_node": pa.array(dropoff, type=pa.int64()),
            "recorded_trip_s": pa.array(rec, type=pa.float64()),
        }
    )
    outcome = ["completed"] * 8
    outcome[3] = "abandoned"
    sim = [660.0, 270.0, 900.0, np.nan, 500.0, 0.0, 40.0, 900.0]
    riders = pd.DataFrame({"outcome": outcome, "trip_s": sim}, index=np.arange(8))
    return trips, riders


def test_exclusions_are_counted_by_reason() -> None:
    """Same node, no recorded time, under/over the recorded range and not completed are
    excluded and counted; trips dropped before the run come from the demand stats."""
    trips, riders = trips_and_riders()
    r = replay_fidelity(trips, riders, {"dropped_outside_area": 7})
    assert r["compared"] == 3
    assert r["excluded"] == {
        "outside_area_before_run": 7,
        "no_recorded_time": 1,
        "same_node": 1,
        "recorded_under_min": 1,
        "recorded_over_max": 1,
        "not_completed": 1,
        "simulated_zero": 0,
    }


def test_fidelity_figures_by_hand() -> None:
    """Ratios 1.1, 0.9, 1.0: median abs error 10%, bias 0%, Spearman 1."""
    trips, riders = trips_and_riders()
    r = replay_fidelity(trips, riders)
    assert r["median_abs_pct_error"] == pytest.approx(10.0)
    assert r["bias_pct"] == pytest.approx(0.0) and r["median_ratio"] == pytest.approx(1.0)
    assert r["spearman"] == pytest.approx(1.0)
    sim, rec = np.log([660.0, 270.0, 900.0]), np.log([600.0, 300.0, 900.0])
    assert r["pearson_log"] == pytest.approx(np.corrcoef(sim, rec)[0, 1])
    rows = dict((a, b) for a, b in fidelity_rows(r))
    assert rows["median absolute error of ride time"] == "10.0%"
    assert rows["excluded: same node"] == "1"


def test_runs_without_recorded_times_keep_the_short_section() -> None:
    """Synthetic demand (no recorded time at all): only the counts and empty figures."""
    trips, riders = trips_and_riders()
    trips = trips.set_column(3, "recorded_trip_s", pa.array([np.nan] * 8, type=pa.float64()))
    r = replay_fidelity(trips, riders)
    assert r["compared"] == 0 and "excluded" not in r and r["median_ratio"] is None
    figures = ("median_ratio", "p10_ratio", "p90_ratio", "pearson", "spearman")
    means = ("mean_simulated_s", "mean_recorded_s", "mae_s", "bias_s")
    assert r == {
        "trips_in_file": 8,
        "with_recorded_time": 0,
        "compared": 0,
        **dict.fromkeys(figures + means),
    }

"""Fitted demand: the hourly profile and geography learned from trip files, and the Poisson
arrivals it (and the synthetic model) draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as st

# The lon/lat test city and the real files' column maps live with the replay tests.
from test_replay import (
    CHICAGO_BOX,
    CHICAGO_COLUMNS,
    DATA,
    NYC_BOX,
    SMALL_BOX,
    SMALL_COLUMNS,
    SOURCE,
    UBER_COLUMNS,
    UBER_FORMAT,
    LonLatGrid,
)

from cities import load_city
from cities.demand import DEFAULT_PROFILE, poisson_arrivals
from cities.fitted import FittedDemand, FittedDemandSpec, fit_demand, fitted_trips
from cities.spec import OsmCity
from core.errors import InputError

H = 3600.0
DAY = 86400.0


def small_fitted(**kw: Any) -> FittedDemandSpec:
    """The hand-made file as a fitted model."""
    data: dict[str, Any] = {
        "model": "fitted",
        "path": "small_trips.csv",
        "columns": SMALL_COLUMNS,
        "time_format": "%d.%m.%Y %H:%M",
    }
    return FittedDemandSpec.model_validate({**data, **kw})


def clock_hours(t: np.ndarray, start_s: float) -> np.ndarray:
    """Counts of arrival times (sim seconds) per clock hour 0..23."""
    return np.bincount((np.mod(start_s + t, DAY) // H).astype(np.int64), minlength=24)


def exposure_h(start_s: float, horizon_s: float) -> np.ndarray:
    """Hours of each clock hour inside [0, horizon), by brute force over whole seconds."""
    mid = np.arange(0.0, horizon_s, 1.0) + 0.5
    return np.bincount((np.mod(start_s + mid, DAY) // H).astype(np.int64), minlength=24) / H


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_poisson_arrivals_follow_the_hourly_profile(seed: int) -> None:
    """Synthetic arrivals per clock hour fit rate * profile * exposure (chi-square p > 0.01),
    over five days starting mid-hour at 07:30 and ending mid-hour."""
    start, horizon, rate = 7.5 * H, 5 * DAY + 1234.0, 120.0
    t = poisson_arrivals(
        np.random.default_rng(seed), rate, np.array(DEFAULT_PROFILE), start, horizon
    )
    assert (np.diff(t) >= 0).all() and t.min() >= 0 and t.max() < horizon
    w = np.array(DEFAULT_PROFILE) / np.mean(DEFAULT_PROFILE)
    expected = rate * w * exposure_h(start, horizon)
    observed = clock_hours(t, start)
    assert abs(observed.sum() - expected.sum()) < 4 * np.sqrt(expected.sum())
    p = st.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue
    assert p > 0.01


def test_fit_counts_records_per_clock_hour_over_the_days() -> None:
    """The fitted rates are in-area records per clock hour / distinct dates of the file."""
    space = LonLatGrid(*SMALL_BOX)
    model = fit_demand(small_fitted(), space, base_dir=DATA, source=SOURCE)
    # In the area: 08:05, 08:05, 07:50, 09:10 (01.03); 08:01, 08:59, 10:00 (02.03); 08:20
    # (28.02); three distinct dates among the ten valid records.
    want = np.zeros(24)
    want[[7, 8, 9, 10]] = [1, 5, 1, 1]
    np.testing.assert_allclose(model.hourly_rate, want / 3)
    assert model.stats["days"] == 3 and model.stats["records_fitted"] == 8
    assert model.stats["rows_read"] == 12 and model.stats["dropped_outside_area"] == 2
    assert model.requests_per_day == pytest.approx(8 / 3)
    np.testing.assert_array_equal(np.diff(model.hour_start), want.astype(int))


def test_fitted_trips_draw_near_the_fitted_ends_in_the_right_hours() -> None:
    """Arrivals fall only in fitted hours, and pickups and dropoffs lie within a few kernel
    widths of a fitted record's ends of that hour."""
    space = LonLatGrid(*SMALL_BOX)
    spec = small_fitted(spatial_bandwidth_m=100.0, multiplier=50.0)
    model = fit_demand(spec, space, base_dir=DATA, source=SOURCE)
    trips, stats = fitted_trips(np.random.default_rng(3), model, spec, space, 0.0, 2 * DAY)
    assert stats["trips"] == len(trips) > 200  # 8 / 3 per day x 50 x 2 days = 267 expected
    assert set(np.unique(clock_hours(trips.t, 0.0).nonzero()[0])) <= {7, 8, 9, 10}
    assert trips.recorded_trip_s is None
    for ends, xy in ((trips.pickup_node, model.pickup_xy), (trips.dropoff_node, model.dropoff_xy)):
        gap = np.hypot(*(space.node_xy[ends][:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert gap.min(axis=1).max() < 6 * 100.0 + 100.0


def test_multiplier_scales_expected_and_drawn_counts() -> None:
    """Ten times the multiplier: ten times the expected count, and the draw follows it."""
    space = LonLatGrid(*SMALL_BOX)
    base = small_fitted(destinations="sampled")
    model = fit_demand(base, space, base_dir=DATA, source=SOURCE)
    ten = base.model_copy(update={"multiplier": 10.0})
    _, s1 = fitted_trips(np.random.default_rng(1), model, base, space, 0.0, 30 * DAY)
    trips, s10 = fitted_trips(np.random.default_rng(1), model, ten, space, 0.0, 30 * DAY)
    # Sampled destinations keep the trip whose recorded dropoff is outside: 9 records, 3 dates.
    assert s1["expected_trips"] == pytest.approx(30 * 9 / 3)
    assert s10["expected_trips"] == pytest.approx(10 * s1["expected_trips"])
    assert abs(len(trips) - s10["expected_trips"]) < 4 * np.sqrt(s10["expected_trips"])
    assert (trips.pickup_node != trips.dropoff_node).mean() > 0.95


def test_same_seed_same_fitted_trips() -> None:
    """Fitting is deterministic and the same seed draws identical trips."""
    space = LonLatGrid(*SMALL_BOX)
    spec = small_fitted(multiplier=20.0, destinations="sampled")
    a = fit_demand(spec, space, base_dir=DATA, source=SOURCE)
    b = fit_demand(spec, space, base_dir=DATA, source=SOURCE)
    np.testing.assert_array_equal(a.hourly_rate, b.hourly_rate)
    ta, sa = fitted_trips(np.random.default_rng(9), a, spec, space, 6 * H, DAY)
    tb, sb = fitted_trips(np.random.default_rng(9), b, spec, space, 6 * H, DAY)
    for name in ("t", "pickup_node", "dropoff_node"):
        np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name))
    assert sa == sb


def test_fit_with_no_trips_in_the_area_is_an_input_error() -> None:
    """A city that holds none of the file's trips: an error that counts the drops."""
    far = LonLatGrid(11.0, 50.0, 11.05, 50.03)
    with pytest.raises(InputError) as info:
        fit_demand(small_fitted(), far, base_dir=DATA, source=SOURCE)
    err = info.value
    assert err.source == SOURCE and err.field == "demand"
    assert "small_trips.csv" in err.expected and "10 outside the city's area" in err.expected


def profile_fit(
    model: FittedDemand, spec: FittedDemandSpec, space: Any, days: int
) -> tuple[float, float]:
    """Chi-square p-value and total-variation distance between the file's hourly histogram and
    arrivals drawn from the fitted model at multiplier 1 over ``days`` simulated days."""
    trips, _ = fitted_trips(np.random.default_rng(2024), model, spec, space, 0.0, days * DAY)
    drawn = clock_hours(trips.t, 0.0)
    source = np.diff(model.hour_start)  # the file's in-area records per clock hour
    keep = source > 0
    p = st.chisquare(drawn[keep], source[keep] * drawn.sum() / source.sum()).pvalue
    tv = 0.5 * np.abs(drawn / drawn.sum() - source / source.sum()).sum()
    return float(p), float(tv)


def test_fitted_model_reproduces_the_chicago_hourly_profile(shared_data: Path) -> None:
    """Chicago taxi (15k trips over four years): draws over as many days as the file has
    reproduce its hourly histogram (chi-square p > 0.01, total variation < 0.03)."""
    spec = FittedDemandSpec(
        model="fitted", path="chicago-taxi-tfx/chicago_taxi_tfx_simple.csv", columns=CHICAGO_COLUMNS
    )
    space = LonLatGrid(*CHICAGO_BOX, spacing_m=250)
    model = fit_demand(spec, space, base_dir=shared_data, source=SOURCE)
    assert model.stats["records_fitted"] == 14_519 and model.stats["days"] == 1421
    p, tv = profile_fit(model, spec, space, days=1421)
    assert p > 0.01 and tv < 0.03


def test_fitted_model_reproduces_the_nyc_uber_hourly_profile(shared_data: Path) -> None:
    """NYC Uber (393k pickups, Apr-Sep 2014): 183 simulated days reproduce the hourly histogram
    (chi-square p > 0.01, total variation < 0.01)."""
    spec = FittedDemandSpec(
        model="fitted",
        path="uber-nyc-2014-pickups/uber-raw-data-*.csv",
        columns=UBER_COLUMNS,
        time_format=UBER_FORMAT,
        destinations="sampled",
    )
    space = LonLatGrid(*NYC_BOX, spacing_m=250)
    model = fit_demand(spec, space, base_dir=shared_data, source=SOURCE)
    assert model.stats["days"] == 183 and model.stats["rows_read"] == 393_210
    p, tv = profile_fit(model, spec, space, days=183)
    assert p > 0.01 and tv < 0.01


def test_fitted_chicago_on_the_chicago_osm_extract(shared_data: Path, cache_dir: Path) -> None:
    """On the small Chicago OSM extract the fit keeps only the trips inside it, and draws work."""
    city = OsmCity(osm=str(shared_data / "chicago-osm-graphdecomposition" / "chicago.osm"))
    space = load_city(city, base_dir=shared_data, source="test", cache_dir=cache_dir)
    spec = FittedDemandSpec(
        model="fitted",
        path="chicago-taxi-tfx/chicago_taxi_tfx_simple.csv",
        columns=CHICAGO_COLUMNS,
        destinations="sampled",
        multiplier=100.0,
    )
    model = fit_demand(spec, space, base_dir=shared_data, source=SOURCE)
    assert 0 < model.stats["records_fitted"] < 0.05 * model.stats["rows_read"]
    trips, stats = fitted_trips(np.random.default_rng(1), model, spec, space, 17 * H, 2 * H)
    assert len(trips) > 0 and trips.pickup_node.max() < space.n_nodes

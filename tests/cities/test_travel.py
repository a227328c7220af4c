"""The travel model: day types, the engine's congestion lookup, the robust fit, fit figures."""

from __future__ import annotations

import numpy as np
import pytest

from cities.travel import (
    Congestion,
    cells_of,
    day_number,
    day_types,
    fit_figures,
    fit_travel,
)
from core.clock import DAY, HOUR

HOURS = np.arange(24)
WEEKDAY = 1.3 + 0.9 * np.exp(-(((HOURS - 8) / 1.5) ** 2)) + 0.8 * np.exp(-(((HOURS - 17) / 2) ** 2))
TRUTH = np.vstack([WEEKDAY, 1 + 0.5 * (WEEKDAY - 1), 1 + 0.25 * (WEEKDAY - 1)])
MONDAY = day_number("2024-03-04")


def synthetic_trips(
    n: int, elasticity: float, seed: int = 0, outliers: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(free flow, recorded, clock) of trips drawn from TRUTH x length term x lognormal noise,
    with a share of ``outliers`` recorded 2-6 times too long."""
    rng = np.random.default_rng(seed)
    clock = MONDAY * DAY + rng.uniform(0, 28 * DAY, n)
    ff = np.exp(rng.uniform(np.log(60), np.log(1800), n))
    ref = float(np.exp(np.median(np.log(ff))))
    rec = ff * TRUTH.ravel()[cells_of(clock)] * (ff / ref) ** elasticity
    rec *= np.exp(rng.normal(0, 0.2, n))
    bad = rng.random(n) < outliers
    rec[bad] *= rng.uniform(2, 6, bad.sum())
    return ff, rec, clock


def test_day_types_of_known_dates() -> None:
    """Monday-Friday are weekdays, then Saturday, then Sunday; a holiday is a Sunday."""
    days = np.array([day_number(f"2024-03-{d:02d}") for d in range(4, 11)])
    assert day_types(days).tolist() == [0, 0, 0, 0, 0, 1, 2]
    holiday = day_number("2024-03-06")
    assert day_types(days, [holiday]).tolist() == [0, 0, 2, 0, 0, 1, 2]


def test_hourly_lookup_is_the_clock_hour_factor() -> None:
    """A 24-factor table gives the factor of the clock hour, wrapping past midnight."""
    c = Congestion(np.arange(24) + 1.0, start_s=22 * HOUR)
    t = np.array([0.0, HOUR - 1, HOUR, 2 * HOUR, 5.5 * HOUR])
    np.testing.assert_array_equal(c.factors(t), [23, 23, 24, 1, 4])
    assert c.factor(2 * HOUR) == 1.0 and not c.flat
    assert Congestion(None).flat and not Congestion(None, length_elasticity=-0.1).flat


def test_day_type_lookup_follows_the_calendar_from_the_start_date() -> None:
    """A (3, 24) table uses the day type of each simulated day from the start date."""
    table = np.vstack([np.full(24, 1.0), np.full(24, 2.0), np.full(24, 3.0)])
    friday = day_number("2024-03-08")
    c = Congestion(table, start_s=23 * HOUR, start_day=friday, holidays=(friday + 3,))
    t = np.array([0.0, HOUR, 25 * HOUR, 49 * HOUR, 73 * HOUR])  # Fri, Sat, Sun, Mon=hol, Tue
    np.testing.assert_array_equal(c.factors(t), [1, 2, 3, 3, 1])


def test_day_type_table_needs_a_start_date() -> None:
    """Without a start date a day-type table cannot know which day is a Sunday."""
    with pytest.raises(ValueError, match="start date"):
        Congestion(np.ones((3, 24)))


def test_length_term_is_clipped_and_never_beats_free_flow() -> None:
    """apply = ff x factor x (clip(ff) / ref) ** e, and never below ff."""
    c = Congestion(
        np.full((1, 24), 1.5),
        length_elasticity=-0.5,
        length_range_s=(100.0, 400.0),
        length_ref_s=100.0,
    )
    ff = np.array([0.0, 50.0, 100.0, 400.0, 1600.0])
    want = np.maximum(ff * 1.5 * (np.clip(ff, 100, 400) / 100) ** -0.5, ff)
    np.testing.assert_allclose(c.apply(ff, 0.0), want)
    assert c.apply(ff, 0.0)[-1] == 1600.0  # 1.5 x 0.5 < 1: held at free flow


def test_fit_recovers_day_type_hour_factors_and_length_elasticity() -> None:
    """Synthetic trips with known factors, e = -0.15 and 20% noise: factors within 6%
    (median within 2%), e within 0.03."""
    ff, rec, clock = synthetic_trips(60_000, -0.15)
    fit = fit_travel(ff, rec, clock)
    err = np.abs(fit.table / TRUTH - 1)
    assert err.max() < 0.06 and np.median(err) < 0.02
    assert abs(fit.length_elasticity + 0.15) < 0.03
    assert fit.trips_per_cell.sum() == ff.shape[0]


def test_fit_is_robust_to_outliers() -> None:
    """5% of trips recorded 2-6x too long move the fitted factors by under 3% (Huber: 1.9%
    measured), while a plain mean of log ratios moves by over 5% (6.9% measured)."""
    ff, rec, clock = synthetic_trips(60_000, 0.0, seed=1, outliers=0.05)
    fit = fit_travel(ff, rec, clock, length_term=False)
    assert np.median(np.abs(fit.table / TRUTH - 1)) < 0.03
    assert fit.length_elasticity == 0.0
    naive = np.exp(np.mean(np.log(rec / ff)) - np.mean(np.log(TRUTH.ravel()[cells_of(clock)])))
    assert naive > 1.05  # the outliers do pull a plain mean


def test_fit_holds_factors_at_one_and_counts_clamped_cells() -> None:
    """Recorded times faster than free flow give factors of 1 and a clamped count."""
    rng = np.random.default_rng(2)
    clock = MONDAY * DAY + rng.uniform(0, 7 * DAY, 3000)
    ff = rng.uniform(100, 500, 3000)
    fit = fit_travel(ff, 0.8 * ff, clock, length_term=False)
    assert np.all(fit.table == 1.0) and fit.clamped_cells == 72


def test_fit_figures_by_hand() -> None:
    """Median abs % error, bias, ratio quantiles and correlations of a small example."""
    rec = np.array([100.0, 200.0, 300.0, 400.0])
    sim = np.array([110.0, 180.0, 330.0, 400.0])
    f = fit_figures(sim, rec)
    # ratios 1.1, 0.9, 1.1, 1.0: |r - 1| = .1, .1, .1, 0 -> median 0.1
    assert f["median_abs_pct_error"] == pytest.approx(10.0)
    assert f["ratio_p50"] == pytest.approx(1.05) and f["bias_pct"] == pytest.approx(5.0)
    assert f["spearman"] == pytest.approx(1.0)
    assert f["pearson_log"] == pytest.approx(np.corrcoef(np.log(sim), np.log(rec))[0, 1])
    assert fit_figures(np.zeros(0), np.zeros(0))["median_abs_pct_error"] is None

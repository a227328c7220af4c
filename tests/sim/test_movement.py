"""Movement: congestion by clock hour and leg times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matching.api import EtaBounds
from sim.behaviour import TravelSpec
from sim.movement import Congestion, Travel
from tests.sim.street import street

RUSH = tuple([1.0] * 8 + [2.0] + [1.0] * 15)  # 08:00-09:00 doubles travel times


def test_congestion_factor_follows_the_clock_hour() -> None:
    """factor(t) is the factor of the clock hour at start_s + t, wrapping at midnight."""
    c = Congestion(RUSH, start_s=7.5 * 3600)
    assert c.factor(0.0) == 1.0
    assert c.factor(1800.0) == 2.0  # 08:00
    assert c.factor(5400.0) == 1.0  # 09:00
    assert c.factor(1800.0 + 86400.0) == 2.0  # the next day
    t = np.array([0.0, 1800.0, 5399.0, 5400.0, 88200.0])
    assert list(c.factors(t)) == [c.factor(x) for x in t]
    assert not c.flat


def test_no_congestion_is_flat_free_flow() -> None:
    """Without hourly factors every factor is 1 and traffic is flat."""
    c = Congestion.from_spec(TravelSpec())
    assert c.flat and c.factor(12345.0) == 1.0


def test_travel_factor_is_the_models_factor_at_every_time(tmp_path: Path) -> None:
    """Travel.factor (kept once per clock hour) equals the model's factor at times in any
    order, on both sides of hour and midnight boundaries, with a day-type table."""
    space, _ = street(tmp_path)
    rng = np.random.default_rng(2)
    by_day = np.linspace(0.8, 2.2, 72).reshape(3, 24)
    model = Congestion(by_day, start_s=22.75 * 3600, start_day=19_000)
    travel = Travel(space, model)
    edges = np.arange(0.0, 4 * 86400.0, 3600.0) + 0.25 * 3600
    times = np.concatenate([edges, np.nextafter(edges, -np.inf), rng.uniform(0, 4 * 86400, 500)])
    for t in rng.permutation(np.repeat(times, 2)).tolist():
        assert travel.factor(t) == model.factor(t)
    assert len({travel.factor(t) for t in times.tolist()}) > 24


def test_travel_quotes_and_drives_with_congestion(tmp_path: Path) -> None:
    """Expected times scale by the factor now; actual legs never beat free flow."""
    space, node = street(tmp_path)
    travel = Travel(space, Congestion(RUSH, start_s=8 * 3600))
    ff = travel.leg(int(node[0]), int(node[3]))
    assert ff == pytest.approx(30.0)
    quoted = travel.expected(0.0)(node[:1], node[3:4])
    assert quoted[0] == pytest.approx(60.0)
    assert travel.actual(ff, 0.0, 1.0) == pytest.approx(60.0)
    assert travel.actual(ff, 3600.0, 0.5) == ff  # noise below 1 cannot beat free flow
    flat = Travel(space, Congestion(None))
    assert flat.expected(0.0) == space.travel_time and flat.actual(ff, 0.0, 1.0) == ff
    # Legs may skip actual() only where it gives the free-flow time itself.
    ones, noisy = np.ones(3), np.array([1.0, 1.2, 1.0])
    assert flat.always_free_flow(ones, ones) and flat.always_free_flow()
    assert not flat.always_free_flow(ones, noisy) and flat.actual(ff, 0.0, 1.2) != ff
    assert not travel.always_free_flow(ones) and travel.actual(ff, 0.0, 1.0) != ff


class TwoWays:
    """A space whose one-to-many lookups can be told apart: ``into`` calls are counted."""

    def __init__(self, table: np.ndarray) -> None:
        self.table, self.into_calls = table, 0

    def travel_time(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return self.table[np.asarray(src), np.asarray(dst)]

    def travel_time_into(self, dst: int, src: np.ndarray) -> np.ndarray:
        self.into_calls += 1
        return np.ascontiguousarray(self.table.T)[dst][src]


def test_many_to_one_lookups_read_the_transposed_table_only_when_large() -> None:
    """expected_to gives the values of expected(now)(src, dst) on both paths, and reads the
    transposed table only from into_min_sources sources up."""
    rng = np.random.default_rng(2)
    space = TwoWays(rng.uniform(0, 500, (30, 30)))
    travel = Travel(space, Congestion(RUSH, start_s=8 * 3600))  # type: ignore[arg-type]
    src = rng.integers(0, 30, 200)
    want = travel.expected(0.0)(src, np.asarray(7))
    travel.into_min_sources = 201
    assert np.array_equal(travel.expected_to(0.0, 7, src), want) and space.into_calls == 0
    travel.into_min_sources = 200
    assert np.array_equal(travel.expected_to(0.0, 7, src), want) and space.into_calls == 1


def test_zone_bounds_follow_the_quoted_travel_time() -> None:
    """bounds_for passes the bounds under free flow, scales them by the quoted factor under
    hourly congestion, and drops them under a length-dependent model."""
    space = TwoWays(np.full((4, 4), 100.0))
    bounds = EtaBounds(np.zeros(4, dtype=np.int64), np.full((4, 1), 50.0))
    flat = Travel(space, Congestion(None))  # type: ignore[arg-type]
    assert flat.bounds_for(flat.expected(0.0), bounds) is bounds
    rush = Travel(space, Congestion(RUSH, start_s=8 * 3600))  # type: ignore[arg-type]
    scaled = rush.bounds_for(rush.expected(0.0), bounds)
    assert scaled is not None and scaled.scale == 2.0 and scaled.into_node_s is bounds.into_node_s
    assert rush.bounds_for(rush.expected(3600.0), bounds).scale == 1.0  # type: ignore[union-attr]
    assert rush.bounds_for(rush.expected(0.0), None) is None
    by_length = Travel(
        space,  # type: ignore[arg-type]
        Congestion(RUSH, length_elasticity=-0.2, length_range_s=(60.0, 1800.0), length_ref_s=300.0),
    )
    assert by_length.bounds_for(by_length.expected(0.0), bounds) is None

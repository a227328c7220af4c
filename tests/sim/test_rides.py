"""Rides: legs to the pickup and the dropoff, cancellations on the way, fares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.behaviour import CancelAfterMatch, PricingSpec, RiderDraws, RiderSpec
from sim.market import MarketRules
from tests.sim.street import build, events


def test_fare_one_is_fare_bit_for_bit() -> None:
    """The scalar fare of the dropoff path equals the vectorised schedule exactly."""
    spec = PricingSpec(base=2.3, per_km=1.7, per_min=0.31, min_fare=4.0, detour=1.37)
    rng = np.random.default_rng(4)
    dist, dur, mult = rng.uniform(0, 20_000, 500), rng.uniform(0, 3600, 500), rng.uniform(1, 3, 500)
    vec = spec.fare(dist, dur, mult)
    one = [
        spec.fare_one(a, b, c)
        for a, b, c in zip(dist.tolist(), dur.tolist(), mult.tolist(), strict=True)
    ]
    assert vec.tolist() == one


def test_ride_runs_assign_pickup_dropoff_and_clears_the_plan(tmp_path: Path) -> None:
    """A ride's legs take the table's times; afterwards the plan is empty and the driver
    stands at the dropoff with its share of the fare."""
    sim, log, node = build(tmp_path, [(0, 2, 5)], [0])
    sim.run()
    trace = [(e[0], e[1]) for e in events(log) if e[2] == 0]
    assert trace == [("request", 0.0), ("assign", 0.0), ("pickup", 20.0), ("dropoff", 50.0)]
    dv = sim.drivers
    assert dv.plan[0] == [] and dv.node[0] == node[5] and dv.earnings[0] > 0


def test_rider_cancelling_on_the_way_frees_the_driver_at_the_pickup(tmp_path: Path) -> None:
    """A cancel after the match leaves the driver driving on; it is free at the pickup node
    with an empty plan when it gets there."""
    rules = MarketRules(
        riders=RiderSpec(choice="always", cancel_after_match=CancelAfterMatch(base=1, cap=1)),
        drivers=MarketRules.neutral().drivers,
        pricing=PricingSpec(),
        travel=MarketRules.neutral().travel,
    )
    base = RiderDraws.neutral(np.full(1, 300.0))
    draws = RiderDraws(
        **{**vars(base), "u_cancel": np.zeros(1), "cancel_fraction": np.full(1, 0.5)}
    )
    sim, log, node = build(tmp_path, [(0, 4, 6)], [0], rules=rules, draws=draws)
    sim.run()
    kinds = [e[0] for e in events(log)]
    assert "cancel" in kinds and "pickup" not in kinds
    assert sim.drivers.plan[0] == [] and sim.drivers.node[0] == node[4]
    assert sim.drivers.free[0] and sim.drivers.n_free == 1
    cancel = [e for e in events(log) if e[0] == "cancel"][0]
    assert cancel[1] == pytest.approx(20.0) and cancel[4] == "after_match"  # half of 40 s
    assert sim.drivers.free_at[0] == pytest.approx(40.0)

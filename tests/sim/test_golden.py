"""Golden traces: two drivers and three riders on a one-street grid, checked by hand.

The street has 5 nodes, 100 m apart, driven at 36 km/h: 10 s per block. Driver 0 starts at
block 0, driver 1 at block 4. Rider 0 asks at t=0 for 1 -> 3, rider 1 at t=5 for 4 -> 2,
rider 2 at t=12 for 0 -> 1. Patience 100 s (fixed), horizon 100 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter

from cities import load_city
from cities.demand import Trips
from cities.spec import CitySpec
from cities.supply import Fleet
from matching.registry import make_matcher
from sim.behaviour import RiderDraws
from sim.engine import DispatchPolicy, Simulation
from sim.events import EventLog
from sim.seeding import spawn_streams


def street(tmp_path: Path):
    spec = TypeAdapter(CitySpec).validate_python(
        {"kind": "grid", "rows": 1, "cols": 5, "block_m": 100, "speed_kmh": 36}
    )
    space = load_city(spec, base_dir=tmp_path, source="test", cache_dir=tmp_path)
    xmin, ymin, _, _ = space.bounds
    node = space.locate(np.array([[xmin + 100.0 * c, ymin] for c in range(5)]))
    return space, node


def run_trace(tmp_path: Path, matcher: str, window: float) -> list[tuple]:
    space, node = street(tmp_path)
    trips = Trips(
        t=np.array([0.0, 5.0, 12.0]),
        pickup_node=node[[1, 4, 0]],
        dropoff_node=node[[3, 2, 1]],
    )
    fleet = Fleet(
        home_node=node[[0, 4]],
        shift_driver=np.array([0, 1]),
        shift_on=np.zeros(2),
        shift_off=np.full(2, 100.0),
    )
    log = EventLog(None)
    sim = Simulation(
        space,
        trips,
        RiderDraws.neutral(np.full(3, 100.0)),
        fleet,
        make_matcher(matcher, {}),
        DispatchPolicy(batch_window_s=window, max_pickup_eta_s=600),
        spawn_streams(0),
        log,
        horizon_s=100.0,
    )
    sim.run()
    df = log.table().to_pandas()
    return [
        (
            r.kind,
            round(r.t, 6),
            _i(r.rider),
            _i(r.driver),
            None if np.isnan(r.value) else round(r.value, 6),
        )
        for r in df.itertuples()
    ]


def _i(v: float) -> int | None:
    return None if v != v else int(v)


def test_golden_immediate_dispatch(tmp_path: Path) -> None:
    """Immediate greedy dispatch produces exactly the hand-derived event trace."""
    assert run_trace(tmp_path, "immediate_greedy", 0.0) == [
        ("driver_online", 0.0, None, 0, None),
        ("driver_online", 0.0, None, 1, None),
        ("request", 0.0, 0, None, 20.0),
        ("assign", 0.0, 0, 0, 10.0),  # driver 0 is 1 block away, driver 1 is 3
        ("request", 5.0, 1, None, 20.0),
        ("assign", 5.0, 1, 1, 0.0),  # driver 1 stands at the pickup
        ("pickup", 5.0, 1, 1, 0.0),
        ("pickup", 10.0, 0, 0, 10.0),
        ("request", 12.0, 2, None, 10.0),  # nobody idle: rider 2 waits
        ("dropoff", 25.0, 1, 1, 20.0),
        ("assign", 25.0, 2, 1, 20.0),  # driver 1 freed at block 2, 2 blocks from block 0
        ("dropoff", 30.0, 0, 0, 20.0),
        ("pickup", 45.0, 2, 1, 20.0),
        ("dropoff", 55.0, 2, 1, 10.0),
    ]


def test_golden_batched_dispatch(tmp_path: Path) -> None:
    """Batched greedy dispatch every 10 s produces exactly the hand-derived event trace."""
    assert run_trace(tmp_path, "batched_greedy", 10.0) == [
        ("driver_online", 0.0, None, 0, None),
        ("driver_online", 0.0, None, 1, None),
        ("request", 0.0, 0, None, 20.0),
        ("request", 5.0, 1, None, 20.0),
        (
            "assign",
            10.0,
            0,
            0,
            10.0,
        ),  # cheapest pair first: (1, driver 1) at 0 s, then (0, driver 0)
        ("assign", 10.0, 1, 1, 0.0),
        ("pickup", 10.0, 1, 1, 0.0),
        ("request", 12.0, 2, None, 10.0),
        ("pickup", 20.0, 0, 0, 10.0),
        ("dropoff", 30.0, 1, 1, 20.0),
        ("assign", 30.0, 2, 1, 20.0),  # batch at 30 runs after driver 1's dropoff at 30
        ("dropoff", 40.0, 0, 0, 20.0),
        ("pickup", 50.0, 2, 1, 20.0),
        ("dropoff", 60.0, 2, 1, 10.0),
    ]


def test_patience_cancels_unmatched_rider(tmp_path: Path) -> None:
    """A rider nobody can reach cancels exactly when their patience runs out."""
    space, node = street(tmp_path)
    trips = Trips(t=np.array([1.0]), pickup_node=node[[0]], dropoff_node=node[[1]])
    fleet = Fleet(
        home_node=node[[4]],
        shift_driver=np.array([0]),
        shift_on=np.zeros(1),
        shift_off=np.full(1, 100.0),
    )
    log = EventLog(None)
    Simulation(
        space,
        trips,
        RiderDraws.neutral(np.array([30.0])),
        fleet,
        make_matcher("batched_greedy", {}),
        DispatchPolicy(batch_window_s=10, max_pickup_eta_s=20),  # driver is 40 s away
        spawn_streams(0),
        log,
        horizon_s=100.0,
    ).run()
    df = log.table().to_pandas()
    cancel = df[df.kind == "cancel"]
    assert len(cancel) == 1 and cancel.t.iloc[0] == pytest.approx(31.0)
    assert cancel.detail.iloc[0] == "patience"
    assert not (df.kind == "assign").any()

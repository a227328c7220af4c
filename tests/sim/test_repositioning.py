"""The repositioning call site: what the policy sees and what a bad plan does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.behaviour import DriverSpec
from sim.market import MarketRules
from sim.reposition import RepositionPlan, RepositionSnapshot
from sim.repositioning import RECENT_DEMAND_S
from tests.sim.street import build


class Recorder:
    """Sends every eligible driver to ``target`` and remembers what it saw."""

    def __init__(self, target: int | None) -> None:
        self.target, self.seen = target, []

    def get_params(self) -> dict[str, Any]:
        return {}

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan:
        self.seen.append(snapshot)
        if self.target is None:
            return RepositionPlan.none()
        ids = snapshot.driver_id
        return RepositionPlan(ids, np.full(ids.size, self.target, dtype=np.int64))


def _rules(every: float, after: float) -> MarketRules:
    n = MarketRules.neutral()
    drivers = DriverSpec(accept="always", reposition_every_s=every, reposition_after_s=after)
    return MarketRules(n.riders, drivers, n.pricing, n.travel)


def test_policy_sees_idle_drivers_and_recent_demand_only(tmp_path: Path) -> None:
    """Only drivers idle for reposition_after_s are offered, with the pickups of the last
    RECENT_DEMAND_S seconds."""
    policy = Recorder(None)
    trips = [(0.0, 8, 7), (RECENT_DEMAND_S + 100.0, 8, 7)]
    sim, _, node = build(
        tmp_path,
        trips,
        [0],
        rules=_rules(2000.0, 10.0),
        reposition=policy,
        patience_s=1.0,
        horizon=4100.0,
    )
    sim.run()
    first = policy.seen[0]
    assert first.time == 2000.0 and list(first.driver_id) == [0]
    assert list(first.recent_pickup_node) == [node[8]]  # the t = 0 request is too old


def test_plan_moving_a_driver_that_is_not_eligible_is_refused(tmp_path: Path) -> None:
    """A plan naming a node outside the city raises, naming the policy."""
    sim, _, node = build(
        tmp_path, [], [0], rules=_rules(60.0, 0.0), reposition=Recorder(10_000), horizon=100.0
    )
    with pytest.raises(RuntimeError, match="reposition policy Recorder"):
        sim.run()

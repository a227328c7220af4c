"""Repositioning policies: the conformance suite over the built-ins, parameters, and the plans."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.errors import InputError
from sim import reposition
from sim.reposition import (
    REPOSITION_POLICIES,
    RepositionPlan,
    RepositionSnapshot,
    Stay,
    TowardDemand,
    TowardSurge,
    make_reposition,
)
from sim.reposition_checks import (
    check_reposition_policy,
    parametrize_with_reposition_checks,
    random_reposition_snapshot,
)

SPECS = ["stay", "demand", "surge", ("demand", {"max_points": 7, "min_move_s": 0.0})]


@parametrize_with_reposition_checks(SPECS)
def test_reposition_conformance(policy_factory, check):
    """Each built-in policy (and a notable parameter set) passes each conformance check."""
    check(policy_factory)


def test_registry_holds_the_builtins():
    """The registry maps the built-in names to their classes."""
    assert dict(REPOSITION_POLICIES) == {"stay": Stay, "demand": TowardDemand, "surge": TowardSurge}


@pytest.mark.parametrize(
    ("params", "field", "needle"),
    [
        ({"max_drive_s": 0}, "drivers.reposition_params.max_drive_s", "greater than 0"),
        ({"min_move_s": -1}, "drivers.reposition_params.min_move_s", "greater than or equal"),
        ({"max_points": 1.5}, "drivers.reposition_params.max_points", "integer"),
        ({"surge_power": "2"}, "drivers.reposition_params.surge_power", "expected a number"),
        ({"speed": 3}, "drivers.reposition_params.speed", "unknown parameter"),
    ],
)
def test_bad_params_name_the_field(params, field, needle):
    """A bad parameter is an InputError on drivers.reposition_params.<name>, naming the policy."""
    with pytest.raises(InputError, match=needle) as e:
        make_reposition("demand", params, source="s.toml")
    assert e.value.field == field and "'demand'" in e.value.expected


def test_surge_defaults_to_squared_multiplier():
    """'surge' is 'demand' with surge_power 2 unless told otherwise."""
    assert TowardSurge().get_params()["surge_power"] == 2.0
    assert TowardSurge(surge_power=1).get_params()["surge_power"] == 1.0


def _brute_force_plan(policy: TowardDemand, s: RepositionSnapshot) -> RepositionPlan:
    """The documented rule, one driver at a time with dense rows (the reference)."""
    points = s.recent_pickup_node[-policy.max_points :]
    rng = np.random.default_rng(s.seed)
    u = rng.random(s.driver_id.size)
    ids, targets = [], []
    for i in range(s.driver_id.size):
        tt = s.travel_time(np.full(points.size, s.driver_node[i]), points)
        w = np.where(tt <= policy.max_drive_s, 1.0, 0.0)
        if policy.surge_power > 0:
            w = w * s.multiplier(points) ** policy.surge_power
        if w.sum() <= 0:
            continue
        c = np.cumsum(w)
        j = min(int(np.searchsorted(c, u[i] * w.sum(), side="right")), points.size - 1)
        if tt[j] >= policy.min_move_s:
            ids.append(int(s.driver_id[i]))
            targets.append(int(points[j]))
    return RepositionPlan(np.array(ids, dtype=np.int64), np.array(targets, dtype=np.int64))


@pytest.mark.parametrize("surge_power", [0.0, 2.0])
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_demand_plan_matches_per_driver_reference(surge_power: float, chunk: int, monkeypatch):
    """The chunked, vectorised decision equals the per-driver rule, whatever the chunk size."""
    monkeypatch.setattr(reposition, "CHUNK_ELEMENTS", chunk)
    policy = TowardDemand(max_drive_s=300.0, surge_power=surge_power)
    for seed in range(4):
        s = random_reposition_snapshot(seed, 50, 80)
        got, want = policy.decide(s), _brute_force_plan(policy, s)
        assert got.driver_id.tolist() == want.driver_id.tolist()
        assert got.target_node.tolist() == want.target_node.tolist()


class _Teleport:
    """A broken policy: moves a driver that is not in the snapshot."""

    def get_params(self) -> dict[str, Any]:
        return {}

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan:
        return RepositionPlan(np.array([-5], dtype=np.int64), np.array([0], dtype=np.int64))


def test_suite_catches_a_broken_policy():
    """A policy moving a driver not in the snapshot fails check_plans_valid."""
    with pytest.raises(AssertionError, match="check_plans_valid failed"):
        check_reposition_policy(_Teleport)

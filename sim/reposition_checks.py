"""The repositioning policy conformance suite, built on :mod:`matching.conformance`.

Like :mod:`matching.checks` for matchers::

    from sim.reposition_checks import check_reposition_policy
    check_reposition_policy(lambda: MyPolicy(max_drive_s=300))

What is checked is the contract of :mod:`sim.reposition`: ``decide`` returns a
:class:`~sim.reposition.RepositionPlan` of int64 columns of one length, moving only drivers of
the snapshot, each at most once, to nodes that exist; the same snapshot gives the same plan;
the snapshot is not mutated; no eligible driver, no recent demand and a single node work; and
``get_params()`` is JSON and rebuilds an identical policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from matching.conformance import Suite, assert_rebuilds, check_get_params_json
from sim.reposition import (
    RepositionPlan,
    RepositionPolicy,
    RepositionSnapshot,
    Stay,
    make_reposition,
)

PolicyFactory = Callable[[], RepositionPolicy]
Check = Callable[[PolicyFactory], None]

_N_NODES = 60


def random_reposition_snapshot(
    seed: int, n_drivers: int, n_points: int, *, n_nodes: int = _N_NODES
) -> RepositionSnapshot:
    """A random snapshot on ``n_nodes`` points of a 4 km square (straight line at 8 m/s),
    with surge multipliers between 1 and 2.5 varying by node."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 4000.0, size=(n_nodes, 2))
    xy.flags.writeable = False
    mult = np.round(rng.uniform(1.0, 2.5, size=n_nodes), 1)
    mult.flags.writeable = False

    def travel_time(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        seconds: np.ndarray = np.sqrt(((xy[src] - xy[dst]) ** 2).sum(axis=-1)) / 8.0
        return seconds

    def multiplier(nodes: np.ndarray) -> np.ndarray:
        return mult[np.asarray(nodes, dtype=np.int64)]

    ids = np.sort(rng.choice(10 * n_drivers + 10, size=n_drivers, replace=False)).astype(np.int64)
    nodes = rng.integers(0, n_nodes, size=n_drivers).astype(np.int64)
    points = rng.integers(0, n_nodes, size=n_points).astype(np.int64)
    return RepositionSnapshot(
        time=3600.0,
        driver_id=ids,
        driver_node=nodes,
        driver_xy=xy[nodes],
        idle_since=3600.0 - rng.uniform(0.0, 900.0, size=n_drivers),
        recent_pickup_node=points,
        recent_pickup_xy=xy[points],
        travel_time=travel_time,
        multiplier=multiplier,
        seed=int(seed),
    )


_SNAPSHOTS = [(1, 5, 12), (2, 40, 100), (3, 200, 30), (4, 1, 1), (5, 30, 3000)]


def _snapshots() -> list[RepositionSnapshot]:
    return [random_reposition_snapshot(*spec) for spec in _SNAPSHOTS]


_COLUMNS = (
    "driver_id",
    "driver_node",
    "driver_xy",
    "idle_since",
    "recent_pickup_node",
    "recent_pickup_xy",
)


def assert_valid_plan(snapshot: RepositionSnapshot, plan: Any, n_nodes: int = _N_NODES) -> None:
    """One decide() result: int64 columns of one length, snapshot drivers at most once each,
    existing target nodes."""
    assert isinstance(plan, RepositionPlan), (
        f"decide() returned {type(plan).__name__}, expected RepositionPlan"
    )
    for name in ("driver_id", "target_node"):
        arr = getattr(plan, name)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.int64 and arr.ndim == 1, (
            f"plan.{name}: expected a 1-d int64 array, got {arr!r}"
        )
    assert plan.driver_id.size == plan.target_node.size, "plan columns differ in length"
    assert np.unique(plan.driver_id).size == plan.driver_id.size, "a driver moved twice"
    unknown = ~np.isin(plan.driver_id, snapshot.driver_id)
    assert not unknown.any(), f"moved drivers not in the snapshot: {plan.driver_id[unknown]}"
    bad = (plan.target_node < 0) | (plan.target_node >= n_nodes)
    assert not bad.any(), f"target nodes that do not exist: {plan.target_node[bad]}"


def _same(a: RepositionPlan, b: RepositionPlan, what: str) -> None:
    for name in ("driver_id", "target_node"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), f"{what}: {name} differs: {x} vs {y}"


def check_init_stores_params(factory: PolicyFactory) -> None:
    """A fresh instance built from get_params() behaves identically; decide keeps the params."""
    assert_rebuilds(factory, lambda p: [p.decide(s) for s in _snapshots()], _same)


def check_plans_valid(factory: PolicyFactory) -> None:
    """Every plan moves snapshot drivers at most once each, to existing nodes."""
    p = factory()
    for s in _snapshots():
        assert_valid_plan(s, p.decide(s))


def check_deterministic(factory: PolicyFactory) -> None:
    """The same snapshot, twice or rebuilt from the same seed, gives the same plan."""
    p = factory()
    for spec in _SNAPSHOTS:
        first = p.decide(random_reposition_snapshot(*spec))
        _same(first, p.decide(random_reposition_snapshot(*spec)), f"second call on {spec}")
        _same(first, factory().decide(random_reposition_snapshot(*spec)), f"fresh policy {spec}")


def check_does_not_mutate_snapshot(factory: PolicyFactory) -> None:
    """decide() leaves every array of the snapshot as it was."""
    p = factory()
    for s in _snapshots():
        copies = {c: np.array(getattr(s, c), copy=True) for c in _COLUMNS}
        p.decide(s)
        for c, arr in copies.items():
            assert np.array_equal(getattr(s, c), arr), f"snapshot.{c} was modified"


def check_no_drivers(factory: PolicyFactory) -> None:
    """No eligible driver: an empty plan."""
    s = random_reposition_snapshot(30, 0, 20)
    plan = factory().decide(s)
    assert_valid_plan(s, plan)
    assert plan.driver_id.size == 0, "moved drivers that do not exist"


def check_no_demand(factory: PolicyFactory) -> None:
    """No recent pickups: a valid plan (a demand-led policy moves nobody)."""
    s = random_reposition_snapshot(31, 20, 0)
    assert_valid_plan(s, factory().decide(s))


def check_one_node(factory: PolicyFactory) -> None:
    """Everyone and every pickup on one node: nobody needs to move anywhere else."""
    s = random_reposition_snapshot(32, 10, 10, n_nodes=1)
    plan = factory().decide(s)
    assert_valid_plan(s, plan, n_nodes=1)


_CHECKS: list[Check] = [
    check_get_params_json,
    check_init_stores_params,
    check_plans_valid,
    check_deterministic,
    check_does_not_mutate_snapshot,
    check_no_drivers,
    check_no_demand,
    check_one_node,
]


def _make(name: str, params: dict[str, Any] | None = None) -> Any:
    # make_reposition answers None for "stay" (nothing for the engine to ask); the suite
    # checks the policy object itself.
    policy = make_reposition(name, params)
    return policy if policy is not None else Stay()


SUITE = Suite("reposition policy", _make, _CHECKS)
"""The repositioning policy conformance suite."""


def check_reposition_policy(factory: PolicyFactory) -> None:
    """Run every check; raise AssertionError naming the first that fails."""
    SUITE.run(factory)


PolicySpec = str | tuple[str, dict[str, Any]] | PolicyFactory


def parametrize_with_reposition_checks(specs: Sequence[PolicySpec]) -> Any:
    """A ``pytest.mark.parametrize`` over every (policy, check) pair; the decorated test takes
    ``policy_factory`` and ``check``."""
    return SUITE.parametrize(specs, "policy_factory")


__all__ = [
    "SUITE",
    "assert_valid_plan",
    "check_reposition_policy",
    "parametrize_with_reposition_checks",
    "random_reposition_snapshot",
] + [c.__name__ for c in _CHECKS]

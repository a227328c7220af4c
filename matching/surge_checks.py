"""The surge policy conformance suite: every policy, built-in or not, passes these checks.

Like :mod:`matching.checks` for matchers::

    from matching.surge_checks import check_surge_policy
    check_surge_policy(lambda: MyPolicy(cap=2.5))   # AssertionError naming the failed check

or, one pytest case per (policy, check)::

    @parametrize_with_surge_checks(["ratio", ("ratio", {"alpha": 1.0}), MyPolicy])
    def test_surge_conformance(policy_factory, check):
        check(policy_factory)

What is checked is the contract of :mod:`matching.surge`: the declared ``[floor, cap]`` is a
valid range, ``price`` returns one finite float64 per row within it, the same snapshot gives
the same array, the snapshot is not mutated, empty snapshots and cells with no drivers or no
demand anywhere work, extreme counts stay bounded, feeding the prices back as
``previous_multiplier`` for many intervals stays bounded, and ``get_params()`` is JSON and
rebuilds an identical policy.

Snapshots come from :func:`random_snapshot`: cells scattered over a small square lattice (so
some cells have eight neighbours and some none), Poisson counts, some ETAs unknown, previous
multipliers both at 1 and spread beyond the usual bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from matching.conformance import Suite, assert_rebuilds, check_get_params_json
from matching.surge import SupplyDemandSnapshot, SurgePolicy, make_surge_policy

PolicyFactory = Callable[[], SurgePolicy]
Check = Callable[[PolicyFactory], None]

# ---------------------------------------------------------------------------------------------
# Snapshots


def random_snapshot(
    seed: int,
    n_cells: int,
    *,
    drivers: bool = True,
    demand: bool = True,
    time: float = 3600.0,
    interval_s: float = 60.0,
) -> SupplyDemandSnapshot:
    """A random :class:`SupplyDemandSnapshot` of ``n_cells`` cells.

    ``drivers=False``: nobody idle or en route and no pickup ETAs; ``demand=False``: no open
    requests and no quotes.
    """
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(max(n_cells, 1) * 2.0))) + 1
    spots = np.sort(rng.choice(side * side, size=n_cells, replace=False))
    gx, gy = np.divmod(spots, side)
    ids = np.array([f"g{a}_{b}" for a, b in zip(gx.tolist(), gy.tolist(), strict=True)])
    order = np.argsort(ids, kind="stable")
    gx, gy, ids = gx[order], gy[order], ids[order]
    lists = []
    for r in range(n_cells):
        near = (np.abs(gx - gx[r]) <= 1) & (np.abs(gy - gy[r]) <= 1)
        near[r] = False
        lists.append(np.flatnonzero(near))
    ptr = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum([a.size for a in lists], out=ptr[1:])
    idx = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)

    busy = rng.choice([0.2, 2.0, 8.0], size=n_cells)
    open_requests = rng.poisson(busy)
    quotes = rng.poisson(busy * 3)
    unconverted = rng.binomial(quotes, 0.4)
    idle = rng.poisson(rng.choice([0.0, 1.0, 5.0], size=n_cells))
    en_route = rng.poisson(1.0, size=n_cells)
    eta = np.where(rng.random(n_cells) < 0.3, np.nan, rng.uniform(20.0, 1500.0, n_cells))
    previous = np.where(rng.random(n_cells) < 0.4, 1.0, np.round(rng.uniform(0.5, 4.0, n_cells), 1))
    if not drivers:
        idle = np.zeros(n_cells, dtype=np.int64)
        en_route = np.zeros(n_cells, dtype=np.int64)
        eta = np.full(n_cells, np.nan)
    if not demand:
        open_requests = quotes = unconverted = np.zeros(n_cells, dtype=np.int64)
    return SupplyDemandSnapshot(
        time=time,
        interval_s=interval_s,
        cell=ids.astype(object),
        open_requests=open_requests,
        quotes=quotes,
        unconverted_quotes=unconverted,
        idle_drivers=idle,
        en_route_drivers=en_route,
        recent_pickup_eta_s=eta,
        previous_multiplier=previous,
        neighbour_ptr=ptr,
        neighbour_idx=idx,
        seed=int(seed),
    )


def extreme_snapshot() -> SupplyDemandSnapshot:
    """Four isolated cells: a flood of demand with no drivers, a flood of drivers with no
    demand, an enormous ETA and a zero ETA, with previous multipliers far outside [1, 3]."""
    return SupplyDemandSnapshot(
        time=0.0,
        interval_s=30.0,
        cell=np.array(["a", "b", "c", "d"], dtype=object),
        open_requests=[10**9, 0, 50, 0],
        quotes=[10**9, 0, 50, 0],
        unconverted_quotes=[10**9, 0, 50, 0],
        idle_drivers=[0, 10**9, 0, 3],
        en_route_drivers=[0, 0, 10**6, 0],
        recent_pickup_eta_s=[np.nan, np.nan, 1e7, 0.0],
        previous_multiplier=[1e6, 1e-6, 50.0, 0.01],
        neighbour_ptr=[0, 0, 0, 0, 0],
        neighbour_idx=np.zeros(0, dtype=np.int64),
        seed=7,
    )


# Shapes the general checks run on: (seed, n_cells).
_SNAPSHOTS = [(1, 1), (2, 3), (3, 12), (4, 40), (5, 150), (6, 7)]


def _snapshots() -> list[SupplyDemandSnapshot]:
    return [random_snapshot(*spec) for spec in _SNAPSHOTS]


_COLUMNS = (
    "cell",
    "open_requests",
    "quotes",
    "unconverted_quotes",
    "idle_drivers",
    "en_route_drivers",
    "recent_pickup_eta_s",
    "previous_multiplier",
    "neighbour_ptr",
    "neighbour_idx",
)


# ---------------------------------------------------------------------------------------------
# Result validation


def assert_valid_prices(policy: SurgePolicy, snapshot: SupplyDemandSnapshot, m: Any) -> None:
    """One price() result: a float64 1-d array, one finite value per row, in [floor, cap]."""
    assert isinstance(m, np.ndarray), f"price() returned {type(m).__name__}, expected ndarray"
    assert m.dtype == np.float64, f"price() returned dtype {m.dtype}, expected float64"
    assert m.shape == (len(snapshot),), (
        f"price() returned shape {m.shape} for a snapshot of {len(snapshot)} cells"
    )
    bad = ~np.isfinite(m)
    assert not bad.any(), f"non-finite multipliers for cells {snapshot.cell[bad].tolist()}"
    floor, cap = float(policy.floor), float(policy.cap)
    out = (m < floor) | (m > cap)
    assert not out.any(), (
        f"multipliers outside the declared [{floor}, {cap}]: {m[out].tolist()} for cells "
        f"{snapshot.cell[out].tolist()}"
    )


def _same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True), (
        f"{what}: {a} vs {b}"
    )


def _with_previous(s: SupplyDemandSnapshot, previous: np.ndarray) -> SupplyDemandSnapshot:
    cols = {c: getattr(s, c) for c in _COLUMNS}
    cols["previous_multiplier"] = previous
    return SupplyDemandSnapshot(
        time=s.time + s.interval_s, interval_s=s.interval_s, seed=s.seed + 1, **cols
    )


# ---------------------------------------------------------------------------------------------
# The checks: each takes a factory returning a fresh policy


def check_init_stores_params(factory: PolicyFactory) -> None:
    """A fresh instance built from get_params() behaves identically; price keeps the params."""
    p, twin = assert_rebuilds(
        factory,
        lambda policy: [np.asarray(policy.price(s)) for s in _snapshots()],
        _same,
    )
    assert (twin.floor, twin.cap) == (p.floor, p.cap), "rebuilt policy declares other bounds"


def check_declared_bounds(factory: PolicyFactory) -> None:
    """floor and cap are finite numbers with 0 < floor <= cap."""
    p = factory()
    floor, cap = getattr(p, "floor", None), getattr(p, "cap", None)
    for name, v in (("floor", floor), ("cap", cap)):
        assert isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool), (
            f"{name} must be a number, got {v!r}"
        )
        assert np.isfinite(v), f"{name} must be finite, got {v!r}"
    assert 0 < floor <= cap, f"expected 0 < floor <= cap, got floor={floor}, cap={cap}"


def check_prices_valid(factory: PolicyFactory) -> None:
    """One finite float64 multiplier per row, within the declared [floor, cap]."""
    p = factory()
    for s in _snapshots():
        assert_valid_prices(p, s, p.price(s))


def check_deterministic(factory: PolicyFactory) -> None:
    """The same snapshot, twice or rebuilt from the same seed, gives identical arrays."""
    p = factory()
    for spec in _SNAPSHOTS:
        s = random_snapshot(*spec)
        first = np.asarray(p.price(s))
        _same(first, np.asarray(p.price(s)), f"second call on snapshot {spec}")
        _same(
            first,
            np.asarray(factory().price(random_snapshot(*spec))),
            f"fresh policy, rebuilt snapshot {spec}",
        )


def check_does_not_mutate_snapshot(factory: PolicyFactory) -> None:
    """price() leaves every array and field of the snapshot as it was."""
    p = factory()
    for s in _snapshots()[:4] + [extreme_snapshot()]:
        before = {name: getattr(s, name) for name in s.__dataclass_fields__}
        copies = {c: np.array(getattr(s, c), copy=True) for c in _COLUMNS}
        p.price(s)
        for name, value in before.items():
            assert getattr(s, name) is value, f"snapshot.{name} was replaced"
        for c, arr in copies.items():
            now = getattr(s, c)
            same = (
                now.tolist() == arr.tolist()
                if arr.dtype == object
                else np.array_equal(now, arr, equal_nan=True)
            )
            assert same, f"snapshot.{c} was modified"


def check_empty_snapshot(factory: PolicyFactory) -> None:
    """A snapshot with no cells at all: an empty float64 array."""
    s = random_snapshot(30, 0)
    p = factory()
    assert_valid_prices(p, s, p.price(s))


def check_no_drivers(factory: PolicyFactory) -> None:
    """No driver anywhere (and no pickup ETA): prices stay finite and bounded."""
    p = factory()
    for seed, n in ((31, 1), (32, 20)):
        s = random_snapshot(seed, n, drivers=False)
        assert_valid_prices(p, s, p.price(s))


def check_no_demand(factory: PolicyFactory) -> None:
    """No demand anywhere, and neither drivers nor demand: prices stay finite and bounded."""
    p = factory()
    for seed, n, drivers in ((33, 1, True), (34, 20, True), (35, 20, False)):
        s = random_snapshot(seed, n, drivers=drivers, demand=False)
        assert_valid_prices(p, s, p.price(s))


def check_extreme_values(factory: PolicyFactory) -> None:
    """Huge counts, huge and zero ETAs and wild previous multipliers stay bounded."""
    s = extreme_snapshot()
    p = factory()
    assert_valid_prices(p, s, p.price(s))


def check_feedback_loop(factory: PolicyFactory) -> None:
    """Prices fed back as previous_multiplier for 30 intervals stay valid (as in a run)."""
    p = factory()
    for spec in _SNAPSHOTS[1:4]:
        s = random_snapshot(*spec)
        for _ in range(30):
            m = p.price(s)
            assert_valid_prices(p, s, m)
            s = _with_previous(s, np.asarray(m, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Running the suite

_CHECKS: list[Check] = [
    check_get_params_json,
    check_init_stores_params,
    check_declared_bounds,
    check_prices_valid,
    check_deterministic,
    check_does_not_mutate_snapshot,
    check_empty_snapshot,
    check_no_drivers,
    check_no_demand,
    check_extreme_values,
    check_feedback_loop,
]


SUITE = Suite("surge policy", make_surge_policy, _CHECKS)
"""The surge policy conformance suite."""


def all_surge_checks(factory: PolicyFactory) -> list[tuple[str, Check]]:
    """Every check, as (name, check); call ``check(factory)``."""
    return SUITE.checks_for(factory)


def check_surge_policy(factory: PolicyFactory) -> None:
    """Run every check; raise AssertionError naming the first that fails (a policy that
    raises instead is reported the same way, with its exception)."""
    SUITE.run(factory)


PolicySpec = str | tuple[str, dict[str, Any]] | PolicyFactory


def parametrize_with_surge_checks(specs: Sequence[PolicySpec]) -> Any:
    """A ``pytest.mark.parametrize`` over every (policy, check) pair, one test case each.

    A spec is a registered name (or import path), a ``(name, params)`` pair, or a factory
    returning a policy. The decorated test takes ``policy_factory`` and ``check`` and calls
    ``check(policy_factory)``.
    """
    return SUITE.parametrize(specs, "policy_factory")


__all__ = [
    "SUITE",
    "all_surge_checks",
    "assert_valid_prices",
    "check_surge_policy",
    "extreme_snapshot",
    "parametrize_with_surge_checks",
    "random_snapshot",
] + [c.__name__ for c in _CHECKS]

"""The matcher conformance suite: every matcher, built-in or not, passes these checks.

Like scikit-learn's ``check_estimator``::

    from matching.checks import check_matcher
    check_matcher(lambda: MyMatcher(alpha=2))   # AssertionError naming the failed check

or, one pytest case per (matcher, check)::

    @parametrize_with_checks(["assignment", ("assignment", {"backend": "ortools"}), MyMatcher])
    def test_conformance(matcher_factory, check):
        check(matcher_factory)

What is checked is the contract of :mod:`matching.api`: a fixed request gives a fixed response,
the request is not mutated, no driver or request is assigned twice, assigned ids exist, every
assignment's ETA is the request's own ``pickup_eta`` and within ``max_pickup_eta_s``, every
open request is assigned or explained exactly once with a truthful reason, empty and lopsided
batches work, ``get_params()`` is JSON and rebuilds an identical matcher, and a matcher whose
class says ``optimal = True`` agrees with brute force on tiny instances. An optimal matcher
minimises total pickup ETA among maximum-cardinality matchings, unless it defines
``pair_costs(request, request_row, driver_row, pickup_eta_s)`` to say what it minimises instead.

Instances come from :func:`random_instance`: points on a plane, a grid (integer travel times,
so many ties) or a small random road graph (some nodes unreachable), drivers busy for a while
or idle, and some pairs out of range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import shortest_path

from matching.api import (
    API_VERSION,
    CandidateDrivers,
    DriverState,
    Matcher,
    MatchRequest,
    MatchResponse,
    OpenRequests,
    UnmatchedReason,
)
from matching.candidates import to_wire
from matching.conformance import Suite, assert_rebuilds, check_get_params_json
from matching.registry import make_matcher

MatcherFactory = Callable[[], Matcher]
Check = Callable[[MatcherFactory], None]

KINDS = ("plane", "grid", "graph")

# Relative tolerance when comparing an assignment's ETA with request.pickup_eta: a travel-time
# function evaluated on differently shaped arrays may round the last bit differently.
_ETA_RTOL = 1e-12
# Brute-force agreement: an optimal matcher may round costs (the built-in one to 1 ms).
_COST_TOL_PER_PAIR = 1e-3


# ---------------------------------------------------------------------------------------------
# Instances


def random_instance(
    seed: int,
    n_requests: int,
    n_drivers: int,
    kind: str = "plane",
    *,
    max_pickup_eta_s: float = 150.0,
) -> MatchRequest:
    """A small random :class:`MatchRequest` on a ``plane``, ``grid`` or ``graph`` space."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    decision_time = 1000.0
    if kind == "plane":
        # Every point is its own node; straight-line travel at 10 m/s over a 2 km square.
        speed = 10.0
        xy = rng.uniform(0.0, 2000.0, size=(n_requests * 2 + n_drivers, 2))

        def travel_time(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
            return np.sqrt(((xy[src] - xy[dst]) ** 2).sum(axis=-1)) / speed

        node_xy = xy
        pick = np.arange(n_requests)
        drop = n_requests + np.arange(n_requests)
        drv = 2 * n_requests + np.arange(n_drivers)
    elif kind == "grid":
        # A 6 x 6 Manhattan grid, 100 m blocks driven in 30 s: integer ETAs, many ties.
        side, block_s, block_m = 6, 30.0, 100.0
        speed = block_m / block_s
        gx, gy = np.divmod(np.arange(side * side), side)
        node_xy = np.stack([gx, gy], axis=1).astype(np.float64) * block_m

        def travel_time(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
            return (np.abs(gx[src] - gx[dst]) + np.abs(gy[src] - gy[dst])) * block_s

        pick, drop, drv = (
            rng.integers(0, side * side, size=n) for n in (n_requests, n_requests, n_drivers)
        )
    else:
        # A random geometric road graph; roads are slower than the straight line, and some
        # nodes may be unreachable (infinite travel time).
        n_nodes, speed = 14, 10.0
        node_xy = rng.uniform(0.0, 1500.0, size=(n_nodes, 2))
        dist = np.sqrt(((node_xy[:, None] - node_xy[None]) ** 2).sum(axis=-1))
        near = (dist < 500.0) & ~np.eye(n_nodes, dtype=bool)
        src_i, dst_i = np.nonzero(near)
        w = dist[src_i, dst_i] / speed * rng.uniform(1.0, 2.0, size=src_i.size)
        table = shortest_path(coo_array((w, (src_i, dst_i)), shape=(n_nodes, n_nodes)).tocsr())

        def travel_time(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
            return table[src, dst]

        pick, drop, drv = (
            rng.integers(0, n_nodes, size=n) for n in (n_requests, n_requests, n_drivers)
        )
    busy = rng.random(n_drivers) < 0.3
    free_at = np.where(
        busy,
        decision_time + rng.uniform(0.0, 60.0, n_drivers),
        decision_time - rng.uniform(0.0, 100.0, n_drivers),
    )
    requests = OpenRequests(
        id=np.sort(rng.choice(10 * n_requests + 10, size=n_requests, replace=False)),
        pickup_node=pick,
        dropoff_node=drop,
        pickup_xy=node_xy[pick].reshape(-1, 2),
        dropoff_xy=node_xy[drop].reshape(-1, 2),
        requested_at=decision_time - rng.uniform(0.0, 120.0, n_requests),
        quoted_price=rng.uniform(5.0, 30.0, n_requests),
        patience_s=rng.uniform(60.0, 600.0, n_requests),
    )
    drivers = CandidateDrivers(
        id=np.sort(rng.choice(10 * n_drivers + 10, size=n_drivers, replace=False)),
        node=drv,
        xy=node_xy[drv].reshape(-1, 2),
        state=np.where(busy, DriverState.ON_TRIP, DriverState.IDLE),
        free_at=free_at,
        earnings=rng.uniform(0.0, 200.0, n_drivers),
        online_s=rng.uniform(0.0, 20000.0, n_drivers),
    )
    return MatchRequest(
        decision_time=decision_time,
        batch_id=int(seed),
        shard_id=0,
        requests=requests,
        drivers=drivers,
        max_pickup_eta_s=max_pickup_eta_s,
        seed=int(seed),
        travel_time=travel_time,
        max_speed_mps=speed,
    )


def line_instance(
    request_x: Sequence[float],
    driver_x: Sequence[float],
    max_pickup_eta_s: float,
    *,
    requested_at: Sequence[float] | None = None,
    free_at: Sequence[float] | None = None,
    request_ids: Sequence[int] | None = None,
    driver_ids: Sequence[int] | None = None,
    decision_time: float = 100.0,
) -> MatchRequest:
    """A hand-checkable request on a line at 1 m/s: ETA = |x_driver - x_pickup| + wait.

    Requests and drivers default to ids 0, 1, ... and to no waiting on either side.
    """
    rx = np.asarray(request_x, dtype=np.float64)
    dx = np.asarray(driver_x, dtype=np.float64)
    nodes_x = np.concatenate([rx, dx])

    def travel_time(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return np.abs(nodes_x[src] - nodes_x[dst])

    n_req, n_drv = rx.size, dx.size
    pick = np.arange(n_req)
    drv = n_req + np.arange(n_drv)
    req_xy = np.stack([rx, np.zeros(n_req)], axis=1)
    requests = OpenRequests(
        id=np.arange(n_req) if request_ids is None else request_ids,
        pickup_node=pick,
        dropoff_node=pick,
        pickup_xy=req_xy,
        dropoff_xy=req_xy,
        requested_at=np.full(n_req, decision_time) if requested_at is None else requested_at,
        quoted_price=np.full(n_req, 10.0),
        patience_s=np.full(n_req, 600.0),
    )
    drivers = CandidateDrivers(
        id=np.arange(n_drv) if driver_ids is None else driver_ids,
        node=drv,
        xy=np.stack([dx, np.zeros(n_drv)], axis=1),
        state=np.full(n_drv, DriverState.IDLE),
        free_at=np.full(n_drv, decision_time) if free_at is None else free_at,
        earnings=np.zeros(n_drv),
        online_s=np.zeros(n_drv),
    )
    return MatchRequest(
        decision_time=decision_time,
        batch_id=0,
        shard_id=0,
        requests=requests,
        drivers=drivers,
        max_pickup_eta_s=max_pickup_eta_s,
        seed=0,
        travel_time=travel_time,
        max_speed_mps=1.0,
    )


def dense_etas(request: MatchRequest) -> np.ndarray:
    """The full (n_requests, n_drivers) pickup ETA matrix (for checks on tiny instances)."""
    n_req, n_drv = len(request.requests), len(request.drivers)
    if n_req == 0 or n_drv == 0:
        return np.zeros((n_req, n_drv))
    eta = request.pickup_eta(np.arange(n_drv)[None, :], np.arange(n_req)[:, None])
    return np.array(np.broadcast_to(eta, (n_req, n_drv)), dtype=np.float64)


# Shapes the general checks run on: (seed, n_requests, n_drivers, kind).
_INSTANCES = [
    (11, 6, 6, "plane"),
    (12, 9, 4, "grid"),
    (13, 4, 10, "graph"),
    (14, 25, 30, "plane"),
    (15, 14, 14, "grid"),
    (16, 30, 20, "graph"),
    (17, 1, 8, "plane"),
    (18, 1, 5, "grid"),
]


def _instances() -> list[MatchRequest]:
    return [random_instance(*spec) for spec in _INSTANCES]


# ---------------------------------------------------------------------------------------------
# Response validation


def assert_valid_response(request: MatchRequest, response: MatchResponse) -> None:
    """Every contract rule one response must satisfy for its request."""
    _assert_type(response)
    _assert_assignments_valid(request, response)
    _assert_every_request_explained(request, response)
    _assert_reasons_truthful(request, response)


def _assert_type(response: Any) -> None:
    assert isinstance(response, MatchResponse), (
        f"match() returned {type(response).__name__}, expected MatchResponse"
    )
    assert response.api_version == API_VERSION, (
        f"response api_version {response.api_version}, expected {API_VERSION}"
    )
    # MatchResponse.unchecked skips validation, so the columns are checked here.
    spec = {
        "request_id": np.int64,
        "driver_id": np.int64,
        "pickup_eta_s": np.float64,
        "unmatched_id": np.int64,
        "unmatched_reason": np.int8,
    }
    for name, dtype in spec.items():
        arr = getattr(response, name)
        assert isinstance(arr, np.ndarray) and arr.dtype == dtype and arr.ndim == 1, (
            f"response.{name}: expected a 1-d {np.dtype(dtype)} array, got {arr!r}"
        )
        # The engine keeps the answer's arrays: nobody may write them afterwards.
        assert not arr.flags.writeable, (
            f"response.{name}: writeable; MatchResponse(...) and MatchResponse.unchecked "
            "make the columns read-only"
        )
    n = response.request_id.size
    assert response.driver_id.size == n and response.pickup_eta_s.size == n, (
        "response assignment columns differ in length"
    )
    assert response.unmatched_id.size == response.unmatched_reason.size, (
        "response unmatched columns differ in length"
    )


def _assert_assignments_valid(request: MatchRequest, response: MatchResponse) -> None:
    req_ids, drv_ids = response.request_id, response.driver_id
    assert np.unique(req_ids).size == req_ids.size, f"a request assigned twice: {req_ids}"
    assert np.unique(drv_ids).size == drv_ids.size, f"a driver assigned twice: {drv_ids}"
    r, r_ok = _rows_of(req_ids, request.requests.id)
    d, d_ok = _rows_of(drv_ids, request.drivers.id)
    assert r_ok.all(), f"assigned request ids not in the request: {req_ids[~r_ok]}"
    assert d_ok.all(), f"assigned driver ids not in the request: {drv_ids[~d_ok]}"
    if req_ids.size == 0:
        return
    expected = request.pickup_eta(d, r)
    got = response.pickup_eta_s
    assert np.allclose(got, expected, rtol=_ETA_RTOL, atol=0.0), (
        f"pickup_eta_s differs from request.pickup_eta: got {got}, expected {expected}"
    )
    over = ~(got <= request.max_pickup_eta_s)
    assert not over.any(), (
        f"assignments beyond max_pickup_eta_s={request.max_pickup_eta_s}: {got[over]}"
    )


def _rows_of(ids: np.ndarray, table_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each id in a sorted id column, and whether the id is there at all."""
    rows = np.searchsorted(table_ids, ids)
    inside = rows < table_ids.size
    found = np.zeros(ids.shape, dtype=bool)
    found[inside] = table_ids[rows[inside]] == ids[inside]
    return rows, found


def _assert_every_request_explained(request: MatchRequest, response: MatchResponse) -> None:
    ids = request.requests.id
    assert np.unique(response.unmatched_id).size == response.unmatched_id.size, (
        f"a request listed twice as unmatched: {response.unmatched_id}"
    )
    both = np.intersect1d(response.request_id, response.unmatched_id)
    assert both.size == 0, f"requests both assigned and unmatched: {both}"
    seen = np.union1d(response.request_id, response.unmatched_id)
    missing = np.setdiff1d(ids, seen)
    assert missing.size == 0, f"open requests neither assigned nor explained: {missing}"
    extra = np.setdiff1d(seen, ids)
    assert extra.size == 0, f"response names requests that are not open: {extra}"


def _assert_reasons_truthful(request: MatchRequest, response: MatchResponse) -> None:
    reasons = response.unmatched_reason
    valid = np.isin(reasons, [int(x) for x in UnmatchedReason])
    assert valid.all(), f"unknown unmatched reasons: {reasons[~valid]}"
    if response.unmatched_id.size == 0:
        return
    eta = dense_etas(request)
    rows = np.searchsorted(request.requests.id, response.unmatched_id)
    in_range = (
        (eta[rows] <= request.max_pickup_eta_s).any(axis=1)
        if eta.shape[1]
        else (np.zeros(rows.size, dtype=bool))
    )
    no_drivers = reasons == UnmatchedReason.NO_DRIVERS
    if len(request.drivers) == 0:
        ok = no_drivers | (reasons == UnmatchedReason.DEFERRED)
        assert ok.all(), f"no drivers at all, yet reasons {reasons[~ok]}"
        return
    assert not no_drivers.any(), "NO_DRIVERS given although the request has drivers"
    lie = (reasons == UnmatchedReason.NO_DRIVER_IN_RANGE) & in_range
    assert not lie.any(), (
        f"NO_DRIVER_IN_RANGE for requests with a driver in range: {response.unmatched_id[lie]}"
    )
    lie = (reasons == UnmatchedReason.OUTCOMPETED) & ~in_range
    assert not lie.any(), (
        f"OUTCOMPETED for requests with no driver in range: {response.unmatched_id[lie]}"
    )


def _same_response(a: MatchResponse, b: MatchResponse, what: str) -> None:
    for name in ("request_id", "driver_id", "pickup_eta_s", "unmatched_id", "unmatched_reason"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), (
            f"{what}: {name} differs: {x} vs {y}"
        )


# ---------------------------------------------------------------------------------------------
# The checks: each takes a factory returning a fresh matcher


def check_declares_protocol(factory: MatcherFactory) -> None:
    """The matcher declares the whole Matcher protocol (match, get_params, optimal,
    pair_costs); matching.matchers.MatcherBase gives the defaults."""
    m = factory()
    missing = [
        name
        for name in ("match", "get_params", "pair_costs")
        if not callable(getattr(m, name, None))
    ]
    if not isinstance(getattr(m, "optimal", None), bool):
        missing.append("optimal (a bool)")
    assert not missing, f"{type(m).__name__} does not declare {', '.join(missing)}"
    assert isinstance(m, Matcher)


def check_init_stores_params(factory: MatcherFactory) -> None:
    """A fresh instance built from get_params() behaves identically; match keeps the params."""
    assert_rebuilds(
        factory,
        lambda m: [m.match(request) for request in _instances()[:4]],
        _same_response,
    )


def check_deterministic(factory: MatcherFactory) -> None:
    """The same request, twice or rebuilt from the same seed, gives identical arrays."""
    m = factory()
    for spec in _INSTANCES:
        request = random_instance(*spec)
        first = m.match(request)
        _same_response(first, m.match(request), f"second call on instance {spec}")
        _same_response(
            first,
            factory().match(random_instance(*spec)),
            f"fresh matcher, rebuilt instance {spec}",
        )


def check_does_not_mutate_request(factory: MatcherFactory) -> None:
    """match() leaves every array of the request, and the request's fields, as they were."""
    m = factory()
    for request in _instances()[:5] + [to_wire(random_instance(21, 6, 7, "graph"))]:
        before = {name: getattr(request, name) for name in request.__dataclass_fields__}
        tables = {
            t: {
                c: getattr(getattr(request, t), c) for c in getattr(request, t).__dataclass_fields__
            }
            for t in ("requests", "drivers")
        }
        if request.candidates is not None:
            tables["candidates"] = {
                c: getattr(request.candidates, c) for c in request.candidates.__dataclass_fields__
            }
        copies = {
            t: {c: np.array(a, copy=True) for c, a in cols.items()} for t, cols in tables.items()
        }
        m.match(request)
        for name, value in before.items():
            assert getattr(request, name) is value, f"request.{name} was replaced"
        for t, cols in tables.items():
            for c, arr in cols.items():
                now = getattr(getattr(request, t), c)
                assert now is arr, f"request.{t}.{c} was replaced"
                assert np.array_equal(now, copies[t][c], equal_nan=True), (
                    f"request.{t}.{c} was modified"
                )


def check_assignments_valid(factory: MatcherFactory) -> None:
    """No driver or request twice, ids exist, ETAs are request.pickup_eta and within max."""
    m = factory()
    for request in _instances():
        response = m.match(request)
        _assert_type(response)
        _assert_assignments_valid(request, response)


def check_every_request_explained(factory: MatcherFactory) -> None:
    """Each open request is assigned or unmatched with a truthful reason, exactly once."""
    m = factory()
    for request in _instances():
        response = m.match(request)
        _assert_every_request_explained(request, response)
        _assert_reasons_truthful(request, response)


def check_empty_requests(factory: MatcherFactory) -> None:
    """No open requests: nothing assigned, nothing explained."""
    request = random_instance(31, 0, 5, "plane")
    response = factory().match(request)
    assert_valid_response(request, response)
    assert response.n_assigned == 0 and response.unmatched_id.size == 0, "empty batch answered"


def check_empty_drivers(factory: MatcherFactory) -> None:
    """No drivers: every request unmatched as NO_DRIVERS (or DEFERRED)."""
    for kind in KINDS:
        request = random_instance(32, 5, 0, kind)
        response = factory().match(request)
        assert_valid_response(request, response)
        assert response.n_assigned == 0, "assigned without drivers"


def check_empty_both(factory: MatcherFactory) -> None:
    """No requests and no drivers."""
    request = random_instance(33, 0, 0, "graph")
    response = factory().match(request)
    assert_valid_response(request, response)


def check_more_requests_than_drivers(factory: MatcherFactory) -> None:
    """Many requests, few drivers: never more assignments than drivers."""
    m = factory()
    for seed, kind in enumerate(KINDS):
        request = random_instance(40 + seed, 30, 3, kind, max_pickup_eta_s=1e5)
        response = m.match(request)
        assert_valid_response(request, response)
        assert response.n_assigned <= 3


def check_more_drivers_than_requests(factory: MatcherFactory) -> None:
    """Few requests, many drivers."""
    m = factory()
    for seed, kind in enumerate(KINDS):
        request = random_instance(50 + seed, 3, 30, kind)
        assert_valid_response(request, m.match(request))


def check_all_out_of_range(factory: MatcherFactory) -> None:
    """A max pickup ETA nobody can meet: nothing assigned, all NO_DRIVER_IN_RANGE (or DEFERRED)."""
    request = random_instance(60, 6, 6, "plane", max_pickup_eta_s=1e-9)
    eta = dense_etas(request)
    assert (eta > request.max_pickup_eta_s).all()  # the instance is what this check needs
    response = factory().match(request)
    assert_valid_response(request, response)
    assert response.n_assigned == 0


def check_wire_form(factory: MatcherFactory) -> None:
    """A request that crossed a wire (candidates given, no travel_time) is answered validly."""
    m = factory()
    for spec in _INSTANCES[:6]:
        oracle = random_instance(*spec)
        for k in (None, 2):
            request = to_wire(oracle, k)
            response = m.match(request)
            assert_valid_response(request, response)


def check_optimal_vs_brute_force(factory: MatcherFactory) -> None:
    """An optimal matcher: most matches, then least total cost, as brute force on up to 7x7."""
    m = factory()
    rng = np.random.default_rng(2024)
    for i in range(36):
        n_req, n_drv = (int(x) for x in rng.integers(1, 8, size=2))
        request = random_instance(
            100 + i,
            n_req,
            n_drv,
            KINDS[i % 3],
            max_pickup_eta_s=float(rng.choice([60.0, 150.0, 400.0])),
        )
        response = m.match(request)
        assert_valid_response(request, response)
        best_n, best_cost = _brute_force(m, request)
        got_cost = _total_cost(m, request, response)
        assert response.n_assigned == best_n, (
            f"instance {i}: {response.n_assigned} matches, brute force finds {best_n}"
        )
        tol = _COST_TOL_PER_PAIR * max(best_n, 1) + 1e-9 * abs(best_cost)
        assert got_cost <= best_cost + tol, (
            f"instance {i}: total cost {got_cost}, brute force finds {best_cost}"
        )


def _costs(
    m: Matcher, request: MatchRequest, r: np.ndarray, d: np.ndarray, eta: np.ndarray
) -> np.ndarray:
    return np.asarray(m.pair_costs(request, r, d, eta), dtype=np.float64)


def _total_cost(m: Matcher, request: MatchRequest, response: MatchResponse) -> float:
    r = np.searchsorted(request.requests.id, response.request_id)
    d = np.searchsorted(request.drivers.id, response.driver_id)
    return float(_costs(m, request, r, d, response.pickup_eta_s).sum())


def _brute_force(m: Matcher, request: MatchRequest) -> tuple[int, float]:
    """(most matches, least total cost among those), by DP over requests x used-driver masks."""
    n_req, n_drv = len(request.requests), len(request.drivers)
    eta = dense_etas(request)
    r, d = np.meshgrid(np.arange(n_req), np.arange(n_drv), indexing="ij")
    cost = _costs(m, request, r.ravel(), d.ravel(), eta.ravel()).reshape(n_req, n_drv)
    ok = eta <= request.max_pickup_eta_s
    # best[mask] = (matches, -cost) over the requests seen so far, with `mask` drivers used.
    best: dict[int, tuple[int, float]] = {0: (0, 0.0)}
    for i in range(n_req):
        nxt = dict(best)
        for mask in sorted(best):
            n, c = best[mask]
            for j in range(n_drv):
                if ok[i, j] and not mask >> j & 1:
                    cand = (n + 1, c - float(cost[i, j]))
                    key = mask | 1 << j
                    if key not in nxt or cand > nxt[key]:
                        nxt[key] = cand
        best = nxt
    n, neg = max(best[k] for k in sorted(best))
    return n, -neg


# ---------------------------------------------------------------------------------------------
# Running the suite

_GENERAL_CHECKS: list[Check] = [
    check_declares_protocol,
    check_get_params_json,
    check_init_stores_params,
    check_deterministic,
    check_does_not_mutate_request,
    check_assignments_valid,
    check_every_request_explained,
    check_empty_requests,
    check_empty_drivers,
    check_empty_both,
    check_more_requests_than_drivers,
    check_more_drivers_than_requests,
    check_all_out_of_range,
    check_wire_form,
]


def _extra_checks(matcher: Any) -> list[Check]:
    # Only a matcher that claims optimality is held to brute force; one that does not declare
    # `optimal` at all fails check_declares_protocol instead.
    return [check_optimal_vs_brute_force] if getattr(matcher, "optimal", False) is True else []


SUITE = Suite("matcher", make_matcher, _GENERAL_CHECKS, _extra_checks)
"""The matcher conformance suite."""

MatcherSpec = str | tuple[str, dict[str, Any]] | MatcherFactory


def all_checks(factory: MatcherFactory) -> list[tuple[str, Check]]:
    """The checks that apply to this matcher, as (name, check); call ``check(factory)``."""
    return SUITE.checks_for(factory)


def check_matcher(factory: MatcherFactory) -> None:
    """Run every applicable check; raise AssertionError naming the first that fails."""
    SUITE.run(factory)


def parametrize_with_checks(specs: Sequence[MatcherSpec]) -> Any:
    """A ``pytest.mark.parametrize`` over every (matcher, check) pair, one test case each.

    A spec is a registered name, a ``(name, params)`` pair, or a factory returning a matcher.
    The decorated test takes ``matcher_factory`` and ``check`` and calls ``check(matcher_factory)``.
    """
    return SUITE.parametrize(specs, "matcher_factory")


__all__ = (
    [
        "SUITE",
        "all_checks",
        "assert_valid_response",
        "check_matcher",
        "dense_etas",
        "line_instance",
        "parametrize_with_checks",
        "random_instance",
    ]
    + [c.__name__ for c in _GENERAL_CHECKS]
    + ["check_optimal_vs_brute_force"]
)

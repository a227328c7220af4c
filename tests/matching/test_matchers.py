"""Hand-checked tiny instances per matcher, and each matcher against a plain reference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import matching.matchers.assignment as assignment_mod
import matching.matchers.immediate_greedy as ig
from matching.api import UnmatchedReason
from matching.candidates import candidate_pairs, to_wire
from matching.checks import KINDS, dense_etas, line_instance, random_instance
from matching.matchers import Assignment, BatchedGreedy, ImmediateGreedy
from matching.registry import available, make_matcher

OUT = int(UnmatchedReason.OUTCOMPETED)
NONE_IN_RANGE = int(UnmatchedReason.NO_DRIVER_IN_RANGE)
NO_DRIVERS = int(UnmatchedReason.NO_DRIVERS)


def _pairs(response) -> list[tuple[int, int, float]]:
    return list(
        zip(
            response.request_id.tolist(),
            response.driver_id.tolist(),
            response.pickup_eta_s.tolist(),
            strict=True,
        )
    )


def _unmatched(response) -> list[tuple[int, int]]:
    return list(
        zip(response.unmatched_id.tolist(), response.unmatched_reason.tolist(), strict=True)
    )


# Requests at x=0 (id 0) and x=3 (id 1); drivers at x=1 (id 0) and x=-10 (id 1).
# ETAs: r0: d0=1, d1=10;  r1: d0=2, d1=13.
# Greedy gives d0 to r0 and then r1 pays 13; the optimum is r0-d1 (10) + r1-d0 (2) = 12.
TWO_BY_TWO = dict(request_x=[0.0, 3.0], driver_x=[1.0, -10.0])


def test_batched_greedy_is_suboptimal_on_two_by_two():
    """Batched greedy takes the globally cheapest pair first: total 14, not 12."""
    response = BatchedGreedy().match(line_instance(**TWO_BY_TWO, max_pickup_eta_s=100.0))
    assert _pairs(response) == [(0, 0, 1.0), (1, 1, 13.0)]


def test_assignment_is_optimal_on_two_by_two():
    """The assignment matcher finds the optimum 12 with either backend."""
    for backend in ("scipy", "ortools"):
        response = Assignment(backend=backend).match(
            line_instance(**TWO_BY_TWO, max_pickup_eta_s=100.0)
        )
        assert _pairs(response) == [(0, 1, 10.0), (1, 0, 2.0)]
        assert response.diagnostics["total_cost_units"] == 12_000


def test_max_eta_makes_greedy_leave_a_request_assignment_serves():
    """With max ETA 12, greedy strands request 1 (OUTCOMPETED); assignment matches both."""
    request = line_instance(**TWO_BY_TWO, max_pickup_eta_s=12.0)
    greedy = BatchedGreedy().match(request)
    assert _pairs(greedy) == [(0, 0, 1.0)]
    assert _unmatched(greedy) == [(1, OUT)]
    assert _pairs(Assignment().match(request)) == [(0, 1, 10.0), (1, 0, 2.0)]


def test_immediate_greedy_serves_in_arrival_order():
    """FCFS: the earlier request takes its nearest driver even if that strands the later one."""
    first_r1 = line_instance(**TWO_BY_TWO, max_pickup_eta_s=12.0, requested_at=[50.0, 40.0])
    assert _pairs(ImmediateGreedy().match(first_r1)) == [(0, 1, 10.0), (1, 0, 2.0)]
    first_r0 = line_instance(**TWO_BY_TWO, max_pickup_eta_s=12.0, requested_at=[40.0, 50.0])
    response = ImmediateGreedy().match(first_r0)
    assert _pairs(response) == [(0, 0, 1.0)]
    assert _unmatched(response) == [(1, OUT)]


def test_equal_requested_at_falls_back_to_request_id():
    """Arrival ties go to the lower request id."""
    request = line_instance([0.0, 0.0], [5.0], 100.0, request_ids=[3, 7])
    assert _pairs(ImmediateGreedy().match(request)) == [(3, 0, 5.0)]


@pytest.mark.parametrize("name", ["immediate_greedy", "batched_greedy", "assignment"])
def test_eta_ties_go_to_lower_driver_id(name):
    """Two drivers equally near: the lower driver id is assigned."""
    request = line_instance([0.0], [-4.0, 4.0], 100.0, driver_ids=[10, 20])
    assert _pairs(make_matcher(name, {}).match(request)) == [(0, 10, 4.0)]


def test_batched_greedy_ties_by_driver_then_request_id():
    """Equal ETAs across the batch: lower driver id first, then lower request id."""
    # Both requests are 2 from both drivers.
    request = line_instance([0.0, 4.0], [2.0, 2.0], 100.0, request_ids=[5, 9], driver_ids=[1, 2])
    assert _pairs(BatchedGreedy().match(request)) == [(5, 1, 2.0), (9, 2, 2.0)]


def test_busy_driver_wait_counts_in_eta():
    """A nearby driver busy for 30 s loses to an idle one 20 s away."""
    request = line_instance([0.0], [1.0, 20.0], 100.0, free_at=[130.0, 100.0])
    for name in available():
        assert _pairs(make_matcher(name, {}).match(request)) == [(0, 1, 20.0)]


@pytest.mark.parametrize(
    ("name", "loser"), [("immediate_greedy", 1), ("batched_greedy", 0), ("assignment", 0)]
)
def test_reasons(name, loser):
    """NO_DRIVERS without drivers; NO_DRIVER_IN_RANGE when all are too far; else OUTCOMPETED."""
    m = make_matcher(name, {})
    assert _unmatched(m.match(line_instance([0.0, 1.0], [], 10.0))) == [
        (0, NO_DRIVERS),
        (1, NO_DRIVERS),
    ]
    # One driver at x=2: request 0 is 2 s away, request 1 is 1 s away, request 2 is 498 s away.
    # FCFS serves request 0 (lower id, same arrival); the batch matchers serve the nearer 1.
    response = m.match(line_instance([0.0, 1.0, 500.0], [2.0], 10.0))
    assert _unmatched(response) == [(loser, OUT), (2, NONE_IN_RANGE)]


def test_wait_weight_favours_the_longer_wait():
    """With a waiting-time credit, a request that waited 100 s wins a contested driver."""
    # One driver: r0 is 10 s away and just arrived; r1 is 15 s away and waited 100 s.
    request = line_instance([10.0, -15.0], [0.0], 100.0, requested_at=[100.0, 0.0])
    assert _pairs(Assignment().match(request)) == [(0, 0, 10.0)]
    assert _pairs(Assignment(wait_weight=0.1).match(request)) == [(1, 0, 15.0)]
    assert _pairs(Assignment(wait_weight=0.1, backend="ortools").match(request)) == [(1, 0, 15.0)]


# Each matcher against a plain Python reference on random instances.


def _fcfs_reference(request) -> list[tuple[int, int, float]]:
    eta = dense_etas(request)
    order = sorted(
        range(len(request.requests)),
        key=lambda r: (request.requests.requested_at[r], request.requests.id[r]),
    )
    free = set(range(len(request.drivers)))
    out = []
    for r in order:
        best = min(
            ((eta[r, d], d) for d in sorted(free) if eta[r, d] <= request.max_pickup_eta_s),
            default=None,
        )
        if best is not None:
            free.discard(best[1])
            out.append(
                (int(request.requests.id[r]), int(request.drivers.id[best[1]]), float(best[0]))
            )
    return sorted(out)


def _global_greedy_reference(request, k: int) -> list[tuple[int, int, float]]:
    p = candidate_pairs(request, k)
    rid, did = request.requests.id, request.drivers.id
    items = sorted(
        zip(
            p.pickup_eta_s.tolist(),
            did[p.driver_row].tolist(),
            rid[p.request_row].tolist(),
            strict=True,
        )
    )
    used_r, used_d, out = set(), set(), []
    for eta, d, r in items:
        if r not in used_r and d not in used_d:
            used_r.add(r)
            used_d.add(d)
            out.append((r, d, eta))
    return sorted(out)


RANDOM = [
    (seed, n_req, n_drv, KINDS[seed % 3])
    for seed, n_req, n_drv in [
        (1, 10, 10),
        (2, 30, 8),
        (3, 8, 40),
        (4, 60, 70),
        (5, 1, 30),
        (6, 45, 45),
        (7, 120, 200),
    ]
]


@pytest.mark.parametrize(("seed", "n_req", "n_drv", "kind"), RANDOM)
def test_immediate_greedy_equals_fcfs_reference(seed, n_req, n_drv, kind):
    """Immediate greedy is exactly FCFS nearest-free-driver."""
    request = random_instance(seed, n_req, n_drv, kind)
    assert _pairs(ImmediateGreedy().match(request)) == _fcfs_reference(request)


@pytest.mark.parametrize(("seed", "n_req", "n_drv", "kind"), RANDOM)
def test_immediate_greedy_sparse_path_equals_dense_path(monkeypatch, seed, n_req, n_drv, kind):
    """The large-batch path (k candidates, full-row fallback) equals the dense path."""
    request = random_instance(seed, n_req, n_drv, kind, max_pickup_eta_s=400.0)
    dense = ImmediateGreedy().match(request)
    monkeypatch.setattr(ig, "DENSE_LIMIT", 0)
    monkeypatch.setattr("matching.candidates.DENSE_LIMIT", 0)
    sparse = ImmediateGreedy().match(request)
    assert _pairs(sparse) == _pairs(dense)
    assert _unmatched(sparse) == _unmatched(dense)


@pytest.mark.parametrize(("seed", "n_req", "n_drv", "kind"), RANDOM)
@pytest.mark.parametrize("k", [1, 3, 20])
def test_batched_greedy_equals_reference(seed, n_req, n_drv, kind, k):
    """Batched greedy is exactly cheapest-pair-first over the candidate graph."""
    request = random_instance(seed, n_req, n_drv, kind)
    assert _pairs(BatchedGreedy(k=k).match(request)) == _global_greedy_reference(request, k)


@pytest.mark.parametrize(
    ("seed", "n_req", "n_drv", "kind"),
    RANDOM + [(8, 300, 250, "plane"), (9, 200, 400, "graph"), (10, 250, 250, "grid")],
)
@pytest.mark.parametrize("wait_weight", [0.0, 1.0])
def test_assignment_backends_agree_on_total_cost(seed, n_req, n_drv, kind, wait_weight):
    """scipy and OR-Tools find the same number of matches and the same integer total cost."""
    request = random_instance(seed, n_req, n_drv, kind)
    a = Assignment(backend="scipy", wait_weight=wait_weight).match(request)
    b = Assignment(backend="ortools", wait_weight=wait_weight).match(request)
    assert a.n_assigned == b.n_assigned
    assert a.diagnostics["total_cost_units"] == b.diagnostics["total_cost_units"]
    assert abs(a.pickup_eta_s.sum() - b.pickup_eta_s.sum()) <= 1e-3 * a.n_assigned + 1e-9


@pytest.mark.parametrize(("seed", "n_req", "n_drv", "kind"), RANDOM)
def test_assignment_never_worse_than_greedy(seed, n_req, n_drv, kind):
    """Assignment matches at least as many as batched greedy, and costs no more when equal."""
    request = random_instance(seed, n_req, n_drv, kind)
    a, g = Assignment().match(request), BatchedGreedy().match(request)
    assert a.n_assigned >= g.n_assigned
    if a.n_assigned == g.n_assigned:
        assert a.pickup_eta_s.sum() <= g.pickup_eta_s.sum() + 1e-3 * a.n_assigned


@pytest.mark.parametrize(
    "name", ["immediate_greedy", "batched_greedy", "assignment", "assignment:scipy"]
)
@pytest.mark.parametrize(("seed", "n_req", "n_drv", "kind"), RANDOM)
def test_wire_form_gives_oracle_result(name, seed, n_req, n_drv, kind):
    """Candidates given and travel_time None: the same response as with the oracle."""
    base, _, backend = name.partition(":")
    m = make_matcher(base, {"backend": backend} if backend else {})
    request = random_instance(seed, n_req, n_drv, kind)
    oracle = m.match(request)
    for wire in (to_wire(request), to_wire(request, 20) if base != "immediate_greedy" else None):
        if wire is None:
            continue
        response = m.match(wire)
        assert _pairs(response) == _pairs(oracle)
        assert _unmatched(response) == _unmatched(oracle)


def test_nan_travel_time_is_out_of_range():
    """A NaN travel time never becomes an assignment."""
    request = random_instance(3, 5, 6, "plane", max_pickup_eta_s=1e4)
    tt = request.travel_time

    def nan_for_first_driver(src, dst):
        out = np.array(tt(src, dst), dtype=float)
        out[np.broadcast_to(src, out.shape) == request.drivers.node[0]] = np.nan
        return out

    bad = replace(request, travel_time=nan_for_first_driver)
    for name in available():
        response = make_matcher(name, {}).match(bad)
        assert request.drivers.id[0] not in response.driver_id.tolist()
        assert response.n_assigned == 5


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("batched_greedy", {"k": 0}),
        ("batched_greedy", {"k": True}),
        ("assignment", {"k": 2.0}),
        ("assignment", {"backend": "cplex"}),
        ("assignment", {"wait_weight": -1.0}),
        ("assignment", {"wait_weight": float("nan")}),
    ],
)
def test_bad_params_rejected_by_constructor(name, params):
    """Constructors reject out-of-range parameters with ValueError."""
    from matching.registry import matcher_class

    with pytest.raises(ValueError):
        matcher_class(name)(**params)


def test_assignment_backends_agree_on_tight_balanced_batch():
    """A balanced 1,500 x 1,500 batch with no perfect matching (LAPJVsp's slow case) agrees."""
    request = random_instance(21, 1500, 1500, "plane", max_pickup_eta_s=40.0)
    a = Assignment(backend="scipy").match(request)
    b = Assignment(backend="ortools").match(request)
    assert 0 < a.n_assigned < 1500
    assert a.n_assigned == b.n_assigned
    assert a.diagnostics["total_cost_units"] == b.diagnostics["total_cost_units"]


def test_fairness_weight_favours_the_lower_earning_driver():
    """With an income-fairness weight, a driver earning far below the median wins a request
    that a slightly nearer, well-paid driver would otherwise get; both backends agree."""
    from matching.api import CandidateDrivers

    base = line_instance([0.0], [-10.0, 12.0], 100.0)  # driver 0 is 10 s away, driver 1 12 s
    d = base.drivers
    drivers = CandidateDrivers(
        d.id, d.node, d.xy, d.state, d.free_at, earnings=[100.0, 10.0], online_s=[3600.0, 3600.0]
    )
    request = replace(base, drivers=drivers)
    assert _pairs(Assignment().match(request)) == [(0, 0, 10.0)]
    for backend in ("ortools", "scipy"):
        fair = Assignment(fairness_weight_s=60.0, backend=backend)
        assert _pairs(fair.match(request)) == [(0, 1, 12.0)]
    with pytest.raises(ValueError, match="fairness_weight_s"):
        Assignment(fairness_weight_s=-1)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_eta", [30.0, 300.0, float("inf")])
def test_immediate_greedy_one_request_equals_masked_argmin(seed, max_eta):
    """The one-request path answers as the masked argmin over pickup_eta does, NaN, inf and
    out-of-range ETAs included."""
    base = random_instance(seed, 1, 9, KINDS[seed % len(KINDS)], max_pickup_eta_s=max_eta)
    tt = base.travel_time
    rng = np.random.default_rng(seed)
    odd = base.drivers.node[rng.random(9) < 0.4]
    special = (np.nan, np.inf)[seed % 2]

    def odd_times(src, dst):
        out = np.array(tt(src, dst), dtype=float)
        out[np.isin(np.broadcast_to(src, out.shape), odd)] = special
        return out

    request = replace(base, travel_time=odd_times)
    eta = request.pickup_eta(np.arange(9), np.zeros(1, dtype=np.int64))
    masked = np.where(eta <= max_eta, eta, np.inf)
    best = int(np.argmin(masked))
    response = ImmediateGreedy().match(request)
    if masked[best] != np.inf:
        rid = int(request.requests.id[0])
        assert _pairs(response) == [(rid, int(request.drivers.id[best]), float(eta[best]))]
    else:
        assert _pairs(response) == []
        assert _unmatched(response) == [(int(request.requests.id[0]), NONE_IN_RANGE)]


@pytest.mark.parametrize("seed", range(3))
def test_assignment_compress_equals_unique(seed):
    """The linear-time compression of request and driver rows is np.unique's answer."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 500, size=rng.integers(0, 2000))
    ids, inverse = assignment_mod._compress(x, 600)
    want_ids, want_inverse = np.unique(x, return_inverse=True)
    assert np.array_equal(ids, want_ids) and np.array_equal(inverse, want_inverse)

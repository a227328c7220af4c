"""Optimal batch assignment: a minimum-cost maximum matching on the sparse candidate graph.

The objective is lexicographic: first match as many requests as possible, then minimise the
total cost of the matched pairs. (A request is better matched than not; a pure min-cost
objective with an "unmatched" penalty would need the penalty tuned to the costs.)

Costs are integers in units of ``COST_UNIT_S`` (1 ms), rounded once, deterministically, from
``pair_costs``. Both backends optimise exactly that integer objective, so they agree on the
optimum to the unit, and a float total can differ from the true optimum by at most half a unit
per matched pair.

* ``ortools``: ``SimpleMinCostFlow.solve_max_flow_with_min_cost`` on source -> request ->
  driver -> sink, which is the lexicographic objective itself.
* ``scipy``: ``min_weight_full_bipartite_matching`` (LAPJVsp) on requests x (drivers + one
  private "unmatched" column per request). Shifted costs are >= 1 and the unmatched column
  costs more than any matching of real pairs can save, so every real match counts first.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ortools.graph.python import min_cost_flow
from scipy.sparse import csr_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from matching.api import MatchRequest, MatchResponse
from matching.candidates import candidate_pairs
from matching.matchers._response import build_response, check_k, rows_with_pairs
from matching.registry import register

COST_UNIT_S = 0.001
"""Resolution of the integer costs the solvers see (seconds)."""

BACKENDS = ("scipy", "ortools")

# LAPJVsp works in float64: totals must stay exact integers.
_EXACT_FLOAT_INT = 2**52


@register("assignment")
class Assignment:
    """Maximum matching of minimum total cost over each request's ``k`` nearest drivers.

    Pair cost is ``pickup_eta - wait_weight * (decision_time - requested_at)``: with a positive
    ``wait_weight`` a request that has waited longer is cheaper to serve, so it wins contested
    drivers (a waiting-time credit, seconds of ETA per second waited).
    """

    optimal: ClassVar[bool] = True

    def __init__(self, k: int = 20, backend: str = "scipy", wait_weight: float = 0.0) -> None:
        check_k(k)
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
        if isinstance(wait_weight, bool) or not isinstance(wait_weight, int | float) or not (
            np.isfinite(wait_weight) and wait_weight >= 0
        ):
            raise ValueError(f"wait_weight: expected a finite number >= 0, got {wait_weight!r}")
        self.k = k
        self.backend = backend
        self.wait_weight = wait_weight

    def get_params(self) -> dict[str, Any]:
        """``k`` candidates per request, solver ``backend``, waiting-time credit ``wait_weight``."""
        return {"k": self.k, "backend": self.backend, "wait_weight": self.wait_weight}

    def pair_costs(
        self, request: MatchRequest, request_row: np.ndarray, driver_row: np.ndarray,
        pickup_eta_s: np.ndarray,
    ) -> np.ndarray:
        """The cost this matcher minimises (seconds), per pair."""
        eta = np.asarray(pickup_eta_s, dtype=np.float64)
        if self.wait_weight == 0:
            return eta
        waited = request.decision_time - request.requests.requested_at[request_row]
        return eta - float(self.wait_weight) * waited

    def match(self, request: MatchRequest) -> MatchResponse:
        """Solve the assignment on the candidate graph."""
        n_req = len(request.requests)
        pairs = candidate_pairs(request, self.k)
        r, d, eta = pairs.request_row, pairs.driver_row, pairs.pickup_eta_s
        in_range = rows_with_pairs(n_req, r)
        if len(pairs) == 0:
            return build_response(request, r, d, eta, in_range, {"n_candidates": 0})
        cost = np.rint(self.pair_costs(request, r, d, eta) / COST_UNIT_S).astype(np.int64)
        # Compress to the requests and drivers that have a pair: np.unique is sorted, so the
        # solver input depends only on the request, never on arrival order of anything.
        req_ids, rc = np.unique(r, return_inverse=True)
        drv_ids, dc = np.unique(d, return_inverse=True)
        if self.backend == "ortools":
            sel = _solve_ortools(rc, dc, cost, req_ids.size, drv_ids.size)
        else:
            sel = _solve_scipy(rc, dc, cost, req_ids.size, drv_ids.size)
        return build_response(
            request, r[sel], d[sel], eta[sel], in_range,
            {"n_candidates": len(pairs), "total_cost_units": int(cost[sel].sum())},
        )


def _solve_scipy(rc: np.ndarray, dc: np.ndarray, cost: np.ndarray, n_r: int, n_d: int
                 ) -> np.ndarray:
    """Indices of the chosen pairs, via LAPJVsp with one unmatched column per request."""
    shifted = cost - cost.min() + 1  # LAPJVsp needs non-zero weights; shifting keeps the order
    # A matching with one more real pair saves at least `penalty - sum of its shifted costs`,
    # which is positive since no matching has more than min(n_r, n_d) pairs.
    penalty = int(min(n_r, n_d)) * int(shifted.max()) + 1
    if penalty * n_r >= _EXACT_FLOAT_INT:
        raise ValueError("assignment: batch too large for exact float costs; use backend='ortools'")
    rows = np.concatenate([rc, np.arange(n_r)])
    cols = np.concatenate([dc, n_d + np.arange(n_r)])
    weights = np.concatenate([shifted, np.full(n_r, penalty)]).astype(np.float64)
    graph = csr_array((weights, (rows, cols)), shape=(n_r, n_d + n_r))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = col_ind < n_d
    # Map (request, driver) back to the pair index: pairs are unique, so a sorted key finds it.
    keys = rc * n_d + dc
    order = np.argsort(keys, kind="stable")
    want = row_ind[real].astype(np.int64) * n_d + col_ind[real]
    return np.sort(order[np.searchsorted(keys[order], want)])


def _solve_ortools(rc: np.ndarray, dc: np.ndarray, cost: np.ndarray, n_r: int, n_d: int
                   ) -> np.ndarray:
    """Indices of the chosen pairs, via max-flow-min-cost: source -> request -> driver -> sink."""
    src, sink = n_r + n_d, n_r + n_d + 1
    n = rc.size
    tails = np.concatenate([rc, np.full(n_r, src), n_r + np.arange(n_d)]).astype(np.int32)
    heads = np.concatenate([n_r + dc, np.arange(n_r), np.full(n_d, sink)]).astype(np.int32)
    caps = np.ones(tails.size, dtype=np.int64)
    costs = np.concatenate([cost, np.zeros(n_r + n_d, dtype=np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_node_supply(src, min(n_r, n_d))
    flow.set_node_supply(sink, -min(n_r, n_d))
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"assignment: OR-Tools min cost flow ended with status {status}")
    used = flow.flows(arcs[:n]) > 0
    return np.flatnonzero(used)

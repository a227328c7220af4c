"""First come, first served: each request, in arrival order, takes its nearest free driver."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from matching.api import (
    API_VERSION,
    MatchRequest,
    MatchResponse,
    UnmatchedReason,
    set_writeable,
    unchecked_message,
)
from matching.candidates import DENSE_LIMIT, candidate_pairs
from matching.matchers._response import build_response
from matching.matchers.base import MatcherBase

# Candidates per request on the large-batch path. It changes speed only, never the result: a
# request whose candidates are all taken falls back to its full row of ETAs.
_PROBE_K = 16


class ImmediateGreedy(MatcherBase):
    """Requests in order of (requested_at, id); each takes the still-free driver with the
    smallest pickup ETA within ``max_pickup_eta_s`` (ties to the lower driver id).

    The engine calls it on every request arrival with the one new request, and whenever a
    driver becomes free with the waiting requests, so the one-request case is a single
    vectorised pass over the drivers with no index building.
    """

    name: ClassVar[str] = "immediate_greedy"

    def match(self, request: MatchRequest) -> MatchResponse:
        """Assign requests one at a time in arrival order."""
        # The id columns' lengths (len() would add a Python __len__ call per arrival).
        n_req, n_drv = request.requests.id.shape[0], request.drivers.id.shape[0]
        if n_req == 0 or n_drv == 0:
            return build_response(request, _EMPTY, _EMPTY, _EMPTY_F, np.zeros(n_req, dtype=bool))
        if n_req == 1:
            return _one(request, n_drv)
        if n_req * n_drv <= DENSE_LIMIT:
            return _dense(request, n_req, n_drv)
        return _sparse(request, n_req, n_drv)


_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0)


def _arrival_order(request: MatchRequest) -> np.ndarray:
    reqs = request.requests
    return np.lexsort((reqs.id, reqs.requested_at))


def _one(request: MatchRequest, n_drv: int) -> MatchResponse:
    drivers = request.drivers
    tt = request.travel_time
    if tt is None:
        eta = request.pickup_eta(np.arange(n_drv), np.zeros(1, dtype=np.int64))
    else:
        # pickup_eta(arange(n_drv), [0]) without its gathers: the same operations on the same
        # values (every driver row in order, the one pickup), so the same floats.
        eta = tt(drivers.node, request.requests.pickup_node)
        # The latest free_at, read at argmax (a fifth of a max reduction's cost on ~100
        # drivers; argmax stops at the first NaN, as max returns NaN).
        free_at = drivers.free_at
        if not free_at.item(free_at.argmax()) <= request.decision_time:
            # Someone is still moving (or a time is NaN). When nobody is, every wait is +0.0,
            # and adding it changes no bit of a travel time (never -0.0): one reduction instead
            # of three operations over the drivers.
            eta = np.maximum(drivers.free_at - request.decision_time, 0.0) + eta
    # The first minimum is the answer (the lowest row among the nearest, which is the lowest
    # driver id) if it is in range; if it is not, nobody is. Only a NaN, where argmin stops,
    # needs the masked pass (out of range or NaN becomes inf).
    max_eta = request.max_pickup_eta_s
    best = int(eta.argmin())
    found = float(eta[best])
    if found != found:
        eta = np.where(eta <= max_eta, eta, np.inf)
        best = int(eta.argmin())
        found = float(eta[best])
    # The response is built directly (MatchResponse.unchecked's message without its keyword
    # packing): this runs on every request arrival, and the general builder costs more than
    # the matching here. Its ids are views of the request's own read-only columns (nobody can
    # write through them, so nothing is copied or marked).
    if found <= max_eta and found != math.inf:
        set_writeable(eta, False)  # and so its slice
        fields = {
            "request_id": request.requests.id,
            "driver_id": drivers.id[best : best + 1],
            "pickup_eta_s": eta[best : best + 1],
            "unmatched_id": _NONE_I64,
            "unmatched_reason": _NONE_I8,
            "diagnostics": {},
            "api_version": API_VERSION,
        }
        return unchecked_message(MatchResponse, fields, read_only=True)
    return MatchResponse.unchecked(
        request_id=_NONE_I64,
        driver_id=_NONE_I64,
        pickup_eta_s=_NONE_F64,
        unmatched_id=request.requests.id,
        unmatched_reason=np.full(1, UnmatchedReason.NO_DRIVER_IN_RANGE, dtype=np.int8),
    )


def _frozen_empty(dtype: type) -> np.ndarray:
    # Empty and read-only, so one instance can be handed out in every response.
    arr = np.zeros(0, dtype=dtype)
    arr.setflags(write=False)
    return arr


_NONE_I64 = _frozen_empty(np.int64)
_NONE_I8 = _frozen_empty(np.int8)
_NONE_F64 = _frozen_empty(np.float64)


def _dense(request: MatchRequest, n_req: int, n_drv: int) -> MatchResponse:
    rows = np.arange(n_req, dtype=np.int64)
    eta = np.array(
        np.broadcast_to(
            request.pickup_eta(np.arange(n_drv)[None, :], rows[:, None]), (n_req, n_drv)
        )
    )
    eta[eta > request.max_pickup_eta_s] = np.inf
    eta[np.isnan(eta)] = np.inf
    in_range = np.isfinite(eta).any(axis=1)
    taken_r, taken_d, taken_eta = [], [], []
    for r in _arrival_order(request).tolist():
        row = eta[r]
        best = int(np.argmin(row))
        if row[best] == np.inf:
            continue
        taken_r.append(r)
        taken_d.append(best)
        taken_eta.append(row[best])
        eta[:, best] = np.inf
    return build_response(
        request,
        np.array(taken_r, dtype=np.int64),
        np.array(taken_d, dtype=np.int64),
        np.array(taken_eta),
        in_range,
    )


def _sparse(request: MatchRequest, n_req: int, n_drv: int) -> MatchResponse:
    pairs = candidate_pairs(request, _PROBE_K)
    starts = np.searchsorted(pairs.request_row, np.arange(n_req + 1)).tolist()
    drv = pairs.driver_row.tolist()
    etas = pairs.pickup_eta_s.tolist()
    free = bytearray(b"\x01") * n_drv
    max_eta = request.max_pickup_eta_s
    taken_r, taken_d, taken_eta = [], [], []
    all_drivers = np.arange(n_drv)
    for r in _arrival_order(request).tolist():
        lo, hi = starts[r], starts[r + 1]
        for i in range(lo, hi):
            if free[drv[i]]:
                taken_r.append(r)
                taken_d.append(drv[i])
                taken_eta.append(etas[i])
                free[drv[i]] = 0
                break
        else:
            if hi - lo < _PROBE_K:
                continue  # the candidates were every driver in range, and all are taken
            # All k nearest are taken: look at every driver for this one request.
            row = request.pickup_eta(all_drivers, np.full(1, r, dtype=np.int64)).astype(float)
            row[(np.frombuffer(bytes(free), dtype=np.uint8) == 0) | np.isnan(row)] = np.inf
            best = int(np.argmin(row))
            if row[best] <= max_eta:
                taken_r.append(r)
                taken_d.append(best)
                taken_eta.append(float(row[best]))
                free[best] = 0
    in_range = np.diff(np.asarray(starts)) > 0
    return build_response(
        request,
        np.array(taken_r, dtype=np.int64),
        np.array(taken_d, dtype=np.int64),
        np.array(taken_eta),
        in_range,
    )

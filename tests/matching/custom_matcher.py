"""A researcher's matcher living outside ridesim, loaded by import path in test_plugin.py."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from matching.api import MatchRequest, MatchResponse, UnmatchedReason
from matching.candidates import candidate_pairs


class LatestFirst:
    """Serves the most recent request first (the reverse of FCFS), each with its nearest driver."""

    optimal: ClassVar[bool] = False

    def __init__(self, k: int = 5) -> None:
        self.k = k

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k}

    def pair_costs(
        self, request: MatchRequest, request_row: Any, driver_row: Any, pickup_eta_s: Any
    ) -> np.ndarray:
        return np.asarray(pickup_eta_s, dtype=np.float64)

    def match(self, request: MatchRequest) -> MatchResponse:
        reqs, drvs = request.requests, request.drivers
        pairs = candidate_pairs(request, self.k)
        free = np.ones(len(drvs), dtype=bool)
        got_r, got_d, got_eta = [], [], []
        for r in np.lexsort((-reqs.id, -reqs.requested_at)).tolist():
            mine = np.flatnonzero(pairs.request_row == r)
            ok = mine[free[pairs.driver_row[mine]]]
            if ok.size:
                i = ok[0]
                free[pairs.driver_row[i]] = False
                got_r.append(r)
                got_d.append(pairs.driver_row[i])
                got_eta.append(pairs.pickup_eta_s[i])
        order = np.argsort(got_r)
        rows = np.array(got_r, dtype=np.int64)[order]
        left = np.setdiff1d(np.arange(len(reqs)), rows)
        in_range = np.isin(left, pairs.request_row)
        reason = np.where(in_range, UnmatchedReason.OUTCOMPETED, UnmatchedReason.NO_DRIVER_IN_RANGE)
        if len(drvs) == 0:
            reason = np.full(left.size, UnmatchedReason.NO_DRIVERS)
        return MatchResponse(
            reqs.id[rows],
            drvs.id[np.array(got_d, dtype=np.int64)[order]],
            np.array(got_eta, dtype=np.float64)[order],
            reqs.id[left],
            reason,
        )

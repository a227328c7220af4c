"""Building a :class:`MatchResponse` the same way in every built-in matcher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from matching.api import MatchRequest, MatchResponse, UnmatchedReason


def build_response(
    request: MatchRequest,
    request_row: np.ndarray,
    driver_row: np.ndarray,
    pickup_eta_s: np.ndarray,
    in_range: np.ndarray,
    diagnostics: Mapping[str, Any] | None = None,
) -> MatchResponse:
    """Assignments sorted by request id, and every other open request explained.

    ``in_range[i]`` says whether request row ``i`` had any driver within max pickup ETA: it
    decides between NO_DRIVER_IN_RANGE and OUTCOMPETED.
    """
    reqs, drvs = request.requests, request.drivers
    request_row = np.asarray(request_row, dtype=np.int64)
    order = np.argsort(request_row, kind="stable")
    request_row = request_row[order]
    driver_row = np.asarray(driver_row, dtype=np.int64)[order]
    pickup_eta_s = np.array(pickup_eta_s, dtype=np.float64)[order]
    open_rows = np.ones(len(reqs), dtype=bool)
    open_rows[request_row] = False
    left = np.flatnonzero(open_rows)
    if len(drvs) == 0:
        reason = np.full(left.size, UnmatchedReason.NO_DRIVERS, dtype=np.int8)
    else:
        reason = np.where(
            np.asarray(in_range, dtype=bool)[left],
            np.int8(UnmatchedReason.OUTCOMPETED),
            np.int8(UnmatchedReason.NO_DRIVER_IN_RANGE),
        ).astype(np.int8)
    # Every column is a fresh array of the contract's dtype, so validation can be skipped.
    return MatchResponse.unchecked(
        diagnostics=dict(diagnostics or {}),
        request_id=reqs.id[request_row],
        driver_id=drvs.id[driver_row],
        pickup_eta_s=pickup_eta_s,
        unmatched_id=reqs.id[left],
        unmatched_reason=reason,
    )


def rows_with_pairs(n_requests: int, request_row: np.ndarray) -> np.ndarray:
    """Boolean per request row: does it appear in the candidate pairs?"""
    out = np.zeros(n_requests, dtype=bool)
    out[request_row] = True
    return out

"""Conversion between the contract's Python messages (:mod:`matching.api`) and their protobuf form.

Round trips are exact: every float is a ``double`` on the wire, ids and rows are ``int64``, the
seed is ``uint64``. A request always crosses the wire in its candidates form (no travel-time
function can be sent): :func:`request_to_proto` computes the candidates with
:func:`matching.candidates.to_wire` when the request has none, and :func:`request_from_proto`
returns a request whose ``pickup_eta`` is backed by those candidates.

Diagnostics travel as one JSON object; numpy scalars and arrays in them become JSON numbers and
lists, so a response's diagnostics come back equal to their JSON round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from matching.api import (
    API_VERSION,
    CandidateDrivers,
    CandidatePairs,
    MatchRequest,
    MatchResponse,
    OpenRequests,
    UnmatchedReason,
)
from matching.candidates import to_wire
from matching.wire import ridesim_matching_pb2 as pb

_UINT64_MAX = 2**64 - 1
_REASONS = frozenset(int(r) for r in UnmatchedReason)


class WireError(ValueError):
    """A protobuf message that is not a valid contract message (bad version, ragged columns...)."""


def _col(values: Iterable[Any], dtype: Any) -> np.ndarray:
    # A repeated field to a fresh numpy column. np.fromiter avoids numpy's sequence probing.
    return np.fromiter(values, dtype=dtype)


def _check_version(version: int, what: str) -> None:
    if version != API_VERSION:
        raise WireError(
            f"{what}: api_version {version} is not supported (this side speaks {API_VERSION})"
        )


# ---------------------------------------------------------------------------------------------
# MatchRequest


def request_to_proto(req: MatchRequest, k: int | None = 20) -> pb.MatchRequest:
    """The protobuf form of ``req``, with candidates.

    A request that already carries candidates sends them as they are (``k`` is not applied);
    otherwise they are computed as :func:`~matching.candidates.to_wire` ``(req, k)`` does
    (``k=None``: every pair within max pickup ETA).
    """
    if req.candidates is None:
        req = to_wire(req, k)
    c = req.candidates
    assert c is not None
    seed = int(req.seed)
    if not 0 <= seed <= _UINT64_MAX:
        raise WireError(f"MatchRequest.seed: must be in [0, 2**64), got {seed}")
    r, d = req.requests, req.drivers
    out = pb.MatchRequest(
        api_version=int(req.api_version),
        decision_time=float(req.decision_time),
        batch_id=int(req.batch_id),
        shard_id=int(req.shard_id),
        max_pickup_eta_s=float(req.max_pickup_eta_s),
        seed=seed,
        max_speed_mps=float(req.max_speed_mps),
    )
    o = out.requests
    o.id.extend(r.id.tolist())
    o.pickup_node.extend(r.pickup_node.tolist())
    o.dropoff_node.extend(r.dropoff_node.tolist())
    o.pickup_x.extend(r.pickup_xy[:, 0].tolist())
    o.pickup_y.extend(r.pickup_xy[:, 1].tolist())
    o.dropoff_x.extend(r.dropoff_xy[:, 0].tolist())
    o.dropoff_y.extend(r.dropoff_xy[:, 1].tolist())
    o.requested_at.extend(r.requested_at.tolist())
    o.quoted_price.extend(r.quoted_price.tolist())
    o.patience_s.extend(r.patience_s.tolist())
    v = out.drivers
    v.id.extend(d.id.tolist())
    v.node.extend(d.node.tolist())
    v.x.extend(d.xy[:, 0].tolist())
    v.y.extend(d.xy[:, 1].tolist())
    v.state.extend(d.state.tolist())
    v.free_at.extend(d.free_at.tolist())
    v.earnings.extend(d.earnings.tolist())
    v.online_s.extend(d.online_s.tolist())
    p = out.candidates
    p.request_row.extend(c.request_row.tolist())
    p.driver_row.extend(c.driver_row.tolist())
    p.pickup_eta_s.extend(c.pickup_eta_s.tolist())
    return out


def request_from_proto(msg: pb.MatchRequest) -> MatchRequest:
    """The :class:`MatchRequest` a protobuf request describes, in its candidates form.

    Validated like any request built by hand (dtypes, equal column lengths, sorted ids,
    ``max_pickup_eta_s > 0``), and candidate rows must point into the tables; a violation
    raises :class:`WireError`.
    """
    _check_version(msg.api_version, "MatchRequest")
    o, v, p = msg.requests, msg.drivers, msg.candidates
    try:
        requests = OpenRequests(
            id=_col(o.id, np.int64),
            pickup_node=_col(o.pickup_node, np.int64),
            dropoff_node=_col(o.dropoff_node, np.int64),
            pickup_xy=_xy(o.pickup_x, o.pickup_y, "requests.pickup"),
            dropoff_xy=_xy(o.dropoff_x, o.dropoff_y, "requests.dropoff"),
            requested_at=_col(o.requested_at, np.float64),
            quoted_price=_col(o.quoted_price, np.float64),
            patience_s=_col(o.patience_s, np.float64),
        )
        state = _col(v.state, np.int64)
        if state.size and (state.min() < 0 or state.max() > 255):
            raise WireError("CandidateDrivers.state: values must fit in 0..255")
        drivers = CandidateDrivers(
            id=_col(v.id, np.int64),
            node=_col(v.node, np.int64),
            xy=_xy(v.x, v.y, "drivers."),
            state=state.astype(np.uint8),
            free_at=_col(v.free_at, np.float64),
            earnings=_col(v.earnings, np.float64),
            online_s=_col(v.online_s, np.float64),
        )
        candidates = CandidatePairs(
            request_row=_col(p.request_row, np.int64),
            driver_row=_col(p.driver_row, np.int64),
            pickup_eta_s=_col(p.pickup_eta_s, np.float64),
        )
        _check_rows(candidates.request_row, len(requests), "request_row")
        _check_rows(candidates.driver_row, len(drivers), "driver_row")
        return MatchRequest(
            decision_time=msg.decision_time,
            batch_id=msg.batch_id,
            shard_id=msg.shard_id,
            requests=requests,
            drivers=drivers,
            max_pickup_eta_s=msg.max_pickup_eta_s,
            seed=msg.seed,
            travel_time=None,
            candidates=candidates,
            max_speed_mps=msg.max_speed_mps,
            api_version=msg.api_version,
        )
    except WireError:
        raise
    except ValueError as e:
        raise WireError(str(e)) from e


def _xy(x: Iterable[float], y: Iterable[float], what: str) -> np.ndarray:
    xs, ys = _col(x, np.float64), _col(y, np.float64)
    if xs.size != ys.size:
        raise WireError(f"{what}x has {xs.size} rows but {what}y has {ys.size}")
    return np.stack([xs, ys], axis=1)


def _check_rows(rows: np.ndarray, n: int, what: str) -> None:
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise WireError(f"CandidatePairs.{what}: rows must be in [0, {n})")


# ---------------------------------------------------------------------------------------------
# MatchResponse


def response_to_proto(resp: MatchResponse) -> pb.MatchResponse:
    """The protobuf form of ``resp``; its diagnostics become one JSON object."""
    reasons = np.asarray(resp.unmatched_reason)
    bad = ~np.isin(reasons, sorted(_REASONS))
    if bad.any():
        raise WireError(f"MatchResponse.unmatched_reason: unknown reasons {reasons[bad]}")
    out = pb.MatchResponse(
        api_version=int(resp.api_version),
        diagnostics_json=diagnostics_to_json(resp.diagnostics),
    )
    out.request_id.extend(np.asarray(resp.request_id, dtype=np.int64).tolist())
    out.driver_id.extend(np.asarray(resp.driver_id, dtype=np.int64).tolist())
    out.pickup_eta_s.extend(np.asarray(resp.pickup_eta_s, dtype=np.float64).tolist())
    out.unmatched_id.extend(np.asarray(resp.unmatched_id, dtype=np.int64).tolist())
    out.unmatched_reason.extend(reasons.astype(np.int64).tolist())
    return out


def response_from_proto(msg: pb.MatchResponse) -> MatchResponse:
    """The :class:`MatchResponse` a protobuf response describes (validated)."""
    _check_version(msg.api_version, "MatchResponse")
    reasons = _col(msg.unmatched_reason, np.int64)
    bad = ~np.isin(reasons, sorted(_REASONS))
    if bad.any():
        raise WireError(f"MatchResponse.unmatched_reason: unknown reasons {reasons[bad]}")
    try:
        diagnostics = json.loads(msg.diagnostics_json) if msg.diagnostics_json else {}
    except json.JSONDecodeError as e:
        raise WireError(f"MatchResponse.diagnostics_json: not JSON: {e}") from e
    if not isinstance(diagnostics, dict):
        raise WireError("MatchResponse.diagnostics_json: expected a JSON object")
    try:
        return MatchResponse(
            request_id=_col(msg.request_id, np.int64),
            driver_id=_col(msg.driver_id, np.int64),
            pickup_eta_s=_col(msg.pickup_eta_s, np.float64),
            unmatched_id=_col(msg.unmatched_id, np.int64),
            unmatched_reason=reasons.astype(np.int8),
            diagnostics=diagnostics,
            api_version=msg.api_version,
        )
    except ValueError as e:
        raise WireError(str(e)) from e


def diagnostics_to_json(diagnostics: Mapping[str, Any]) -> str:
    """Diagnostics as compact JSON text (keys sorted); numpy values become plain JSON."""
    if not diagnostics:
        return ""
    return json.dumps(
        dict(diagnostics), sort_keys=True, separators=(",", ":"), default=_json_default
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"diagnostics value {obj!r} of type {type(obj).__name__} is not JSON")


__all__ = [
    "WireError",
    "diagnostics_to_json",
    "request_from_proto",
    "request_to_proto",
    "response_from_proto",
    "response_to_proto",
]

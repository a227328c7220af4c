"""Candidate generation: each open request's k nearest drivers by pickup ETA.

Batch matchers never look at all ``n_requests x n_drivers`` pairs of a large batch: they work on
a sparse candidate graph, each request joined to its ``k`` drivers with the smallest pickup ETA
that are within ``max_pickup_eta_s``. This module builds that graph, exactly (not a heuristic):

* small batches (``n_requests * n_drivers <= DENSE_LIMIT``): the dense ETA matrix;
* large batches with zone lower bounds (``request.eta_bounds``, a real city's table): drivers
  bucketed by zone; each request evaluates the zones in order of their lower bound until it
  holds ``k`` drivers, then exactly the zones whose bound does not exceed its k-th ETA so far
  (no unevaluated driver can then beat or tie its k-th), so the work grows with the answer,
  not with the city;
* other large batches with a finite ``max_speed_mps``: a KD-tree over driver positions. A
  driver ``d`` metres away in a straight line needs at least ``d / max_speed_mps`` seconds, so
  drivers beyond ``max_pickup_eta_s * max_speed_mps`` are never probed, and a request whose
  probe of the nearest drivers by distance cannot prove that no unprobed driver beats its k-th
  ETA is probed again with twice as many neighbours;
* large batches without a speed bound: the dense matrix, a block of requests at a time.

Requests that crossed a wire carry their candidates (``request.candidates``); those are used
as sent, trimmed to ``k`` per request and to ``max_pickup_eta_s``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.spatial import cKDTree

from matching.api import CandidatePairs, EtaBounds, MatchRequest

DENSE_LIMIT = 200_000
"""Largest ``n_requests * n_drivers`` for which the dense ETA matrix is computed at once."""

ZONE_BLOCK = 1 << 21
"""Request x zone bounds held at once by the zone search (16 MiB of float64)."""

PARTIAL_ZONES = 48
"""Zones the zone search orders per request before it falls back to ordering them all."""

# Slack on the straight-line lower bound, so that the last-bit difference between the KD-tree's
# distance and the travel-time function's own arithmetic can never make a bound look stronger
# than it is.
_BOUND_SLACK = 1e-9


def candidate_pairs(request: MatchRequest, k: int) -> CandidatePairs:
    """Each open request's up-to-``k`` nearest drivers by pickup ETA, within max pickup ETA.

    Sorted by (request_row, pickup_eta_s, driver id); ties in ETA go to the lower driver id.
    """
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"candidate_pairs: k must be a positive integer, got {k!r}")
    k = int(k)
    if request.candidates is not None:
        c = request.candidates
        return _top_k(
            c.request_row, c.driver_row, c.pickup_eta_s, request.max_pickup_eta_s, k, dedupe=True
        )
    n_req, n_drv = len(request.requests), len(request.drivers)
    if n_req == 0 or n_drv == 0:
        return empty_pairs()
    if n_req * n_drv <= DENSE_LIMIT:
        return _dense(request, np.arange(n_req, dtype=np.int64), k)
    if request.eta_bounds is not None:
        return _zoned(request, request.eta_bounds, k)
    if math.isfinite(request.max_speed_mps) and request.max_speed_mps > 0:
        return _kdtree(request, k)
    # No speed bound: distance proves nothing, so every pair is evaluated, a block at a time.
    block = max(1, DENSE_LIMIT // n_drv)
    parts = [
        _dense(request, np.arange(s, min(s + block, n_req), dtype=np.int64), k)
        for s in range(0, n_req, block)
    ]
    return _concat(parts)


def empty_pairs() -> CandidatePairs:
    """A candidate graph with no pairs."""
    z = np.zeros(0, dtype=np.int64)
    return CandidatePairs(z, z, np.zeros(0))


def _dense(request: MatchRequest, rows: np.ndarray, k: int) -> CandidatePairs:
    """Top-k for the given request rows from their full rows of the ETA matrix."""
    n_drv = len(request.drivers)
    d = np.arange(n_drv, dtype=np.int64)
    eta = np.broadcast_to(request.pickup_eta(d[None, :], rows[:, None]), (rows.size, n_drv))
    max_eta = request.max_pickup_eta_s
    if k < n_drv:
        # The k-th smallest ETA of each row: anything above it can never be kept. Pairs tied
        # with it are all kept here and trimmed by driver id in _top_k.
        kth = np.partition(eta, k - 1, axis=1)[:, k - 1 : k]
        keep = (eta <= kth) & (eta <= max_eta)
    else:
        keep = eta <= max_eta
    r_idx, d_idx = np.nonzero(keep)
    return _top_k(rows[r_idx], d_idx, eta[r_idx, d_idx], max_eta, k)


def _zoned(request: MatchRequest, bounds: EtaBounds, k: int) -> CandidatePairs:
    """Top-k by zone buckets and zone lower bounds, exact given the bounds."""
    drivers = request.drivers
    zone = bounds.node_zone[drivers.node]
    # Drivers grouped by zone (id order within a zone); only zones that hold drivers count.
    by_zone = np.argsort(zone, kind="stable")
    occupied, size = np.unique(zone, return_counts=True)
    ptr = np.zeros(occupied.size + 1, dtype=np.int64)
    np.cumsum(size, out=ptr[1:])
    n_req = len(request.requests)
    block = max(1, ZONE_BLOCK // occupied.size)
    parts = [
        _zoned_block(
            request,
            bounds,
            np.arange(lo, min(lo + block, n_req), dtype=np.int64),
            occupied,
            size,
            ptr,
            by_zone,
            k,
        )
        for lo in range(0, n_req, block)
    ]
    return _concat(parts)


def _zoned_block(
    request: MatchRequest,
    bounds: EtaBounds,
    rows: np.ndarray,
    occupied: np.ndarray,
    size: np.ndarray,
    ptr: np.ndarray,
    by_zone: np.ndarray,
    k: int,
    *,
    partial: bool = True,
) -> CandidatePairs:
    """Top-k for request ``rows``: with ``partial``, only each request's PARTIAL_ZONES
    nearest zones (by bound) are ordered, and the requests that might need a zone beyond
    them are redone with every zone ordered."""
    max_eta = float(request.max_pickup_eta_s)
    pickup = request.requests.pickup_node[rows]
    # Each request's occupied zones by lower bound (one contiguous row of bounds each).
    lb = bounds.into_node_s[pickup][:, occupied].astype(np.float64) * bounds.scale
    n_occ = lb.shape[1]
    m = min(n_occ, PARTIAL_ZONES) if partial else n_occ
    if m < n_occ:
        # The m least bounds of each row, then ordered: every other zone's bound is at least
        # the m-th (what argpartition guarantees).
        part = np.argpartition(lb, m - 1, axis=1)[:, :m]
        lb = np.take_along_axis(lb, part, axis=1)
        o = np.argsort(lb, axis=1, kind="stable")
        zorder = np.take_along_axis(part, o, axis=1)
        lb = np.take_along_axis(lb, o, axis=1)
    else:
        zorder = np.argsort(lb, axis=1, kind="stable")
        lb = np.take_along_axis(lb, zorder, axis=1)
    drivers_upto = np.cumsum(size[zorder], axis=1)
    in_reach = (lb <= max_eta).sum(axis=1)  # a prefix: lb is sorted (inf last)
    # Round 1: the nearest zones (by bound) that together hold k drivers.
    first = np.minimum((drivers_upto < k).sum(axis=1) + 1, in_reach)
    w1, d1, e1 = _zone_pairs(request, rows, zorder, np.zeros_like(first), first, ptr, by_zone)
    # The k-th smallest ETA within max_eta so far (max_eta when fewer than k are in range):
    # a driver in a zone whose bound exceeds it can neither beat nor tie the k-th.
    order = np.lexsort((e1, w1))
    w1s, e1s = w1[order], e1[order]
    starts = np.searchsorted(w1s, np.arange(rows.size))
    in_range = np.bincount(w1s[e1s <= max_eta], minlength=rows.size)
    kth = np.full(rows.size, max_eta)
    full = in_range >= k
    kth[full] = e1s[starts[full] + k - 1]
    # Round 2: exactly the remaining zones whose bound is at most that.
    last = np.maximum((lb <= kth[:, None]).sum(axis=1), first)
    w2, d2, e2 = _zone_pairs(request, rows, zorder, first, last, ptr, by_zone)
    w, d, eta = np.r_[w1, w2], np.r_[d1, d2], np.r_[e1, e2]
    # Only pairs at or below a request's k-th ETA so far can be among its k nearest: the
    # final selection sorts those few, not every pair evaluated.
    keep = eta <= kth[w]
    redo = np.zeros(rows.size, dtype=bool)
    if m < n_occ:
        # A zone beyond the m ordered ones has a bound >= lb[:, m - 1]; it can matter only
        # where that is at most the k-th ETA (which also covers a round 1 short of k).
        redo = lb[:, m - 1] <= kth
        keep &= ~redo[w]
    done = _top_k(rows[w[keep]], d[keep], eta[keep], max_eta, k)
    if not redo.any():
        return done
    again = _zoned_block(
        request, bounds, rows[redo], occupied, size, ptr, by_zone, k, partial=False
    )
    return _concat([done, again])


def _zone_pairs(
    request: MatchRequest,
    rows: np.ndarray,
    zorder: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    ptr: np.ndarray,
    by_zone: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in ``rows``, driver row, ETA) for every driver in the zones
    ``zorder[i, lo[i]:hi[i]]`` of each position ``i``."""
    n_z = hi - lo
    which = np.repeat(np.arange(rows.size), n_z)
    col = _ragged(n_z) + np.repeat(lo, n_z)
    zones = zorder[which, col]
    n_d = ptr[zones + 1] - ptr[zones]
    w = np.repeat(which, n_d)
    d = by_zone[np.repeat(ptr[zones], n_d) + _ragged(n_d)]
    eta = np.asarray(request.pickup_eta(d, rows[w]), dtype=np.float64)
    return w, d, eta


def _ragged(lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(n) for n in lengths])`` without the loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def _kdtree(request: MatchRequest, k: int) -> CandidatePairs:
    """Top-k via a KD-tree over driver positions, exact given ``max_speed_mps``."""
    n_drv = len(request.drivers)
    vmax = float(request.max_speed_mps)
    max_eta = float(request.max_pickup_eta_s)
    radius = max_eta * vmax * (1 + _BOUND_SLACK)
    tree = cKDTree(request.drivers.xy)
    pickup_xy = request.requests.pickup_xy
    todo = np.arange(len(request.requests), dtype=np.int64)
    # A margin over k, since ETA order differs from straight-line order; rows it does not
    # settle are probed again with twice as many.
    probe = min(n_drv, k + max(4, k // 4))
    parts: list[CandidatePairs] = []
    while todo.size:
        dist, idx = tree.query(pickup_xy[todo], k=probe, distance_upper_bound=radius)
        dist = np.reshape(dist, (todo.size, probe))
        idx = np.reshape(idx, (todo.size, probe)).astype(np.int64)
        found = idx < n_drv  # missing neighbours come back as index n_drv, distance inf
        eta = np.broadcast_to(
            request.pickup_eta(np.minimum(idx, n_drv - 1), todo[:, None]), idx.shape
        )
        eta = np.where(found, eta, np.inf)
        # Per row: order by driver id, then stably by ETA, so ties go to the lower driver id.
        # Two small row-wise sorts are much cheaper than one lexsort over all pairs.
        by_id = np.argsort(idx, axis=1)
        idx = np.take_along_axis(idx, by_id, axis=1)
        eta = np.take_along_axis(eta, by_id, axis=1)
        best = np.argsort(eta, axis=1, kind="stable")[:, :k]
        idx = np.take_along_axis(idx, best, axis=1)
        eta = np.take_along_axis(eta, best, axis=1)
        keep = eta <= max_eta  # a prefix of each row: sorted, with inf and NaN last
        if probe >= n_drv:
            parts.append(_from_rows(todo, idx, eta, keep))
            break
        # A request is settled when its probe was not full (every driver in range was seen),
        # or when no unprobed driver can reach it within max_eta, or when its k-th kept ETA is
        # strictly below the least ETA any unprobed driver could have.
        full = found[:, -1]
        bound = dist[:, -1] / vmax * (1 - _BOUND_SLACK)
        has_k = keep[:, -1] if keep.shape[1] == k else np.zeros(todo.size, dtype=bool)
        kth = np.where(has_k, eta[:, -1], np.inf)
        settled = ~full | (bound > max_eta) | (has_k & (kth < bound))
        parts.append(_from_rows(todo[settled], idx[settled], eta[settled], keep[settled]))
        todo = todo[~settled]
        probe = min(n_drv, probe * 2)
    return _concat(parts)


def _top_k(
    r: np.ndarray, d: np.ndarray, eta: np.ndarray, max_eta: float, k: int, *, dedupe: bool = False
) -> CandidatePairs:
    """Pairs within ``max_eta``, at most k per request, sorted by (request, eta, driver)."""
    r = np.asarray(r, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    eta = np.asarray(eta, dtype=np.float64)
    ok = eta <= max_eta  # also drops NaN
    r, d, eta = r[ok], d[ok], eta[ok]
    order = _order(r, eta, d)
    r, d, eta = r[order], d[order], eta[order]
    if dedupe and r.size:
        # A wire sender may repeat a pair; the first (smallest ETA) wins.
        key = np.stack([r, d], axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        first.sort()
        r, d, eta = r[first], d[first], eta[first]
    if r.size:
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        lengths = np.diff(np.r_[starts, r.size])
        rank = np.arange(r.size) - np.repeat(starts, lengths)
        keep = rank < k
        r, d, eta = r[keep], d[keep], eta[keep]
    return CandidatePairs(r, d, eta)


def _order(r: np.ndarray, eta: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``np.lexsort((d, eta, r))`` (stable, by request, then ETA, then driver), via one sort
    of a packed integer key when the three fit in 63 bits: ETAs replaced by their exact rank
    among the distinct values. Several times faster than the three-key lexsort."""
    if r.size < 2:
        return np.arange(r.size, dtype=np.int64)
    values, rank = np.unique(eta, return_inverse=True)
    bits_d = max(1, int(d.max()).bit_length())
    bits_e = max(1, int(values.size - 1).bit_length())
    bits_r = max(1, int(r.max()).bit_length())
    if r.min() < 0 or d.min() < 0 or bits_r + bits_e + bits_d > 63:
        return np.lexsort((d, eta, r))
    key = (r << (bits_e + bits_d)) | (rank.astype(np.int64).ravel() << bits_d) | d
    return np.argsort(key, kind="stable")


def _from_rows(
    rows: np.ndarray, idx: np.ndarray, eta: np.ndarray, keep: np.ndarray
) -> CandidatePairs:
    """Pairs from per-row sorted (rows, k) blocks; row-major order is the canonical order."""
    r = np.broadcast_to(rows[:, None], idx.shape)
    return CandidatePairs(r[keep], idx[keep], eta[keep])


def _concat(parts: list[CandidatePairs]) -> CandidatePairs:
    """Join canonically sorted pair sets over disjoint request rows, keeping the order."""
    if not parts:
        return empty_pairs()
    if len(parts) == 1:
        return parts[0]
    r = np.concatenate([p.request_row for p in parts])
    d = np.concatenate([p.driver_row for p in parts])
    eta = np.concatenate([p.pickup_eta_s for p in parts])
    order = np.argsort(r, kind="stable")  # each row's pairs are already in (eta, driver) order
    return CandidatePairs(r[order], d[order], eta[order])


def to_wire(request: MatchRequest, k: int | None = None) -> MatchRequest:
    """The same request as it crosses a wire: ``travel_time`` dropped, candidates precomputed.

    ``k=None`` sends every pair within max pickup ETA, so any matcher sees exactly the ETAs it
    would have seen from the oracle; a finite ``k`` sends each request's k nearest.
    """
    n_drv = len(request.drivers)
    pairs = candidate_pairs(request, max(1, n_drv) if k is None else k)
    return replace(request, travel_time=None, candidates=pairs, eta_bounds=None)

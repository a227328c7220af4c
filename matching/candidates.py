"""Candidate generation: each open request's k nearest drivers by pickup ETA.

Batch matchers never look at all ``n_requests x n_drivers`` pairs of a large batch: they work on
a sparse candidate graph, each request joined to its ``k`` drivers with the smallest pickup ETA
that are within ``max_pickup_eta_s``. This module builds that graph, exactly (not a heuristic):

* small batches (``n_requests * n_drivers <= DENSE_LIMIT``): the dense ETA matrix;
* large batches with zone lower bounds (``request.eta_bounds``, a real city's table): drivers
  bucketed by zone and, within a zone, by how long until they are free; each request takes
  the zones in order of their lower bound (each node's nearest zones are ordered once per
  bounds table, not per batch): first whole zones until they hold ``FIRST_ROUND * k``
  drivers, then, in stages, only the drivers whose wait plus their zone's bound does not
  exceed its k-th ETA so far (no other driver can beat or tie it), so the work grows with
  the answer, not with the city;
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
import weakref
from dataclasses import replace

import numpy as np

from matching.api import CandidatePairs, EtaBounds, MatchRequest

DENSE_LIMIT = 200_000
"""Largest ``n_requests * n_drivers`` for which the dense ETA matrix is computed at once."""

ZONE_BLOCK = 1 << 21
"""Request x zone values held at once by the zone search (16 MiB of float64)."""

FIRST_ROUND = 2
"""The zone search's first round takes whole zones until they hold this many times k drivers:
their k-th ETA bounds the rest of the search (measured on Milan batches, 2 evaluates about
half the ETAs of 1 and fewer than 3 or 4)."""

STATIC_ZONES = 128
"""Zones per node kept in order of bound (computed once per bounds table, 8 bytes each): a
request looks through its pickup's nearest zones in order; zones beyond them are looked up,
unordered, only for the requests whose k-th ETA reaches that far."""

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
    zorder, zbound = _static_order(bounds)
    buckets = _Buckets(request, bounds)
    pickup = request.requests.pickup_node
    n_req = len(request.requests)
    block = max(1, ZONE_BLOCK // zorder.shape[1])
    limited = zorder.shape[1] < bounds.n_zones
    parts = []
    for lo in range(0, n_req, block):
        rows = np.arange(lo, min(lo + block, n_req), dtype=np.int64)
        nodes = pickup[rows]
        parts.append(
            _zoned_rows(request, buckets, rows, zorder[nodes], zbound[nodes], k, limited=limited)
        )
    return _concat(parts)


class _Buckets:
    """The batch's drivers grouped by zone and, within a zone, ordered by how long until they
    are free (then by row): the drivers of zone ``z`` that are free within ``t`` seconds are
    one prefix of its group, found by one binary search."""

    def __init__(self, request: MatchRequest, bounds: EtaBounds) -> None:
        drivers = request.drivers
        max_eta = float(request.max_pickup_eta_s)
        # The wait exactly as MatchRequest.pickup_eta computes it, so ETAs built from it are
        # the oracle's to the last bit.
        wait = np.maximum(drivers.free_at - request.decision_time, 0.0)
        # A driver still busy beyond max_eta (less the least bound, which is <= 0 only for odd
        # tables) can never be in range: left out, which also bounds the keys below.
        floor = min(0.0, _least_bound(bounds) * bounds.scale)
        cap = max_eta - floor + 1.0
        usable = np.flatnonzero(wait <= cap)  # also drops NaN
        zone = bounds.node_zone[drivers.node[usable]]
        wait = wait[usable]
        by = np.lexsort((wait, zone))  # stable: equal waits keep row order
        self.row = usable[by]
        self.node = drivers.node[self.row]
        self.wait = wait[by]
        zone = zone[by]
        n_zones = bounds.n_zones
        self.ptr = np.searchsorted(zone, np.arange(n_zones + 1))
        self.size = np.diff(self.ptr)
        # Search keys zone * span + wait: span is a power of two above every wait, so zone
        # blocks never overlap and zone * span is exact.
        self.span = float(2.0 ** math.ceil(math.log2(cap + 2.0)))
        self.cap = cap
        self.key = zone * self.span + self.wait
        # Rounding of the keys and of (limit - bound) is far below this, so a search with it
        # can only take in a driver too many, never leave one out.
        self.slack = 1e-6 * (1.0 + abs(max_eta)) + 8 * float(np.spacing(n_zones * self.span))

    def upto(self, zone: np.ndarray, within: np.ndarray) -> np.ndarray:
        """End of the prefix of each ``zone``'s group whose wait is at most ``within``
        (never short of the drivers whose ``wait + bound`` can be at most the limit)."""
        within = np.minimum(within + self.slack, self.cap)
        hi = np.searchsorted(self.key, zone * self.span + within, side="right")
        out: np.ndarray = np.clip(hi, self.ptr[zone], self.ptr[zone + 1])
        return out


def _zoned_rows(
    request: MatchRequest,
    buckets: _Buckets,
    rows: np.ndarray,
    zorder: np.ndarray,
    zbound: np.ndarray,
    k: int,
    *,
    limited: bool,
) -> CandidatePairs:
    """Top-k for request ``rows``, given each row's nearest zones in order of bound
    (``zorder``, their bounds unscaled in ``zbound``; ``limited``: not every zone).

    Round 1 evaluates every driver of the nearest zones that together hold ``FIRST_ROUND *
    k`` drivers; their k-th ETA (max_eta when fewer are in range) is an upper bound on the
    final k-th. Later stages evaluate, in the next zones whose bound is at most the k-th so
    far, the drivers whose wait plus the zone's bound is at most it (nobody else can beat or
    tie the k-th), and tighten the k-th. Zones beyond the ordered ones are looked up
    (unordered) only for the rows whose last ordered bound does not exceed the k-th.
    """
    max_eta = float(request.max_pickup_eta_s)
    eta_bounds = request.eta_bounds
    assert eta_bounds is not None
    scale = eta_bounds.scale
    lb = zbound.astype(np.float64) * scale
    n_rows, width = lb.shape
    upto = np.cumsum(buckets.size[zorder], axis=1)
    in_reach = (lb <= max_eta).sum(axis=1)  # a prefix: lb is sorted (inf last)
    first = np.minimum((upto < FIRST_ROUND * k).sum(axis=1) + 1, in_reach)
    # Round 1: whole zones [0, first).
    which = np.repeat(np.arange(n_rows), first)
    zone = zorder[which, _ragged(first)]
    w1, d1, e1 = _bucket_pairs(
        request, buckets, rows, which, buckets.ptr[zone], buckets.ptr[zone + 1]
    )
    kth = _kth_within(w1, e1, n_rows, k, np.full(n_rows, max_eta))
    keep = e1 <= kth[w1]
    w, d, eta = w1[keep], d1[keep], e1[keep]
    # Then the ordered zones [done, last) whose bound is at most the k-th, cut by wait, in
    # stages that double the zones looked at: each stage's k-th (never larger than the
    # last) narrows the next. Rows stop when no zone left in order can hold a driver.
    done = first
    idx = np.arange(n_rows)
    while True:
        last = (lb[idx] <= kth[idx, None]).sum(axis=1)
        go = last > done[idx]
        idx = idx[go]
        if idx.size == 0:
            break
        upto = np.minimum(last[go], 2 * done[idx] + 1)
        n_z = upto - done[idx]
        which = np.repeat(idx, n_z)
        col = _ragged(n_z) + np.repeat(done[idx], n_z)
        zone = zorder[which, col]
        hi = buckets.upto(zone, kth[which] - lb[which, col])
        w2, d2, e2 = _bucket_pairs(request, buckets, rows, which, buckets.ptr[zone], hi)
        done[idx] = upto
        w, d, eta = np.concatenate([w, w2]), np.concatenate([d, d2]), np.concatenate([eta, e2])
        kth = _kth_within(w, eta, n_rows, k, kth)
        keep = eta <= kth[w]
        w, d, eta = w[keep], d[keep], eta[keep]
    if limited:
        # A zone beyond the ordered ones has a bound >= the last ordered one's: it can
        # matter only where that is at most the k-th (which also covers rows short of k).
        wide = np.flatnonzero(lb[:, width - 1] <= kth)
        if wide.size:
            w2, d2, e2 = _beyond(request, buckets, rows, wide, zorder[wide], kth[wide])
            w, d, eta = np.concatenate([w, w2]), np.concatenate([d, d2]), np.concatenate([eta, e2])
            kth = _kth_within(w, eta, n_rows, k, kth)
            keep = eta <= kth[w]
            w, d, eta = w[keep], d[keep], eta[keep]
    return _first_k(rows, w, d, eta, k)


def _beyond(
    request: MatchRequest,
    buckets: _Buckets,
    rows: np.ndarray,
    wide: np.ndarray,
    ordered: np.ndarray,
    kth: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round 2 over the zones not in ``ordered`` for positions ``wide``: every occupied zone
    whose bound is at most the position's ``kth``, cut by wait."""
    eta_bounds = request.eta_bounds
    assert eta_bounds is not None
    occupied = np.flatnonzero(buckets.size)
    into = eta_bounds.into_node_s[request.requests.pickup_node[rows[wide]]]
    lb = into[:, occupied].astype(np.float64) * eta_bounds.scale
    near = lb <= kth[:, None]
    # The ordered zones were done already: struck out through their column among occupied.
    column = np.full(buckets.size.size, -1, dtype=np.int64)
    column[occupied] = np.arange(occupied.size)
    col = column[ordered]
    hit = col >= 0
    near[np.nonzero(hit)[0], col[hit]] = False
    i, c = np.nonzero(near)
    zone = occupied[c]
    hi = buckets.upto(zone, kth[i] - lb[i, c])
    return _bucket_pairs(request, buckets, rows, wide[i], buckets.ptr[zone], hi)


def _bucket_pairs(
    request: MatchRequest,
    buckets: _Buckets,
    rows: np.ndarray,
    which: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in ``rows``, driver row, ETA) for the bucketed drivers ``lo[i]:hi[i]`` of
    each entry ``i``, asked for position ``which[i]``."""
    n_d = hi - lo
    w = np.repeat(which, n_d)
    at = np.repeat(lo, n_d) + _ragged(n_d)
    pickup = request.requests.pickup_node[rows[w]]
    tt = request.travel_time
    assert tt is not None
    eta = buckets.wait[at] + np.asarray(tt(buckets.node[at], pickup), dtype=np.float64)
    return w, buckets.row[at], eta


def _kth_within(w: np.ndarray, eta: np.ndarray, n_rows: int, k: int, cap: np.ndarray) -> np.ndarray:
    """Per position ``w``, the k-th smallest of its ETAs that are at most ``cap`` (``cap``
    itself where it has fewer than k of them)."""
    ok = eta <= cap[w]
    w, eta = w[ok], eta[ok]
    count = np.bincount(w, minlength=n_rows)
    kth = cap.copy()
    need = count >= k
    if not need.any():
        return kth
    sel = need[w]
    w, eta = w[sel], eta[sel]
    # Each position's ETAs in one row of a grid padded with inf, one grid per width class
    # (the power of two at or above its count, so padding at most doubles it), and a row-wise
    # partition finds the k-th: linear work, where sorting every pair would not be.
    rows = np.flatnonzero(need)
    mant, exp = np.frexp(count[rows].astype(np.float64))
    cls = np.zeros(n_rows, dtype=np.int8)
    cls[rows] = exp - (mant == 0.5)
    # Pairs grouped by (class, position): two stable sorts of small integers (radix sorts).
    order = np.argsort(w.astype(np.uint16) if n_rows <= 1 << 16 else w, kind="stable")
    order = order[np.argsort(cls[w[order]], kind="stable")]
    w, eta = w[order], eta[order]
    rows = rows[np.argsort(cls[rows], kind="stable")]
    pos = _ragged(count[rows])
    classes, first = np.unique(cls[rows], return_index=True)
    ends = [*first[1:].tolist(), rows.size]
    lo = 0
    for c, r0, r1 in zip(classes.tolist(), first.tolist(), ends, strict=True):
        rc = rows[r0:r1]
        hi = lo + int(count[rc].sum())
        grid = np.full((rc.size, max(1 << c, k)), np.inf)
        grid[np.repeat(np.arange(rc.size), count[rc]), pos[lo:hi]] = eta[lo:hi]
        kth[rc] = np.partition(grid, k - 1, axis=1)[:, k - 1]
        lo = hi
    return kth


def _least_bound(bounds: EtaBounds) -> float:
    """The least (unscaled) bound of ``bounds``, computed once per bounds table."""
    return float(_static_entry(bounds)[2])


def _static_order(bounds: EtaBounds) -> tuple[np.ndarray, np.ndarray]:
    """Each node's STATIC_ZONES nearest zones by bound (ascending; all zones when there are
    no more) and those bounds, unscaled: ``(zones int32 (n, m), bounds (n, m))``. A scale
    changes no order, so this is computed once per bounds table and kept while it lives."""
    zones, zbound, _ = _static_entry(bounds)
    return zones, zbound


_STATIC: dict[
    tuple[int, int], tuple[weakref.ref[np.ndarray], tuple[np.ndarray, np.ndarray, float]]
] = {}


def _static_entry(bounds: EtaBounds) -> tuple[np.ndarray, np.ndarray, float]:
    into = bounds.into_node_s
    n, n_zones = into.shape
    m = min(n_zones, STATIC_ZONES)
    key = (id(into), m)
    hit = _STATIC.get(key)
    if hit is not None and hit[0]() is into:
        return hit[1]
    zones = np.empty((n, m), dtype=np.int32)
    zbound = np.empty((n, m), dtype=into.dtype)
    least = math.inf
    step = max(1, ZONE_BLOCK // max(1, n_zones))
    for lo in range(0, n, step):
        b = np.asarray(into[lo : lo + step])
        if b.size:
            least = min(least, float(b.min()))
        part = np.argpartition(b, m - 1, axis=1)[:, :m] if m < n_zones else None
        if part is not None:
            b = np.take_along_axis(b, part, axis=1)
        o = np.argsort(b, axis=1, kind="stable")
        zones[lo : lo + step] = o if part is None else np.take_along_axis(part, o, axis=1)
        zbound[lo : lo + step] = np.take_along_axis(b, o, axis=1)
    entry = (zones, zbound, least if math.isfinite(least) else 0.0)

    def forget(_: object) -> None:
        _STATIC.pop(key, None)

    _STATIC[key] = (weakref.ref(into, forget), entry)
    return entry


def _ragged(lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(n) for n in lengths])`` without the loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    out: np.ndarray = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    return out


def _kdtree(request: MatchRequest, k: int) -> CandidatePairs:
    """Top-k via a KD-tree over driver positions, exact given ``max_speed_mps``."""
    n_drv = len(request.drivers)
    vmax = float(request.max_speed_mps)
    max_eta = float(request.max_pickup_eta_s)
    radius = max_eta * vmax * (1 + _BOUND_SLACK)
    # deferred: a tenth of a second to import, for spaces without zone bounds (a plane) only
    from scipy.spatial import cKDTree

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


def _first_k(
    rows: np.ndarray, w: np.ndarray, d: np.ndarray, eta: np.ndarray, k: int
) -> CandidatePairs:
    """The first k pairs of each position ``w`` by (ETA, driver), in canonical order, from
    distinct pairs that are about k per position (all within range): each position's pairs
    in one row of a padded grid, sorted row by row, which beats one global sort by far."""
    n_rows = rows.size
    count = np.bincount(w, minlength=n_rows)
    width = int(count.max()) if w.size else 0
    if w.size == 0 or n_rows * width > 4 * w.size + (1 << 16):
        return _top_k(rows[w], d, eta, math.inf, k)
    by = np.argsort(w.astype(np.uint16) if n_rows <= 1 << 16 else w, kind="stable")
    w, d, eta = w[by], d[by], eta[by]
    col = np.arange(w.size) - (np.cumsum(count) - count)[w]
    grid_e = np.full((n_rows, width), np.inf)
    grid_d = np.full((n_rows, width), np.iinfo(np.int64).max)
    grid_e[w, col] = eta
    grid_d[w, col] = d
    order = np.lexsort((grid_d, grid_e), axis=-1)
    take = np.minimum(count, k)
    r = np.repeat(np.arange(n_rows), take)
    c = order[r, _ragged(take)]
    return CandidatePairs(rows[r], grid_d[r, c], grid_e[r, c])


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

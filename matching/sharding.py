"""Geo-partitioned matcher shards: which shard owns each access node.

A sharded matcher splits the city into contiguous areas; each shard sees only the requests
whose pickup lies in its area and the drivers standing (or heading) there, and is asked
independently (in production, by a separate process). Smaller batches are cheaper, but no
driver can cross a shard border to a request, so matching quality drops near the borders: the
simulator measures both sides.

The partition is a recursive coordinate bisection: split the nodes along the longer side of
their bounding box at the weighted median, recurse until there are ``n_shards`` parts (shard
counts that are not powers of two split proportionally). Deterministic, balanced by weight
(e.g. expected pickups per node), and contiguous for road networks.
"""

from __future__ import annotations

import numpy as np


def partition_nodes(xy: np.ndarray, n_shards: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Shard id (0..n_shards-1) of every node at planar ``xy``, balancing total ``weights``."""
    xy = np.asarray(xy, dtype=np.float64)
    n = xy.shape[0]
    if n_shards < 1:
        raise ValueError(f"n_shards: must be >= 1, got {n_shards}")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or np.any(w < 0):
        raise ValueError("weights: one non-negative weight per node")
    out = np.zeros(n, dtype=np.int64)
    _split(xy, w, np.arange(n), n_shards, 0, out)
    return out


def _split(
    xy: np.ndarray, w: np.ndarray, idx: np.ndarray, parts: int, first: int, out: np.ndarray
) -> None:
    if parts == 1 or idx.size == 0:
        out[idx] = first
        return
    left_parts = parts // 2
    pts = xy[idx]
    span = pts.max(axis=0) - pts.min(axis=0) if idx.size else np.zeros(2)
    axis = int(span[1] > span[0])
    # Stable order by coordinate, ties by node id: the same input always splits the same way.
    order = idx[np.lexsort((idx, pts[:, axis]))]
    cum = np.cumsum(w[order])
    total = cum[-1] if cum.size else 0.0
    target = total * left_parts / parts
    cut = (
        int(np.searchsorted(cum, target, side="left")) + 1
        if total > 0
        else idx.size * left_parts // parts
    )
    cut = min(max(cut, 1), idx.size - 1) if idx.size > 1 else idx.size
    _split(xy, w, order[:cut], left_parts, first, out)
    _split(xy, w, order[cut:], parts - left_parts, first + left_parts, out)

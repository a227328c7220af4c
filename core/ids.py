"""Distinct values and stable orders of integer id arrays (rider, driver and node ids, grid keys).

Ids are small non-negative integers, dense in ``[0, n)``: marking them in a table of ``n``
flags finds the distinct ones in one pass, where :func:`numpy.unique` sorts (tens of
milliseconds for the 100,000 ids of one run, and it runs several times per run). The results
are exactly :func:`numpy.unique`'s; arrays whose range is much wider than their length, or
that hold negative values, go to :func:`numpy.unique` itself.
"""

from __future__ import annotations

import numpy as np

_SPREAD = 4
"""A flag table is used while ``max + 1 <= _SPREAD * size + _SLACK``: beyond that, its
allocation and scan would cost more than the sort."""
_SLACK = 4096


def _dense(ids: np.ndarray) -> int | None:
    # The flag table's length when one is worth it (None: sort instead).
    if ids.size == 0 or ids.dtype.kind not in "iu":
        return None
    return _table_length(int(ids.min()), int(ids.max()), ids.size)


def _table_length(lo: int, hi: int, size: int) -> int | None:
    # A table indexed by id, for ``size`` ids in [lo, hi], when one is worth it.
    if lo < 0 or hi + 1 > _SPREAD * size + _SLACK:
        return None
    return hi + 1


def _seen(ids: np.ndarray, n: int) -> np.ndarray:
    # A flag per possible id, set for those present.
    seen = np.zeros(n, dtype=bool)
    seen[ids] = True
    return seen


def distinct(ids: np.ndarray) -> np.ndarray:
    """The distinct values of ``ids``, ascending (``np.unique(ids)``)."""
    ids = np.asarray(ids).ravel()
    n = _dense(ids)
    if n is None:
        return np.unique(ids)
    return np.flatnonzero(_seen(ids, n)).astype(ids.dtype, copy=False)


def distinct_count(ids: np.ndarray) -> int:
    """How many distinct values ``ids`` holds (``np.unique(ids).size``)."""
    ids = np.asarray(ids).ravel()
    n = _dense(ids)
    if n is None:
        return int(np.unique(ids).size)
    return int(np.count_nonzero(_seen(ids, n)))


def distinct_inverse(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)`` for 1-d ``ids``: the distinct values ascending,
    and each element's position among them (int64)."""
    ids = np.asarray(ids).ravel()
    n = _dense(ids)
    if n is None:
        values, inverse = np.unique(ids, return_inverse=True)
        return values, inverse.ravel().astype(np.int64, copy=False)
    seen = _seen(ids, n)
    rank = np.cumsum(seen, dtype=np.int64) - 1
    return np.flatnonzero(seen).astype(ids.dtype, copy=False), rank[ids]


def positions(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position of each of ``ids`` in the sorted distinct ``keys``, whether it is there at
    all); the position of an id that is not there is meaningless."""
    if keys.size == 0:
        return np.zeros(ids.size, dtype=np.int64), np.zeros(ids.size, dtype=bool)
    n = _table_length(int(keys[0]), int(keys[-1]), keys.size)
    if n is not None:
        # A table of every id's position instead of a binary search per id.
        slot = np.full(n + 1, -1, dtype=np.int64)
        slot[keys] = np.arange(keys.size)
        pos = slot[np.clip(ids, -1, n)]  # -1 and n both land on a -1
        return np.maximum(pos, 0), pos >= 0
    pos = np.minimum(np.searchsorted(keys, ids), keys.size - 1)
    return pos, keys[pos] == ids


def stable_order(ids: np.ndarray) -> np.ndarray:
    """``numpy.argsort(ids, kind="stable")``, the same permutation, faster for ids.

    NumPy sorts keys of 16 bits by radix (about 7x faster than int64 keys): non-negative ids
    below 2**32 are sorted as one or two 16-bit passes (the low half, then stably the high half),
    anything else by :func:`numpy.argsort` itself.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        return np.argsort(ids, kind="stable")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= 1 << 32:
        return np.argsort(ids, kind="stable")
    if hi < 1 << 16:
        return np.argsort(ids.astype(np.uint16), kind="stable")
    order = np.argsort((ids & 0xFFFF).astype(np.uint16), kind="stable")
    high = (ids[order] >> 16).astype(np.uint16)
    return order[np.argsort(high, kind="stable")]

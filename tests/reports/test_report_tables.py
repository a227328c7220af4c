"""Per-rider and per-driver alignment in reports/tables.py against plain Python definitions."""

from __future__ import annotations

import numpy as np
import pytest

from reports.tables import OFFER, _positions, _RiderRows, columns
from sim.events import EventLog


@pytest.mark.parametrize("dense", [True, False])
def test_positions_find_each_id_present_and_flag_the_others(dense: bool) -> None:
    """Dense ids (a lookup table) and sparse ones (a binary search) give the same answer."""
    rng = np.random.default_rng(3)
    space = 500 if dense else 10**9
    keys = np.unique(rng.integers(0, space, 300))
    ids = np.concatenate([rng.choice(keys, 400), rng.integers(-3, space + 5, 200)])
    pos, ok = _positions(keys, ids)
    where = {int(k): i for i, k in enumerate(keys)}
    assert ok.tolist() == [int(i) in where for i in ids]
    assert pos[ok].tolist() == [where[int(i)] for i in ids[ok]]
    empty_pos, empty_ok = _positions(keys[:0], ids)
    assert not empty_ok.any() and empty_pos.shape == ids.shape


def test_rider_rows_first_last_and_count_follow_the_log_order() -> None:
    """first/last take a rider's first and last row of the kind in log order; riders without
    one get the fill; count counts them."""
    rng = np.random.default_rng(8)
    log = EventLog(None)
    rows = []
    for k in range(2000):
        rider = int(rng.integers(0, 60))
        kind = "request" if rng.random() < 0.3 else "offer"
        rows.append((rider, kind, float(k)))
        log.row((float(k), kind, rider, 1, 2, 3, float(rng.random()), float(k) * 2, None))
    c = columns(log.table())
    riders = np.array(sorted({r for r, kind, _ in rows if kind == "request"} | {59, 61}))
    offers = _RiderRows(c, riders, OFFER)
    t_of = {}
    for r, kind, t in rows:
        if kind == "offer":
            t_of.setdefault(r, []).append(t)
    first, last = offers.first(c.t), offers.last(c.fare, fill=-1.0)
    for i, r in enumerate(riders.tolist()):
        ts = t_of.get(r, [])
        assert (first[i] == ts[0]) if ts else np.isnan(first[i])
        assert last[i] == (ts[-1] * 2 if ts else -1.0)
        assert offers.count()[i] == len(ts)

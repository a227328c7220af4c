"""The dispatcher: snapshots, the contract guard, decision delay, shards and seeds."""

from __future__ import annotations

import dataclasses
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matching.api import MatchRequest, MatchResponse
from matching.registry import make_matcher
from sim.dispatcher import SEED_BLOCK, DispatchPolicy, MatcherContractError, _Seeds
from sim.state import D_RESERVED, R_DECIDED
from tests.sim.street import build, events


class Scripted:
    """A matcher that records each request and answers with fixed (request, driver) pairs."""

    def __init__(self, pairs: list[tuple[int, int]], eta: float = 1.0) -> None:
        self.pairs, self.eta, self.seen = pairs, eta, []

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        self.seen.append(request)
        n = len(self.pairs)
        return MatchResponse(
            np.array([p[0] for p in self.pairs], dtype=np.int64),
            np.array([p[1] for p in self.pairs], dtype=np.int64),
            np.full(n, self.eta),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int8),
        )


@pytest.mark.parametrize(
    ("pairs", "eta", "message"),
    [
        ([(0, 0), (0, 1)], 1.0, "assigned a request twice"),
        ([(0, 0), (1, 0)], 1.0, "assigned a driver twice"),
        ([(1, 0)], 1.0, "not open"),
        ([(0, 5)], 1.0, "not free"),
        ([(0, 0)], 700.0, "exceeded max_pickup_eta_s"),
        ([(0, 0), (1, 1)], 700.0, "not open"),
    ],
)
def test_guard_refuses_responses_that_would_corrupt_the_market(
    tmp_path: Path, pairs: list[tuple[int, int]], eta: float, message: str
) -> None:
    """Double bookings, closed requests, busy drivers and ETAs over the limit raise
    MatcherContractError naming the matcher (one pair and many pairs alike)."""
    sim, _, _ = build(tmp_path, [(0, 1, 3), (50, 2, 4)], [0, 1], matcher=Scripted(pairs, eta))
    with pytest.raises(MatcherContractError, match=f"Scripted: .*{message}"):
        sim.run()


def test_one_request_snapshot_equals_the_batch_snapshot(tmp_path: Path) -> None:
    """The immediate path's sliced snapshot of one request holds what the gathered one does."""
    sim, _, _ = build(tmp_path, [(0, 1, 3)], [0, 5])
    sim.run(steps=1)
    d = sim.dispatcher
    did = np.array([0, 1])
    one, many = d.snapshot(0, did), d.snapshot(np.array([0]), did)
    for name in ("id", "pickup_node", "dropoff_node", "pickup_xy", "dropoff_xy", "requested_at"):
        assert np.array_equal(getattr(one.requests, name), getattr(many.requests, name))
        assert getattr(one.requests, name).dtype == getattr(many.requests, name).dtype
    for name in ("node", "xy", "state", "free_at", "earnings", "online_s"):
        assert np.array_equal(getattr(one.drivers, name), getattr(many.drivers, name))
    for snapshot in (one, many):  # built without __init__: every field is set all the same
        assert {f.name for f in dataclasses.fields(MatchRequest)} <= set(vars(snapshot))
        assert snapshot.max_pickup_eta_s == 600 and snapshot.candidates is None


def test_decision_delay_reserves_both_sides_until_it_lands(tmp_path: Path) -> None:
    """With a decision delay, the request is DECIDED and the driver RESERVED until the
    assignment lands delay seconds later."""
    policy = DispatchPolicy(batch_window_s=0, max_pickup_eta_s=600, decision_delay_s=4.0)
    sim, log, _ = build(tmp_path, [(0, 1, 3)], [0], policy=policy, horizon=100.0)
    at_2s: list[tuple[int, int]] = []

    def look(t: float, n: int, e: int) -> None:
        if t == 2.0:
            at_2s.append((int(sim.requests.status[0]), int(sim.drivers.status[0])))

    sim.run(look, steps=50)
    assert at_2s == [(R_DECIDED, D_RESERVED)]
    assign = [e for e in events(log) if e[0] == "assign"]
    assert assign[0][1] == 4.0


def test_sharded_dispatch_asks_once_per_shard_with_its_own_drivers(tmp_path: Path) -> None:
    """With shards, each shard's requests meet only the drivers located in that shard."""
    scripted = Scripted([])
    _, _, node = build(tmp_path, [(5, 0, 3)], [1])
    shard_of = np.zeros(int(node.max()) + 1, dtype=np.int64)
    shard_of[node[5:]] = 1
    policy = DispatchPolicy(batch_window_s=10, max_pickup_eta_s=600, shard_of_node=shard_of)
    sim, _, _ = build(tmp_path, [(5, 0, 3), (5, 8, 6)], [1, 7], matcher=scripted, policy=policy)
    sim.run()
    first = scripted.seen[:2]
    assert [r.shard_id for r in first] == [0, 1]
    assert [list(r.requests.id) for r in first] == [[0], [1]]
    assert [list(r.drivers.id) for r in first] == [[0], [1]]
    assert first[0].batch_id == first[1].batch_id


def test_seeds_come_in_blocks_but_match_one_draw_per_decision() -> None:
    """Block-drawn tie-break seeds are the sequence one draw per decision would give."""
    seeds = _Seeds(np.random.default_rng(11))
    one_by_one = np.random.default_rng(11)
    n = SEED_BLOCK + 5
    assert [seeds.next() for _ in range(n)] == [int(one_by_one.integers(2**63)) for _ in range(n)]


_COLUMNS = {
    "requests": (
        "id",
        "pickup_node",
        "dropoff_node",
        "pickup_xy",
        "dropoff_xy",
        "requested_at",
        "quoted_price",
        "patience_s",
    ),
    "drivers": ("id", "node", "xy", "state", "free_at", "earnings", "online_s"),
}


class _Reading:
    """Immediate greedy that copies every snapshot column while it decides."""

    def __init__(self) -> None:
        self.inner, self.copies = make_matcher("immediate_greedy", {}), []

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        self.copies.append(
            {
                (part, name): np.array(getattr(getattr(request, part), name))
                for part, names in _COLUMNS.items()
                for name in names
            }
        )
        return self.inner.match(request)


class _Keeping:
    """Immediate greedy that keeps every snapshot and reads no more of it than it needs."""

    def __init__(self) -> None:
        self.inner, self.kept = make_matcher("immediate_greedy", {}), []

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        self.kept.append(request)
        return self.inner.match(request)


def test_a_kept_snapshot_reads_the_decision_times_values(tmp_path: Path) -> None:
    """A matcher that keeps the snapshots and reads their columns after the run sees what a
    matcher reading them while deciding saw (drivers' states, earnings, time online)."""
    trips = [(0, 1, 3), (5, 2, 6), (40, 7, 0), (41, 3, 5), (90, 0, 8), (130, 6, 2)]
    seen = []
    for matcher in (_Reading(), _Keeping()):
        sim, _, _ = build(tmp_path, trips, [0, 4, 8], matcher=matcher)  # type: ignore[arg-type]
        sim.run()
        seen.append(matcher)
    reading, keeping = seen
    assert len(reading.copies) == len(keeping.kept) >= len(trips)
    earnings = set()
    for copies, request in zip(reading.copies, keeping.kept, strict=True):
        for (part, name), values in copies.items():
            kept = getattr(getattr(request, part), name)
            assert np.array_equal(kept, values) and kept.dtype == values.dtype, (part, name)
            assert not kept.flags.writeable
        earnings.update(copies[("drivers", "earnings")].tolist())
    assert len(earnings) > 1  # drivers earned between decisions: the values did change


class _Sometimes:
    """Immediate greedy that copies every snapshot column on every other decision, keeps
    nothing, and notes whether it was given the previous decision's message objects (known
    by weak references, which hold nothing)."""

    def __init__(self) -> None:
        self.inner, self.copies, self.same = make_matcher("immediate_greedy", {}), [], []
        self.last: list[weakref.ref[Any]] = []

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        given = [request, request.requests, request.drivers]
        # zip stops at once on the first decision, which has no previous one.
        self.same.append([ref() is m for ref, m in zip(self.last, given, strict=False)])
        self.last = [weakref.ref(m) for m in given]
        reads = len(self.copies) % 2 == 1
        self.copies.append(
            {
                (part, name): np.array(getattr(getattr(request, part), name))
                for part, names in _COLUMNS.items()
                for name in names
            }
            if reads
            else None
        )
        return self.inner.match(request)


def test_snapshot_messages_are_refilled_only_when_nothing_was_read_or_kept(tmp_path: Path) -> None:
    """After a decision whose matcher kept none of the messages and read no lazy column, the
    next decision gets the same three objects with its own columns; after one that read lazy
    columns, new ones. Either way every column is the decision time's."""
    trips = [(0, 1, 3), (5, 2, 6), (40, 7, 0), (41, 3, 5), (90, 0, 8), (130, 6, 2), (131, 4, 1)]
    reading, sometimes = _Reading(), _Sometimes()
    for matcher in (reading, sometimes):
        sim, _, _ = build(tmp_path, trips, [0, 4, 8], matcher=matcher)  # type: ignore[arg-type]
        sim.run()
    assert len(reading.copies) == len(sometimes.copies) >= len(trips)
    for full, part in zip(reading.copies, sometimes.copies, strict=True):
        if part is not None:
            for key, values in part.items():
                assert np.array_equal(values, full[key]) and values.dtype == full[key].dtype, key
    assert sometimes.same[0] == []
    for k in range(1, len(sometimes.same)):
        read_before = sometimes.copies[k - 1] is not None
        assert sometimes.same[k] == [not read_before] * 3, k


def test_snapshot_gives_each_driver_its_own_free_at_read_only(tmp_path: Path) -> None:
    """free_at is the drivers' own: an idle driver's when they became idle (at most the
    decision time, as the contract says), not clipped to it; every column made is read-only."""
    sim, _, _ = build(tmp_path, [(30, 1, 3)], [0, 5])
    sim.run(steps=8)  # 50 s: the ride from t = 30 is under way, driver 1 idles since 0
    d = sim.dispatcher
    now = sim.sched.now
    free_at = sim.drivers.free_at
    assert free_at[1] < now
    one, many = d.snapshot(0, np.array([0, 1])), d.snapshot(np.array([0]), np.array([0, 1]))
    for snapshot in (one, many):
        assert snapshot.decision_time == now
        assert snapshot.drivers.free_at.tolist() == free_at[[0, 1]].tolist()
        for part in (snapshot.requests, snapshot.drivers):
            for name in _COLUMNS["requests" if part is snapshot.requests else "drivers"]:
                assert not getattr(part, name).flags.writeable, name

"""The dispatcher: snapshot the market for the matcher, check its answer, hand it on.

On each decision the dispatcher takes the open requests (or the one that just arrived) and
every free driver, splits them by shard, builds one :class:`~matching.api.MatchRequest` per
shard, times the matcher's wall clock (perf only), refuses a response that would corrupt the
market (:class:`MatcherContractError`), and passes the assignments on, now or after the
simulated decision delay (reserving both sides in the meantime).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from sys import getrefcount
from typing import Any, cast

import numpy as np

from matching.api import (
    API_VERSION,
    EtaBounds,
    LazyCandidateDrivers,
    LazyOpenRequests,
    Matcher,
    MatcherUnavailable,
    MatchRequest,
    lazy_message,
    set_writeable,
)
from sim.movement import Travel
from sim.scheduler import Scheduler
from sim.state import CONTRACT_STATE, R_OPEN, Drivers, Requests

SEED_BLOCK = 1024
"""Matcher seeds drawn per call of the generator (the same sequence as one draw per decision,
since 64-bit draws are independent of how many are requested at once)."""

_EAGER_REQUEST_KEYS = 3
"""A snapshot's request message before any lazy column is read: id, pickup_node, _fill."""
_EAGER_DRIVER_KEYS = 4
"""A snapshot's driver message before any lazy column is read: id, node, free_at, _fill."""

Apply = Callable[[np.ndarray, np.ndarray, np.ndarray, int], None]
"""``apply(request_id, driver_id, pickup_eta_s, batch_id)``: carry out a decision."""
ApplyOne = Callable[[int, int, float, str], None]
"""``apply_one(request, driver, pickup_eta_s, detail)``: carry out one assignment now."""


class MatcherContractError(RuntimeError):
    """A matcher returned a response that breaks the v1 contract."""


@dataclass(frozen=True)
class DispatchPolicy:
    """When the matcher is asked and how long its decisions take (simulated time)."""

    batch_window_s: float
    max_pickup_eta_s: float
    decision_delay_s: float = 0.0
    decision_delay_per_request_s: float = 0.0
    shard_of_node: np.ndarray | None = None
    """Matcher shard owning each access node (``None``: one shard for the whole city)."""

    @property
    def immediate(self) -> bool:
        """Ask on every arrival and every driver release instead of every window."""
        return self.batch_window_s == 0


@dataclass
class MatcherCalls:
    """Wall-clock cost of every matcher call (perf only: never steers the run), one row per
    call in call order: int64 columns and float64 ``wall_s``."""

    batch_id: np.ndarray
    shard_id: np.ndarray
    n_requests: np.ndarray
    n_drivers: np.ndarray
    wall_s: np.ndarray

    @classmethod
    def from_records(cls, sizes: array[int], wall_s: array[float]) -> MatcherCalls:
        """The columns of calls recorded one after another: ``batch_id, shard_id, n_requests,
        n_drivers`` of each call in ``sizes`` (four int64 per call), its seconds in ``wall_s``."""
        # Copies (np.array reads the buffers at once): the records may grow afterwards.
        rows = np.array(sizes, dtype=np.int64).reshape(-1, 4).T.copy()
        return cls(rows[0], rows[1], rows[2], rows[3], np.array(wall_s, dtype=np.float64))


class _Seeds:
    """Tie-break seeds for the matcher from its own stream, one per decision."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.block: list[int] = []
        """The seeds drawn and not used yet, the next one last (read by the hot path)."""

    def next(self) -> int:
        if not self.block:
            self.block = self.rng.integers(2**63, size=SEED_BLOCK).tolist()[::-1]
        return self.block.pop()


class Dispatcher:
    """Asks the matcher and hands its decisions to ``apply`` (set by the engine)."""

    def __init__(
        self,
        matcher: Matcher,
        policy: DispatchPolicy,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        travel: Travel,
        node_xy: np.ndarray,
        max_speed_mps: float,
        rng: np.random.Generator,
        eta_bounds: EtaBounds | None = None,
    ) -> None:
        if not policy.max_pickup_eta_s > 0:
            raise ValueError(f"max_pickup_eta_s: must be > 0, got {policy.max_pickup_eta_s}")
        self.matcher = matcher
        self.policy = policy
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.travel = travel
        self.node_xy = node_xy
        self.max_speed_mps = max_speed_mps
        self.eta_bounds = eta_bounds
        """Zone lower bounds on the free-flow table (a road network's), for candidate search."""
        self.seeds = _Seeds(rng)
        self._fixed: dict[str, Any] = {
            "max_pickup_eta_s": policy.max_pickup_eta_s,
            "candidates": None,
            "max_speed_mps": max_speed_mps,
            "api_version": API_VERSION,
        }
        """The snapshot fields every decision shares."""
        self._flat = travel.congestion.flat
        if self._flat:
            # Free flow all day: every decision quotes the same travel times and bounds.
            self._fixed["travel_time"] = travel.free_flow
            self._fixed["eta_bounds"] = travel.bounds_for(travel.free_flow, eta_bounds)
        self._no_delay = policy.decision_delay_s <= 0 and policy.decision_delay_per_request_s <= 0
        """Decisions land at once, whatever their size (the immediate path's usual case)."""
        self._call_sizes: array[int] = array("q")
        """Each matcher call's batch id, shard id, requests and drivers, one after another (a
        typed array: nothing to convert at the end of a run of one call per arrival)."""
        self._call_wall_s: array[float] = array("d")
        """Each matcher call's wall seconds."""
        self.matcher_up = True
        """False during a matcher outage: nobody is assigned until it ends."""
        self.batch_id = 0
        self._spare: tuple[MatchRequest, LazyOpenRequests, LazyCandidateDrivers] | None = None
        """The last snapshot's messages when nothing refers to them any more (see snapshot)."""
        self.apply: Apply = _unwired
        self.apply_one: ApplyOne = _unwired_one
        self.on_unavailable: Callable[[MatcherUnavailable], None] = _unavailable

    @property
    def calls(self) -> MatcherCalls:
        """Wall-clock cost of every matcher call so far (perf only: never steers the run)."""
        return MatcherCalls.from_records(self._call_sizes, self._call_wall_s)

    def dispatch(self, request_ids: np.ndarray | None = None) -> None:
        """Ask the matcher about ``request_ids`` (default: every open request, by id) and
        every free driver, shard by shard."""
        if not self.matcher_up:
            return
        if request_ids is None:
            request_ids = self.requests.open_ids()
            request_ids.sort()
        drivers = self.drivers.free.nonzero()[0]
        shard_of = self.policy.shard_of_node
        if shard_of is None:
            self._dispatch_shard(0, request_ids, drivers)
        else:
            req_shard = shard_of[self.requests.pickup_node[request_ids]]
            drv_shard = shard_of[self.drivers.node[drivers]]
            for shard in np.unique(req_shard).tolist():
                self._dispatch_shard(
                    shard, request_ids[req_shard == shard], drivers[drv_shard == shard]
                )
        self.batch_id += 1

    def dispatch_one(self, i: int) -> None:
        """Ask the matcher about request ``i`` alone (immediate dispatch on arrival)."""
        if self.policy.shard_of_node is None and self.matcher_up:
            self._dispatch_shard(0, i, self.drivers.free.nonzero()[0])
            self.batch_id += 1
        else:
            self.dispatch(np.array([i], dtype=np.int64))

    def _dispatch_shard(self, shard: int, rid: np.ndarray | int, did: np.ndarray) -> None:
        request = self.snapshot(rid, did, shard)
        reqs, drvs = request.requests, request.drivers
        refs = getrefcount(request) + getrefcount(reqs) + getrefcount(drvs)
        t0 = time.perf_counter()
        try:
            response = self.matcher.match(request)
        except MatcherUnavailable as exc:
            # A service that cannot be reached: the faults controller records the outage and
            # this decision's requests stay open for the next decision (sim/faults.py).
            self.on_unavailable(exc)
            return
        wall = time.perf_counter() - t0
        if getrefcount(request) + getrefcount(reqs) + getrefcount(drvs) != refs:
            # The matcher kept (part of) the snapshot: make its lazy columns now, before the
            # market moves on, so it reads the decision time's values whenever it reads them.
            cast(LazyOpenRequests, reqs).settle()
            cast(LazyCandidateDrivers, drvs).settle()
        elif len(reqs.__dict__) == _EAGER_REQUEST_KEYS and len(drvs.__dict__) == _EAGER_DRIVER_KEYS:
            # Nobody holds the messages and no lazy column was made: the next decision may
            # fill the same objects (see snapshot).
            self._spare = (request, cast(LazyOpenRequests, reqs), cast(LazyCandidateDrivers, drvs))
        n_req = 1 if isinstance(rid, int) else rid.shape[0]
        self._call_sizes.extend((self.batch_id, shard, n_req, did.shape[0]))
        self._call_wall_s.append(wall)
        rid_a, did_a, eta = response.request_id, response.driver_id, response.pickup_eta_s
        n = rid_a.shape[0]
        if n == 0:
            return
        if self._no_delay:
            delay = 0.0
        else:
            policy = self.policy
            delay = policy.decision_delay_s + policy.decision_delay_per_request_s * n_req
        if n == 1 and did_a.shape[0] == 1 and eta.shape[0] == 1:
            # The immediate path's one pair, on Python scalars from here on.
            r, d, e = rid_a.item(0), did_a.item(0), eta.item(0)
            problem = self._check_one(r, d, e)
            if problem:
                self._refuse([problem])
            if delay <= 0:
                self.apply_one(r, d, e, str(self.batch_id))
                return
        else:
            self._refuse(self._check_many(rid_a, did_a, eta))
            if delay <= 0:
                self.apply(rid_a, did_a, eta, self.batch_id)
                return
        # Reserve both sides until the decision lands, so no other decision takes them.
        self.requests.decided(rid_a)
        self.drivers.reserve(did_a)
        self.sched.after(delay, self.apply, rid_a, did_a, eta, self.batch_id)

    def snapshot(self, rid: np.ndarray | int, did: np.ndarray, shard: int = 0) -> MatchRequest:
        """The market as the matcher sees it now: requests ``rid`` (sorted ids, or one id)
        and drivers ``did`` (sorted ids).

        The columns every matcher reads are made now; the others (drivers' positions, states,
        earnings and time online; requests' dropoffs, times, prices and patience) when a
        matcher first reads them, from the state as it is now (see ``_dispatch_shard``).
        """
        now = self.sched.now
        rq, dv = self.requests, self.drivers
        # One request: slices of read-only columns (no copies); several: fresh gathers,
        # marked read-only here (so lazy_message reads no flags).
        sel: slice | np.ndarray = slice(rid, rid + 1) if isinstance(rid, int) else rid
        ids, pickups = rq.id[sel], rq.pickup_node[sel]
        if not isinstance(sel, slice):
            set_writeable(ids, False)
            set_writeable(pickups, False)
        nodes = dv.node[did]
        # As the contract states it: an idle driver's free_at is when they became idle (at
        # most the decision time), a moving one's when they can start; matchers wait
        # max(free_at - decision_time, 0).
        free_at = dv.free_at[did]
        set_writeable(did, False)
        set_writeable(nodes, False)
        set_writeable(free_at, False)
        request_fill = (_request_column, (rq, sel))
        driver_fill = (_driver_column, (dv, did, nodes, now, self.node_xy))
        seeds = self.seeds
        seed = seeds.block.pop() if seeds.block else seeds.next()
        spare = self._spare
        if spare is not None:
            # The last decision's messages, which its matcher did not keep and read no lazy
            # column of: the same objects with this decision's columns (no three objects and
            # their dicts made and freed on every arrival).
            self._spare = None
            request, requests, drivers = spare
            columns = requests.__dict__
            columns["id"] = ids
            columns["pickup_node"] = pickups
            columns["_fill"] = request_fill
            columns = drivers.__dict__
            columns["id"] = did
            columns["node"] = nodes
            columns["free_at"] = free_at
            columns["_fill"] = driver_fill
            fields = request.__dict__
        else:
            requests = lazy_message(
                LazyOpenRequests, {"id": ids, "pickup_node": pickups}, request_fill, read_only=True
            )
            drivers = lazy_message(
                LazyCandidateDrivers,
                {"id": did, "node": nodes, "free_at": free_at},
                driver_fill,
                read_only=True,
            )
            # Every field is valid by construction (the limits were checked once, in
            # __init__): skip the frozen dataclass's per-field setattr and __post_init__, and
            # start from the fields that never change.
            request = object.__new__(MatchRequest)
            fields = request.__dict__
            fields.update(self._fixed)
            fields["requests"] = requests
            fields["drivers"] = drivers
        fields["decision_time"] = now
        fields["batch_id"] = self.batch_id
        fields["shard_id"] = shard
        fields["seed"] = seed
        if not self._flat:
            travel_time = self.travel.expected(now)
            fields["travel_time"] = travel_time
            fields["eta_bounds"] = self.travel.bounds_for(travel_time, self.eta_bounds)
        return request

    def _refuse(self, problems: list[str]) -> None:
        # The guard: the conformance suite checks matchers in depth; this cheap check (from the
        # engine's own state) stops a plug-in that slipped through from double-booking anyone.
        if problems:
            name = type(self.matcher).__name__
            raise MatcherContractError(f"matcher {name}: " + "; ".join(problems))

    def _check_one(self, r: int, d: int, eta: float) -> str:
        # The same verdicts as _check_many, on Python scalars (the immediate path's one pair);
        # "" when the pair is sound.
        if not (0 <= r < self.requests.n and self.requests.status_one[r] == R_OPEN):
            return "assigned a request that was not open"
        if not (0 <= d < self.drivers.n and self.drivers.free_one[d]):
            return "assigned a driver that was not free"
        if eta > self.policy.max_pickup_eta_s + 1e-9:
            return "exceeded max_pickup_eta_s"
        return ""

    def _check_many(self, rid: np.ndarray, did: np.ndarray, eta: np.ndarray) -> list[str]:
        problems = []
        if rid.size > 1 and np.any(np.diff(np.sort(rid)) == 0):
            problems.append("assigned a request twice")
        if did.size > 1 and np.any(np.diff(np.sort(did)) == 0):
            problems.append("assigned a driver twice")
        status, free = self.requests.status, self.drivers.free
        if rid.size != did.size or rid.size != eta.size:
            problems.append("request_id, driver_id and pickup_eta_s differ in length")
        elif rid.min() < 0 or rid.max() >= status.size or not np.all(status[rid] == R_OPEN):
            problems.append("assigned a request that was not open")
        elif did.min() < 0 or did.max() >= free.size or not np.all(free[did]):
            problems.append("assigned a driver that was not free")
        elif np.any(eta > self.policy.max_pickup_eta_s + 1e-9):
            problems.append("exceeded max_pickup_eta_s")
        return problems


_REQUEST_SOURCE = {
    "dropoff_node": "dropoff_node",
    "pickup_xy": "pickup_xy",
    "dropoff_xy": "dropoff_xy",
    "requested_at": "t",
    "quoted_price": "price",
    "patience_s": "patience_s",
}
"""The column of :class:`~sim.state.Requests` behind each lazily made request column."""


def _request_column(name: str, rq: Requests, sel: slice | np.ndarray) -> np.ndarray:
    # A slice of a read-only column (one request, no copy), or a gather (take on 2-d rows
    # costs a fraction of fancy indexing). A request's fixed columns, and its price once it
    # has arrived, never change, so a slice stays the decision time's value.
    column: np.ndarray = getattr(rq, _REQUEST_SOURCE[name])
    return column[sel] if isinstance(sel, slice) else column.take(sel, axis=0)


def _driver_column(
    name: str, dv: Drivers, did: np.ndarray, nodes: np.ndarray, now: float, xy: np.ndarray
) -> np.ndarray:
    # Made while the drivers' state is the decision time's (see Dispatcher._dispatch_shard).
    if name == "xy":
        return xy.take(nodes, axis=0)
    if name == "state":
        state: np.ndarray = CONTRACT_STATE[dv.status[did]]
        return state
    if name == "earnings":
        earnings: np.ndarray = dv.earnings[did]
        return earnings
    if name == "online_s":
        online: np.ndarray = dv.online_s[did] + (now - dv.online_since[did])
        return online
    raise AssertionError(f"no lazy driver column {name!r}")


def _unwired(rid: np.ndarray, did: np.ndarray, eta: np.ndarray, batch_id: int) -> None:
    raise RuntimeError("Dispatcher.apply was not wired to the market")


def _unavailable(exc: MatcherUnavailable) -> None:
    raise exc


def _unwired_one(r: int, d: int, eta: float, detail: str) -> None:
    raise RuntimeError("Dispatcher.apply_one was not wired to the market")

"""The simulation: riders and drivers in a SimPy environment, dispatched through a matcher.

State lives in numpy arrays indexed by request id and driver id; SimPy orders the events
(time, priority, insertion sequence), so equal-time events always run in one order. Movement
and ETAs come from the space's travel-time table, never from a path search per event.

Life of a request: ``request`` -> (``assign`` -> ``pickup`` -> ``dropoff``) or ``cancel``.
Life of a driver: ``driver_online`` -> idle <-> (to pickup -> on trip) -> ``driver_offline``
(a driver whose shift ends mid-trip finishes the trip first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial

import numpy as np
import simpy

from cities.demand import Trips
from cities.space import Space
from cities.supply import Fleet
from matching.api import CandidateDrivers, Matcher, MatchRequest, MatchResponse, OpenRequests
from sim.events import NONE, EventLog, Kind


class DriverStatus(IntEnum):
    """Where a driver is in their cycle."""

    OFFLINE = 0
    IDLE = 1
    RESERVED = 2
    """Chosen by a decision that has not landed yet (decision delay)."""
    TO_PICKUP = 3
    ON_TRIP = 4


class RequestStatus(IntEnum):
    """Where a request is in its life."""

    NOT_YET = 0
    OPEN = 1
    DECIDED = 2
    """A decision assigning it is in flight (decision delay)."""
    ASSIGNED = 3
    ON_BOARD = 4
    COMPLETED = 5
    CANCELLED = 6


# Plain ints/strs for the hot path (enum attribute lookups cost more than the work).
D_IDLE = int(DriverStatus.IDLE)
D_OFFLINE = int(DriverStatus.OFFLINE)
D_ON_TRIP = int(DriverStatus.ON_TRIP)
D_RESERVED = int(DriverStatus.RESERVED)
D_TO_PICKUP = int(DriverStatus.TO_PICKUP)
R_ASSIGNED = int(RequestStatus.ASSIGNED)
R_CANCELLED = int(RequestStatus.CANCELLED)
R_COMPLETED = int(RequestStatus.COMPLETED)
R_DECIDED = int(RequestStatus.DECIDED)
R_NOT_YET = int(RequestStatus.NOT_YET)
R_ON_BOARD = int(RequestStatus.ON_BOARD)
R_OPEN = int(RequestStatus.OPEN)
K_ASSIGN = str(Kind.ASSIGN)
K_CANCEL = str(Kind.CANCEL)
K_DRIVER_OFFLINE = str(Kind.DRIVER_OFFLINE)
K_DRIVER_ONLINE = str(Kind.DRIVER_ONLINE)
K_DROPOFF = str(Kind.DROPOFF)
K_PICKUP = str(Kind.PICKUP)
K_REQUEST = str(Kind.REQUEST)


class MatcherContractError(RuntimeError):
    """A matcher returned a response that breaks the v1 contract."""


@dataclass(frozen=True)
class DispatchPolicy:
    """When the matcher is asked and how long its decisions take (simulated time)."""

    batch_window_s: float
    max_pickup_eta_s: float
    decision_delay_s: float = 0.0
    decision_delay_per_request_s: float = 0.0

    @property
    def immediate(self) -> bool:
        """Ask on every arrival and every driver release instead of every window."""
        return self.batch_window_s == 0


@dataclass
class MatcherCalls:
    """Wall-clock cost of every matcher call (perf only: never steers the run)."""

    batch_id: list[int] = field(default_factory=list)
    n_requests: list[int] = field(default_factory=list)
    n_drivers: list[int] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)


class Simulation:
    """One run of a market: build it, call :meth:`run`, read the log and counters."""

    def __init__(
        self,
        space: Space,
        trips: Trips,
        patience_s: np.ndarray,
        fleet: Fleet,
        matcher: Matcher,
        policy: DispatchPolicy,
        matcher_rng: np.random.Generator,
        log: EventLog,
        horizon_s: float,
    ) -> None:
        self.space = space
        self.trips = trips
        self.patience_s = np.asarray(patience_s, dtype=np.float64)
        self.fleet = fleet
        self.matcher = matcher
        self.policy = policy
        self.matcher_rng = matcher_rng
        self.log = log
        self.horizon_s = float(horizon_s)
        self.env = simpy.Environment()
        self.calls = MatcherCalls()

        n_req, n_drv = len(trips), len(fleet)
        self.trip_time = space.travel_time(trips.pickup_node, trips.dropoff_node)
        self.r_status = np.zeros(n_req, dtype=np.uint8)
        self.r_driver = np.full(n_req, NONE, dtype=np.int64)
        self.r_assign_t = np.full(n_req, np.nan)
        self.r_pickup_t = np.full(n_req, np.nan)
        self.open: dict[int, None] = {}  # open request ids in arrival order

        self.d_status = np.zeros(n_drv, dtype=np.uint8)
        self.d_node = fleet.home_node.astype(np.int64).copy()
        self.d_free_at = np.zeros(n_drv)
        self.d_earnings = np.zeros(n_drv)
        self.d_online_s = np.zeros(n_drv)
        self.d_online_since = np.full(n_drv, np.nan)
        self.d_leaving = np.zeros(n_drv, dtype=bool)
        self.idle = np.zeros(n_drv, dtype=bool)
        self._batch_id = 0
        self._arrived = 0

    # ----------------------------------------------------------------- running
    def run(
        self, progress: Callable[[float, int, int], None] | None = None, steps: int = 200
    ) -> None:
        """Simulate [0, horizon). ``progress(sim_time, requests_so_far, events_so_far)`` is
        called between equal slices of simulated time (never from wall-clock time)."""
        env = self.env
        # Shifts first: drivers who log on at t are online for requests arriving at t.
        env.process(self._shifts())
        env.process(self._arrivals())
        if not self.policy.immediate:
            env.process(self._batches())
        for k in range(1, steps + 1):
            env.run(until=self.horizon_s * k / steps)
            if progress is not None:
                progress(env.now, self._arrived, len(self.log))

    def _arrivals(self):  # noqa: ANN202 - SimPy process
        env, t = self.env, self.trips.t
        for i in range(len(self.trips)):
            dt = t[i] - env.now
            if dt > 0:
                yield env.timeout(dt)
            self._arrive(i)

    def _shifts(self):  # noqa: ANN202 - SimPy process
        env, f = self.env, self.fleet
        for j in range(f.shift_on.shape[0]):
            dt = f.shift_on[j] - env.now
            if dt > 0:
                yield env.timeout(dt)
            self._online(int(f.shift_driver[j]), float(f.shift_off[j]))

    def _batches(self):  # noqa: ANN202 - SimPy process
        window = self.policy.batch_window_s
        while True:
            yield self.env.timeout(window)
            if self.open and self.idle.any():
                self._dispatch(None)

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        self.env.timeout(delay).callbacks.append(lambda _ev: fn())

    # ---------------------------------------------------------------- requests
    def _arrive(self, i: int) -> None:
        now = self.env.now
        self._arrived += 1
        tr = self.trips
        self.log.add(
            now,
            K_REQUEST,
            rider=i,
            node=int(tr.pickup_node[i]),
            dest_node=int(tr.dropoff_node[i]),
            value=float(self.trip_time[i]),
        )
        self.r_status[i] = R_OPEN
        self.open[i] = None
        if self.policy.immediate and self.idle.any():
            self._dispatch(np.array([i], dtype=np.int64))
        if self.r_status[i] == R_OPEN:
            patience = self.patience_s[i]
            if patience <= 0:
                self._cancel(i, "no_driver")
            else:
                self._after(patience, partial(self._give_up, i))

    def _give_up(self, i: int) -> None:
        if self.r_status[i] in (R_OPEN, R_DECIDED):
            self._cancel(i, "patience")

    def _cancel(self, i: int, reason: str) -> None:
        self.r_status[i] = R_CANCELLED
        self.open.pop(i, None)
        self.log.add(
            self.env.now, K_CANCEL, rider=i, node=int(self.trips.pickup_node[i]), detail=reason
        )

    # ---------------------------------------------------------------- drivers
    def _online(self, d: int, off: float) -> None:
        if self.d_status[d] != D_OFFLINE:  # back-to-back shifts: keep working
            self.d_leaving[d] = False
        else:
            now = self.env.now
            self.d_status[d] = D_IDLE
            self.d_online_since[d] = now
            self.d_free_at[d] = now
            self.idle[d] = True
            self.log.add(now, K_DRIVER_ONLINE, driver=d, node=int(self.d_node[d]))
        if off < self.horizon_s:
            self._after(off - self.env.now, partial(self._shift_ends, d))
        if self.policy.immediate and self.open and self.idle[d]:
            self._dispatch(None)

    def _shift_ends(self, d: int) -> None:
        if self.d_status[d] == D_IDLE:
            self._offline(d)
        elif self.d_status[d] != D_OFFLINE:
            self.d_leaving[d] = True

    def _offline(self, d: int) -> None:
        now = self.env.now
        self.d_status[d] = D_OFFLINE
        self.idle[d] = False
        self.d_leaving[d] = False
        self.d_online_s[d] += now - self.d_online_since[d]
        self.d_online_since[d] = np.nan
        self.log.add(now, K_DRIVER_OFFLINE, driver=d, node=int(self.d_node[d]))

    def _release(self, d: int) -> None:
        """The driver is free again at their current node."""
        if self.d_leaving[d]:
            self._offline(d)
            return
        self.d_status[d] = D_IDLE
        self.d_free_at[d] = self.env.now
        self.idle[d] = True
        if self.policy.immediate and self.open:
            self._dispatch(None)

    # ---------------------------------------------------------------- matching
    def _dispatch(self, request_ids: np.ndarray | None) -> None:
        """Ask the matcher about ``request_ids`` (default: every open request) and every idle
        driver, then apply its decision now or after the simulated decision delay."""
        now = self.env.now
        if request_ids is None:
            request_ids = np.fromiter(self.open, dtype=np.int64, count=len(self.open))
            request_ids.sort()
        drivers = np.flatnonzero(self.idle)
        request = self._snapshot(now, request_ids, drivers)
        t0 = time.perf_counter()
        response = self.matcher.match(request)
        wall = time.perf_counter() - t0
        c = self.calls
        c.batch_id.append(self._batch_id)
        c.n_requests.append(len(request_ids))
        c.n_drivers.append(len(drivers))
        c.wall_s.append(wall)
        self._check_response(request, response)
        batch_id = self._batch_id
        self._batch_id += 1
        if response.n_assigned == 0:
            return
        rid, did, eta = response.request_id, response.driver_id, response.pickup_eta_s
        delay = self.policy.decision_delay_s + self.policy.decision_delay_per_request_s * len(
            request_ids
        )
        if delay <= 0:
            self._apply(rid, did, eta, batch_id)
            return
        # Reserve both sides until the decision lands, so no other decision takes them.
        self.r_status[rid] = R_DECIDED
        for r in rid.tolist():
            self.open.pop(r, None)
        self.d_status[did] = D_RESERVED
        self.idle[did] = False
        self._after(delay, partial(self._apply, rid, did, eta, batch_id))

    def _snapshot(self, now: float, rid: np.ndarray, did: np.ndarray) -> MatchRequest:
        tr, xy = self.trips, self.space.node_xy
        pick, drop = tr.pickup_node[rid], tr.dropoff_node[rid]
        nodes = self.d_node[did]
        online = self.d_online_s[did] + (now - self.d_online_since[did])
        return MatchRequest(
            decision_time=now,
            batch_id=self._batch_id,
            shard_id=0,
            requests=OpenRequests.unchecked(
                id=rid,
                pickup_node=pick,
                dropoff_node=drop,
                pickup_xy=xy[pick],
                dropoff_xy=xy[drop],
                requested_at=tr.t[rid],
                quoted_price=np.zeros(rid.shape[0]),
                patience_s=self.patience_s[rid],
            ),
            drivers=CandidateDrivers.unchecked(
                id=did,
                node=nodes,
                xy=xy[nodes],
                state=np.zeros(did.shape[0], dtype=np.uint8),
                free_at=np.maximum(self.d_free_at[did], now),
                earnings=self.d_earnings[did],
                online_s=online,
            ),
            max_pickup_eta_s=self.policy.max_pickup_eta_s,
            seed=int(self.matcher_rng.integers(2**63)),
            travel_time=self.space.travel_time,
            max_speed_mps=self.space.max_speed_mps,
        )

    def _check_response(self, request: MatchRequest, response: MatchResponse) -> None:
        """Refuse a decision that would corrupt the market: the conformance suite checks
        matchers in depth; this cheap guard (from the engine's own state) stops a plug-in that
        slipped through from double-booking anyone."""
        rid, did = response.request_id, response.driver_id
        if rid.size == 0:
            return
        problems = []
        if rid.size > 1 and np.any(np.diff(np.sort(rid)) == 0):
            problems.append("assigned a request twice")
        if did.size > 1 and np.any(np.diff(np.sort(did)) == 0):
            problems.append("assigned a driver twice")
        if rid.size != did.size or rid.size != response.pickup_eta_s.size:
            problems.append("request_id, driver_id and pickup_eta_s differ in length")
        elif (
            rid.min() < 0
            or rid.max() >= self.r_status.size
            or not np.all(self.r_status[rid] == R_OPEN)
        ):
            problems.append("assigned a request that was not open")
        elif did.min() < 0 or did.max() >= self.idle.size or not np.all(self.idle[did]):
            problems.append("assigned a driver that was not idle")
        elif np.any(response.pickup_eta_s > request.max_pickup_eta_s + 1e-9):
            problems.append("exceeded max_pickup_eta_s")
        if problems:
            name = type(self.matcher).__name__
            raise MatcherContractError(f"matcher {name}: " + "; ".join(problems))

    def _apply(self, rid: np.ndarray, did: np.ndarray, eta: np.ndarray, batch_id: int) -> None:
        now = self.env.now
        order = np.argsort(rid, kind="stable")  # log in request-id order, whatever the matcher's
        rid, did, eta = rid[order], did[order], eta[order]
        pickup = self.trips.pickup_node[rid]
        travel = self.space.travel_time(self.d_node[did], pickup)
        detail = str(batch_id)
        for r, d, quoted, drive in zip(
            rid.tolist(), did.tolist(), eta.tolist(), travel.tolist(), strict=True
        ):
            if self.r_status[r] == R_CANCELLED:  # gave up while we decided
                self._release(d)
                continue
            self.r_status[r] = R_ASSIGNED
            self.open.pop(r, None)
            self.r_driver[r] = d
            self.r_assign_t[r] = now
            self.d_status[d] = D_TO_PICKUP
            self.idle[d] = False
            self.log.add(
                now,
                K_ASSIGN,
                rider=r,
                driver=d,
                node=int(self.d_node[d]),
                dest_node=int(self.trips.pickup_node[r]),
                value=quoted,
                detail=detail,
            )
            self._after(drive, partial(self._pickup, r, d))

    # ---------------------------------------------------------------- movement
    def _pickup(self, r: int, d: int) -> None:
        now = self.env.now
        node = int(self.trips.pickup_node[r])
        self.r_status[r] = R_ON_BOARD
        self.r_pickup_t[r] = now
        self.d_status[d] = D_ON_TRIP
        self.d_node[d] = node
        self.log.add(now, K_PICKUP, rider=r, driver=d, node=node, value=now - self.r_assign_t[r])
        self._after(float(self.trip_time[r]), partial(self._dropoff, r, d))

    def _dropoff(self, r: int, d: int) -> None:
        now = self.env.now
        node = int(self.trips.dropoff_node[r])
        self.r_status[r] = R_COMPLETED
        self.d_node[d] = node
        self.log.add(now, K_DROPOFF, rider=r, driver=d, node=node, value=now - self.r_pickup_t[r])
        self._release(d)

    # ---------------------------------------------------------------- results
    def request_counts(self) -> dict[str, int]:
        """How many requests are in each state now."""
        arrived = self.r_status != R_NOT_YET
        return {
            s.name.lower(): int((self.r_status[arrived] == s).sum()) for s in RequestStatus if s
        }

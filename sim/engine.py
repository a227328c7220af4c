"""The simulation: riders and drivers in a SimPy environment, dispatched through a matcher.

State lives in numpy arrays indexed by request id and driver id; SimPy orders the events
(time, priority, insertion sequence), so equal-time events always run in one order. Movement
and ETAs come from the space's travel-time table, never from a path search per event.

Life of a request: (``quote`` ->) ``request`` -> [``offer`` -> ``decline`` ->]* ``assign`` ->
``pickup`` -> ``dropoff``, or ``cancel`` at any point before the pickup.
Life of a driver: ``driver_online`` -> free (idle or ``reposition``-ing) <-> busy
(offered, to pickup, on trip) -> ``driver_offline`` (a driver whose shift ends mid-trip
finishes the trip first). A free driver is matchable even while repositioning: its ETA is the
time left to its target plus the table time from there.
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
from core.clock import HOUR
from core.schemas import NONE, Kind
from matching.api import CandidateDrivers, Matcher, MatchRequest, MatchResponse, OpenRequests
from sim.behaviour import (
    DriverSpec,
    PricingSpec,
    RiderDraws,
    RiderSpec,
    TravelSpec,
    lognormal_factors,
)
from sim.events import EventLog
from sim.faults import FaultPlan
from sim.pricing import MarketState, SurgeController, SurgePricing
from sim.reposition import RepositionPolicy, RepositionSnapshot


class DriverStatus(IntEnum):
    """Where a driver is in their cycle."""

    OFFLINE = 0
    IDLE = 1
    RESERVED = 2
    """Chosen by a decision that has not landed yet (decision delay)."""
    TO_PICKUP = 3
    ON_TRIP = 4
    REPOSITIONING = 5
    OFFERED = 6
    """Considering an offer."""


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
    OFFERED = 7
    QUOTE_DECLINED = 8
    """The rider saw the quote and did not request."""


# Plain ints/strs for the hot path (enum attribute lookups cost more than the work).
D_IDLE = int(DriverStatus.IDLE)
D_OFFLINE = int(DriverStatus.OFFLINE)
D_ON_TRIP = int(DriverStatus.ON_TRIP)
D_RESERVED = int(DriverStatus.RESERVED)
D_TO_PICKUP = int(DriverStatus.TO_PICKUP)
D_REPOSITIONING = int(DriverStatus.REPOSITIONING)
D_OFFERED = int(DriverStatus.OFFERED)
R_ASSIGNED = int(RequestStatus.ASSIGNED)
R_CANCELLED = int(RequestStatus.CANCELLED)
R_COMPLETED = int(RequestStatus.COMPLETED)
R_DECIDED = int(RequestStatus.DECIDED)
R_NOT_YET = int(RequestStatus.NOT_YET)
R_ON_BOARD = int(RequestStatus.ON_BOARD)
R_OPEN = int(RequestStatus.OPEN)
R_OFFERED = int(RequestStatus.OFFERED)
R_QUOTE_DECLINED = int(RequestStatus.QUOTE_DECLINED)
K_ASSIGN = str(Kind.ASSIGN)
K_CANCEL = str(Kind.CANCEL)
K_DECLINE = str(Kind.DECLINE)
K_DRIVER_OFFLINE = str(Kind.DRIVER_OFFLINE)
K_DRIVER_ONLINE = str(Kind.DRIVER_ONLINE)
K_FAULT = str(Kind.FAULT)
K_DROPOFF = str(Kind.DROPOFF)
K_OFFER = str(Kind.OFFER)
K_PICKUP = str(Kind.PICKUP)
K_QUOTE = str(Kind.QUOTE)
K_REPOSITION = str(Kind.REPOSITION)
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
    shard_of_node: np.ndarray | None = None
    """Matcher shard owning each access node (``None``: one shard for the whole city)."""

    @property
    def immediate(self) -> bool:
        """Ask on every arrival and every driver release instead of every window."""
        return self.batch_window_s == 0


@dataclass(frozen=True)
class MarketRules:
    """How riders, drivers, prices and travel behave (see :mod:`sim.behaviour`)."""

    riders: RiderSpec
    drivers: DriverSpec
    pricing: PricingSpec
    travel: TravelSpec
    start_s: float = 0.0
    """Clock seconds after midnight at simulated t = 0 (for congestion by hour)."""

    @classmethod
    def neutral(cls) -> MarketRules:
        """Everyone requests and accepts, nobody cancels after a match, free-flow travel."""
        return cls(
            RiderSpec(choice="always", cancel_after_match={"base": 0, "per_min": 0}),
            DriverSpec(accept="always"),
            PricingSpec(),
            TravelSpec(),
        )


@dataclass
class MatcherCalls:
    """Wall-clock cost of every matcher call (perf only: never steers the run)."""

    batch_id: list[int] = field(default_factory=list)
    shard_id: list[int] = field(default_factory=list)
    n_requests: list[int] = field(default_factory=list)
    n_drivers: list[int] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)


class Simulation:
    """One run of a market: build it, call :meth:`run`, read the log and counters.

    ``rngs`` holds the named streams the run draws from while it goes: ``matcher`` (tie-break
    seeds), ``drivers`` (offer answers, repositioning), ``travel`` (repositioning legs) and
    ``pricing`` (surge policy seeds) — :func:`sim.seeding.spawn_streams` makes them.
    Rider randomness is drawn up front in ``riders`` (:class:`~sim.behaviour.RiderDraws`).
    """

    def __init__(
        self,
        space: Space,
        trips: Trips,
        riders: RiderDraws,
        fleet: Fleet,
        matcher: Matcher,
        policy: DispatchPolicy,
        rngs: dict[str, np.random.Generator],
        log: EventLog,
        horizon_s: float,
        rules: MarketRules | None = None,
        reposition: RepositionPolicy | None = None,
        surge: SurgePricing | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.space = space
        self.trips = trips
        self.riders = riders
        self.fleet = fleet
        self.matcher = matcher
        self.policy = policy
        self.rules = rules or MarketRules.neutral()
        self.reposition = reposition
        missing = {"matcher", "drivers", "travel", "pricing"} - set(rngs)
        if missing:
            raise ValueError(
                f"Simulation: rngs lacks the streams {sorted(missing)} (see sim.seeding)"
            )
        self.matcher_rng = rngs["matcher"]
        self.driver_rng = rngs["drivers"]
        self.travel_rng = rngs["travel"]
        self.pricing_rng = rngs["pricing"]
        self.log = log
        self.horizon_s = float(horizon_s)
        self.env = simpy.Environment()
        self.calls = MatcherCalls()

        r = self.rules
        self._congestion = np.asarray(r.travel.congestion or (1.0,) * 24, dtype=np.float64)
        self._flat_traffic = bool(np.all(self._congestion == 1.0))
        self._quotes = r.riders.choice != "always"
        self._offers = r.drivers.accept != "always"
        cam = r.riders.cancel_after_match
        self._cancel_after_match = cam.base > 0 or cam.per_min > 0

        n_req, n_drv = len(trips), len(fleet)
        self.free_flow_trip = space.travel_time(trips.pickup_node, trips.dropoff_node)
        xy = space.node_xy
        self.trip_distance_m = np.hypot(*(xy[trips.pickup_node] - xy[trips.dropoff_node]).T)
        # Unsurged price of each trip at its arrival time (fares are linear in the multiplier).
        hours = ((r.start_s + trips.t) // HOUR).astype(np.int64) % 24
        self.base_price = r.pricing.fare(
            self.trip_distance_m, self.free_flow_trip * self._congestion[hours], 1.0
        )
        self.surge = SurgeController(surge, self.pricing_rng) if surge is not None else None
        self.faults = faults
        self.matcher_up = True
        self.r_status = np.zeros(n_req, dtype=np.uint8)
        self.r_multiplier = np.ones(n_req)
        self.r_price = np.full(n_req, np.nan)
        self.r_assign_t = np.full(n_req, np.nan)
        self.r_pickup_t = np.full(n_req, np.nan)
        self.open: dict[int, None] = {}  # open request ids in arrival order

        self.d_status = np.zeros(n_drv, dtype=np.uint8)
        self.d_node = fleet.home_node.astype(np.int64).copy()
        self.d_free_at = np.zeros(n_drv)
        self.d_idle_since = np.zeros(n_drv)
        self.d_earnings = np.zeros(n_drv)
        self.d_online_s = np.zeros(n_drv)
        self.d_online_since = np.full(n_drv, np.nan)
        self.d_leaving = np.zeros(n_drv, dtype=bool)
        self.d_paused_until = np.zeros(n_drv)
        self.d_rider = np.full(n_drv, NONE, dtype=np.int64)
        self.d_shift_off = np.zeros(n_drv)
        self.free = np.zeros(n_drv, dtype=bool)
        """Drivers the matcher may use now: idle or repositioning, online, not paused."""
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
        if self.reposition is not None:
            env.process(self._repositioning())
        if self.surge is not None:
            env.process(self._pricing())
        if self.faults is not None:
            env.process(self._matcher_outages())
            env.process(self._crashes())
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
            if self.open and self.free.any():
                self._dispatch(None)

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        self.env.timeout(delay).callbacks.append(lambda _ev: fn())

    # ------------------------------------------------------------------ travel
    def _factor(self, t: float) -> float:
        """Congestion factor of the clock hour at simulated time ``t``."""
        return float(self._congestion[int((self.rules.start_s + t) // HOUR) % 24])

    def expected_travel_time(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """Travel times as quoted now: free flow times this hour's congestion factor."""
        if self._flat_traffic:
            return self.space.travel_time
        factor = self._factor(self.env.now)
        tt = self.space.travel_time
        return lambda a, b: tt(a, b) * factor

    def _actual(self, free_flow: float, depart: float, noise: float) -> float:
        """Seconds a leg really takes: never faster than free flow."""
        if self._flat_traffic and noise == 1.0:
            return free_flow
        return max(free_flow, free_flow * self._factor(depart) * noise)

    # ---------------------------------------------------------------- requests
    def _arrive(self, i: int) -> None:
        now = self.env.now
        self._arrived += 1
        tr = self.trips
        pickup, dropoff = int(tr.pickup_node[i]), int(tr.dropoff_node[i])
        mult = 1.0 if self.surge is None else float(self.multiplier_at(np.array([pickup]))[0])
        self.r_multiplier[i] = mult
        price = float(self.base_price[i]) * mult
        self.r_price[i] = price
        if self._quotes:
            eta = self._quote_eta(pickup) * float(self.riders.quote_noise[i])
            p = float(self.rules.riders.request_probability(mult, eta))
            requested = bool(self.riders.u_choice[i] < p)
            self.log.add(
                now,
                K_QUOTE,
                rider=i,
                node=pickup,
                dest_node=dropoff,
                value=eta,
                fare=price,
                detail="request" if requested else "decline",
            )
            if not requested:
                self.r_status[i] = R_QUOTE_DECLINED
                return
        self.log.add(
            now,
            K_REQUEST,
            rider=i,
            node=pickup,
            dest_node=dropoff,
            value=float(self.free_flow_trip[i]),
            fare=price,
        )
        self.r_status[i] = R_OPEN
        self.open[i] = None
        if self.policy.immediate and self.free.any():
            self._dispatch(np.array([i], dtype=np.int64))
        patience = float(self.riders.patience_s[i])
        if patience <= 0:
            if self.r_status[i] == R_OPEN:
                self._cancel(i, "no_driver")
            return
        self._after(patience, partial(self._give_up, i))

    def _quote_eta(self, pickup: int) -> float:
        """The pickup ETA a rider is quoted: the nearest free driver's, or the maximum pickup
        ETA when nobody is in range (the app shows "no cars nearby")."""
        cand = np.flatnonzero(self.free)
        limit = self.policy.max_pickup_eta_s
        if cand.size == 0:
            return limit
        now = self.env.now
        wait = np.maximum(self.d_free_at[cand] - now, 0.0)
        eta = float(np.min(wait + self.expected_travel_time()(self.d_node[cand], pickup)))
        return min(eta, limit)

    def multiplier_at(self, nodes: np.ndarray) -> np.ndarray:
        """Surge multiplier now at ``nodes`` (1 without a surge policy)."""
        if self.surge is None:
            return np.ones(np.shape(nodes))
        return self.surge.multiplier_at(nodes)

    # ------------------------------------------------------------------ pricing
    def _pricing(self):  # noqa: ANN202 - SimPy process
        assert self.surge is not None
        while True:
            self.surge.step(self._market_state())
            yield self.env.timeout(self.surge.interval_s)

    def _market_state(self) -> MarketState:
        """What surge pricing reads: the market now and over the last pricing interval."""
        assert self.surge is not None
        now, tr = self.env.now, self.trips
        open_ids = np.fromiter(self.open, dtype=np.int64, count=len(self.open))
        lo, hi = np.searchsorted(tr.t, [now - self.surge.interval_s, now], side="left")
        window = np.arange(lo, hi)
        declined = window[self.r_status[window] == R_QUOTE_DECLINED]
        to_pickup = np.flatnonzero(self.d_status == D_TO_PICKUP)
        return MarketState(
            time=now,
            open_pickups=tr.pickup_node[open_ids],
            quote_pickups=tr.pickup_node[window],
            declined_pickups=tr.pickup_node[declined],
            free_driver_nodes=self.d_node[self.free],
            en_route_pickups=tr.pickup_node[self.d_rider[to_pickup]],
        )

    def _give_up(self, i: int) -> None:
        if self.r_status[i] in (R_OPEN, R_DECIDED, R_OFFERED):
            self._cancel(i, "patience")

    def _cancel(self, i: int, reason: str, driver: int = NONE) -> None:
        self.r_status[i] = R_CANCELLED
        self.open.pop(i, None)
        self.log.add(
            self.env.now,
            K_CANCEL,
            rider=i,
            driver=driver,
            node=int(self.trips.pickup_node[i]),
            detail=reason,
        )

    # ---------------------------------------------------------------- drivers
    def _online(self, d: int, off: float, detail: str | None = None) -> None:
        if self.d_status[d] != D_OFFLINE:  # back-to-back shifts: keep working
            self.d_leaving[d] = False
        else:
            now = self.env.now
            self.d_status[d] = D_IDLE
            self.d_online_since[d] = now
            self.d_free_at[d] = now
            self.d_idle_since[d] = now
            self.free[d] = True
            self.log.add(now, K_DRIVER_ONLINE, driver=d, node=int(self.d_node[d]), detail=detail)
        if detail is None:  # a new shift (a reconnect keeps the shift it had)
            self.d_shift_off[d] = off
            if off < self.horizon_s:
                self._after(off - self.env.now, partial(self._shift_ends, d))
        if self.policy.immediate and self.open and self.free[d]:
            self._dispatch(None)

    def _shift_ends(self, d: int) -> None:
        if self.d_status[d] == D_IDLE:
            self._offline(d)
        elif self.d_status[d] != D_OFFLINE:
            self.d_leaving[d] = True
            self.free[d] = False  # finishing up: no new work

    def _offline(self, d: int, detail: str | None = None) -> None:
        now = self.env.now
        self.d_status[d] = D_OFFLINE
        self.free[d] = False
        self.d_leaving[d] = False
        self.d_online_s[d] += now - self.d_online_since[d]
        self.d_online_since[d] = np.nan
        self.log.add(now, K_DRIVER_OFFLINE, driver=d, node=int(self.d_node[d]), detail=detail)

    # ------------------------------------------------------------------- faults
    def _matcher_outages(self):  # noqa: ANN202 - SimPy process
        assert self.faults is not None
        for start, end in self.faults.matcher_down.tolist():
            if start > self.env.now:
                yield self.env.timeout(start - self.env.now)
            self.matcher_up = False
            self.log.add(self.env.now, K_FAULT, detail="matcher_down")
            yield self.env.timeout(end - self.env.now)
            self.matcher_up = True
            self.log.add(self.env.now, K_FAULT, detail="matcher_up")
            if self.policy.immediate and self.open and self.free.any():
                self._dispatch(None)

    def _crashes(self):  # noqa: ANN202 - SimPy process
        assert self.faults is not None
        plan = self.faults
        for t, d in zip(plan.crash_t.tolist(), plan.crash_driver.tolist(), strict=True):
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            if self.d_status[d] == D_IDLE and not self.d_leaving[d]:
                self._offline(d, detail="crash")
                self._after(plan.reconnect_s, partial(self._reconnect, d))

    def _reconnect(self, d: int) -> None:
        if self.d_status[d] == D_OFFLINE and self.env.now < self.d_shift_off[d]:
            self._online(d, float(self.d_shift_off[d]), detail="reconnect")

    def _release(self, d: int, pause_s: float = 0.0) -> None:
        """The driver has no job any more: free at their node (or still driving to it)."""
        now = self.env.now
        moving = self.d_free_at[d] > now
        if self.d_leaving[d]:
            if moving:  # finish the drive, then log off
                self.d_status[d] = D_REPOSITIONING
                self.free[d] = False
                return
            self._offline(d)
            return
        self.d_status[d] = D_REPOSITIONING if moving else D_IDLE
        if not moving:
            self.d_free_at[d] = now
        self.d_idle_since[d] = now
        if pause_s > 0:
            self.d_paused_until[d] = now + pause_s
            self.free[d] = False
            self._after(pause_s, partial(self._unpause, d))
            return
        self.free[d] = True
        if self.policy.immediate and self.open:
            self._dispatch(None)

    def _unpause(self, d: int) -> None:
        if self.d_status[d] in (D_IDLE, D_REPOSITIONING) and not self.d_leaving[d]:
            self.free[d] = True
            if self.policy.immediate and self.open:
                self._dispatch(None)

    # ------------------------------------------------------------ repositioning
    def _repositioning(self):  # noqa: ANN202 - SimPy process
        spec = self.rules.drivers
        while True:
            yield self.env.timeout(spec.reposition_every_s)
            self._reposition_step(spec.reposition_after_s)

    def _reposition_step(self, after_s: float) -> None:
        now = self.env.now
        eligible = np.flatnonzero(
            self.free & (self.d_status == D_IDLE) & (now - self.d_idle_since >= after_s)
        )
        if eligible.size == 0:
            return
        t = self.trips.t
        lo = int(np.searchsorted(t, now - 1800.0, side="left"))
        hi = int(np.searchsorted(t, now, side="right"))
        recent = self.trips.pickup_node[lo:hi]
        xy = self.space.node_xy
        nodes = self.d_node[eligible]
        snapshot = RepositionSnapshot(
            time=now,
            driver_id=eligible,
            driver_node=nodes,
            driver_xy=xy[nodes],
            idle_since=self.d_idle_since[eligible],
            recent_pickup_node=recent,
            recent_pickup_xy=xy[recent],
            travel_time=self.expected_travel_time(),
            multiplier=self.multiplier_at,
            seed=int(self.driver_rng.integers(2**63)),
        )
        plan = self.reposition.decide(snapshot)  # type: ignore[union-attr]
        ids = np.asarray(plan.driver_id, dtype=np.int64)
        targets = np.asarray(plan.target_node, dtype=np.int64)
        ok = np.isin(ids, eligible) & (targets >= 0) & (targets < self.space.n_nodes)
        if not np.all(ok) or np.unique(ids).size != ids.size:
            raise RuntimeError(
                f"reposition policy {type(self.reposition).__name__}: moved a driver that was "
                "not eligible, twice, or to a node that does not exist"
            )
        order = np.argsort(ids, kind="stable")
        free_flow = self.space.travel_time(self.d_node[ids[order]], targets[order])
        noise_cv = self.rules.travel.actual_noise_cv
        for d, target, ff in zip(
            ids[order].tolist(), targets[order].tolist(), free_flow.tolist(), strict=True
        ):
            if target == self.d_node[d]:
                continue
            noise = float(lognormal_factors(self.travel_rng, noise_cv, 1)[0])
            drive = self._actual(ff, now, noise)
            self.log.add(
                now, K_REPOSITION, driver=d, node=int(self.d_node[d]), dest_node=target, value=drive
            )
            self.d_status[d] = D_REPOSITIONING
            self.d_node[d] = target
            self.d_free_at[d] = now + drive
            self._after(drive, partial(self._reposition_done, d, now + drive))

    def _reposition_done(self, d: int, arrival: float) -> None:
        if self.d_status[d] == D_REPOSITIONING and self.d_free_at[d] == arrival:
            if self.d_leaving[d]:
                self._offline(d)
            else:
                self.d_status[d] = D_IDLE
                self.d_idle_since[d] = self.env.now

    # ---------------------------------------------------------------- matching
    def _dispatch(self, request_ids: np.ndarray | None) -> None:
        """Ask the matcher about ``request_ids`` (default: every open request) and every free
        driver, shard by shard, then apply each decision now or after the simulated decision
        delay."""
        if not self.matcher_up:  # an outage: nobody is assigned until it ends
            return
        if request_ids is None:
            request_ids = np.fromiter(self.open, dtype=np.int64, count=len(self.open))
            request_ids.sort()
        drivers = np.flatnonzero(self.free)
        shard_of = self.policy.shard_of_node
        if shard_of is None:
            self._dispatch_shard(0, request_ids, drivers)
        else:
            req_shard = shard_of[self.trips.pickup_node[request_ids]]
            drv_shard = shard_of[self.d_node[drivers]]
            for shard in np.unique(req_shard).tolist():
                self._dispatch_shard(
                    shard, request_ids[req_shard == shard], drivers[drv_shard == shard]
                )
        self._batch_id += 1

    def _dispatch_shard(self, shard: int, request_ids: np.ndarray, drivers: np.ndarray) -> None:
        now = self.env.now
        request = self._snapshot(now, request_ids, drivers, shard)
        t0 = time.perf_counter()
        response = self.matcher.match(request)
        wall = time.perf_counter() - t0
        c = self.calls
        c.batch_id.append(self._batch_id)
        c.shard_id.append(shard)
        c.n_requests.append(len(request_ids))
        c.n_drivers.append(len(drivers))
        c.wall_s.append(wall)
        self._check_response(request, response)
        batch_id = self._batch_id
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
        self.free[did] = False
        self._after(delay, partial(self._apply, rid, did, eta, batch_id))

    def _snapshot(
        self, now: float, rid: np.ndarray, did: np.ndarray, shard: int = 0
    ) -> MatchRequest:
        tr, xy = self.trips, self.space.node_xy
        pick, drop = tr.pickup_node[rid], tr.dropoff_node[rid]
        nodes = self.d_node[did]
        online = self.d_online_s[did] + (now - self.d_online_since[did])
        state = np.where(self.d_status[did] == D_REPOSITIONING, 3, 0).astype(np.uint8)
        return MatchRequest(
            decision_time=now,
            batch_id=self._batch_id,
            shard_id=shard,
            requests=OpenRequests.unchecked(
                id=rid,
                pickup_node=pick,
                dropoff_node=drop,
                pickup_xy=xy[pick],
                dropoff_xy=xy[drop],
                requested_at=tr.t[rid],
                quoted_price=self.r_price[rid],
                patience_s=self.riders.patience_s[rid],
            ),
            drivers=CandidateDrivers.unchecked(
                id=did,
                node=nodes,
                xy=xy[nodes],
                state=state,
                free_at=np.maximum(self.d_free_at[did], now),
                earnings=self.d_earnings[did],
                online_s=online,
            ),
            max_pickup_eta_s=self.policy.max_pickup_eta_s,
            seed=int(self.matcher_rng.integers(2**63)),
            travel_time=self.expected_travel_time(),
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
        elif did.min() < 0 or did.max() >= self.free.size or not np.all(self.free[did]):
            problems.append("assigned a driver that was not free")
        elif np.any(response.pickup_eta_s > request.max_pickup_eta_s + 1e-9):
            problems.append("exceeded max_pickup_eta_s")
        if problems:
            name = type(self.matcher).__name__
            raise MatcherContractError(f"matcher {name}: " + "; ".join(problems))

    def _apply(self, rid: np.ndarray, did: np.ndarray, eta: np.ndarray, batch_id: int) -> None:
        order = np.argsort(rid, kind="stable")  # log in request-id order, whatever the matcher's
        detail = str(batch_id)
        for r, d, quoted in zip(
            rid[order].tolist(), did[order].tolist(), eta[order].tolist(), strict=True
        ):
            if self.r_status[r] == R_CANCELLED:  # gave up while we decided
                self._release(d)
                continue
            self.open.pop(r, None)
            if self._offers:
                self._offer(r, d, quoted, detail)
            else:
                self._start_pickup(r, d, quoted, detail)

    def _offer(self, r: int, d: int, quoted: float, detail: str) -> None:
        """Offer the ride to the driver, who answers after a response time."""
        now = self.env.now
        spec = self.rules.drivers
        self.r_status[r] = R_OFFERED
        self.d_status[d] = D_OFFERED
        self.free[d] = False
        self.log.add(
            now,
            K_OFFER,
            rider=r,
            driver=d,
            node=int(self.d_node[d]),
            dest_node=int(self.trips.pickup_node[r]),
            value=quoted,
            detail=detail,
        )
        u_silent, u_accept, u_time = self.driver_rng.random(3).tolist()
        if u_silent < spec.no_response:
            self._after(
                spec.offer_timeout_s, partial(self._answer, r, d, quoted, detail, "timeout")
            )
            return
        lo, hi = spec.response_s
        p = float(spec.accept_probability(self.r_multiplier[r], quoted))
        answer = "accept" if u_accept < p else "declined"
        self._after(lo + u_time * (hi - lo), partial(self._answer, r, d, quoted, detail, answer))

    def _answer(self, r: int, d: int, quoted: float, detail: str, answer: str) -> None:
        if self.r_status[r] != R_OFFERED:  # the rider gave up while the driver thought
            self.log.add(
                self.env.now,
                K_DECLINE,
                rider=r,
                driver=d,
                node=int(self.d_node[d]),
                detail="rider_gone",
            )
            self._release(d)
            return
        if answer == "accept":
            self._start_pickup(r, d, quoted, detail)
            return
        self.log.add(
            self.env.now, K_DECLINE, rider=r, driver=d, node=int(self.d_node[d]), detail=answer
        )
        self._release(d, pause_s=self.rules.drivers.decline_pause_s)
        if self.riders.patience_s[r] <= 0:  # nobody waits for a second try
            self._cancel(r, "no_driver")
            return
        self.r_status[r] = R_OPEN
        self.open[r] = None
        if self.policy.immediate and self.open and self.free.any():
            self._dispatch(None)

    def _start_pickup(self, r: int, d: int, quoted: float, detail: str) -> None:
        """The driver sets off (after finishing any repositioning leg) to the pickup."""
        now = self.env.now
        pickup = int(self.trips.pickup_node[r])
        wait = max(self.d_free_at[d] - now, 0.0)
        free_flow = float(self.space.travel_time(self.d_node[d : d + 1], np.array([pickup]))[0])
        drive = wait + self._actual(free_flow, now + wait, float(self.riders.pickup_noise[r]))
        self.r_status[r] = R_ASSIGNED
        self.r_assign_t[r] = now
        self.d_rider[d] = r
        if self.surge is not None:
            self.surge.note_assignment(now, pickup, quoted)
        self.d_status[d] = D_TO_PICKUP
        self.free[d] = False
        self.log.add(
            now,
            K_ASSIGN,
            rider=r,
            driver=d,
            node=int(self.d_node[d]),
            dest_node=pickup,
            value=quoted,
            detail=detail,
        )
        self.d_free_at[d] = now + drive
        if self._cancel_after_match:
            p = float(self.rules.riders.cancel_after_match.probability(quoted))
            if self.riders.u_cancel[r] < p:
                at = float(self.riders.cancel_fraction[r]) * drive
                self._after(at, partial(self._cancel_after_match_event, r, d))
        self._after(drive, partial(self._pickup, r, d))

    def _cancel_after_match_event(self, r: int, d: int) -> None:
        if self.r_status[r] == R_ASSIGNED:
            self._cancel(r, "after_match", driver=d)

    # ---------------------------------------------------------------- movement
    def _pickup(self, r: int, d: int) -> None:
        now = self.env.now
        node = int(self.trips.pickup_node[r])
        self.d_node[d] = node
        self.d_free_at[d] = now
        if self.r_status[r] == R_CANCELLED:  # the rider cancelled on the way: free here
            self._release(d)
            return
        self.r_status[r] = R_ON_BOARD
        self.r_pickup_t[r] = now
        self.d_status[d] = D_ON_TRIP
        self.log.add(now, K_PICKUP, rider=r, driver=d, node=node, value=now - self.r_assign_t[r])
        drive = self._actual(float(self.free_flow_trip[r]), now, float(self.riders.trip_noise[r]))
        self.d_free_at[d] = now + drive
        self._after(drive, partial(self._dropoff, r, d))

    def _dropoff(self, r: int, d: int) -> None:
        now = self.env.now
        node = int(self.trips.dropoff_node[r])
        self.r_status[r] = R_COMPLETED
        self.d_node[d] = node
        self.d_free_at[d] = now
        trip_s = now - self.r_pickup_t[r]
        pricing = self.rules.pricing
        fare = float(pricing.fare(self.trip_distance_m[r], trip_s, self.r_multiplier[r]))
        self.d_earnings[d] += fare * (1.0 - pricing.commission)
        self.log.add(now, K_DROPOFF, rider=r, driver=d, node=node, value=trip_s, fare=fare)
        self._release(d)

    # ---------------------------------------------------------------- results
    def request_counts(self) -> dict[str, int]:
        """How many requests are in each state now."""
        arrived = self.r_status != R_NOT_YET
        statuses = self.r_status[arrived]
        return {s.name.lower(): int((statuses == s).sum()) for s in RequestStatus if s}

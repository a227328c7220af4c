"""The simulation: the engine parts wired together on one scheduler.

Each part has one job: :mod:`sim.state` (request and driver state, struct-of-arrays with
named transitions), :mod:`sim.dispatcher` (snapshot, contract check, shards, decision delay),
:mod:`sim.market` (arrivals, quotes, offers, cancellations), :mod:`sim.rides` and
:mod:`sim.movement` (legs, travel times, congestion), :mod:`sim.shifts` (drivers on and off
duty), and the controllers for pricing (:mod:`sim.pricing`), repositioning
(:mod:`sim.repositioning`) and faults (:mod:`sim.faults`). :class:`Simulation` builds them,
connects their hooks, and runs the clock.

The parts schedule plain calls on one :class:`~sim.scheduler.Scheduler`, which orders them
as SimPy orders events, by (time, priority, insertion sequence), so equal-time events always
run in one order (no part needs a SimPy process, so none is made).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cities.demand import Trips
from cities.space import Space
from cities.supply import Fleet
from matching.api import EtaBounds, Matcher
from sim.behaviour import RiderDraws
from sim.dispatcher import Dispatcher, DispatchPolicy, MatcherCalls, MatcherContractError
from sim.events import EventLog
from sim.faults import FaultController, FaultPlan, ServiceOutages
from sim.market import Market, MarketRules
from sim.movement import Congestion, Travel
from sim.pricing import PricingController, SurgeController, SurgePricing
from sim.reposition import RepositionPolicy
from sim.repositioning import RepositionController
from sim.rides import Rides
from sim.scheduler import Scheduler
from sim.shifts import Shifts
from sim.state import Drivers, Requests, RequestStatus

__all__ = ["DispatchPolicy", "MarketRules", "MatcherContractError", "Simulation"]

STREAMS_USED = ("matcher", "drivers", "travel", "pricing")
"""The named random streams a run draws from while it goes (see :mod:`sim.seeding`)."""


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
        missing = set(STREAMS_USED) - set(rngs)
        if missing:
            raise ValueError(
                f"Simulation: rngs lacks the streams {sorted(missing)} (see sim.seeding)"
            )
        self.trips = trips
        self.log = log
        self.horizon_s = float(horizon_s)
        self.rules = rules = rules or MarketRules.neutral()
        self.sched = sched = Scheduler()
        xy = space.node_xy
        self.requests = Requests(trips, xy, riders.patience_s)
        self.drivers = Drivers(fleet)
        congestion = Congestion.from_spec(rules.travel, rules.start_s)
        travel = Travel(space, congestion)
        self.surge = SurgeController(surge, rngs["pricing"]) if surge is not None else None
        rq, dv = self.requests, self.drivers

        # A road network's zone bounds let candidate search skip zones of drivers that cannot
        # be among a request's nearest (same candidates, less work); a length-dependent travel
        # model could break them, so it gets none.
        zone_bounds = getattr(space, "zone_bounds", None)
        bounds = (
            EtaBounds(*zone_bounds())
            if zone_bounds is not None and not congestion.by_length
            else None
        )
        if bounds is not None:
            dv.index_zones(bounds.node_zone, bounds.n_zones)
        self.dispatcher = Dispatcher(
            matcher,
            policy,
            sched,
            rq,
            dv,
            travel,
            xy,
            space.max_speed_mps,
            rngs["matcher"],
            eta_bounds=bounds,
        )
        self.rides = Rides(
            sched, rq, dv, travel, xy, riders, rules.riders, rules.pricing, log, self.surge
        )
        # Unsurged price of each trip at its arrival time (fares are linear in the multiplier).
        base_price = rules.pricing.fare(
            self.rides.trip_distance_m,
            congestion.apply(self.rides.free_flow_trip, rq.t),
            1.0,
        )
        self.shifts = Shifts(fleet, horizon_s, policy.immediate, sched, rq, dv, log)
        self.market = Market(
            rules,
            riders,
            base_price,
            sched,
            rq,
            dv,
            self.dispatcher,
            self.rides,
            self.shifts,
            travel,
            log,
            rngs["drivers"],
            self.surge,
            eta_bounds=bounds,
        )
        self.dispatcher.apply = self.market.apply
        self.dispatcher.apply_one = self.market.apply_one
        self.rides.on_cancel_after_match = self.market.cancel_after_match
        self.rides.on_free = self.shifts.release
        self.shifts.dispatch = self.dispatcher.dispatch
        self.batch_window_s = policy.batch_window_s
        self.repositioner = (
            RepositionController(
                reposition,
                rules.drivers,
                rules.travel.actual_noise_cv,
                sched,
                rq,
                dv,
                self.shifts,
                travel,
                xy,
                space.n_nodes,
                self.multiplier_at,
                rngs["drivers"],
                rngs["travel"],
                log,
            )
            if reposition is not None
            else None
        )
        self.pricing = (
            PricingController(self.surge, sched, rq, dv) if self.surge is not None else None
        )
        self.faults = (
            FaultController(faults, sched, rq, dv, self.dispatcher, self.shifts, log)
            if faults is not None
            else None
        )
        # Unplanned: a matcher service that cannot be reached (every run can meet one).
        self.service = ServiceOutages(sched, rq, dv, self.dispatcher, log)

    @property
    def calls(self) -> MatcherCalls:
        """Wall-clock cost of every matcher call (perf only)."""
        return self.dispatcher.calls

    # ----------------------------------------------------------------- running
    def run(
        self, progress: Callable[[float, int, int], None] | None = None, steps: int = 200
    ) -> None:
        """Simulate [0, horizon). ``progress(sim_time, requests_so_far, events_so_far)`` is
        called between equal slices of simulated time (never from wall-clock time)."""
        # Start order is part of the event order: shifts first (drivers who log on at t are
        # online for requests arriving at t), then arrivals, batches, controllers.
        self.shifts.start()
        self.market.start()
        if not self.dispatcher.policy.immediate:
            self.sched.start(self._wait_batch)
        if self.repositioner is not None:
            self.repositioner.start()
        if self.pricing is not None:
            self.pricing.start()
        if self.faults is not None:
            self.faults.start()
        for k in range(1, steps + 1):
            self.sched.run(until=self.horizon_s * k / steps)
            self.log.write_chunks()
            if progress is not None:
                progress(self.sched.now, self.market.arrived, len(self.log))

    def _wait_batch(self) -> None:
        self.sched.after(self.batch_window_s, self._batch)

    def _batch(self) -> None:
        if self.requests.open and self.drivers.n_free:
            self.dispatcher.dispatch()
        self._wait_batch()

    # ---------------------------------------------------------------- results
    def multiplier_at(self, nodes: np.ndarray) -> np.ndarray:
        """Surge multiplier now at ``nodes`` (1 without a surge policy)."""
        if self.surge is None:
            return np.ones(np.shape(nodes))
        return self.surge.multiplier_at(nodes)

    def request_counts(self) -> dict[str, int]:
        """How many requests are in each state now."""
        status = self.requests.status
        statuses = status[status != RequestStatus.NOT_YET]
        return {s.name.lower(): int((statuses == s).sum()) for s in RequestStatus if s}

"""Rides: a driver heads for the pickup, carries the rider, drops them off and is paid.

Each leg's duration comes from :class:`~sim.movement.Travel` (free flow from the table, then
congestion at departure and the rider's own traffic noise); the driver's plan of stops says
where it goes next.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.schemas import NONE, Kind
from sim.behaviour import PricingSpec, RiderDraws, RiderSpec
from sim.events import EventLog
from sim.movement import Travel
from sim.pricing import SurgeController
from sim.scheduler import Scheduler
from sim.state import R_CANCELLED, Drivers, Requests

K_ASSIGN = str(Kind.ASSIGN)
K_PICKUP = str(Kind.PICKUP)
K_DROPOFF = str(Kind.DROPOFF)
NAN = float("nan")


class Rides:
    """Starts rides and moves them through pickup and dropoff."""

    def __init__(
        self,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        travel: Travel,
        node_xy: np.ndarray,
        riders: RiderDraws,
        rider_spec: RiderSpec,
        pricing: PricingSpec,
        log: EventLog,
        surge: SurgeController | None,
    ) -> None:
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.travel = travel
        self.log = log
        self.surge = surge
        self.pricing = pricing
        self.cancel_model = rider_spec.cancel_after_match
        self.cancels = self.cancel_model.base > 0 or self.cancel_model.per_min > 0
        rq = requests
        self.free_flow_trip = travel.free_flow(rq.pickup_node, rq.dropoff_node)
        xy = np.asarray(node_xy)
        self.trip_distance_m = np.hypot(*(xy[rq.pickup_node] - xy[rq.dropoff_node]).T)
        self._free_flow_trip = self.free_flow_trip.tolist()
        self._pickup_node = rq.pickup_node.tolist()
        self._dropoff_node = rq.dropoff_node.tolist()
        self._distance = self.trip_distance_m.tolist()
        self._pickup_noise = riders.pickup_noise.tolist()
        self._trip_noise = riders.trip_noise.tolist()
        self._free_flow_only = travel.always_free_flow(riders.pickup_noise, riders.trip_noise)
        """Every leg takes its free-flow time (what ``travel.actual`` gives then, uncalled)."""
        self._leg = travel.leg_fn()
        self._u_cancel = riders.u_cancel
        self._cancel_fraction = riders.cancel_fraction
        self.on_cancel_after_match: Callable[[int, int], None] = _unwired
        """Called when a rider's drawn moment to give up on the driver comes (the market)."""
        self.on_free: Callable[[int], None] = _unwired
        """Called with a driver whose ride is over (the shifts part releases it)."""

    def start(self, r: int, d: int, quoted: float, detail: str) -> None:
        """The driver sets off (after finishing any repositioning leg) to the pickup."""
        now = self.sched.now
        rq, dv = self.requests, self.drivers
        pickup = self._pickup_node[r]
        wait = dv.free_at_one[d] - now
        if 0.0 > wait:  # max(wait, 0.0) without the call (the same value, -0.0 and NaN too)
            wait = 0.0
        node = dv.node_one[d]
        free_flow = self._leg(node, pickup)
        if self._free_flow_only:
            drive = wait + free_flow
        else:
            drive = wait + self.travel.actual(free_flow, now + wait, self._pickup_noise[r])
        rq.assign(r, now)
        if self.surge is not None:
            self.surge.note_assignment(now, pickup, quoted)
        dv.head_for_pickup(d, r, pickup, self._dropoff_node[r], now + drive)
        self.log.row((now, K_ASSIGN, r, d, node, pickup, quoted, NAN, detail))
        if self.cancels:
            p = self.cancel_model.probability_one(quoted)
            if self._u_cancel[r] < p:
                at = float(self._cancel_fraction[r]) * drive
                self.sched.after(at, self.on_cancel_after_match, r, d)
        self.sched.after(drive, self.pickup, r, d)

    def pickup(self, r: int, d: int) -> None:
        """The driver reaches the pickup: the rider boards (unless they cancelled)."""
        now = self.sched.now
        rq, dv = self.requests, self.drivers
        stop = dv.reach_stop(d, now)
        if rq.status_one[r] == R_CANCELLED:  # the rider cancelled on the way: free here
            dv.drop_plan(d)
            self.on_free(d)
            return
        rq.board(r, now)
        if self._free_flow_only:
            drive = self._free_flow_trip[r]
        else:
            drive = self.travel.actual(self._free_flow_trip[r], now, self._trip_noise[r])
        dv.drive_trip(d, now + drive)
        waited = now - rq.assign_t_one[r]
        self.log.row((now, K_PICKUP, r, d, stop.node, NONE, waited, NAN, None))
        self.sched.after(drive, self.dropoff, r, d)

    def dropoff(self, r: int, d: int) -> None:
        """The rider gets out and pays; the driver keeps its share."""
        now = self.sched.now
        rq, dv = self.requests, self.drivers
        stop = dv.reach_stop(d, now)
        rq.complete(r)
        trip_s = now - rq.pickup_t_one[r]
        pricing = self.pricing
        fare = pricing.fare_one(self._distance[r], trip_s, rq.multiplier_one[r])
        dv.earnings_one[d] += fare * (1.0 - pricing.commission)
        self.log.row((now, K_DROPOFF, r, d, stop.node, NONE, trip_s, fare, None))
        self.on_free(d)


def _unwired(*args: int) -> None:
    raise RuntimeError("Rides: a hook was not wired by the engine")

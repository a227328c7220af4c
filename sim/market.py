"""The market: riders arriving, quotes, offers to drivers and their answers, cancellations.

Each arrival is priced (surge multiplier at the pickup), optionally quoted a pickup ETA and
asked whether to request (:class:`~sim.behaviour.RiderSpec`), then opened and, under immediate
dispatch, matched at once. A decision's assignments become offers the drivers answer after a
response time (:class:`~sim.behaviour.DriverSpec`), or rides straight away when every driver
accepts. Riders give up when their patience runs out, or after a match with a probability
that grows with the pickup ETA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.schemas import NONE, Kind
from matching.api import EtaBounds
from sim.behaviour import (
    CancelAfterMatch,
    DriverSpec,
    PricingSpec,
    RiderDraws,
    RiderSpec,
    TravelSpec,
)
from sim.dispatcher import Dispatcher
from sim.events import EventLog
from sim.movement import Travel
from sim.pricing import SurgeController
from sim.rides import Rides
from sim.scheduler import Scheduler
from sim.shifts import Shifts
from sim.state import R_ASSIGNED, R_CANCELLED, R_OFFERED, R_OPEN, WAITING, Drivers, Requests

K_CANCEL = str(Kind.CANCEL)
K_DECLINE = str(Kind.DECLINE)
K_OFFER = str(Kind.OFFER)
K_QUOTE = str(Kind.QUOTE)
K_REQUEST = str(Kind.REQUEST)
NAN = float("nan")
ZONED_QUOTE_MIN_FREE = 2048
"""From how many free drivers a quote reads the zones near the pickup (``Drivers.zone_free``)
rather than every free driver: the same minimum either way; below it the scan is cheaper."""


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
            RiderSpec(choice="always", cancel_after_match=CancelAfterMatch(base=0, per_min=0)),
            DriverSpec(accept="always"),
            PricingSpec(),
            TravelSpec(),
        )


class Market:
    """Arrivals, quotes, offers and cancellations; decisions from the dispatcher land here."""

    def __init__(
        self,
        rules: MarketRules,
        riders: RiderDraws,
        base_price: np.ndarray,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        dispatcher: Dispatcher,
        rides: Rides,
        shifts: Shifts,
        travel: Travel,
        log: EventLog,
        driver_rng: np.random.Generator,
        surge: SurgeController | None,
        eta_bounds: EtaBounds | None = None,
    ) -> None:
        self.rules = rules
        self.riders = riders
        self.base_price = base_price.tolist()
        self.free_flow_trip = rides.free_flow_trip.tolist()
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.dispatcher = dispatcher
        self.rides = rides
        self.shifts = shifts
        self.travel = travel
        self.log = log
        self.driver_rng = driver_rng
        self.surge = surge
        self.immediate = dispatcher.policy.immediate
        self.max_pickup_eta_s = dispatcher.policy.max_pickup_eta_s
        self.quotes = rules.riders.choice != "always"
        self.offers = rules.drivers.accept != "always"
        self.patience = riders.patience_s.tolist()
        self._pickup_node = requests.pickup_node.tolist()
        self._dropoff_node = requests.dropoff_node.tolist()
        self.arrived = 0
        self._into_zone = None if eta_bounds is None else eta_bounds.into_node_s
        """Lower bounds on travel into each node from each zone of ``drivers.zone_free``."""
        self._node_zone = None if eta_bounds is None else eta_bounds.node_zone.tolist()

    # ----------------------------------------------------------------- arrivals
    def start(self) -> None:
        """Begin the arrivals (riders who arrive at t = 0 arrive in the first step)."""
        self._t = self.requests.t.tolist()
        self.sched.start(self._arrivals, 0)

    def _arrivals(self, i: int, due: bool = False) -> None:
        # Every arrival due now, then one call at the next arrival time. ``due``: this is that
        # call, so rider i arrives now (whatever rounding left of t[i] - now).
        t, sched = self._t, self.sched
        if due:
            self.arrive(i)
            i += 1
        while i < len(t):
            dt = t[i] - sched.now
            if dt > 0:
                sched.after(dt, self._arrivals, i, True)
                return
            self.arrive(i)
            i += 1

    def arrive(self, i: int) -> None:
        """Rider ``i`` opens the app: price, quote, request, match, start the patience clock."""
        now = self.sched.now
        self.arrived += 1
        rq = self.requests
        pickup, dropoff = self._pickup_node[i], self._dropoff_node[i]
        surge = self.surge
        mult = 1.0 if surge is None else float(surge.multiplier_at(np.array([pickup]))[0])
        price = self.base_price[i] * mult
        rq.priced(i, mult, price)
        if self.quotes:
            eta = self.quote_eta(pickup) * float(self.riders.quote_noise[i])
            p = self.rules.riders.request_probability_one(mult, eta)
            requested = bool(self.riders.u_choice[i] < p)
            detail = "request" if requested else "decline"
            self.log.row((now, K_QUOTE, i, NONE, pickup, dropoff, eta, price, detail))
            if not requested:
                rq.decline_quote(i)
                return
        self.log.row(
            (now, K_REQUEST, i, NONE, pickup, dropoff, self.free_flow_trip[i], price, None)
        )
        rq.reopen(i)
        if self.immediate and self.drivers.n_free:
            self.dispatcher.dispatch_one(i)
        patience = self.patience[i]
        if patience <= 0:
            if rq.status_one[i] == R_OPEN:
                self.cancel(i, "no_driver")
            return
        self.sched.after(patience, self.give_up, i)

    def quote_eta(self, pickup: int) -> float:
        """The pickup ETA a rider is quoted: the nearest free driver's, or the maximum pickup
        ETA when nobody is in range (the app shows "no cars nearby")."""
        dv = self.drivers
        limit = self.max_pickup_eta_s
        if dv.n_free == 0:
            return limit
        now = self.sched.now
        if dv.zone_free is not None and dv.n_free >= ZONED_QUOTE_MIN_FREE:
            factor = self.travel.bound_factor(now)
            if factor is not None:
                return self._quote_by_zone(pickup, now, limit, factor)
        cand = dv.free.nonzero()[0]
        wait = np.maximum(dv.free_at[cand] - now, 0.0)
        eta = float(np.minimum.reduce(wait + self.travel.expected_to(now, pickup, dv.node[cand])))
        return min(eta, limit)

    def _quote_by_zone(self, pickup: int, now: float, limit: float, factor: float) -> float:
        # The same minimum as the scan over every free driver, reading only the zones whose
        # lower bound (the least table time from the zone into the pickup, times the factor
        # the quoted times are multiplied by) is below the best ETA found so far: a driver's
        # ETA (wait >= 0 plus its table time times the factor) is never below its zone's
        # bound, since rounding keeps the order of products and sums. The pickup's own zone
        # first (its bound is 0, and it usually holds the answer), then the zones still below
        # the best, nearest bound first.
        assert self._into_zone is not None and self._node_zone is not None
        own = self._node_zone[pickup]
        best = self._zone_eta(own, pickup, now, limit)
        bound = self._into_zone[pickup].astype(np.float64) * factor
        near = (bound < best).nonzero()[0]
        if near.shape[0] == 0 or (near.shape[0] == 1 and near[0] == own):
            return best
        for z in near[np.argsort(bound[near], kind="stable")].tolist():
            if bound[z] >= best:
                break
            if z != own:
                best = self._zone_eta(z, pickup, now, best)
        return best

    def _zone_eta(self, z: int, pickup: int, now: float, best: float) -> float:
        # min(best, the least ETA to the pickup of the free drivers filed under zone z)
        assert self.drivers.zone_free is not None
        members = self.drivers.zone_free[z]
        if not members:
            return best
        dv = self.drivers
        ids = np.fromiter(members, dtype=np.int64, count=len(members))
        wait = np.maximum(dv.free_at[ids] - now, 0.0)
        eta = float(np.minimum.reduce(wait + self.travel.expected_to(now, pickup, dv.node[ids])))
        return min(best, eta)

    # ------------------------------------------------------------ cancellations
    def give_up(self, i: int) -> None:
        """The rider's patience ran out."""
        if self.requests.status[i] in WAITING:
            self.cancel(i, "patience")

    def cancel(self, i: int, reason: str, driver: int = NONE) -> None:
        """The rider leaves (the driver, if any, finds out at the pickup)."""
        self.requests.cancel(i)
        node = int(self.requests.pickup_node[i])
        self.log.row((self.sched.now, K_CANCEL, i, driver, node, NONE, NAN, NAN, reason))

    def cancel_after_match(self, r: int, d: int) -> None:
        """The rider gives up on the driver on the way (if still waiting for them)."""
        if self.requests.status[r] == R_ASSIGNED:
            self.cancel(r, "after_match", driver=d)

    # ---------------------------------------------------------------- decisions
    def apply(self, rid: np.ndarray, did: np.ndarray, eta: np.ndarray, batch_id: int) -> None:
        """Carry out a decision, in request-id order whatever the matcher's order."""
        detail = str(batch_id)
        if rid.shape[0] == 1:
            pairs = zip(rid.tolist(), did.tolist(), eta.tolist(), strict=True)
        else:
            order = np.argsort(rid, kind="stable")
            pairs = zip(rid[order].tolist(), did[order].tolist(), eta[order].tolist(), strict=True)
        for r, d, quoted in pairs:
            self.apply_one(r, d, quoted, detail)

    def apply_one(self, r: int, d: int, quoted: float, detail: str) -> None:
        """Carry out one assignment: an offer, or the ride when every driver accepts."""
        if self.requests.status_one[r] == R_CANCELLED:  # gave up while we decided
            self.shifts.release(d)
            return
        self.requests.open.pop(r, None)
        if self.offers:
            self.offer(r, d, quoted, detail)
        else:
            self.rides.start(r, d, quoted, detail)

    def offer(self, r: int, d: int, quoted: float, detail: str) -> None:
        """Offer the ride to the driver, who answers after a response time."""
        now = self.sched.now
        spec = self.rules.drivers
        self.requests.offered(r)
        self.drivers.offered(d)
        node, pickup = int(self.drivers.node[d]), int(self.requests.pickup_node[r])
        self.log.row((now, K_OFFER, r, d, node, pickup, quoted, NAN, detail))
        u_silent, u_accept, u_time = self.driver_rng.random(3).tolist()
        if u_silent < spec.no_response:
            self.sched.after(spec.offer_timeout_s, self.answer, r, d, quoted, detail, "timeout")
            return
        lo, hi = spec.response_s
        p = spec.accept_probability_one(float(self.requests.multiplier[r]), quoted)
        answer = "accept" if u_accept < p else "declined"
        self.sched.after(lo + u_time * (hi - lo), self.answer, r, d, quoted, detail, answer)

    def answer(self, r: int, d: int, quoted: float, detail: str, answer: str) -> None:
        """The driver answers an offer (or it times out)."""
        now = self.sched.now
        node = int(self.drivers.node[d])
        if self.requests.status[r] != R_OFFERED:  # the rider gave up while the driver thought
            self.log.row((now, K_DECLINE, r, d, node, NONE, NAN, NAN, "rider_gone"))
            self.shifts.release(d)
            return
        if answer == "accept":
            self.rides.start(r, d, quoted, detail)
            return
        self.log.row((now, K_DECLINE, r, d, node, NONE, NAN, NAN, answer))
        self.shifts.release(d, pause_s=self.rules.drivers.decline_pause_s)
        if self.patience[r] <= 0:  # nobody waits for a second try
            self.cancel(r, "no_driver")
            return
        self.requests.reopen(r)
        if self.immediate and self.requests.open and self.drivers.n_free:
            self.dispatcher.dispatch()

"""Request and driver state as struct-of-arrays, changed only through named transitions.

Every column is a numpy array indexed by request id or driver id, so the dispatcher reads
whole columns at once; every change of status goes through a method named after what happened
(``open``, ``assign``, ``board`` ...), so the life cycles below are the only paths in the code.

Life of a request: (``quote`` ->) ``request`` -> [``offer`` -> ``decline`` ->]* ``assign`` ->
``pickup`` -> ``dropoff``, or ``cancel`` at any point before the pickup.

Life of a driver: ``driver_online`` -> free (idle or repositioning) <-> busy (reserved by a
decision in flight, offered, serving a plan of stops) -> ``driver_offline`` (a driver whose
shift ends mid-trip finishes the trip first).

A driver's work is a *plan*: the stops it will make, in order (a pickup and then the dropoff
of each rider it carries). Today a plan holds one rider at a time; shared rides put several
riders' stops in one plan, and nothing else about the state has to change.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple, cast

import numpy as np

from cities.demand import Trips
from cities.supply import Fleet
from matching.api import DriverState as ContractState


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


class StopKind(IntEnum):
    """What a driver does at a stop of its plan."""

    PICKUP = 0
    DROPOFF = 1


class Stop(NamedTuple):
    """One stop of a driver's plan."""

    kind: StopKind
    rider: int
    node: int


_PICKUP, _DROPOFF = StopKind.PICKUP, StopKind.DROPOFF
_stop = tuple.__new__
# Plain ints for the hot path (enum attribute lookups cost more than the work they guard).
D_OFFLINE = int(DriverStatus.OFFLINE)
D_IDLE = int(DriverStatus.IDLE)
D_RESERVED = int(DriverStatus.RESERVED)
D_TO_PICKUP = int(DriverStatus.TO_PICKUP)
D_ON_TRIP = int(DriverStatus.ON_TRIP)
D_REPOSITIONING = int(DriverStatus.REPOSITIONING)
D_OFFERED = int(DriverStatus.OFFERED)
R_NOT_YET = int(RequestStatus.NOT_YET)
R_OPEN = int(RequestStatus.OPEN)
R_DECIDED = int(RequestStatus.DECIDED)
R_ASSIGNED = int(RequestStatus.ASSIGNED)
R_ON_BOARD = int(RequestStatus.ON_BOARD)
R_COMPLETED = int(RequestStatus.COMPLETED)
R_CANCELLED = int(RequestStatus.CANCELLED)
R_OFFERED = int(RequestStatus.OFFERED)
R_QUOTE_DECLINED = int(RequestStatus.QUOTE_DECLINED)
WAITING = frozenset({R_OPEN, R_DECIDED, R_OFFERED})
"""Request statuses in which the rider is still waiting for a driver (patience can run out)."""

CONTRACT_STATE = np.zeros(len(DriverStatus), dtype=np.uint8)
"""The matching contract's :class:`~matching.api.DriverState` of a free driver, by engine
status: a repositioning driver is ``REPOSITIONING``, every other free driver ``IDLE``."""
CONTRACT_STATE[D_IDLE] = ContractState.IDLE
CONTRACT_STATE[D_REPOSITIONING] = ContractState.REPOSITIONING
CONTRACT_STATE.flags.writeable = False


def _one(a: np.ndarray) -> memoryview[Any]:
    # The column's own memory, one element at a time as a Python scalar: reading or writing
    # m[i] costs about half of a[i] = v or a.item(i) (no index parsing, no numpy scalar).
    return cast("memoryview[Any]", a.data)


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


class Requests:
    """Every ride request of the run: what was asked (fixed) and where it stands (changing).

    The fixed columns are read-only, and so are read-only views of the changing ones
    (``price``), so the dispatcher can hand slices of them to a matcher without copying.
    A changing column ``x`` has ``x_one``, a memoryview of the same memory, for the
    per-event paths that read or write one element (``x_one[i]`` is a Python scalar).
    """

    def __init__(self, trips: Trips, node_xy: np.ndarray, patience_s: np.ndarray) -> None:
        n = len(trips)
        self.n = n
        self.id = _read_only(np.arange(n, dtype=np.int64))
        self.t = _read_only(np.asarray(trips.t, dtype=np.float64))
        self.pickup_node = _read_only(np.asarray(trips.pickup_node, dtype=np.int64))
        self.dropoff_node = _read_only(np.asarray(trips.dropoff_node, dtype=np.int64))
        self.pickup_xy = _read_only(np.asarray(node_xy)[self.pickup_node])
        self.dropoff_xy = _read_only(np.asarray(node_xy)[self.dropoff_node])
        self.patience_s = _read_only(np.asarray(patience_s, dtype=np.float64))
        self.status = np.zeros(n, dtype=np.uint8)
        self.multiplier = np.ones(n)
        self._price = np.full(n, np.nan)
        self.price = _read_only(self._price)
        self.assign_t = np.full(n, np.nan)
        self.pickup_t = np.full(n, np.nan)
        self.status_one: memoryview[int] = _one(self.status)
        self.multiplier_one: memoryview[float] = _one(self.multiplier)
        self._price_one: memoryview[float] = _one(self._price)
        self.assign_t_one: memoryview[float] = _one(self.assign_t)
        self.pickup_t_one: memoryview[float] = _one(self.pickup_t)
        self.open: dict[int, None] = {}
        """Open request ids in the order they (re)opened."""

    # Transitions, named for what happened.
    def priced(self, i: int, multiplier: float, price: float) -> None:
        """The rider arrived and saw ``price`` (``multiplier`` times the unsurged fare)."""
        self.multiplier_one[i] = multiplier
        self._price_one[i] = price

    def decline_quote(self, i: int) -> None:
        """The rider saw the quote and did not request."""
        self.status_one[i] = R_QUOTE_DECLINED

    def reopen(self, i: int) -> None:
        """The request waits for a driver (on arrival, or again after a declined offer)."""
        self.status_one[i] = R_OPEN
        self.open[i] = None

    def decided(self, rid: np.ndarray) -> None:
        """A decision assigning these requests is in flight."""
        self.status[rid] = R_DECIDED
        for r in rid.tolist():
            self.open.pop(r, None)

    def offered(self, r: int) -> None:
        """A driver is considering the ride."""
        self.status_one[r] = R_OFFERED

    def assign(self, r: int, now: float) -> None:
        """A driver is on the way."""
        self.status_one[r] = R_ASSIGNED
        self.assign_t_one[r] = now

    def board(self, r: int, now: float) -> None:
        """The rider is in the car."""
        self.status_one[r] = R_ON_BOARD
        self.pickup_t_one[r] = now

    def complete(self, r: int) -> None:
        """The rider was dropped off."""
        self.status_one[r] = R_COMPLETED

    def cancel(self, r: int) -> None:
        """The rider gave up (or nobody could serve them)."""
        self.status_one[r] = R_CANCELLED
        self.open.pop(r, None)

    def open_ids(self) -> np.ndarray:
        """Open request ids in the order they (re)opened."""
        return np.fromiter(self.open, dtype=np.int64, count=len(self.open))


class Drivers:
    """Every driver of the fleet: status, position, timing, money and plan of stops.

    ``free`` marks the drivers a matcher may use now (idle or repositioning, online, not
    paused); it changes only through :meth:`make_free` and :meth:`make_busy`, which keep
    ``n_free`` in step so "is anyone free?" costs no reduction over the fleet, and (after
    :meth:`index_zones`) ``zone_free``, the free drivers by zone of their node, so "who is free
    near this node?" reads a few zones instead of the whole fleet. As in :class:`Requests`,
    ``x_one`` is a memoryview of column ``x`` for reading or writing one element.
    """

    def __init__(self, fleet: Fleet) -> None:
        n = len(fleet)
        self.n = n
        self.status = np.zeros(n, dtype=np.uint8)
        self.node = np.asarray(fleet.home_node, dtype=np.int64).copy()
        """Where the driver is, or where its current leg ends."""
        self.free_at = np.zeros(n)
        """When the current leg ends (at most now for a standing driver)."""
        self.idle_since = np.zeros(n)
        self.earnings = np.zeros(n)
        self.online_s = np.zeros(n)
        """Seconds online in shifts that have ended."""
        self.online_since = np.full(n, np.nan)
        self.leaving = np.zeros(n, dtype=bool)
        """The shift is over: finish the job, then log off."""
        self.paused_until = np.zeros(n)
        self.shift_off = np.zeros(n)
        self.plan: list[list[Stop]] = [[] for _ in range(n)]
        """The stops each driver will make, in order."""
        self.free = np.zeros(n, dtype=bool)
        self.status_one: memoryview[int] = _one(self.status)
        self.node_one: memoryview[int] = _one(self.node)
        self.free_at_one: memoryview[float] = _one(self.free_at)
        self.idle_since_one: memoryview[float] = _one(self.idle_since)
        self.earnings_one: memoryview[float] = _one(self.earnings)
        self.leaving_one: memoryview[bool] = _one(self.leaving)
        self.free_one: memoryview[bool] = _one(self.free)
        self.n_free = 0
        self.zone_free: list[dict[int, None]] | None = None
        """Free driver ids by zone of their node (None until :meth:`index_zones`)."""
        self._node_zone: list[int] = []
        self._zone_of: list[int] = []

    def index_zones(self, node_zone: np.ndarray, n_zones: int) -> None:
        """Keep ``zone_free`` from now on: zone ``node_zone[v]`` holds the free drivers at (or
        heading for) node ``v``."""
        self._node_zone = np.asarray(node_zone, dtype=np.int64).tolist()
        self._zone_of = [-1] * self.n
        self.zone_free = [{} for _ in range(n_zones)]
        for d in self.free.nonzero()[0].tolist():
            self._enter_zone(d)

    def _enter_zone(self, d: int) -> None:
        # The zone a free driver was filed under is remembered, so it leaves that one.
        assert self.zone_free is not None
        z = self._node_zone[self.node[d]]
        self._zone_of[d] = z
        self.zone_free[z][d] = None

    # Transitions, named for what happened.
    def make_free(self, d: int) -> None:
        """The matcher may give the driver work."""
        free = self.free_one
        if not free[d]:
            free[d] = True
            self.n_free += 1
            if self.zone_free is not None:
                self._enter_zone(d)

    def make_busy(self, d: int) -> None:
        """The matcher may not give the driver work."""
        free = self.free_one
        if free[d]:
            free[d] = False
            self.n_free -= 1
            if self.zone_free is not None:
                del self.zone_free[self._zone_of[d]][d]

    def make_busy_all(self, did: np.ndarray) -> None:
        """None of these (free) drivers may be given work."""
        if self.zone_free is not None:
            zone_free, zone_of = self.zone_free, self._zone_of
            for d in did[self.free[did]].tolist():
                del zone_free[zone_of[d]][d]
        self.n_free -= int(np.count_nonzero(self.free[did]))
        self.free[did] = False

    def go_online(self, d: int, now: float) -> None:
        """The driver logs on, idle where they are."""
        self.status[d] = D_IDLE
        self.online_since[d] = now
        self.free_at[d] = now
        self.idle_since[d] = now
        self.make_free(d)

    def go_offline(self, d: int, now: float) -> None:
        """The driver logs off."""
        self.status[d] = D_OFFLINE
        self.make_busy(d)
        self.leaving[d] = False
        self.online_s[d] += now - self.online_since[d]
        self.online_since[d] = np.nan

    def reserve(self, did: np.ndarray) -> None:
        """A decision giving these drivers work is in flight."""
        self.status[did] = D_RESERVED
        self.make_busy_all(did)

    def offered(self, d: int) -> None:
        """The driver is considering an offer."""
        self.status[d] = D_OFFERED
        self.make_busy(d)

    def head_for_pickup(self, d: int, r: int, pickup: int, dropoff: int, arrive: float) -> None:
        """The driver takes rider ``r``: the plan is their pickup, then their dropoff."""
        # tuple.__new__ makes the same Stop as Stop(...) without its argument parsing.
        self.plan[d] = [_stop(Stop, (_PICKUP, r, pickup)), _stop(Stop, (_DROPOFF, r, dropoff))]
        self.status_one[d] = D_TO_PICKUP
        self.make_busy(d)
        self.free_at_one[d] = arrive

    def reach_stop(self, d: int, now: float) -> Stop:
        """The driver reaches the next stop of its plan; returns it (now done)."""
        stop = self.plan[d].pop(0)
        self.node_one[d] = stop.node
        self.free_at_one[d] = now
        return stop

    def drop_plan(self, d: int) -> None:
        """The rest of the plan is void (its rider cancelled)."""
        self.plan[d] = []

    def drive_trip(self, d: int, arrive: float) -> None:
        """The rider is on board; the driver heads for the dropoff."""
        self.status_one[d] = D_ON_TRIP
        self.free_at_one[d] = arrive

    def stand(self, d: int, now: float, moving: bool) -> None:
        """The driver has no job: idle, or still driving to where its last leg ends."""
        self.status_one[d] = D_REPOSITIONING if moving else D_IDLE
        if not moving:
            self.free_at_one[d] = now
        self.idle_since_one[d] = now

    def finish_leg_then_leave(self, d: int) -> None:
        """The shift is over mid-leg: drive on to the end of the leg, then log off."""
        self.status[d] = D_REPOSITIONING
        self.make_busy(d)

    def reposition(self, d: int, target: int, arrive: float) -> None:
        """An idle driver heads for ``target`` (matchable on the way)."""
        self.status[d] = D_REPOSITIONING
        self.node[d] = target
        self.free_at[d] = arrive
        if self.zone_free is not None and self.free[d]:
            del self.zone_free[self._zone_of[d]][d]
            self._enter_zone(d)

    def arrive_idle(self, d: int, now: float) -> None:
        """A repositioning driver reaches its target."""
        self.status[d] = D_IDLE
        self.idle_since[d] = now

    def pause(self, d: int, until: float) -> None:
        """The driver takes no offers until ``until``."""
        self.paused_until[d] = until
        self.make_busy(d)

    def next_pickup_node(self, did: np.ndarray) -> np.ndarray:
        """For drivers whose next stop is a pickup: its node."""
        return np.array([self.plan[d][0].node for d in did.tolist()], dtype=np.int64)

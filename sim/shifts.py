"""Shifts: drivers logging on and off, and becoming free again after a job.

Shifts come from the fleet (``Fleet.shift_on`` / ``shift_off``, sorted by start); a driver
whose shift ends while busy finishes the job first. :meth:`Shifts.release` is the one way a
driver leaves a job (dropoff, cancelled pickup, declined or void offer): it puts them back in
the pool, pauses them, or logs them off, and asks for a dispatch under immediate dispatch.
"""

from __future__ import annotations

from collections.abc import Callable

from cities.supply import Fleet
from core.schemas import NONE, Kind
from sim.events import EventLog
from sim.scheduler import Scheduler
from sim.state import D_IDLE, D_OFFLINE, D_REPOSITIONING, Drivers, Requests

K_DRIVER_OFFLINE = str(Kind.DRIVER_OFFLINE)
K_DRIVER_ONLINE = str(Kind.DRIVER_ONLINE)
NAN = float("nan")
STANDING = frozenset({D_IDLE, D_REPOSITIONING})
"""Driver statuses without a job (a pause may end)."""


class Shifts:
    """Drivers' time online: shift starts and ends, logging off, release after a job."""

    def __init__(
        self,
        fleet: Fleet,
        horizon_s: float,
        immediate: bool,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        log: EventLog,
    ) -> None:
        self.shift_on = fleet.shift_on.tolist()
        self.shift_off = fleet.shift_off.tolist()
        self.shift_driver = fleet.shift_driver.tolist()
        self.horizon_s = float(horizon_s)
        self.immediate = immediate
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.log = log
        self._next = 0
        self.dispatch: Callable[[], None] = _unwired
        """Ask the matcher about every open request (the dispatcher)."""

    def start(self) -> None:
        """Begin the shift schedule (drivers who log on at t are online for arrivals at t)."""
        self.sched.start(self._shift_starts)

    def _shift_starts(self) -> None:
        # Every shift starting now, then a call for the next start time.
        j, on, sched = self._next, self.shift_on, self.sched
        while j < len(on):
            dt = on[j] - sched.now
            if dt > 0:
                self._next = j
                sched.after(dt, self._shift_starts_at, j)
                return
            self.online(self.shift_driver[j], self.shift_off[j])
            j += 1
        self._next = j

    def _shift_starts_at(self, j: int) -> None:
        self.online(self.shift_driver[j], self.shift_off[j])
        self._next = j + 1
        self._shift_starts()

    def online(self, d: int, off: float, detail: str | None = None) -> None:
        """The driver logs on (``detail``: why, e.g. ``reconnect``; ``None``: a new shift)."""
        dv = self.drivers
        if dv.status[d] != D_OFFLINE:  # back-to-back shifts: keep working
            dv.leaving[d] = False
        else:
            now = self.sched.now
            dv.go_online(d, now)
            self.log.row((now, K_DRIVER_ONLINE, NONE, d, int(dv.node[d]), NONE, NAN, NAN, detail))
        if detail is None:  # a new shift (a reconnect keeps the shift it had)
            dv.shift_off[d] = off
            if off < self.horizon_s:
                self.sched.after(off - self.sched.now, self.shift_ends, d)
        if self.immediate and self.requests.open and dv.free[d]:
            self.dispatch()

    def shift_ends(self, d: int) -> None:
        """The shift is over: log off now if idle, else after the job."""
        dv = self.drivers
        if dv.status[d] == D_IDLE:
            self.offline(d)
        elif dv.status[d] != D_OFFLINE:
            dv.leaving[d] = True
            dv.make_busy(d)  # finishing up: no new work

    def offline(self, d: int, detail: str | None = None) -> None:
        """The driver logs off where they are."""
        now = self.sched.now
        self.drivers.go_offline(d, now)
        node = int(self.drivers.node[d])
        self.log.row((now, K_DRIVER_OFFLINE, NONE, d, node, NONE, NAN, NAN, detail))

    def release(self, d: int, pause_s: float = 0.0) -> None:
        """The driver has no job any more: free at their node (or still driving to it)."""
        now = self.sched.now
        dv = self.drivers
        moving = dv.free_at_one[d] > now
        if dv.leaving_one[d]:
            if moving:  # finish the drive, then log off
                dv.finish_leg_then_leave(d)
                return
            self.offline(d)
            return
        dv.stand(d, now, moving)
        if pause_s > 0:
            dv.pause(d, now + pause_s)
            self.sched.after(pause_s, self.unpause, d)
            return
        dv.make_free(d)
        if self.immediate and self.requests.open:
            self.dispatch()

    def unpause(self, d: int) -> None:
        """A pause after a declined offer is over."""
        dv = self.drivers
        if dv.status[d] in STANDING and not dv.leaving[d]:
            dv.make_free(d)
            if self.immediate and self.requests.open:
                self.dispatch()

    def reconnect(self, d: int) -> None:
        """A crashed app comes back (if the shift is still on)."""
        dv = self.drivers
        if dv.status[d] == D_OFFLINE and self.sched.now < dv.shift_off[d]:
            self.online(d, float(dv.shift_off[d]), detail="reconnect")


def _unwired() -> None:
    raise RuntimeError("Shifts.dispatch was not wired by the engine")

"""Faults: matcher outages and driver app crashes, planned up front from the ``faults`` stream.

A scenario's ``[faults]`` table describes them:

* ``matcher_outages``: fixed windows (clock ``start``, ``minutes``) during which the matcher
  does not answer: no new decision is made (requests wait or give up; offers made before the
  outage are still answered by their drivers);
* ``matcher_mtbf_h`` / ``matcher_mttr_min``: random outages besides, with exponential times
  between failures and to repair;
* ``driver_crash_per_h``: each online driver's app crashes at this rate per hour; a crash
  that hits an idle driver logs them off (``driver_offline``, detail ``crash``) until they
  reconnect ``driver_reconnect_min`` later, if their shift is still on. A crash attempt on a
  busy driver is lost (the trip goes on: the app recovers in the background).

Everything is drawn before the run, so faults never depend on what the market does, and the
same seed gives the same faults under every matcher.

A matcher *service* that cannot be reached (:class:`~matching.api.MatcherUnavailable`, raised
by :class:`~matching.wire.client.RemoteMatcher` once its retries are spent) is the one fault
that is not planned: :class:`ServiceOutages` records it as it happens (``fault`` events
``service_down`` / ``service_up``). A decision the service cannot answer assigns nobody, as in
a planned outage; its requests stay open (or give up), and every later decision asks the
service again, until one is answered: the outage ends there. Such a run depends on when the
service was down, so it is not byte-identical to a run whose service was up; it is
deterministic given which calls failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from core.clock import DAY, ClockTime, clock_to_seconds
from core.frozen import Frozen, NonNegFloat, PositiveFloat
from core.schemas import NONE, Kind
from matching.api import Matcher, MatcherUnavailable, MatchRequest, MatchResponse
from sim.dispatcher import Dispatcher
from sim.events import EventLog
from sim.scheduler import Scheduler
from sim.shifts import Shifts
from sim.state import D_IDLE, Drivers, Requests

K_FAULT = str(Kind.FAULT)
NAN = float("nan")


class Outage(Frozen):
    """A fixed matcher outage starting at clock time ``start`` (repeats daily)."""

    start: ClockTime
    minutes: PositiveFloat


class FaultSpec(Frozen):
    """The ``[faults]`` table (see the module docstring)."""

    matcher_outages: tuple[Outage, ...] = ()
    matcher_mtbf_h: PositiveFloat | None = None
    matcher_mttr_min: PositiveFloat = 5.0
    driver_crash_per_h: NonNegFloat = 0.0
    driver_reconnect_min: PositiveFloat = Field(default=5.0)


@dataclass(frozen=True, eq=False)
class FaultPlan:
    """When the matcher is down (merged, sorted [start, end) windows in simulated seconds) and
    when each crash attempt hits which driver (sorted by time, then driver)."""

    matcher_down: np.ndarray
    crash_t: np.ndarray
    crash_driver: np.ndarray
    reconnect_s: float


def plan_faults(
    rng: np.random.Generator, spec: FaultSpec, start_s: float, horizon_s: float, n_drivers: int
) -> FaultPlan:
    """Draw every fault of the run from the ``faults`` stream."""
    windows = []
    for outage in spec.matcher_outages:
        first = (clock_to_seconds(outage.start) - start_s) % DAY
        for on in np.arange(first - DAY, horizon_s, DAY):
            windows.append((on, on + outage.minutes * 60.0))
    if spec.matcher_mtbf_h is not None:
        t = 0.0
        while True:
            t += rng.exponential(spec.matcher_mtbf_h * 3600.0)
            if t >= horizon_s:
                break
            repair = rng.exponential(spec.matcher_mttr_min * 60.0)
            windows.append((t, t + repair))
            t += repair
    down = _merge([(max(a, 0.0), min(b, horizon_s)) for a, b in windows if b > 0 and a < horizon_s])
    n_crash = (
        rng.poisson(spec.driver_crash_per_h * n_drivers * horizon_s / 3600.0) if n_drivers else 0
    )
    crash_t = rng.random(n_crash) * horizon_s
    crash_driver = rng.integers(0, max(n_drivers, 1), n_crash)
    order = np.lexsort((crash_driver, crash_t))
    return FaultPlan(
        down, crash_t[order], crash_driver[order].astype(np.int64), spec.driver_reconnect_min * 60.0
    )


def _merge(windows: list[tuple[float, float]]) -> np.ndarray:
    out: list[list[float]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


class FaultController:
    """Applies a :class:`FaultPlan` during a run: takes the matcher down and up, and crashes
    idle drivers' apps (they reconnect ``reconnect_s`` later)."""

    def __init__(
        self,
        plan: FaultPlan,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        dispatcher: Dispatcher,
        shifts: Shifts,
        log: EventLog,
    ) -> None:
        self.plan = plan
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.dispatcher = dispatcher
        self.shifts = shifts
        self.log = log
        self._windows = plan.matcher_down.tolist()
        self._crash_t = plan.crash_t.tolist()
        self._crash_driver = plan.crash_driver.tolist()

    def start(self) -> None:
        """Begin the outage schedule and the crash schedule (in that order)."""
        self.sched.start(self._next_outage, 0)
        self.sched.start(self._next_crash, 0)

    def _next_outage(self, k: int) -> None:
        if k >= len(self._windows):
            return
        start = self._windows[k][0]
        now = self.sched.now
        if start > now:
            self.sched.after(start - now, self._down, k)
        else:
            self._down(k)

    def _down(self, k: int) -> None:
        self.dispatcher.matcher_up = False
        now = self.sched.now
        self.log.row((now, K_FAULT, NONE, NONE, NONE, NONE, NAN, NAN, "matcher_down"))
        self.sched.after(self._windows[k][1] - now, self._up, k)

    def _up(self, k: int) -> None:
        self.dispatcher.matcher_up = True
        self.log.row((self.sched.now, K_FAULT, NONE, NONE, NONE, NONE, NAN, NAN, "matcher_up"))
        if self.dispatcher.policy.immediate and self.requests.open and self.drivers.n_free:
            self.dispatcher.dispatch()
        self._next_outage(k + 1)

    def _next_crash(self, k: int) -> None:
        times = self._crash_t
        while k < len(times):
            now = self.sched.now
            if times[k] > now:
                self.sched.after(times[k] - now, self._crash, k)
                return
            self._crash_now(k)
            k += 1

    def _crash(self, k: int) -> None:
        self._crash_now(k)
        self._next_crash(k + 1)

    def _crash_now(self, k: int) -> None:
        d = self._crash_driver[k]
        dv = self.drivers
        if dv.status[d] == D_IDLE and not dv.leaving[d]:
            self.shifts.offline(d, detail="crash")
            self.sched.after(self.plan.reconnect_s, self.shifts.reconnect, d)


class ServiceOutages:
    """Records outages of a matcher service as the run meets them, and ends each one at the
    first decision the service answers again.

    Wired to :attr:`Dispatcher.on_unavailable <sim.dispatcher.Dispatcher.on_unavailable>`. The
    first unanswered decision logs ``service_down``; until an answer comes, the dispatcher
    calls the matcher through a probe that, on the first answer, puts the matcher back and logs
    ``service_up`` (value: how many decisions went unanswered). The run never waits for the
    service in simulated time: each decision asks once (the client's retries are wall-clock
    only), so what happens depends only on which calls failed.
    """

    def __init__(
        self,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        dispatcher: Dispatcher,
        log: EventLog,
    ) -> None:
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.dispatcher = dispatcher
        self.log = log
        self.outages = 0
        """Service outages met so far (an outage still open at the end counts)."""
        self.failed_calls = 0
        """Matcher calls the service left unanswered, over the whole run."""
        self._failed_now = 0
        self._matcher: Matcher | None = None
        dispatcher.on_unavailable = self.unavailable

    @property
    def down(self) -> bool:
        """True while the service has not answered since its last failure."""
        return self._matcher is not None

    def unavailable(self, exc: MatcherUnavailable) -> None:
        """The dispatcher's call failed: count it, and start an outage unless one is open."""
        self.failed_calls += 1
        self._failed_now += 1
        if self._matcher is not None:
            return
        self.outages += 1
        self.log.row((self.sched.now, K_FAULT, NONE, NONE, NONE, NONE, NAN, NAN, "service_down"))
        self._matcher = self.dispatcher.matcher
        self.dispatcher.matcher = _Probe(self._matcher, self._answered)

    def _answered(self) -> None:
        assert self._matcher is not None
        self.dispatcher.matcher, self._matcher = self._matcher, None
        failed, self._failed_now = self._failed_now, 0
        now = self.sched.now
        self.log.row((now, K_FAULT, NONE, NONE, NONE, NONE, float(failed), NAN, "service_up"))
        if self.dispatcher.policy.immediate:
            # Immediate dispatch asked about one new request: the backlog left by the outage is
            # asked about next, at the same time (as when a planned outage ends).
            self.sched.after(0.0, self._backlog)

    def _backlog(self) -> None:
        if self.dispatcher.matcher_up and self.requests.open and self.drivers.n_free:
            self.dispatcher.dispatch()


class _Probe:
    """The matcher during a service outage: calls it, and reports the first answer."""

    optimal: ClassVar[bool] = False

    def __init__(self, matcher: Matcher, answered: Callable[[], None]) -> None:
        self.matcher = matcher
        self.answered = answered

    def match(self, request: MatchRequest) -> MatchResponse:
        response = self.matcher.match(request)  # MatcherUnavailable: still down
        self.answered()
        return response

    def get_params(self) -> dict[str, Any]:
        return self.matcher.get_params()

    def pair_costs(
        self,
        request: MatchRequest,
        request_row: np.ndarray,
        driver_row: np.ndarray,
        pickup_eta_s: np.ndarray,
    ) -> np.ndarray:
        return self.matcher.pair_costs(request, request_row, driver_row, pickup_eta_s)

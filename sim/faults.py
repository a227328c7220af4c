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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from core.clock import DAY, ClockTime, clock_to_seconds
from core.frozen import Frozen, NonNegFloat, PositiveFloat


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

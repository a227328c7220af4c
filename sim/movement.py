"""Movement: how long legs take, as quoted (expected) and as driven (actual).

Travel times come from the space's table (``Space.travel_time``), never from a path search per
event. Every congestion lookup of the engine goes through one :class:`Congestion` object (the travel
model of :mod:`cities.travel`: day type x clock hour factors and an optional length term): the
engine asks it for ``factor(t)`` at a simulated time, ``factors(t)`` over an array of times,
``apply(free_flow, t)`` for whole leg times when the model has a length term (``by_length``),
and whether traffic is ``flat`` (every factor 1, which lets the hot path skip it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cities.space import Space
from cities.travel import Congestion as TravelModel
from core.clock import DAY, HOUR
from matching.api import EtaBounds, TravelTimeFn
from sim.behaviour import TravelSpec

INTO_MIN_SOURCES = 4096
"""From how many source nodes a "many to one" lookup reads the space's transposed table
(``travel_time_into``, one contiguous row) instead of gathering one value per table row: below
it the gather is cheap and the transposed table (built once per cached city) is not worth it."""


class Congestion(TravelModel):
    """The travel model of :mod:`cities.travel`: factors by (day type x) clock hour and an
    optional length term (then :meth:`apply` scales each leg by its own free-flow time).

    ``start_s`` is the clock time (seconds after midnight) at simulated t = 0.
    """

    @classmethod
    def from_spec(cls, travel: TravelSpec, start_s: float = 0.0) -> Congestion:
        """The congestion a scenario's ``[travel]`` table describes."""
        return cls(**travel.congestion_args(start_s))


class Travel:
    """Leg times on a space: free flow from the table, congestion and noise on top."""

    def __init__(self, space: Space, congestion: Congestion) -> None:
        self.space = space
        self.congestion = congestion
        self.free_flow: TravelTimeFn = space.travel_time
        self._into: Callable[[int, np.ndarray], np.ndarray] | None = getattr(
            space, "travel_time_into", None
        )
        self.into_min_sources = INTO_MIN_SOURCES
        self._one: Callable[[int, int], float] | None = getattr(space, "travel_time_one", None)
        self._scaled_bounds: tuple[float, EtaBounds] | None = None
        self._factor_at: tuple[float, float, float] = (math.nan, math.nan, 1.0)

    def factor(self, t: float) -> float:
        """``congestion.factor(t)``, computed once per clock hour: the model's factor depends
        on ``t`` only through the clock's hour and day (``(start_s + t) // HOUR`` and
        ``// DAY``, the same float operations the model does), so those are the cache key."""
        clock = self.congestion.start_s + t
        hour, day = clock // HOUR, clock // DAY
        last = self._factor_at
        if hour != last[0] or day != last[1]:
            last = self._factor_at = (hour, day, self.congestion.factor(t))
        return last[2]

    def expected(self, now: float) -> TravelTimeFn:
        """Travel times as quoted at ``now``: free flow times the congestion factor."""
        if self.congestion.flat:
            return self.free_flow
        if self.congestion.by_length:
            return _Modelled(self.free_flow, self.congestion, now)
        return _Scaled(self.free_flow, self.factor(now))

    def bounds_for(self, tt: TravelTimeFn, bounds: EtaBounds | None) -> EtaBounds | None:
        """Zone bounds that hold for ``tt`` (a function :meth:`expected` returned) when
        ``bounds`` hold for the free-flow table: the bounds themselves under free flow, scaled
        by the very factor ``tt`` multiplies by under hourly congestion, and none when the
        model scales each leg by its own length (a bound on the table proves nothing then)."""
        if bounds is None or tt is self.free_flow:
            return bounds
        if type(tt) is not _Scaled:
            return None
        # The factor changes once an hour: keep the scaled bounds for the last one.
        last = self._scaled_bounds
        if last is None or last[0] != tt.factor or last[1].node_zone is not bounds.node_zone:
            last = self._scaled_bounds = (tt.factor, bounds.scaled(tt.factor))
        return last[1]

    def bound_factor(self, now: float) -> float | None:
        """What the free-flow table's lower bounds are multiplied by to bound the times
        :meth:`expected_to` gives at ``now`` (1 under free flow, the hour's factor under hourly
        congestion), or ``None`` when the model scales each leg by its own length."""
        if self.congestion.flat:
            return 1.0
        if self.congestion.by_length:
            return None
        return self.factor(now)

    def expected_to(self, now: float, dst: int, src: np.ndarray) -> np.ndarray:
        """Quoted times at ``now`` from each node of ``src`` to the one node ``dst``: the values
        of ``expected(now)(src, dst)``, read from one row of the transposed table when the space
        has one and ``src`` is large."""
        if self._into is not None and src.shape[0] >= self.into_min_sources:
            tt = self._into(dst, src)
        else:
            tt = self.free_flow(src, np.asarray(dst))
        if self.congestion.flat:
            return tt
        if self.congestion.by_length:
            return self.congestion.apply(tt, now)
        scaled: np.ndarray = tt * self.factor(now)
        return scaled

    def actual(self, free_flow: float, depart: float, noise: float) -> float:
        """Seconds a leg departing at ``depart`` really takes: never faster than free flow."""
        if noise == 1.0 and self.congestion.flat:
            return free_flow
        if self.congestion.by_length:
            return max(free_flow, float(self.congestion.apply(free_flow, depart)) * noise)
        return max(free_flow, free_flow * self.factor(depart) * noise)

    def always_free_flow(self, *noises: np.ndarray) -> bool:
        """Whether :meth:`actual` gives every leg its free-flow time for these noise draws
        (flat traffic and every draw 1), so a caller may skip asking it."""
        return self.congestion.flat and all(bool(np.all(n == 1.0)) for n in noises)

    def leg_fn(self) -> Callable[[int, int], float]:
        """:meth:`leg` itself, or the space's ``travel_time_one`` it calls when the space has one
        (one Python call fewer per leg)."""
        return self._one if self._one is not None else self.leg

    def leg(self, src: int, dst: int) -> float:
        """Free-flow seconds from node ``src`` to node ``dst`` (from the space's scalar
        ``travel_time_one`` when it has one: the same float without building arrays)."""
        if self._one is not None:
            return self._one(src, dst)
        one = np.array([src, dst], dtype=np.int64)
        return float(self.free_flow(one[:1], one[1:])[0])


class _Scaled:
    """A travel-time function times a constant factor."""

    __slots__ = ("tt", "factor")

    def __init__(self, tt: Callable[[np.ndarray, np.ndarray], np.ndarray], factor: float) -> None:
        self.tt = tt
        self.factor = factor

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.tt(a, b) * self.factor


class _Modelled:
    """A travel-time function through the travel model at a fixed departure time."""

    __slots__ = ("tt", "model", "now")

    def __init__(
        self, tt: Callable[[np.ndarray, np.ndarray], np.ndarray], model: Congestion, now: float
    ) -> None:
        self.tt, self.model, self.now = tt, model, now

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.model.apply(self.tt(a, b), self.now)

"""How riders and drivers behave, how fares are set, and how travel deviates from the quote.

Each model is a frozen, validated spec (a scenario table) plus vectorised math. The defaults
are documented, plausible values chosen to give realistic shapes, not calibrated estimates:
set them from your own data for quantitative work.

Riders (``[riders]``)
    *Patience*: wait at most ``patience_s`` for a match (fixed or exponential).
    *Choice* (``choice = "logit"``): after seeing a quote, request with probability
    ``sigmoid(asc - surge_coef * (multiplier - 1) - eta_coef_per_min * quoted_eta_min)``.
    Defaults 3.0 / 2.0 / 0.15 give 95% conversion at no surge and a 0-minute ETA, 82% at a
    10-minute ETA, 73% at a 2x surge.
    *Cancel after match*: with probability ``min(cap, base + per_min * pickup_eta_min)`` the
    rider gives up on the assigned driver at a uniformly drawn moment before the pickup (the
    pickup-distance cancel model of the KDD Cup 2020 dispatch simulator, in minutes).

Drivers (``[drivers]``)
    *Accept* (``accept = "logit"``): an offer is answered after a response time drawn
    uniformly from ``response_s``; with probability ``no_response`` it is ignored and times out
    after ``offer_timeout_s``; otherwise it is accepted with probability
    ``sigmoid(asc - pickup_coef_per_min * pickup_eta_min + surge_coef * (multiplier - 1))``
    (defaults 3.0 / 0.2 / 1.0: 95% for a driver at the door, 82% at 8 minutes away).
    A driver who declines pauses for ``decline_pause_s`` before the next offer.
    *Idle behaviour*: ``reposition`` names a policy (``stay``, ``demand``, ``surge`` or an
    import path) asked every ``reposition_every_s`` about drivers idle for at least
    ``reposition_after_s``.

Pricing (``[pricing]``)
    ``fare = max(min_fare, base + per_km * km + per_min * minutes) * surge multiplier`` where
    ``km`` is the straight-line trip distance times ``detour`` (tables hold times, not paths),
    and drivers keep ``1 - commission`` of it.

Travel (``[travel]``)
    Actual leg time = the travel model's expected time (free-flow time x
    ``congestion[day type, clock hour at departure]`` x an optional length term, see
    :mod:`cities.travel`; default: a fitted ``profile``, else the named city's usual traffic
    from its definition, else free flow) x a lognormal
    factor with mean 1 and coefficient of variation ``actual_noise_cv``, never below free
    flow. Matchers see the expected (congested) time; riders are quoted that times a lognormal
    factor with cv ``quote_noise_cv``. So ETA accuracy is measurable from the log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from cities.travel import day_number
from core.frozen import Frozen, NonNegFloat, PositiveFloat

Probability = Annotated[float, Field(ge=0, le=1)]
ArrayOrFloat = np.ndarray | float
"""A number or an array of them (the models are vectorised and broadcast)."""


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def sigmoid_one(x: float) -> float:
    """:func:`sigmoid` of one Python float: the same operations (numpy's exp on the one value,
    IEEE arithmetic around it), so the same bits, at a fraction of the cost."""
    return 1.0 / (1.0 + float(np.exp(-x)))


class CancelAfterMatch(Frozen):
    """P(rider cancels an assigned ride) = min(cap, base + per_min * pickup ETA in minutes)."""

    base: Probability = 0.02
    per_min: NonNegFloat = 0.01
    cap: Probability = 0.5

    def probability(self, eta_s: np.ndarray | float) -> np.ndarray:
        """Cancel probability for pickup ETAs in seconds."""
        return np.minimum(self.cap, self.base + self.per_min * np.asarray(eta_s) / 60.0)

    def probability_one(self, eta_s: float) -> float:
        """:meth:`probability` of one ETA on Python floats (the same bits; NaN stays NaN)."""
        p = self.base + self.per_min * eta_s / 60.0
        return self.cap if self.cap < p else p


class RiderSpec(Frozen):
    """Riders: patience, whether they request after a quote, cancelling after a match."""

    patience_s: NonNegFloat = 300.0
    patience: Literal["fixed", "exponential"] = "exponential"
    """``fixed``: everyone waits exactly patience_s; ``exponential``: mean patience_s."""
    choice: Literal["always", "logit"] = "logit"
    asc: float = 3.0
    surge_coef: NonNegFloat = 2.0
    eta_coef_per_min: NonNegFloat = 0.15
    cancel_after_match: CancelAfterMatch = CancelAfterMatch()

    def request_probability(self, multiplier: ArrayOrFloat, eta_s: ArrayOrFloat) -> np.ndarray:
        """P(request | quote) for surge multipliers and quoted ETAs (seconds)."""
        if self.choice == "always":
            return np.ones(np.broadcast(multiplier, eta_s).shape)
        u = self.asc - self.surge_coef * (np.asarray(multiplier) - 1.0)
        return sigmoid(u - self.eta_coef_per_min * np.asarray(eta_s) / 60.0)

    def request_probability_one(self, multiplier: float, eta_s: float) -> float:
        """:meth:`request_probability` of one quote on Python floats (the same bits)."""
        if self.choice == "always":
            return 1.0
        u = self.asc - self.surge_coef * (multiplier - 1.0)
        return sigmoid_one(u - self.eta_coef_per_min * eta_s / 60.0)


class DriverSpec(Frozen):
    """Drivers: answering offers and what they do while idle."""

    accept: Literal["always", "logit"] = "logit"
    asc: float = 3.0
    pickup_coef_per_min: NonNegFloat = 0.2
    surge_coef: NonNegFloat = 1.0
    response_s: tuple[NonNegFloat, NonNegFloat] = (2.0, 8.0)
    offer_timeout_s: PositiveFloat = 15.0
    no_response: Probability = 0.02
    decline_pause_s: NonNegFloat = 30.0
    reposition: str = "stay"
    reposition_params: dict[str, float | int | str] = Field(default_factory=dict)
    reposition_after_s: NonNegFloat = 300.0
    reposition_every_s: PositiveFloat = 60.0

    @field_validator("response_s")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError(f"must be [low, high] with low <= high, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _timeout_after_response(self) -> DriverSpec:
        if self.accept == "logit" and self.response_s[1] > self.offer_timeout_s:
            raise ValueError("response_s upper bound must not exceed offer_timeout_s")
        return self

    def accept_probability(self, multiplier: ArrayOrFloat, eta_s: ArrayOrFloat) -> np.ndarray:
        """P(accept | offer) for surge multipliers and pickup ETAs (seconds)."""
        if self.accept == "always":
            return np.ones(np.broadcast(multiplier, eta_s).shape)
        u = self.asc + self.surge_coef * (np.asarray(multiplier) - 1.0)
        return sigmoid(u - self.pickup_coef_per_min * np.asarray(eta_s) / 60.0)

    def accept_probability_one(self, multiplier: float, eta_s: float) -> float:
        """:meth:`accept_probability` of one offer on Python floats (the same bits)."""
        if self.accept == "always":
            return 1.0
        u = self.asc + self.surge_coef * (multiplier - 1.0)
        return sigmoid_one(u - self.pickup_coef_per_min * eta_s / 60.0)


class PricingSpec(Frozen):
    """The fare schedule (currency units are whatever the scenario says they are)."""

    currency: str = "USD"
    base: NonNegFloat = 2.5
    per_km: NonNegFloat = 1.1
    per_min: NonNegFloat = 0.2
    min_fare: NonNegFloat = 5.0
    commission: Probability = 0.25
    detour: Annotated[float, Field(ge=1.0)] = 1.3

    def fare(
        self, distance_m: ArrayOrFloat, duration_s: ArrayOrFloat, multiplier: ArrayOrFloat
    ) -> np.ndarray:
        """Fares for trips of ``distance_m`` straight-line metres and ``duration_s`` seconds."""
        km = np.asarray(distance_m) * self.detour / 1000.0
        raw = self.base + self.per_km * km + self.per_min * np.asarray(duration_s) / 60.0
        fares: np.ndarray = np.maximum(self.min_fare, raw) * np.asarray(multiplier)
        return fares

    def fare_one(self, distance_m: float, duration_s: float, multiplier: float) -> float:
        """:meth:`fare` of one trip on Python floats (the same operations in the same order,
        so the same bits), for the engine's per-dropoff hot path."""
        km = distance_m * self.detour / 1000.0
        raw = self.base + self.per_km * km + self.per_min * duration_s / 60.0
        return max(self.min_fare, raw) * multiplier


Factor = Annotated[float, Field(ge=1.0, allow_inf_nan=False)]


def _hours(v: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if v is not None and len(v) != 24:
        raise ValueError(f"must have 24 hourly factors (>= 1), got {len(v)}")
    return v


class DayTypeCongestion(Frozen):
    """Factors per clock hour for each day type (Sunday also holds the listed holidays)."""

    weekday: tuple[Factor, ...]
    saturday: tuple[Factor, ...]
    sunday: tuple[Factor, ...]

    _hours = field_validator("weekday", "saturday", "sunday")(_hours)

    def table(self) -> np.ndarray:
        """(3, 24) rows weekday, saturday, sunday."""
        return np.array([self.weekday, self.saturday, self.sunday], dtype=np.float64)


def _hours_or_table(
    v: tuple[float, ...] | DayTypeCongestion | None,
) -> tuple[float, ...] | DayTypeCongestion | None:
    return v if isinstance(v, DayTypeCongestion) else _hours(v)


class TravelSpec(Frozen):
    """Congestion by (day type x) clock hour, a fitted profile, and travel-time noise."""

    congestion: tuple[Factor, ...] | DayTypeCongestion | None = None
    """24 factors per clock hour, or a table ``{weekday, saturday, sunday}`` of 24 each;
    ``None``: the profile's, else the named city's usual traffic, else free flow."""
    profile: str | None = Field(default=None, min_length=1)
    """A travel model written by ``ridesim calibrate`` (TOML; relative to the scenario file)."""
    start_date: str | None = None
    """``YYYY-MM-DD`` of simulated t = 0, for congestion by day type (a replay with
    ``align = "shift"`` supplies its own first date when this is unset)."""
    holidays: tuple[str, ...] = ()
    """Dates ``YYYY-MM-DD`` that travel like a Sunday."""
    length_elasticity: float = Field(default=0.0, ge=-1.0, le=1.0, allow_inf_nan=False)
    """Exponent ``e`` of the length term ``(ff / length_ref_s) ** e`` (0: off; fitted)."""
    length_range_s: tuple[PositiveFloat, PositiveFloat] = (1.0, 1.0)
    """Free-flow seconds are clipped to this range in the length term (no extrapolation)."""
    length_ref_s: PositiveFloat = 1.0
    actual_noise_cv: NonNegFloat = 0.0
    quote_noise_cv: NonNegFloat = 0.0

    _congestion_hours = field_validator("congestion")(_hours_or_table)

    @field_validator("start_date")
    @classmethod
    def _start_date(cls, v: str | None) -> str | None:
        if v is not None:
            _check_date(v)
        return v

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for d in v:
            _check_date(d)
        return v

    @model_validator(mode="after")
    def _one_source(self) -> TravelSpec:
        if self.profile is not None and self.congestion is not None:
            raise ValueError("give congestion or profile, not both (the profile holds one)")
        if self.length_range_s[0] > self.length_range_s[1]:
            raise ValueError("length_range_s must be [low, high] with low <= high")
        return self

    def congestion_args(self, start_s: float) -> dict[str, Any]:
        """Arguments of :class:`cities.travel.Congestion` for simulated t = 0 at clock
        ``start_s`` (seconds after midnight) of ``start_date``."""
        c = self.congestion
        table = c.table() if isinstance(c, DayTypeCongestion) else c
        return {
            "table": table,
            "start_s": start_s,
            "start_day": day_number(self.start_date) if self.start_date else None,
            "holidays": tuple(day_number(d) for d in self.holidays),
            "length_elasticity": self.length_elasticity,
            "length_range_s": self.length_range_s,
            "length_ref_s": self.length_ref_s,
        }


def _check_date(v: str) -> None:
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}") from None
    if len(v) != 10:
        raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}")


def lognormal_factors(rng: np.random.Generator, cv: float, n: int) -> np.ndarray:
    """``n`` lognormal factors with mean 1 and coefficient of variation ``cv`` (1 when cv=0)."""
    if cv <= 0:
        return np.ones(n)
    sigma2 = np.log1p(cv * cv)
    return rng.lognormal(-sigma2 / 2.0, np.sqrt(sigma2), n)


@dataclass(frozen=True, eq=False)
class RiderDraws:
    """Every random number a rider will need, drawn up front in one order.

    Drawing per rider (not per event) gives common random numbers: the same rider is as patient,
    as price-sensitive and as unlucky with traffic whichever matcher is being tested, so
    comparisons between matchers are not blurred by reshuffled luck.
    """

    patience_s: np.ndarray
    u_choice: np.ndarray
    u_cancel: np.ndarray
    cancel_fraction: np.ndarray
    quote_noise: np.ndarray
    pickup_noise: np.ndarray
    trip_noise: np.ndarray

    @classmethod
    def draw(
        cls,
        riders_rng: np.random.Generator,
        travel_rng: np.random.Generator,
        riders: RiderSpec,
        travel: TravelSpec,
        n: int,
    ) -> RiderDraws:
        """Draw for ``n`` riders: behaviour from ``riders_rng``, traffic from ``travel_rng``."""
        if riders.patience == "fixed" or riders.patience_s == 0:
            patience = np.full(n, riders.patience_s)
        else:
            patience = riders_rng.exponential(riders.patience_s, n)
        u_choice = riders_rng.random(n)
        u_cancel = riders_rng.random(n)
        cancel_fraction = riders_rng.random(n)
        quote_noise = lognormal_factors(riders_rng, travel.quote_noise_cv, n)
        pickup_noise = lognormal_factors(travel_rng, travel.actual_noise_cv, n)
        trip_noise = lognormal_factors(travel_rng, travel.actual_noise_cv, n)
        return cls(
            patience, u_choice, u_cancel, cancel_fraction, quote_noise, pickup_noise, trip_noise
        )

    @classmethod
    def neutral(cls, patience_s: np.ndarray) -> RiderDraws:
        """Draws under which nobody declines or cancels after a match and travel is exact."""
        n = len(patience_s)
        one, zero = np.ones(n), np.zeros(n)
        return cls(np.asarray(patience_s, dtype=np.float64), zero, one, zero, one, one, one)

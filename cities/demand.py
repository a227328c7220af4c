"""Demand models: when and where ride requests appear.

The synthetic model draws a non-homogeneous Poisson process whose rate follows a 24-hour
profile (piecewise constant per clock hour), scaled by ``multiplier`` (10x load is just
``multiplier = 10``). Trip ends come from a mix of hot spots (Gaussian blobs) and a uniform
spread over the city. Everything is drawn up front, vectorised, from one Generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from cities.space import Space
from core.clock import HOUR
from core.errors import InputError
from core.frozen import Frozen, NonNegFloat, PositiveFloat

DEFAULT_PROFILE = (
    # Relative request rate per clock hour 00..23: a night trough, a morning peak around
    # 08:00, a midday plateau and the evening peak around 18:00 (shape of typical city
    # ride-hailing demand; scaled so that the mean weight is 1).
    0.45,
    0.30,
    0.20,
    0.15,
    0.15,
    0.25,
    0.60,
    1.20,
    1.60,
    1.35,
    1.05,
    1.05,
    1.15,
    1.10,
    1.05,
    1.15,
    1.40,
    1.70,
    1.80,
    1.50,
    1.20,
    1.00,
    0.85,
    0.65,
)


class Hotspot(Frozen):
    """A place where many trips start or end: a Gaussian blob around a point.

    Real cities give ``lon``/``lat``; synthetic ones (grid, plane) give ``x_m``/``y_m``.
    """

    weight: PositiveFloat
    radius_m: PositiveFloat
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    x_m: float | None = None
    y_m: float | None = None

    @model_validator(mode="after")
    def _one_position(self) -> Hotspot:
        geo = self.lon is not None and self.lat is not None
        plane = self.x_m is not None and self.y_m is not None
        partial = {self.lon is None, self.lat is None} == {True, False} or {
            self.x_m is None,
            self.y_m is None,
        } == {True, False}
        if geo == plane or partial:
            raise ValueError("give the position as lon and lat, or as x_m and y_m")
        return self


class DemandSpec(Frozen):
    """Synthetic demand: non-homogeneous Poisson arrivals with spatial hot spots."""

    model: Literal["poisson"] = "poisson"
    requests_per_h: PositiveFloat
    multiplier: PositiveFloat = 1.0
    profile: tuple[NonNegFloat, ...] = DEFAULT_PROFILE
    hotspots: tuple[Hotspot, ...] = ()
    hotspot_share: float = Field(default=0.0, ge=0, le=1)
    """Share of trip ends drawn from the hot spots; the rest spread uniformly over the city."""
    destinations: Literal["gravity", "independent"] = "gravity"
    """``gravity``: a dropoff is one of ``gravity_candidates`` points drawn from the spatial
    mix (attractiveness), chosen with weight ``exp(-distance / trip_distance_m)`` (exponential
    distance deterrence); ``independent``: dropoffs drawn from the mix like pickups."""
    trip_distance_m: PositiveFloat = 3000.0
    gravity_candidates: Annotated[int, Field(ge=2, le=256)] = 16

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24:
            raise ValueError(f"must have 24 hourly weights, got {len(v)}")
        if sum(v) <= 0:
            raise ValueError("must have at least one positive weight")
        return v

    @model_validator(mode="after")
    def _share_needs_hotspots(self) -> DemandSpec:
        if self.hotspot_share > 0 and not self.hotspots:
            raise ValueError("hotspot_share > 0 needs at least one entry in demand.hotspots")
        return self


@dataclass(frozen=True, eq=False)
class Trips:
    """Ride requests in arrival order: request ``i`` arrives at ``t[i]`` (sorted)."""

    t: np.ndarray
    pickup_node: np.ndarray
    dropoff_node: np.ndarray
    recorded_trip_s: np.ndarray | None = None
    """For replayed real trips: the recorded trip duration (NaN where unknown)."""

    def __len__(self) -> int:
        return int(self.t.shape[0])


def hourly_segments(start_s: float, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Split [0, horizon) at clock-hour boundaries: (segment edges in sim seconds, clock hour
    of each segment)."""
    first = (np.floor(start_s / HOUR) + 1) * HOUR - start_s  # first boundary after t = 0
    inner = np.arange(first, horizon_s, HOUR)
    edges = np.concatenate([[0.0], inner[inner > 0], [horizon_s]])
    hours = (np.floor((start_s + edges[:-1]) / HOUR).astype(np.int64)) % 24
    return edges, hours


def poisson_arrivals(
    rng: np.random.Generator,
    rate_per_h: float,
    profile: np.ndarray,
    start_s: float,
    horizon_s: float,
) -> np.ndarray:
    """Sorted arrival times of a Poisson process with hourly rates ``rate_per_h * profile[h]``
    where ``profile`` is normalised to mean 1."""
    weights = np.asarray(profile, dtype=np.float64)
    weights = weights / weights.mean()
    edges, hours = hourly_segments(start_s, horizon_s)
    lengths = np.diff(edges)
    counts = rng.poisson(rate_per_h * weights[hours] * lengths / HOUR)
    offsets = rng.random(int(counts.sum()))
    starts = np.repeat(edges[:-1], counts)
    t = starts + offsets * np.repeat(lengths, counts)
    return np.sort(t, kind="stable")


class SpatialMix:
    """Where trip ends fall: hot spots with probability ``share``, else uniform over the city."""

    def __init__(
        self,
        space: Space,
        centres_xy: np.ndarray,
        weights: np.ndarray,
        radii_m: np.ndarray,
        share: float,
    ) -> None:
        self.space = space
        self.centres_xy = np.asarray(centres_xy, dtype=np.float64).reshape(-1, 2)
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum() if w.size else w
        self.radii_m = np.asarray(radii_m, dtype=np.float64)
        self.share = float(share) if self.centres_xy.shape[0] else 0.0

    def sample_xy(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) planar points."""
        from_spot = rng.random(n) < self.share
        xy = self.space.sample_points(rng, n)
        k = int(from_spot.sum())
        if k:
            spot = rng.choice(self.centres_xy.shape[0], size=k, p=self.weights)
            noise = rng.normal(size=(k, 2)) * self.radii_m[spot, None]
            xy[from_spot] = self.centres_xy[spot] + noise
        xmin, ymin, xmax, ymax = self.space.bounds
        np.clip(xy[:, 0], xmin, xmax, out=xy[:, 0])
        np.clip(xy[:, 1], ymin, ymax, out=xy[:, 1])
        return xy

    def sample_nodes(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Access node ids of ``n`` sampled points."""
        return self.space.locate(self.sample_xy(rng, n))


def spatial_mix(demand: DemandSpec, space: Space, source: str) -> SpatialMix:
    """The spatial mix of a scenario's ``[demand]`` table (hot spots given as lon/lat on real
    cities or as x_m/y_m on synthetic ones)."""
    spots = list(demand.hotspots)
    centres = np.zeros((len(spots), 2))
    for i, h in enumerate(spots):
        if h.lon is not None:
            try:
                centres[i] = space.to_xy(np.array([h.lon]), np.array([h.lat]))[0]
            except ValueError:
                raise InputError(
                    source,
                    f"demand.hotspots.{i}",
                    f"this city ({space.name}) has no geography: give x_m and y_m, not lon/lat",
                ) from None
        else:
            centres[i] = (h.x_m, h.y_m)
    return SpatialMix(
        space,
        centres,
        np.array([h.weight for h in spots]),
        np.array([h.radius_m for h in spots]),
        demand.hotspot_share,
    )


def synthetic_trips(
    rng: np.random.Generator,
    demand: DemandSpec,
    space: Space,
    mix: SpatialMix,
    start_s: float,
    horizon_s: float,
) -> Trips:
    """Draw the scenario's synthetic requests: Poisson arrival times, pickups from the spatial
    mix, dropoffs from the origin-destination model (a dropoff landing on its pickup's node is
    redrawn)."""
    rate = demand.requests_per_h * demand.multiplier
    t = poisson_arrivals(rng, rate, np.asarray(demand.profile), start_s, horizon_s)
    n = t.shape[0]
    pickup_xy = mix.sample_xy(rng, n)
    pickup = space.locate(pickup_xy)
    if demand.destinations == "gravity":
        dropoff_xy = gravity_destinations(
            rng, mix, pickup_xy, demand.trip_distance_m, demand.gravity_candidates
        )
    else:
        dropoff_xy = mix.sample_xy(rng, n)
    dropoff = space.locate(dropoff_xy)
    for _ in range(20):  # a bounded number of redraws; same-node trips are rare
        same = np.flatnonzero(dropoff == pickup)
        if same.size == 0:
            break
        dropoff[same] = mix.sample_nodes(rng, same.size)
    return Trips(t=t, pickup_node=pickup.astype(np.int64), dropoff_node=dropoff.astype(np.int64))


def gravity_destinations(
    rng: np.random.Generator,
    mix: SpatialMix,
    origin_xy: np.ndarray,
    mean_distance_m: float,
    k: int,
    chunk: int = 65_536,
) -> np.ndarray:
    """For each origin, one of ``k`` candidate points drawn from ``mix``, chosen with weight
    ``exp(-distance / mean_distance_m)``: a gravity model with exponential deterrence, where
    the mix supplies each place's attractiveness. Processed in chunks to bound memory."""
    out = np.empty_like(origin_xy)
    for lo in range(0, origin_xy.shape[0], chunk):
        o = origin_xy[lo : lo + chunk]
        m = o.shape[0]
        cand = mix.sample_xy(rng, m * k).reshape(m, k, 2)
        dist = np.hypot(*(cand - o[:, None, :]).transpose(2, 0, 1))
        w = np.exp(-dist / mean_distance_m)
        w[dist == 0.0] = 0.0  # a trip goes somewhere
        total = w.sum(axis=1)
        w[total == 0] = 1.0
        pick = choose_per_row(rng.random(m), w)
        out[lo : lo + m] = cand[np.arange(m), pick]
    return out


def choose_per_row(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each row of ``weights`` (n, k), the column picked with probability proportional
    to its weight, by inverse CDF on the row's uniform ``u`` in [0, 1). A row of zeros picks
    its last column (callers decide what an empty row means)."""
    target = u * weights.sum(axis=1)
    picked = (np.cumsum(weights, axis=1) <= target[:, None]).sum(axis=1)
    return np.minimum(picked, weights.shape[1] - 1)

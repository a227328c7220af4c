"""A demand model fitted from real trip records: real rhythm and geography, fresh draws.

```toml
[demand]
model = "fitted"
path = "data/uber-raw-data-*.csv"
columns = { pickup_time = "Date/Time", pickup_lon = "Lon", pickup_lat = "Lat" }
time_format = "%Y/%m/%d %H:%M:%S"
destinations = "sampled"
multiplier = 10
```

Fitting (:func:`fit_demand`, deterministic, no randomness) reads the file with the replay
reader (:func:`cities.replay.read_trip_records`) and keeps the records inside the city's area
(:func:`cities.replay.place_records`). From them:

* the **24-hour profile**: requests per clock hour averaged over the days in the file, i.e.
  the count of records starting in clock hour ``h`` divided by the number of distinct dates
  among the file's records (``days``): the expected arrivals per clock hour of a day;
* the **spatial intensity**: the empirical pickup points, grouped by clock hour, plus each
  record's dropoff point when the file has dropoffs (its OD pairs).

Drawing (:func:`fitted_trips`): a non-homogeneous Poisson process with the hourly rates times
``multiplier`` (:func:`cities.demand.poisson_arrivals`). Each arrival copies a random record of
the same clock hour (so morning and evening geographies differ as in the file), its pickup
moved by Gaussian noise of ``spatial_bandwidth_m`` per axis (a Gaussian kernel estimate of the
pickup density) and snapped with ``space.locate``. Its dropoff is that record's dropoff,
smoothed the same way (``destinations = "recorded"``), or drawn by the replay's distance-decay
rule from the file's pickups and smoothed (``"sampled"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cities.demand import Trips, hourly_segments, poisson_arrivals
from cities.replay import (
    DAY,
    HOUR,
    TripFileSpec,
    diagonal_m,
    jittered_nodes,
    no_trips_error,
    place_records,
    read_trip_records,
    sample_destinations,
)
from cities.space import Space
from core.frozen import NonNegFloat, PositiveFloat


class FittedDemandSpec(TripFileSpec):
    """Poisson demand whose hourly rates and geography are fitted from a trip file."""

    model: Literal["fitted"]
    multiplier: PositiveFloat = 1.0
    """Scale on the fitted rates (10 for ten times the file's load)."""
    spatial_bandwidth_m: NonNegFloat = 200.0
    """Standard deviation per axis of the Gaussian kernel around each fitted trip end."""


@dataclass(frozen=True, eq=False)
class FittedDemand:
    """What :func:`fit_demand` learned from a trip file (planar metres of one space)."""

    hourly_rate: np.ndarray
    """(24,) expected requests in each clock hour of a day (mean over the file's days)."""
    pickup_xy: np.ndarray
    """(m, 2) the records' pickup points, sorted by clock hour (file order within an hour)."""
    pickup_node: np.ndarray
    """(m,) their access nodes."""
    dropoff_xy: np.ndarray | None
    """(m, 2) the same records' dropoff points, or None without recorded destinations."""
    hour_start: np.ndarray
    """(25,) records of clock hour ``h`` are rows ``hour_start[h]:hour_start[h + 1]``."""
    stats: dict[str, int | float]
    """Provenance: ``rows_read``, ``dropped_missing``, ``dropped_outside_dates``,
    ``dropped_outside_area``, ``records_fitted``, ``days``, ``requests_per_day``."""

    @property
    def requests_per_day(self) -> float:
        """Expected requests in a whole day at multiplier 1."""
        return float(self.hourly_rate.sum())


def fit_demand(
    spec: FittedDemandSpec, space: Space, *, base_dir: Path, source: str
) -> FittedDemand:
    """Fit the hourly profile and spatial intensity of ``spec``'s trip file on ``space``."""
    records = read_trip_records(spec, base_dir=base_dir, source=source)
    placed = place_records(records, space, spec.max_snap_m, source=source)
    hour = (np.mod(records.t[placed.record], DAY) // HOUR).astype(np.int64)
    order = np.argsort(hour, kind="stable")
    counts = np.bincount(hour, minlength=24)
    days = max(records.days, 1)
    stats: dict[str, int | float] = {
        **records.stats,
        "dropped_outside_area": len(records) - len(placed),
        "records_fitted": len(placed),
        "days": days,
        "requests_per_day": len(placed) / days,
    }
    if len(placed) == 0:
        raise no_trips_error(source, records.files, stats)
    return FittedDemand(
        hourly_rate=counts / days,
        pickup_xy=placed.pickup_xy[order],
        pickup_node=placed.pickup_node[order],
        dropoff_xy=placed.dropoff_xy[order] if placed.dropoff_xy is not None else None,
        hour_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        stats=stats,
    )


def fitted_trips(
    rng: np.random.Generator,
    model: FittedDemand,
    spec: FittedDemandSpec,
    space: Space,
    start_s: float,
    horizon_s: float,
) -> tuple[Trips, dict[str, int | float]]:
    """Draw requests over ``[0, horizon_s)`` (t = 0 is clock time ``start_s``) from a fitted
    model. Returns the trips (sorted by time) and the manifest stats: the fit's provenance
    plus ``multiplier``, ``expected_trips``, ``trips`` and ``trips_same_node``."""
    rate = model.hourly_rate * spec.multiplier
    t = poisson_arrivals(rng, float(rate.mean()), rate, start_s, horizon_s)
    n = t.shape[0]
    # Arrivals fall in hours with a positive rate, which have records to copy; an arrival
    # rounded onto the next (empty) hour's boundary copies from the whole file instead.
    hour = (np.mod(start_s + t, DAY) // HOUR).astype(np.int64)
    lo, size = model.hour_start[hour], np.diff(model.hour_start)[hour]
    empty = size == 0
    lo[empty], size[empty] = 0, model.hour_start[-1]
    rec = lo + np.minimum((rng.random(n) * size).astype(np.int64), size - 1)
    bw = spec.spatial_bandwidth_m
    pickup = jittered_nodes(rng, space, model.pickup_xy[rec], bw)
    if spec.destinations == "recorded" and model.dropoff_xy is not None:
        dropoff = jittered_nodes(rng, space, model.dropoff_xy[rec], bw)
    else:
        pick = sample_destinations(
            rng,
            space.node_xy[pickup],
            pickup,
            model.pickup_xy,
            model.pickup_node,
            spec.dropoff_distance_mean_m,
            diagonal_m(space),
        )
        dropoff = jittered_nodes(rng, space, model.pickup_xy[pick], bw)
    edges, hours = hourly_segments(start_s, horizon_s)
    stats: dict[str, int | float] = {
        **model.stats,
        "multiplier": spec.multiplier,
        "expected_trips": float((rate[hours] * np.diff(edges) / HOUR).sum()),
        "trips": int(n),
        "trips_same_node": int((pickup == dropoff).sum()),
    }
    trips = Trips(t=t, pickup_node=pickup, dropoff_node=dropoff)
    return trips, stats

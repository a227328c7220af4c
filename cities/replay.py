"""Replay of real trip records (CSV or Parquet) as the simulation's ride requests.

```toml
[demand]
model = "replay"
path = "data/chicago_taxi.csv"            # relative to the scenario file's folder; globs allowed
columns = { pickup_time = "trip_start_timestamp", pickup_lon = "pickup_longitude",
            pickup_lat = "pickup_latitude", dropoff_lon = "dropoff_longitude",
            dropoff_lat = "dropoff_latitude", trip_seconds = "trip_seconds" }
time_format = "unix"                       # or "iso", "hour" (+ columns.pickup_date), or a
                                           # strftime format: "%Y/%m/%d %H:%M:%S"
duration_unit = "s"                        # of trip_seconds: "s", "min" or "h"
align = "clock"                            # or "shift"
days = "auto"                              # average the pooled days into one (clock only)
boost = 10                                 # 10x load: every trip replayed 10 times, jittered
```

The pipeline, all vectorised (no per-row Python):

1. **read** (:func:`read_trip_records`, shared with :mod:`cities.fitted`): only the named
   columns; rows with a missing or unparsable time or coordinate are dropped
   (``dropped_missing``), then rows outside ``start_date``..``end_date``
   (``dropped_outside_dates``). Times are the clock written in the file: unix seconds are
   decoded as UTC (files like Chicago's encode the local clock that way), ISO times with an
   offset keep their written wall clock; ``utc_offset_h`` is added to every time.
2. **place** (:func:`place_records`): project to the city's planar metres and snap to the
   nearest access node; a trip is outside the network's area (``dropped_outside_area``) when
   an end it uses lies outside the city's bounds grown by ``max_snap_m``, or farther than
   ``max_snap_m`` from its access node, or (``area = "inside"``, the choice for fidelity)
   outside the convex hull of the network's nodes.
3. **align** to the simulated period ``[0, horizon)``:

   * ``align = "clock"``: a record's clock time of day is its time in the simulated day, so all
     days in the file are pooled onto one day. A record whose time of day falls in
     ``[start, start + horizon)`` is replayed at that offset (once per simulated day when the
     horizon is longer than a day). Pooling D days gives D days' worth of requests in one
     day: set ``days = D`` (or ``"auto"``: the number of distinct dates among the records) to
     scale the pool back to an average day.
   * ``align = "shift"``: absolute times: t = 0 is ``[time] start`` on the first date (the
     earliest valid record's date, or ``[travel] start_date``), so a record keeps its clock
     hour (and its date's day type); offset = time - that moment + ``time_shift_s``. Records
     landing outside ``[0, horizon)`` are dropped.

   Records with no offset in the window count as ``dropped_outside_window``.
4. **scale**: every replayed record is copied ``k`` times, ``E[k] = f = sample * boost *
   multiplier / days``: ``k = floor(f)`` plus one more with probability ``f - floor(f)``
   (so f < 1 thins and f > 1 boosts, with the least variance). Records that get ``k = 0``
   count as ``dropped_thinned``. The first copy is the record itself; further copies are
   moved by a uniform time jitter of up to ``jitter_s`` either way (reflected at the window's
   edges) and a Gaussian spatial jitter of ``jitter_m`` per axis at each end, then re-snapped.
5. **destinations**: ``"recorded"`` uses the file's dropoffs. ``"sampled"`` (for
   pickup-only files such as NYC Uber 2014) draws each dropoff from the file's empirical
   pickup distribution at a trip distance from a distance-decay model: a target distance is
   drawn from an exponential with mean ``dropoff_distance_mean_m`` (4 km) truncated to the
   diagonal of the city's bounds, :data:`CANDIDATES` pickup records of the file (all in-area
   records, any time) are drawn uniformly, and the one whose distance from the pickup is
   closest to the target (and whose node differs from the pickup's) becomes the dropoff. The
   destinations thus follow where trips really start, at about the drawn distance where the
   city allows it.
"""

from __future__ import annotations

import datetime as dt
import glob
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from cities.demand import Trips
from cities.space import Space
from core.clock import DAY, HOUR
from core.errors import InputError
from core.frozen import Frozen, NonNegFloat, PositiveFloat

if TYPE_CHECKING:
    from scipy.spatial import Delaunay

CANDIDATES = 64
"""Candidate pickup records drawn per sampled dropoff (the closest in distance to the target
wins): enough for the chosen distance to follow the target closely, few enough to stay cheap."""
_CHUNK = 65536
"""Trips per block when sampling dropoffs (bounds memory at about 100 MB)."""
_PARSE_FAIL_SHARE = 0.5
"""When more than this share of the present time values fail to parse, the format is wrong
(an error), not a few bad rows (dropped and counted)."""
_EPOCH_DAY = dt.date(1970, 1, 1)
_DURATION_S = {"s": 1.0, "min": 60.0, "h": 3600.0}
_PLAUSIBLE_MIN_RECORDS = 100
"""Fewer records than this are too few to call their times or durations implausible."""


class ImplausibleTripsWarning(UserWarning):
    """Parsed trip times or durations that look like the wrong unit or column."""


class TripColumns(Frozen):
    """Which column of the trip file holds what."""

    pickup_time: str = Field(min_length=1)
    pickup_lon: str = Field(min_length=1)
    pickup_lat: str = Field(min_length=1)
    dropoff_lon: str | None = Field(default=None, min_length=1)
    dropoff_lat: str | None = Field(default=None, min_length=1)
    trip_seconds: str | None = Field(default=None, min_length=1)
    """Recorded trip duration, in ``duration_unit`` (values <= 0 are taken as unknown)."""
    pickup_date: str | None = Field(default=None, min_length=1)
    """With ``time_format = "hour"``: the column holding the date (``date_format``), while
    ``pickup_time`` holds the hour of the day (0-24, fractions allowed)."""

    @model_validator(mode="after")
    def _dropoff_pair(self) -> TripColumns:
        if (self.dropoff_lon is None) != (self.dropoff_lat is None):
            raise ValueError("give both dropoff_lon and dropoff_lat, or neither")
        return self

    def named(self) -> list[tuple[str, str]]:
        """(key, column name) of every column given, in declaration order."""
        keys = (
            "pickup_time",
            "pickup_lon",
            "pickup_lat",
            "dropoff_lon",
            "dropoff_lat",
            "trip_seconds",
            "pickup_date",
        )
        return [(k, getattr(self, k)) for k in keys if getattr(self, k) is not None]


class TripFileSpec(Frozen):
    """What the replay and fitted demand models share: the trip file and how to read it."""

    path: str = Field(min_length=1)
    """CSV (optionally compressed) or Parquet (``.parquet``/``.pq``); relative to the scenario
    file's folder or absolute; a glob pattern (``data/uber-*.csv``) reads every match, sorted."""
    columns: TripColumns
    time_format: str = "unix"
    """``"unix"`` (seconds), ``"iso"`` (ISO 8601), a strftime format (``"%m/%d/%Y %H:%M"``) or
    ``"hour"`` (hours of the day, with the date in ``columns.pickup_date``). Parquet timestamp
    columns are used as they are."""
    date_format: str = "%Y-%m-%d"
    """strftime format of ``columns.pickup_date`` (``time_format = "hour"`` only)."""
    duration_unit: Literal["s", "min", "h"] = "s"
    """Unit of ``columns.trip_seconds`` (seconds, minutes or hours)."""
    area: Literal["snap", "inside"] = "snap"
    """``snap``: an end may lie up to ``max_snap_m`` outside the network (its bounds grown by
    that margin); ``inside``: both ends must also lie inside the network's area (the convex
    hull of its nodes) -- the safe choice when recorded durations are compared (fidelity)."""
    utc_offset_h: float = Field(default=0.0, ge=-24, le=24)
    """Hours added to every time to get the local clock (0 when the file holds local times)."""
    start_date: str | None = None
    """``YYYY-MM-DD``: only records on or after this date (local clock)."""
    end_date: str | None = None
    """``YYYY-MM-DD``: only records on or before this date (local clock)."""
    max_snap_m: PositiveFloat = 500.0
    """A trip end farther than this from the network's nearest access node is outside the area."""
    destinations: Literal["recorded", "sampled"] = "recorded"
    """``recorded``: the file's dropoffs; ``sampled``: drawn from the file's pickups by distance."""
    dropoff_distance_mean_m: PositiveFloat = 4000.0
    """Mean of the (truncated) exponential trip distance for ``destinations = "sampled"``."""

    @field_validator("time_format")
    @classmethod
    def _time_format(cls, v: str) -> str:
        if v in ("unix", "iso", "hour") or "%" in v:
            return v
        raise ValueError(
            'must be "unix", "iso", "hour" or a strftime format such as "%Y-%m-%d %H:%M:%S", '
            f"got {v!r}"
        )

    @field_validator("start_date", "end_date")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}") from None
            if len(v) != 10:
                raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TripFileSpec:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        if (self.time_format == "hour") != (self.columns.pickup_date is not None):
            raise ValueError(
                'time_format = "hour" needs columns.pickup_date (the date of each hour), '
                'and columns.pickup_date needs time_format = "hour"'
            )
        if self.destinations == "recorded" and self.columns.dropoff_lon is None:
            raise ValueError(
                'destinations = "recorded" needs columns.dropoff_lon and '
                "columns.dropoff_lat; for pickup-only files use destinations = "
                '"sampled"'
            )
        return self


class ReplayDemandSpec(TripFileSpec):
    """Replay real trip records, aligned to the simulated period and scaled (see module doc)."""

    model: Literal["replay"]
    align: Literal["clock", "shift"] = "clock"
    days: PositiveFloat | Literal["auto"] | None = None
    """``align = "clock"`` only: divide the pooled days' requests by this many days
    (``"auto"``: the distinct dates among the records); unset replays the whole pool."""
    time_shift_s: float = Field(default=0.0, allow_inf_nan=False)
    """``align = "shift"`` only: added to every record's offset from ``[time] start`` on the
    first date."""
    sample: float = Field(default=1.0, gt=0, le=1)
    """Fraction of records kept (thinning)."""
    boost: float = Field(default=1.0, ge=1, allow_inf_nan=False)
    """Copies of each record (a float boosts by a random whole number with this mean)."""
    multiplier: PositiveFloat = 1.0
    """Overall scale on top of sample and boost: < 1 thins, > 1 boosts."""
    jitter_s: NonNegFloat = 300.0
    """Copies beyond the first move in time by up to this many seconds either way."""
    jitter_m: NonNegFloat = 150.0
    """Copies beyond the first move each end by Gaussian noise of this many metres per axis."""

    @model_validator(mode="after")
    def _align_options(self) -> ReplayDemandSpec:
        if self.align == "shift" and self.days is not None:
            raise ValueError('days applies to align = "clock" only')
        if self.align == "clock" and self.time_shift_s != 0:
            raise ValueError('time_shift_s applies to align = "shift" only')
        return self


@dataclass(frozen=True, eq=False)
class TripRecords:
    """The usable records of a trip file, in file order."""

    t: np.ndarray
    """Local clock time as float64 seconds since 1970-01-01 00:00."""
    pickup_lonlat: np.ndarray
    dropoff_lonlat: np.ndarray | None
    """(n, 2), or None when the file has no dropoffs (or they are not used)."""
    trip_s: np.ndarray | None
    """Recorded durations (NaN where unknown), or None without a trip_seconds column."""
    files: tuple[Path, ...]
    days: int
    """Distinct calendar dates among the records."""
    stats: dict[str, int]
    """``rows_read``, ``dropped_missing``, ``dropped_outside_dates``."""

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass(frozen=True, eq=False)
class PlacedRecords:
    """The records inside the network's area, with planar points and access nodes."""

    record: np.ndarray
    """Index into :class:`TripRecords` (increasing, so file order is kept)."""
    pickup_xy: np.ndarray
    pickup_node: np.ndarray
    dropoff_xy: np.ndarray | None
    dropoff_node: np.ndarray | None
    snap_m: np.ndarray
    """Distance from each record's farther used end to its access node."""

    def __len__(self) -> int:
        return int(self.record.shape[0])


def resolve_trip_files(spec: TripFileSpec, *, base_dir: Path, source: str) -> tuple[Path, ...]:
    """The file(s) ``spec.path`` names (a glob matches in sorted order). Raises InputError."""
    raw = Path(spec.path)
    full = raw if raw.is_absolute() else Path(base_dir) / raw
    if any(ch in spec.path for ch in "*?["):
        files = tuple(Path(p) for p in sorted(glob.glob(str(full))) if Path(p).is_file())
        if not files:
            raise InputError(source, "demand.path", f"no trip file matches {full}")
        return files
    if not full.is_file():
        where = "" if raw.is_absolute() else f" (relative paths start at {base_dir})"
        raise InputError(source, "demand.path", f"trip file not found: {full}{where}")
    return (full,)


def read_trip_records(spec: TripFileSpec, *, base_dir: Path, source: str) -> TripRecords:
    """Read, parse and date-filter the records of ``spec``'s trip file(s). Dropoffs are read
    only for ``destinations = "recorded"``; a record lacking a used field is dropped."""
    files = resolve_trip_files(spec, base_dir=base_dir, source=source)
    cols = spec.columns
    wanted = [
        (k, c)
        for k, c in cols.named()
        if spec.destinations == "recorded" or not k.startswith("dropoff")
    ]
    use_dropoff = spec.destinations == "recorded"
    parts: list[tuple[np.ndarray, ...]] = []
    for path in files:
        text_cols = [cols.pickup_time] if spec.time_format not in ("unix", "hour") else []
        if cols.pickup_date:
            text_cols.append(cols.pickup_date)
        df = _read_table(path, wanted, text_cols, source)
        if spec.time_format == "hour":
            t = _date_hour_times(df, spec, path, source)
        else:
            t = _parse_times(df[cols.pickup_time], spec.time_format, path, cols.pickup_time, source)
        num = {
            k: pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
            for k, c in wanted
            if k not in ("pickup_time", "pickup_date")
        }
        parts.append(
            (
                t,
                num["pickup_lon"],
                num["pickup_lat"],
                num["dropoff_lon"] if use_dropoff else np.full(t.shape, np.nan),
                num["dropoff_lat"] if use_dropoff else np.full(t.shape, np.nan),
                num["trip_seconds"] * _DURATION_S[spec.duration_unit]
                if cols.trip_seconds
                else np.full(t.shape, np.nan),
            )
        )
    t, plon, plat, dlon, dlat, trip_s = (np.concatenate(a) for a in zip(*parts, strict=True))
    t = t + spec.utc_offset_h * HOUR
    rows = int(t.shape[0])

    ok = np.isfinite(t) & _valid_lonlat(plon, plat)
    if use_dropoff:
        ok &= _valid_lonlat(dlon, dlat)
    day = np.floor(np.where(ok, t, 0.0) / DAY)
    in_dates = ok.copy()
    if spec.start_date:
        in_dates &= day >= (dt.date.fromisoformat(spec.start_date) - _EPOCH_DAY).days
    if spec.end_date:
        in_dates &= day <= (dt.date.fromisoformat(spec.end_date) - _EPOCH_DAY).days
    keep = np.flatnonzero(in_dates)
    trip_s = np.where(trip_s > 0, trip_s, np.nan)  # 0 s or negative means "not recorded"
    _warn_implausible(t[keep], trip_s[keep] if cols.trip_seconds else None, spec, files)
    return TripRecords(
        t=t[keep],
        pickup_lonlat=np.column_stack([plon[keep], plat[keep]]),
        dropoff_lonlat=np.column_stack([dlon[keep], dlat[keep]]) if use_dropoff else None,
        trip_s=trip_s[keep] if cols.trip_seconds else None,
        files=files,
        days=int(np.unique(day[keep]).shape[0]),
        stats={
            "rows_read": rows,
            "dropped_missing": int(rows - ok.sum()),
            "dropped_outside_dates": int(ok.sum() - keep.shape[0]),
        },
    )


def place_records(
    records: TripRecords,
    space: Space,
    max_snap_m: float,
    *,
    source: str,
    area: Literal["snap", "inside"] = "snap",
) -> PlacedRecords:
    """Snap the records to ``space``, keeping those whose used ends lie in its area (with
    ``area = "inside"``, also inside the convex hull of its nodes)."""
    try:
        pxy = space.to_xy(records.pickup_lonlat[:, 0], records.pickup_lonlat[:, 1])
        dxy = (
            space.to_xy(records.dropoff_lonlat[:, 0], records.dropoff_lonlat[:, 1])
            if records.dropoff_lonlat is not None
            else None
        )
    except ValueError:
        raise InputError(
            source,
            "demand.model",
            f"trip records are lon/lat, but this city "
            f"({space.name}) has no geography: use a real (OSM) city",
        ) from None
    inside = _in_bounds(pxy, space.bounds, max_snap_m)
    if dxy is not None:
        inside &= _in_bounds(dxy, space.bounds, max_snap_m)
    if area == "inside":
        hull = _hull(space.node_xy)
        inside &= hull.find_simplex(pxy) >= 0
        if dxy is not None:
            inside &= hull.find_simplex(dxy) >= 0
    idx = np.flatnonzero(inside)
    node_xy = space.node_xy
    pnode = np.asarray(space.locate(pxy[idx]), dtype=np.int64)
    snap = np.hypot(*(node_xy[pnode] - pxy[idx]).T)
    dnode = None
    if dxy is not None:
        dnode = np.asarray(space.locate(dxy[idx]), dtype=np.int64)
        snap = np.maximum(snap, np.hypot(*(node_xy[dnode] - dxy[idx]).T))
    near = snap <= max_snap_m
    idx = idx[near]
    return PlacedRecords(
        record=idx,
        pickup_xy=pxy[idx],
        pickup_node=pnode[near],
        dropoff_xy=dxy[idx] if dxy is not None else None,
        dropoff_node=dnode[near] if dnode is not None else None,
        snap_m=snap[near],
    )


def sample_destinations(
    rng: np.random.Generator,
    origin_xy: np.ndarray,
    origin_node: np.ndarray,
    cand_xy: np.ndarray,
    cand_node: np.ndarray,
    mean_m: float,
    max_m: float,
) -> np.ndarray:
    """For each origin, the index of a candidate point (the file's pickups) to use as its
    dropoff: the closest in distance to a target drawn from an exponential with mean
    ``mean_m`` truncated at ``max_m``, among :data:`CANDIDATES` uniform draws; candidates on
    the origin's node are skipped (if every draw is, the first draw is returned)."""
    n = origin_xy.shape[0]
    out = np.empty(n, dtype=np.int64)
    m = cand_xy.shape[0]
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        u = rng.random(hi - lo)
        # Inverse CDF of the exponential truncated to [0, max_m].
        target = -mean_m * np.log1p(-u * -np.expm1(-max_m / mean_m))
        cand = rng.integers(0, m, size=(hi - lo, CANDIDATES))
        d = np.hypot(
            cand_xy[cand, 0] - origin_xy[lo:hi, None, 0],
            cand_xy[cand, 1] - origin_xy[lo:hi, None, 1],
        )
        err = np.abs(d - target[:, None])
        err[cand_node[cand] == origin_node[lo:hi, None]] = np.inf
        best = np.argmin(err, axis=1)
        out[lo:hi] = cand[np.arange(hi - lo), best]
    return out


def replay_trips(
    rng: np.random.Generator,
    spec: ReplayDemandSpec,
    space: Space,
    start_s: float,
    horizon_s: float,
    *,
    base_dir: Path,
    source: str,
    start_date: str | None = None,
) -> tuple[Trips, dict[str, int | float]]:
    """Replay ``spec``'s trip file over ``[0, horizon_s)`` (simulated t = 0 is clock time
    ``start_s``; with ``align = "shift"`` on ``start_date``, default the earliest record's
    date). Returns the requests sorted by time (ties in file order) and the manifest stats:
    ``rows_read = records_kept + every dropped_*`` count, and for ``shift`` ``start_day`` (days
    since 1970-01-01 of simulated t = 0)."""
    records = read_trip_records(spec, base_dir=base_dir, source=source)
    placed = place_records(records, space, spec.max_snap_m, source=source, area=spec.area)
    t_rec = records.t[placed.record]
    n_placed = len(placed)

    # occ: one entry per (placed record, simulated day) it is replayed in, at offset `offset`.
    if spec.align == "clock":
        first = np.mod(np.mod(t_rec, DAY) - start_s, DAY)
        reps = np.where(first < horizon_s, np.ceil((horizon_s - first) / DAY), 0).astype(np.int64)
        occ = np.repeat(np.arange(n_placed), reps)
        day_no = np.arange(occ.shape[0]) - np.repeat(np.cumsum(reps) - reps, reps)
        offset = first[occ] + DAY * day_no
    else:
        if start_date is not None:
            first_day = (dt.date.fromisoformat(start_date) - _EPOCH_DAY).days
        else:
            first_day = int(records.t.min() // DAY) if len(records) else 0
        base = first_day * DAY + start_s  # t = 0 is [time] start on the first date
        shifted = t_rec - base + spec.time_shift_s
        reps = ((shifted >= 0) & (shifted < horizon_s)).astype(np.int64)
        occ = np.flatnonzero(reps)
        offset = shifted[occ]

    if spec.days is None:
        days = 1.0
    elif spec.days == "auto":
        days = float(max(records.days, 1))
    else:
        days = float(spec.days)
    factor = spec.sample * spec.boost * spec.multiplier / days
    whole = np.floor(factor)
    k = (whole + (rng.random(occ.shape[0]) < factor - whole)).astype(np.int64)
    per_record = np.bincount(occ, weights=k, minlength=n_placed)
    in_window = int((reps > 0).sum())
    thinned = int(((reps > 0) & (per_record == 0)).sum())

    src = np.repeat(np.arange(occ.shape[0]), k)  # copies, in occurrence order
    copy_no = np.arange(src.shape[0]) - np.repeat(np.cumsum(k) - k, k)
    rec = occ[src]
    t = offset[src]
    extra = np.flatnonzero(copy_no > 0)
    t[extra] = _reflect(
        t[extra] + rng.uniform(-spec.jitter_s, spec.jitter_s, extra.shape[0]), horizon_s
    )
    pickup = placed.pickup_node[rec]
    pickup[extra] = jittered_nodes(rng, space, placed.pickup_xy[rec[extra]], spec.jitter_m)
    if spec.destinations == "recorded":
        dropoff = placed.dropoff_node[rec]
        dropoff[extra] = jittered_nodes(rng, space, placed.dropoff_xy[rec[extra]], spec.jitter_m)
    else:
        origin_xy = space.node_xy[pickup]
        pick = sample_destinations(
            rng,
            origin_xy,
            pickup,
            placed.pickup_xy,
            placed.pickup_node,
            spec.dropoff_distance_mean_m,
            diagonal_m(space),
        )
        dropoff = placed.pickup_node[pick]
    trip_s = (
        records.trip_s[placed.record][rec]
        if records.trip_s is not None
        else np.full(t.shape[0], np.nan)
    )

    order = np.argsort(t, kind="stable")
    trips = Trips(
        t=t[order],
        pickup_node=pickup[order],
        dropoff_node=dropoff[order],
        recorded_trip_s=trip_s[order],
    )
    stats: dict[str, int | float] = {
        **records.stats,
        "dropped_outside_area": len(records) - n_placed,
        "dropped_outside_window": n_placed - in_window,
        "dropped_thinned": thinned,
        "records_kept": in_window - thinned,
        "trips": len(trips),
        "trips_same_node": int((trips.pickup_node == trips.dropoff_node).sum()),
        "days": days,
        "multiplier": factor,
        "effective_multiplier": len(trips) / occ.shape[0] if occ.shape[0] else 0.0,
        "snap_m_p95": float(np.percentile(placed.snap_m, 95)) if n_placed else 0.0,
    }
    if spec.align == "shift":
        stats["start_day"] = first_day
    if len(trips) == 0:
        raise no_trips_error(source, records.files, stats)
    return trips, stats


def no_trips_error(
    source: str, files: tuple[Path, ...], stats: dict[str, int | float]
) -> InputError:
    """The error for a trip file that leaves no trips, saying which filter dropped what."""
    parts = [
        f"{stats[k]} {label}"
        for k, label in (
            ("dropped_missing", "with a missing or unparsable time or coordinate"),
            ("dropped_outside_dates", "outside start_date..end_date"),
            ("dropped_outside_area", "outside the city's area (max_snap_m from its roads)"),
            ("dropped_outside_window", "outside the simulated time window"),
            ("dropped_thinned", "thinned out by sample/multiplier/days"),
        )
        if k in stats
    ]
    name = str(files[0]) if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more files)"
    return InputError(
        source,
        "demand",
        f"no trips left from {name}: {stats['rows_read']} rows read, dropped {', '.join(parts)}",
    )


def _read_table(
    path: Path, wanted: list[tuple[str, str]], text_cols: list[str], source: str
) -> pd.DataFrame:
    parquet = _is_parquet(path)
    kind = "Parquet" if parquet else "CSV"
    try:
        names = pq.read_schema(path).names if parquet else list(pd.read_csv(path, nrows=0).columns)
        missing = [
            (
                f"demand.columns.{k}",
                f"no column {c!r} in {path}; its columns are: {', '.join(map(str, names))}",
            )
            for k, c in wanted
            if c not in names
        ]
        if missing:
            raise InputError.many(source, missing)
        use = list(dict.fromkeys(c for _, c in wanted))  # unique, in a fixed order
        if parquet:
            return pq.read_table(path, columns=use).to_pandas()
        # Text times stay text (pandas must not guess a format we did not ask for).
        dtype = dict.fromkeys(text_cols, str) or None
        return pd.read_csv(path, usecols=use, dtype=dtype, low_memory=False)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(
            source, "demand.path", f"cannot read {path} as {kind}: {_short(str(exc))}"
        ) from None


def _is_parquet(path: Path) -> bool:
    """Parquet by content (the ``PAR1`` magic, whatever the suffix: ``.parq``, none...) or by
    a Parquet suffix (so a damaged ``.parquet`` file says it cannot be read as Parquet)."""
    if path.name.lower().endswith((".parquet", ".pq", ".parq")):
        return True
    try:
        with path.open("rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def _date_hour_times(df: pd.DataFrame, spec: TripFileSpec, path: Path, source: str) -> np.ndarray:
    """Seconds since 1970 from a date column plus an hour-of-day column."""
    cols = spec.columns
    assert cols.pickup_date is not None  # checked by the spec
    day = _parse_times(df[cols.pickup_date], spec.date_format, path, cols.pickup_date, source)
    hour = pd.to_numeric(df[cols.pickup_time], errors="coerce").to_numpy(np.float64)
    bad = np.isfinite(hour) & ((hour < 0) | (hour >= 24))
    if bad.any():
        example = float(hour[np.flatnonzero(bad)[0]])
        raise InputError(
            source,
            "demand.columns.pickup_time",
            f'time_format = "hour" expects hours of the day in [0, 24) in column '
            f"{cols.pickup_time!r} of {path}, got {example:g} ({int(bad.sum())} such values)",
        )
    return np.floor(day / DAY) * DAY + hour * HOUR


def _warn_implausible(
    t: np.ndarray, trip_s: np.ndarray | None, spec: TripFileSpec, files: tuple[Path, ...]
) -> None:
    """Warn loudly when parsed times or durations look like the wrong unit."""
    name = files[0].name if len(files) == 1 else f"{files[0].name} (+{len(files) - 1} more)"
    if t.shape[0] >= _PLAUSIBLE_MIN_RECORDS and float(np.ptp(t)) < HOUR:
        warnings.warn(
            f"{name}: all {t.shape[0]} parsed pickup times lie within {float(np.ptp(t)):.0f} s "
            f"(time_format = {spec.time_format!r}): is {spec.columns.pickup_time!r} really a "
            'time? For hours of the day use time_format = "hour" with columns.pickup_date',
            ImplausibleTripsWarning,
            stacklevel=3,
        )
    if trip_s is None:
        return
    known = trip_s[np.isfinite(trip_s)]
    if known.shape[0] >= _PLAUSIBLE_MIN_RECORDS:
        med = float(np.median(known))
        if med > 3 * HOUR or med < 30:
            warnings.warn(
                f"{name}: the median recorded ride lasts {med:g} s ({med / HOUR:.2f} h) with "
                f"duration_unit = {spec.duration_unit!r}: check the unit of "
                f'{spec.columns.trip_seconds!r} (duration_unit = "s", "min" or "h")',
                ImplausibleTripsWarning,
                stacklevel=3,
            )


def _hull(node_xy: np.ndarray) -> Delaunay:
    """Triangulation of the network's nodes: a point is inside its convex hull when it falls
    in a triangle."""
    # deferred: scipy.spatial costs ~0.2 s to import; only replayed demand needs the hull
    from scipy.spatial import Delaunay

    return Delaunay(np.asarray(node_xy, dtype=np.float64))


def _parse_times(col: pd.Series, fmt: str, path: Path, name: str, source: str) -> np.ndarray:
    """Seconds since 1970 of the local clock (NaN where missing or unparsable)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        when = col.dt.tz_localize(None) if col.dt.tz is not None else col
        return _seconds(when)
    if fmt == "unix":
        secs = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
        want = "unix seconds"
    else:
        want = "ISO 8601 times" if fmt == "iso" else f"times in the format {fmt!r}"
        text = col.astype("string")
        try:
            when = _to_datetime(text, "ISO8601" if fmt == "iso" else fmt)
        except ValueError as exc:
            raise InputError(
                source,
                "demand.time_format",
                f"cannot parse column {name!r} of {path} with {fmt!r}: {_short(str(exc))}",
            ) from None
        secs = _seconds(when)
    stripped = col.astype("string").str.strip()
    present = (stripped.notna() & (stripped != "")).fillna(False).to_numpy(bool)
    bad = present & ~np.isfinite(secs)
    if present.any() and bad.sum() > _PARSE_FAIL_SHARE * present.sum():
        example = col.iloc[int(np.flatnonzero(bad)[0])]
        raise InputError(
            source,
            "demand.time_format",
            f"expected {want} in column {name!r} of "
            f"{path}, but {int(bad.sum())} of {int(present.sum())} values do not "
            f"parse, e.g. {str(example)!r}",
        )
    if fmt == "unix" and present.any() and np.nanmedian(secs) > 1e11:
        raise InputError(
            source,
            "demand.time_format",
            f"column {name!r} of {path} looks like "
            f"unix milliseconds (e.g. {col.iloc[int(np.flatnonzero(present)[0])]}); "
            "expected seconds",
        )
    return secs


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    try:
        when = pd.to_datetime(text, format=fmt, errors="coerce")
    except ValueError as exc:
        if "timezone" not in str(exc).lower():
            raise
        # Mixed UTC offsets have no common wall clock: fall back to UTC (see utc_offset_h).
        when = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    # An offset in the text: keep the wall clock as written.
    return when.dt.tz_localize(None) if when.dt.tz is not None else when


def _seconds(when: pd.Series) -> np.ndarray:
    return ((when - pd.Timestamp(0)) / pd.Timedelta(1, "s")).to_numpy(np.float64, na_value=np.nan)


def _valid_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (np.abs(lon) <= 180) & (np.abs(lat) <= 90)  # NaN compares False


def _in_bounds(
    xy: np.ndarray, bounds: tuple[float, float, float, float], margin: float
) -> np.ndarray:
    xmin, ymin, xmax, ymax = bounds
    x, y = xy[:, 0], xy[:, 1]
    return (x >= xmin - margin) & (x <= xmax + margin) & (y >= ymin - margin) & (y <= ymax + margin)


def diagonal_m(space: Space) -> float:
    """Length of the diagonal of the city's bounds (the longest straight trip it holds)."""
    xmin, ymin, xmax, ymax = space.bounds
    return max(float(np.hypot(xmax - xmin, ymax - ymin)), 1.0)


def _reflect(t: np.ndarray, horizon_s: float) -> np.ndarray:
    """Fold jittered times back into [0, horizon) (reflection keeps the density at the edges)."""
    t = np.where(t < 0, -t, t)
    t = np.where(t >= horizon_s, 2 * horizon_s - t, t)
    return np.clip(t, 0.0, np.nextafter(horizon_s, 0.0))


def jittered_nodes(
    rng: np.random.Generator, space: Space, xy: np.ndarray, sigma_m: float
) -> np.ndarray:
    """Access nodes of ``xy`` moved by Gaussian noise and kept inside the city's bounds."""
    if xy.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    moved = xy + rng.normal(size=xy.shape) * sigma_m
    xmin, ymin, xmax, ymax = space.bounds
    moved[:, 0] = np.clip(moved[:, 0], xmin, xmax)
    moved[:, 1] = np.clip(moved[:, 1], ymin, ymax)
    return np.asarray(space.locate(moved), dtype=np.int64)


def _short(msg: str, limit: int = 200) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."

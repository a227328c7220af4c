"""Replay of real trip records: reading, filtering, alignment, scaling, errors, determinism."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from cities import load_city
from cities.replay import (
    CANDIDATES,
    ImplausibleTripsWarning,
    ReplayDemandSpec,
    read_trip_records,
    replay_trips,
)
from cities.spec import OsmCity
from core.errors import InputError

DATA = Path(__file__).with_name("data")
SOURCE = "scenarios/replay.toml"
H = 3600.0

SMALL_COLUMNS = {
    "pickup_time": "start",
    "pickup_lon": "plon",
    "pickup_lat": "plat",
    "dropoff_lon": "dlon",
    "dropoff_lat": "dlat",
    "trip_seconds": "secs",
}
CHICAGO_COLUMNS = {
    "pickup_time": "trip_start_timestamp",
    "pickup_lon": "pickup_longitude",
    "pickup_lat": "pickup_latitude",
    "dropoff_lon": "dropoff_longitude",
    "dropoff_lat": "dropoff_latitude",
    "trip_seconds": "trip_seconds",
}
UBER_COLUMNS = {"pickup_time": "Date/Time", "pickup_lon": "Lon", "pickup_lat": "Lat"}
UBER_FORMAT = "%Y/%m/%d %H:%M:%S"  # the files were rewritten by Excel (see PROVENANCE.txt)
DROPPED = (
    "dropped_missing",
    "dropped_outside_dates",
    "dropped_outside_area",
    "dropped_outside_window",
    "dropped_thinned",
)


class LonLatGrid:
    """A stand-in for a real city: access nodes on a square grid over a lon/lat box (local
    equirectangular projection), so these tests do not depend on the OSM loader."""

    max_speed_mps = 10.0
    content_hash = "lonlat-grid"

    def __init__(
        self,
        lon0: float,
        lat0: float,
        lon1: float,
        lat1: float,
        spacing_m: float = 100.0,
        name: str = "box",
    ) -> None:
        self.name = name
        self._c = ((lon0 + lon1) / 2, (lat0 + lat1) / 2)
        self._k = (111_320.0 * np.cos(np.radians(self._c[1])), 110_540.0)
        (x0, y0), (x1, y1) = self._project(np.array([lon0, lon1]), np.array([lat0, lat1]))
        self._s, self._x0, self._y0 = spacing_m, x0, y0
        self._nx, self._ny = int((x1 - x0) // spacing_m) + 1, int((y1 - y0) // spacing_m) + 1
        gx, gy = np.meshgrid(
            x0 + spacing_m * np.arange(self._nx), y0 + spacing_m * np.arange(self._ny)
        )
        self._xy = np.column_stack([gx.ravel(), gy.ravel()])

    @property
    def n_nodes(self) -> int:
        return int(self._xy.shape[0])

    @property
    def node_xy(self) -> np.ndarray:
        return self._xy

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (
            self._x0,
            self._y0,
            self._x0 + self._s * (self._nx - 1),
            self._y0 + self._s * (self._ny - 1),
        )

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return self._project(lon, lat)

    def _project(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [
                (np.asarray(lon) - self._c[0]) * self._k[0],
                (np.asarray(lat) - self._c[1]) * self._k[1],
            ]
        )

    def to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [xy[:, 0] / self._k[0] + self._c[0], xy[:, 1] / self._k[1] + self._c[1]]
        )

    def locate(self, xy: np.ndarray) -> np.ndarray:
        ix = np.clip(np.rint((xy[:, 0] - self._x0) / self._s), 0, self._nx - 1)
        iy = np.clip(np.rint((xy[:, 1] - self._y0) / self._s), 0, self._ny - 1)
        return (iy * self._nx + ix).astype(np.int64)

    def travel_time(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return np.abs(self._xy[src] - self._xy[dst]).sum(axis=-1) / self.max_speed_mps

    def sample_points(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x0, y0, x1, y1 = self.bounds
        return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


class NoGeography(LonLatGrid):
    """A synthetic space: planar only."""

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        raise ValueError("no geography")


SMALL_BOX = (10.0, 50.0, 10.1, 50.06)
CHICAGO_BOX = (-87.95, 41.62, -87.50, 42.05)
NYC_BOX = (-74.10, 40.55, -73.70, 40.95)


def small_spec(**kw: Any) -> ReplayDemandSpec:
    """The hand-made file, replayed as it is unless ``kw`` says otherwise."""
    data: dict[str, Any] = {
        "model": "replay",
        "path": "small_trips.csv",
        "columns": SMALL_COLUMNS,
        "time_format": "%d.%m.%Y %H:%M",
    }
    return ReplayDemandSpec.model_validate({**data, **kw})


def replay(
    spec: ReplayDemandSpec,
    space: Any = None,
    start_s: float = 8 * H,
    horizon_s: float = 2 * H,
    seed: int = 0,
    base_dir: Path = DATA,
):
    """Replay ``spec`` with a fixed seed (on the small box unless told otherwise)."""
    return replay_trips(
        np.random.default_rng(seed),
        spec,
        space or LonLatGrid(*SMALL_BOX),
        start_s,
        horizon_s,
        base_dir=base_dir,
        source=SOURCE,
    )


def assert_stats_add_up(stats: dict[str, int | float]) -> None:
    """Every record read is kept or dropped for exactly one reason."""
    assert stats["rows_read"] == stats["records_kept"] + sum(stats[k] for k in DROPPED)


@pytest.fixture(scope="module")
def uniform_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 trips uniform over ten days and over the small box (unix times)."""
    rng = np.random.default_rng(7)
    n = 20_000
    t0 = 1_700_006_400  # 2023-11-15 00:00 UTC
    df = pd.DataFrame(
        {
            "t": np.sort(rng.integers(t0, t0 + 10 * 86400, n)),
            "plon": rng.uniform(10.005, 10.095, n),
            "plat": rng.uniform(50.005, 50.055, n),
            "dlon": rng.uniform(10.005, 10.095, n),
            "dlat": rng.uniform(50.005, 50.055, n),
        }
    )
    path = tmp_path_factory.mktemp("trips") / "uniform.csv"
    df.to_csv(path, index=False)
    return path


def uniform_spec(path: Path, **kw: Any) -> ReplayDemandSpec:
    """Replay of the uniform file."""
    cols = {k: v for k, v in SMALL_COLUMNS.items() if k != "trip_seconds"} | {"pickup_time": "t"}
    return ReplayDemandSpec.model_validate(
        {"model": "replay", "path": str(path), "columns": cols, **kw}
    )


# --- what is replayed, when ------------------------------------------------------------------


def test_replay_keeps_window_trips_in_time_then_file_order() -> None:
    """The file's trips inside 08:00-10:00 come back at their clock offsets, ties in file order."""
    space = LonLatGrid(*SMALL_BOX)
    trips, stats = replay(small_spec(), space)
    # Rows 8, 1, 2, 11, 9, 4 of the file (1-based), pooled from three dates onto one day.
    np.testing.assert_array_equal(trips.t, [60, 300, 300, 1200, 3540, 4200])
    np.testing.assert_array_equal(trips.recorded_trip_s, [700, 600, 420, 400, np.nan, 900])
    lonlat = np.array(
        [
            [10.06, 50.04],
            [10.01, 50.01],
            [10.02, 50.02],
            [10.02, 50.01],
            [10.07, 50.05],
            [10.04, 50.03],
        ]
    )
    np.testing.assert_array_equal(trips.pickup_node, space.locate(space.to_xy(*lonlat.T)))
    assert stats["records_kept"] == 6 and stats["trips"] == 6


def test_dropped_counts_name_each_reason() -> None:
    """Each dropped row of the small file is counted under its own reason, and they add up."""
    _, stats = replay(small_spec())
    want = {
        "rows_read": 12,
        "dropped_missing": 2,
        "dropped_outside_dates": 0,
        "dropped_outside_area": 2,
        "dropped_outside_window": 2,
        "dropped_thinned": 0,
        "records_kept": 6,
    }
    assert {k: stats[k] for k in want} == want
    assert_stats_add_up(stats)
    _, dated = replay(small_spec(start_date="2024-03-01"))
    assert dated["dropped_outside_dates"] == 1 and dated["records_kept"] == 5
    _, single = replay(small_spec(start_date="2024-03-02", end_date="2024-03-02"))
    assert single["dropped_outside_dates"] == 6 and single["records_kept"] == 2
    assert_stats_add_up(single)


def test_sampled_destinations_keep_trips_whose_recorded_dropoff_is_outside() -> None:
    """With sampled destinations only the pickup must be in the area, and no trip ends where it
    starts."""
    trips, stats = replay(small_spec(destinations="sampled"))
    assert stats["dropped_outside_area"] == 1 and stats["records_kept"] == 7
    assert (trips.pickup_node != trips.dropoff_node).all()


def _shift_want(first: str, shift_s: float, horizon_s: float) -> list[float]:
    recs = [
        "2024-02-28 08:20",
        "2024-03-01 08:05",
        "2024-03-01 08:05",
        "2024-03-01 07:50",
        "2024-03-01 09:10",
        "2024-03-02 08:01",
        "2024-03-02 08:59",
        "2024-03-02 10:00",
    ]
    t0 = pd.Timestamp(first)
    want = sorted((pd.Timestamp(r) - t0).total_seconds() + shift_s for r in recs)
    return [w for w in want if 0 <= w < horizon_s]


def test_shift_alignment_starts_at_time_start_on_the_first_date() -> None:
    """align = "shift": t = 0 is [time] start (08:00) on the earliest record's date, not the
    earliest record itself (08:20), so clock-hour congestion lands on the right hour."""
    trips, stats = replay(small_spec(align="shift", time_shift_s=-600.0), horizon_s=3 * 86400)
    # Earliest valid record: 28.02.2024 08:20 (2024 is a leap year: 29.02 exists).
    np.testing.assert_allclose(trips.t, _shift_want("2024-02-28 08:00", -600, 3 * 86400))
    assert stats["start_day"] == (pd.Timestamp("2024-02-28") - pd.Timestamp(0)).days
    assert_stats_add_up(stats)


def test_shift_alignment_keeps_the_clock_of_a_later_start() -> None:
    """A record before [time] start on the first date is outside the window, and the others
    keep their clock offsets from the start."""
    trips, stats = replay(small_spec(align="shift"), start_s=8.5 * H, horizon_s=3 * 86400)
    np.testing.assert_allclose(trips.t, _shift_want("2024-02-28 08:30", 0, 3 * 86400))
    assert stats["dropped_outside_window"] >= 1
    assert_stats_add_up(stats)


def test_shift_alignment_uses_a_given_start_date() -> None:
    """With a start date, t = 0 is [time] start on that date."""
    trips, stats = replay_trips(
        np.random.default_rng(0),
        small_spec(align="shift"),
        LonLatGrid(*SMALL_BOX),
        8 * H,
        2 * 86400,
        base_dir=DATA,
        source=SOURCE,
        start_date="2024-03-01",
    )
    np.testing.assert_allclose(trips.t, _shift_want("2024-03-01 08:00", 0, 2 * 86400))
    assert stats["start_day"] == (pd.Timestamp("2024-03-01") - pd.Timestamp(0)).days


def test_clock_alignment_repeats_records_on_every_simulated_day() -> None:
    """A two-day horizon replays each pooled record once on each simulated day."""
    one, s1 = replay(small_spec(), horizon_s=24 * H)
    two, s2 = replay(small_spec(), horizon_s=48 * H)
    assert len(two) == 2 * len(one) and s1["records_kept"] == s2["records_kept"]
    np.testing.assert_allclose(two.t[len(one) :], one.t + 86400)


def test_recorded_durations_nan_without_column() -> None:
    """Without a trip_seconds column the durations are all NaN."""
    cols = {k: v for k, v in SMALL_COLUMNS.items() if k != "trip_seconds"}
    trips, _ = replay(small_spec(columns=cols))
    assert trips.recorded_trip_s is not None and np.isnan(trips.recorded_trip_s).all()


def test_parquet_with_timestamp_column_reads_like_csv(tmp_path: Path) -> None:
    """A Parquet file with a timestamp column replays the same trips as the CSV."""
    df = pd.read_csv(DATA / "small_trips.csv")
    df["start"] = pd.to_datetime(df["start"], format="%d.%m.%Y %H:%M", errors="coerce")
    df.to_parquet(tmp_path / "small.parquet")
    csv, _ = replay(small_spec())
    pq_trips, stats = replay(small_spec(path=str(tmp_path / "small.parquet")))
    np.testing.assert_array_equal(csv.t, pq_trips.t)
    np.testing.assert_array_equal(csv.pickup_node, pq_trips.pickup_node)
    assert stats["dropped_missing"] == 2


def test_iso_and_unix_times_parse_to_the_same_clock(tmp_path: Path) -> None:
    """ISO 8601 (with an offset: its wall clock is kept) and unix seconds read the same times."""
    df = pd.read_csv(DATA / "small_trips.csv")
    when = pd.to_datetime(df["start"], format="%d.%m.%Y %H:%M", errors="coerce")
    iso = df.assign(start=when.dt.strftime("%Y-%m-%dT%H:%M:00+01:00"))
    unix = df.assign(start=(when - pd.Timestamp(0)) // pd.Timedelta(1, "s"))
    iso.to_csv(tmp_path / "iso.csv", index=False)
    unix.to_csv(tmp_path / "unix.csv", index=False)
    base, _ = replay(small_spec())
    for name, fmt in (("iso.csv", "iso"), ("unix.csv", "unix")):
        trips, _ = replay(small_spec(path=str(tmp_path / name), time_format=fmt))
        np.testing.assert_array_equal(trips.t, base.t)


def test_glob_reads_every_match_in_sorted_order(tmp_path: Path) -> None:
    """A glob path reads all matching files, in name order, as one file."""
    df = pd.read_csv(DATA / "small_trips.csv")
    df.iloc[6:].to_csv(tmp_path / "part-b.csv", index=False)
    df.iloc[:6].to_csv(tmp_path / "part-a.csv", index=False)
    whole, ws = replay(small_spec())
    parts, ps = replay(small_spec(path=str(tmp_path / "part-*.csv")))
    np.testing.assert_array_equal(whole.t, parts.t)
    np.testing.assert_array_equal(whole.pickup_node, parts.pickup_node)
    assert ws == ps


# --- scaling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "factor"),
    [
        ({"sample": 0.3}, 0.3),
        ({"multiplier": 0.5}, 0.5),
        ({"boost": 3}, 3.0),
        ({"boost": 2.5}, 2.5),
        ({"multiplier": 4.0, "sample": 0.5}, 2.0),
        ({"days": "auto"}, 0.1),
        ({"days": 5, "boost": 10}, 2.0),
    ],
)
def test_sample_boost_multiplier_days_scale_counts(
    uniform_file: Path, kw: dict[str, Any], factor: float
) -> None:
    """Trips / in-window records is the configured factor, within 5 binomial sigmas."""
    space = LonLatGrid(*SMALL_BOX)
    trips, stats = replay(uniform_spec(uniform_file, **kw), space, 0.0, 86400.0)
    n = stats["rows_read"] - stats["dropped_outside_area"]
    assert n == 20_000
    frac = factor - np.floor(factor)
    sigma = np.sqrt(n * frac * (1 - frac))
    assert abs(len(trips) - factor * n) <= 5 * sigma + 1e-9
    assert stats["multiplier"] == pytest.approx(factor)
    assert stats["effective_multiplier"] == pytest.approx(len(trips) / n)
    assert_stats_add_up(stats)


def test_boost_copies_first_exact_others_jittered() -> None:
    """Boosted copies stay within jitter_s of their record and inside the window, and land
    around it in space; every record keeps one exact copy."""
    base, _ = replay(small_spec())
    trips, stats = replay(small_spec(boost=50, jitter_s=120.0, jitter_m=300.0))
    assert len(trips) == 50 * len(base) and stats["records_kept"] == len(base)
    assert np.isin(base.t, trips.t).all()
    assert trips.t.min() >= 0 and trips.t.max() < 2 * H and np.diff(trips.t).min() >= 0
    nearest = np.abs(trips.t[:, None] - base.t[None, :]).min(axis=1)
    assert nearest.max() <= 120.0
    # A 300 m jitter on a 100 m grid rarely lands back on the record's own node.
    assert np.isin(trips.pickup_node, base.pickup_node).mean() < 0.2


def test_sampled_destination_distance_follows_the_decay_model(uniform_file: Path) -> None:
    """Sampled dropoffs are other pickup points, at a mean distance near the truncated
    exponential's (a 1 km mean in a box of about 7 x 6.5 km)."""
    space = LonLatGrid(*SMALL_BOX)
    spec = uniform_spec(uniform_file, destinations="sampled", dropoff_distance_mean_m=1000.0)
    trips, _ = replay(spec, space, 0.0, 86400.0)
    assert (trips.pickup_node != trips.dropoff_node).all()
    records = read_trip_records(spec, base_dir=DATA, source=SOURCE)
    pickups = space.locate(space.to_xy(*records.pickup_lonlat.T))
    assert np.isin(trips.dropoff_node, pickups).all()
    d = np.hypot(*(space.node_xy[trips.pickup_node] - space.node_xy[trips.dropoff_node]).T)
    x0, y0, x1, y1 = space.bounds
    top = np.hypot(x1 - x0, y1 - y0)
    mean = 1000.0 - top * np.exp(-top / 1000.0) / -np.expm1(-top / 1000.0)
    # Nearest of 64 candidates on a 100 m grid: within 10% of the model's mean.
    assert CANDIDATES == 64 and abs(d.mean() - mean) < 0.1 * mean


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_same_trips(uniform_file: Path) -> None:
    """The same seed gives identical trips; another seed gives other ones."""
    spec = uniform_spec(uniform_file, boost=2.5, destinations="sampled")
    a, sa = replay(spec, None, 0.0, 86400.0, seed=5)
    b, sb = replay(spec, None, 0.0, 86400.0, seed=5)
    c, _ = replay(spec, None, 0.0, 86400.0, seed=6)
    for name in ("t", "pickup_node", "dropoff_node", "recorded_trip_s"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert sa == sb
    assert len(a) != len(c) or not np.array_equal(a.dropoff_node, c.dropoff_node)


# --- errors ----------------------------------------------------------------------------------


def raises(spec: ReplayDemandSpec, space: Any = None, **kw: Any) -> InputError:
    """The InputError that replaying ``spec`` raises."""
    with pytest.raises(InputError) as info:
        replay(spec, space, **kw)
    assert info.value.source == SOURCE
    return info.value


def test_missing_file_is_an_input_error() -> None:
    """A trip file that does not exist names demand.path and the resolved path."""
    err = raises(small_spec(path="no_such.csv"))
    assert err.field == "demand.path"
    assert "trip file not found" in err.expected and str(DATA / "no_such.csv") in err.expected
    err = raises(small_spec(path="nothing-*.csv"))
    assert err.field == "demand.path" and "no trip file matches" in err.expected


@pytest.mark.parametrize("name", ["junk.csv", "junk.parquet"])
def test_unreadable_file_is_an_input_error(tmp_path: Path, name: str) -> None:
    """A file that is not CSV/Parquet names demand.path, the file and the expected kind."""
    path = tmp_path / name
    path.write_bytes(b"\xff\xfe\x00\x01 not a table \x00" * 10)
    err = raises(small_spec(path=str(path)))
    assert err.field == "demand.path" and str(path) in err.expected
    assert ("Parquet" if name.endswith("parquet") else "CSV") in err.expected


def test_missing_column_lists_the_files_columns() -> None:
    """A named column the file lacks names demand.columns.<key> and lists the real columns."""
    err = raises(small_spec(columns={**SMALL_COLUMNS, "pickup_lat": "lat", "trip_seconds": "x"}))
    assert [f for f, _ in err.problems] == [
        "demand.columns.pickup_lat",
        "demand.columns.trip_seconds",
    ]
    assert "no column 'lat'" in err.expected and "small_trips.csv" in err.expected
    assert "start, plon, plat, dlon, dlat, secs" in err.expected


def test_unparsable_times_name_the_format_and_an_example() -> None:
    """Times in another format than configured: demand.time_format, the format, an example."""
    spec = ReplayDemandSpec(
        model="replay",
        path="uber_nyc_sample.csv",
        columns=UBER_COLUMNS,
        time_format="%m/%d/%Y %H:%M:%S",
        destinations="sampled",
    )
    err = raises(spec, LonLatGrid(*NYC_BOX, spacing_m=250))
    assert err.field == "demand.time_format"
    assert "'%m/%d/%Y %H:%M:%S'" in err.expected and "uber_nyc_sample.csv" in err.expected
    assert "300 of 300 values do not parse, e.g. '2014/4/" in err.expected
    err = raises(small_spec(time_format="unix"))
    assert err.field == "demand.time_format" and "unix seconds" in err.expected


def test_unix_milliseconds_are_refused(tmp_path: Path) -> None:
    """Unix times in milliseconds are an error that says seconds were expected."""
    df = pd.read_csv(DATA / "small_trips.csv").iloc[[0, 1, 3]]
    df["start"] = [1709280300000, 1709280300000, 1709284200000]
    df.to_csv(tmp_path / "ms.csv", index=False)
    err = raises(small_spec(path=str(tmp_path / "ms.csv"), time_format="unix"))
    assert err.field == "demand.time_format" and "milliseconds" in err.expected


def test_zero_trips_says_which_filter_dropped_what() -> None:
    """A window without trips is an error giving every filter's count."""
    err = raises(small_spec(), start_s=12 * H, horizon_s=H)
    assert err.field == "demand" and "small_trips.csv" in err.expected
    assert "12 rows read" in err.expected
    assert "2 with a missing or unparsable time or coordinate" in err.expected
    assert "2 outside the city's area" in err.expected
    assert "8 outside the simulated time window" in err.expected


def test_city_without_geography_is_an_input_error() -> None:
    """Lon/lat trips on a synthetic space are refused with a reason."""
    err = raises(small_spec(), NoGeography(*SMALL_BOX))
    assert err.field == "demand.model" and "no geography" in err.expected


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"columns": {"pickup_time": "t", "pickup_lon": "x", "pickup_lat": "y"}},
            "needs columns.dropoff_lon",
        ),
        ({"align": "shift", "days": 3}, "days applies"),
        ({"time_shift_s": 60.0}, "time_shift_s applies"),
        ({"time_format": "dd.mm.yyyy"}, "strftime format"),
        ({"start_date": "2024-3-1"}, "YYYY-MM-DD"),
        ({"start_date": "2024-03-02", "end_date": "2024-03-01"}, "before start_date"),
        ({"sample": 1.5}, "less than or equal"),
        ({"boost": 0.5}, "greater than or equal"),
    ],
)
def test_spec_validation(kw: dict[str, Any], message: str) -> None:
    """Inconsistent replay tables fail validation with a clear message."""
    with pytest.raises(ValidationError, match=message):
        small_spec(**kw)


# --- the real files --------------------------------------------------------------------------


def test_chicago_sample_fixture_replays_offline() -> None:
    """The 400-row Chicago sample replays a whole day and its counts add up."""
    spec = ReplayDemandSpec(model="replay", path="chicago_taxi_sample.csv", columns=CHICAGO_COLUMNS)
    trips, stats = replay(spec, LonLatGrid(*CHICAGO_BOX, spacing_m=250), 0.0, 86400.0)
    assert stats["rows_read"] == 400 and stats["dropped_outside_window"] == 0
    assert stats["records_kept"] == len(trips) > 350
    assert np.nanmedian(trips.recorded_trip_s) > 0
    assert_stats_add_up(stats)


def test_chicago_file_replay_in_a_box(shared_data: Path) -> None:
    """The whole Chicago file: only rows without four coordinates are dropped from a box
    covering the city; an average day (days = "auto": 1421 dates) is about 10 trips."""
    spec = ReplayDemandSpec(
        model="replay", path="chicago-taxi-tfx/chicago_taxi_tfx_simple.csv", columns=CHICAGO_COLUMNS
    )
    box = LonLatGrid(*CHICAGO_BOX, spacing_m=250)
    trips, stats = replay(spec, box, 0.0, 86400.0, base_dir=shared_data)
    assert stats["rows_read"] == 15_002 and stats["dropped_missing"] == 483
    assert stats["dropped_outside_area"] == 0 and len(trips) == 14_519
    assert_stats_add_up(stats)
    avg, st = replay(
        spec.model_copy(update={"days": "auto"}), box, 0.0, 86400.0, base_dir=shared_data
    )
    assert st["days"] == 1421 and 0 < len(avg) < 30


def test_chicago_file_on_the_chicago_osm_extract(shared_data: Path, cache_dir: Path) -> None:
    """On the small Chicago OSM extract only the few trips inside it survive, and the stats
    say so."""
    city = OsmCity(osm=str(shared_data / "chicago-osm-graphdecomposition" / "chicago.osm"))
    space = load_city(city, base_dir=shared_data, source="test", cache_dir=cache_dir)
    spec = ReplayDemandSpec(
        model="replay", path="chicago-taxi-tfx/chicago_taxi_tfx_simple.csv", columns=CHICAGO_COLUMNS
    )
    trips, stats = replay(spec, space, 0.0, 86400.0, base_dir=shared_data)
    assert stats["dropped_outside_area"] > 0.9 * stats["rows_read"]
    assert 0 < len(trips) < 500
    assert_stats_add_up(stats)


def test_nyc_uber_replay_with_sampled_destinations(shared_data: Path) -> None:
    """Six months of NYC Uber pickups, 07:00-11:00 of an average day at 10x load."""
    spec = ReplayDemandSpec(
        model="replay",
        path="uber-nyc-2014-pickups/uber-raw-data-*.csv",
        columns=UBER_COLUMNS,
        time_format=UBER_FORMAT,
        destinations="sampled",
        days="auto",
        boost=10,
    )
    trips, stats = replay(
        spec, LonLatGrid(*NYC_BOX, spacing_m=250), 7 * H, 4 * H, base_dir=shared_data
    )
    assert stats["rows_read"] == 393_210 and stats["dropped_missing"] == 0
    assert stats["days"] == 183
    assert 0.01 < stats["dropped_outside_area"] / stats["rows_read"] < 0.05
    in_window = stats["records_kept"] + stats["dropped_thinned"]
    assert len(trips) == pytest.approx(in_window * 10 / 183, rel=0.1)
    assert (trips.pickup_node != trips.dropoff_node).all()
    assert_stats_add_up(stats)


def _small_frame() -> pd.DataFrame:
    return pd.read_csv(DATA / "small_trips.csv", dtype={"start": str})


def test_parquet_content_is_sniffed_whatever_the_suffix(tmp_path: Path) -> None:
    """A Parquet file named ``.parq`` (or with no suffix) is read as Parquet, not CSV."""
    df = _small_frame()
    for name in ("trips.parq", "trips"):
        df.to_parquet(tmp_path / name)
        rec = read_trip_records(small_spec(path=name), base_dir=tmp_path, source=SOURCE)
        assert rec.stats["rows_read"] == len(df)


def test_duration_unit_minutes_is_converted_to_seconds(tmp_path: Path) -> None:
    """duration_unit = "min" multiplies the recorded durations by 60."""
    df = _small_frame()
    secs = read_trip_records(small_spec(), base_dir=DATA, source=SOURCE).trip_s
    df["secs"] = df["secs"] / 60.0
    df.to_csv(tmp_path / "mins.csv", index=False)
    spec = small_spec(path="mins.csv", duration_unit="min")
    mins = read_trip_records(spec, base_dir=tmp_path, source=SOURCE).trip_s
    np.testing.assert_allclose(mins, secs)


def test_time_from_date_and_hour_columns(tmp_path: Path) -> None:
    """time_format = "hour" builds each time from a date column plus an hour-of-day column."""
    df = pd.DataFrame(
        {
            "day": ["2024-03-01", "2024-03-02", "2024-03-02"],
            "hour": [7, 23, 0.5],
            "plon": [10.01, 10.02, 10.03],
            "plat": [50.01, 50.02, 50.03],
        }
    )
    df.to_csv(tmp_path / "hours.csv", index=False)
    cols = {"pickup_time": "hour", "pickup_date": "day", "pickup_lon": "plon", "pickup_lat": "plat"}
    spec = small_spec(path="hours.csv", columns=cols, time_format="hour", destinations="sampled")
    rec = read_trip_records(spec, base_dir=tmp_path, source=SOURCE)
    want = [pd.Timestamp("2024-03-01 07:00"), pd.Timestamp("2024-03-02 23:00")]
    want.append(pd.Timestamp("2024-03-02 00:30"))
    np.testing.assert_allclose(rec.t, [(w - pd.Timestamp(0)).total_seconds() for w in want])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"time_format": "hour"}, "needs columns.pickup_date"),
        ({"columns": {**SMALL_COLUMNS, "pickup_date": "day"}}, "needs columns.pickup_date"),
        ({"duration_unit": "minutes"}, "duration_unit"),
        ({"area": "hull"}, "area"),
    ],
)
def test_bad_time_and_unit_options_are_rejected(kw: dict[str, Any], match: str) -> None:
    """The new time, unit and area options reject bad values with the field's name."""
    with pytest.raises(ValidationError, match=match):
        small_spec(**kw)


def test_hours_out_of_range_are_an_input_error(tmp_path: Path) -> None:
    """An hour column holding something other than hours of the day is an InputError."""
    pd.DataFrame({"day": ["2024-03-01"], "hour": [1400], "plon": [10.01], "plat": [50.01]}).to_csv(
        tmp_path / "h.csv", index=False
    )
    cols = {"pickup_time": "hour", "pickup_date": "day", "pickup_lon": "plon", "pickup_lat": "plat"}
    spec = small_spec(path="h.csv", columns=cols, time_format="hour", destinations="sampled")
    with pytest.raises(InputError, match=r"hours of the day in \[0, 24\)"):
        read_trip_records(spec, base_dir=tmp_path, source=SOURCE)


def test_hours_read_as_unix_seconds_warn_loudly(tmp_path: Path) -> None:
    """Hours of the day taken as unix seconds (all times within 23 s) raise a warning."""
    n = 200
    pd.DataFrame(
        {
            "pick_hour": np.arange(n) % 24,
            "plon": np.full(n, 10.01),
            "plat": np.full(n, 50.01),
            "secs": np.full(n, 600.0),
        }
    ).to_csv(tmp_path / "h.csv", index=False)
    cols = {"pickup_time": "pick_hour", "pickup_lon": "plon", "pickup_lat": "plat"}
    spec = small_spec(
        path="h.csv",
        columns={**cols, "trip_seconds": "secs"},
        time_format="unix",
        destinations="sampled",
    )
    with pytest.warns(ImplausibleTripsWarning, match="within 23 s"):
        read_trip_records(spec, base_dir=tmp_path, source=SOURCE)


def test_minutes_read_as_seconds_warn_loudly(tmp_path: Path) -> None:
    """Durations in minutes taken as seconds (median ride of 12 s) raise a warning."""
    n = 200
    pd.DataFrame(
        {
            "t": 1.7e9 + 600.0 * np.arange(n),
            "plon": np.full(n, 10.01),
            "plat": np.full(n, 50.01),
            "mins": np.full(n, 12.0),
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    cols = {"pickup_time": "t", "pickup_lon": "plon", "pickup_lat": "plat", "trip_seconds": "mins"}
    spec = small_spec(path="m.csv", columns=cols, time_format="unix", destinations="sampled")
    with pytest.warns(ImplausibleTripsWarning, match="median recorded ride lasts 12 s"):
        read_trip_records(spec, base_dir=tmp_path, source=SOURCE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_trip_records(
            spec.model_copy(update={"duration_unit": "min"}), base_dir=tmp_path, source=SOURCE
        )


def test_area_inside_drops_ends_outside_the_network(tmp_path: Path) -> None:
    """area = "inside" drops a trip ending 700 m outside the network that area = "snap"
    admits (within max_snap_m of its bounds)."""
    df = _small_frame()
    df.loc[0, "dlon"] = 10.11  # about 700 m east of the box's edge
    df.to_csv(tmp_path / "t.csv", index=False)
    snap, s1 = replay(small_spec(path="t.csv", max_snap_m=1000), base_dir=tmp_path)
    inside, s2 = replay(small_spec(path="t.csv", max_snap_m=1000, area="inside"), base_dir=tmp_path)
    assert s2["dropped_outside_area"] == s1["dropped_outside_area"] + 1
    assert len(inside) == len(snap) - 1

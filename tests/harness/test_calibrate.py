"""ridesim calibrate: recovery of a hidden travel model, profiles, bad input, real trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cities import load_city
from cities.spec import OsmCity
from cities.travel import DAY_TYPES, cells_of, day_number
from cli import main
from core.clock import DAY
from core.errors import InputError
from harness.calibrate import calibrate, read_profile, resolve_travel, write_profile
from harness.run import run_scenario
from harness.scenario import load_scenario, parse_scenario
from sim.behaviour import DayTypeCongestion, TravelSpec
from tests.cities.conftest import write_osm

HOURS = np.arange(24)
WEEKDAY = 1.4 + 1.0 * np.exp(-(((HOURS - 8) / 1.5) ** 2)) + 0.8 * np.exp(-(((HOURS - 17) / 2) ** 2))
TRUTH = np.vstack([WEEKDAY, 1 + 0.5 * (WEEKDAY - 1), 1 + 0.25 * (WEEKDAY - 1)])
ELASTICITY = -0.2
COLUMNS = {
    "pickup_time": "t",
    "pickup_lon": "plon",
    "pickup_lat": "plat",
    "dropoff_lon": "dlon",
    "dropoff_lat": "dlat",
    "trip_seconds": "secs",
}


def grid_city(path: Path, n: int = 14, step: float = 0.003) -> Path:
    """An n x n grid of two-way residential streets near (10 E, 50 N)."""
    nodes = {i * n + j + 1: (10.0 + j * step, 50.0 + i * step) for i in range(n) for j in range(n)}
    ways = []
    for i in range(n):
        ways.append((10_000 + i, [i * n + j + 1 for j in range(n)], {"highway": "residential"}))
        ways.append((20_000 + i, [j * n + i + 1 for j in range(n)], {"highway": "residential"}))
    return write_osm(path, nodes, ways)


def hidden_model_trips(
    folder: Path, cache_dir: Path, n: int = 20_000, seed: int = 3
) -> tuple[Path, np.ndarray]:
    """A trip file on the grid city drawn from TRUTH x (ff / ref) ** ELASTICITY x 20% lognormal
    noise over four weeks from Monday 2024-03-04, 2% of them recorded as 10-20 hours. Returns
    the scenario path and the trips' reference free-flow time."""
    osm = grid_city(folder / "grid.osm")
    space = load_city(OsmCity(osm=str(osm)), base_dir=folder, source="test", cache_dir=cache_dir)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, space.n_nodes, n)
    b = rng.integers(0, space.n_nodes, n)
    keep = a != b
    a, b = a[keep], b[keep]
    ff = space.travel_time(a, b)
    clock = day_number("2024-03-04") * DAY + rng.uniform(0, 28 * DAY, a.shape[0])
    lo, hi = np.percentile(ff, [1, 99])
    ref = float(np.exp(np.median(np.log(np.clip(ff, lo, hi)))))
    rec = ff * TRUTH.ravel()[cells_of(clock)] * (np.clip(ff, lo, hi) / ref) ** ELASTICITY
    rec *= np.exp(rng.normal(0, 0.2, a.shape[0]))
    bad = rng.random(a.shape[0]) < 0.02
    rec[bad] = rng.uniform(10, 20, bad.sum()) * 3600
    ll = space.node_lonlat
    pd.DataFrame(
        {
            "t": clock,
            "plon": ll[a, 0],
            "plat": ll[a, 1],
            "dlon": ll[b, 0],
            "dlat": ll[b, 1],
            "secs": np.round(rec),
        }
    ).to_csv(folder / "trips.csv", index=False)
    scenario = folder / "replay.toml"
    scenario.write_text(
        "\n".join(
            [
                'name = "hidden"',
                "seed = 1",
                '[city]\nosm = "grid.osm"',
                '[time]\nstart = "00:00"\nduration_h = 24',
                '[demand]\nmodel = "replay"\npath = "trips.csv"\nalign = "shift"',
                "columns = " + json.dumps(COLUMNS).replace('":', '" =').replace("{", "{ "),
                "[fleet]\nsize = 5",
            ]
        )
        + "\n"
    )
    return scenario, ref


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """The hidden-model scenario, its cache and its calibration on the first three weeks."""
    folder = tmp_path_factory.mktemp("hidden")
    cache = tmp_path_factory.mktemp("cache")
    scenario_path, _ = hidden_model_trips(folder, cache)
    scenario = load_scenario(scenario_path)
    cal = calibrate(
        scenario,
        source=str(scenario_path),
        base_dir=folder,
        date_from="2024-03-04",
        date_until="2024-03-24",
        min_s=1.0,
        cache_dir=cache,
    )
    return scenario_path, cache, cal


def test_calibration_recovers_the_hidden_model(hidden: tuple[Path, Path, Any]) -> None:
    """Factors in cells with 50+ trips within 10% of the hidden ones (median within 4%), the
    length elasticity within 0.05, and the 10-20 h records excluded, not fitted."""
    _, _, cal = hidden
    fit = cal.fit
    well = fit.trips_per_cell >= 50
    err = np.abs(fit.table / TRUTH - 1)[well]
    assert well.sum() > 60 and err.max() < 0.10 and np.median(err) < 0.04
    assert cal.figures["length_term"] and abs(fit.length_elasticity - ELASTICITY) < 0.05
    assert cal.figures["dropped"]["recorded_over_max"] > 0


def test_held_out_weeks_match_as_well_as_the_noise_allows(hidden: tuple[Path, Path, Any]) -> None:
    """On the held-out fourth week the median abs error is near the noise's own (13.5% for
    20% lognormal noise) and far below free flow's; Spearman is high."""
    _, _, cal = hidden
    held = cal.figures["held_out"]
    assert "2024-03-04..2024-03-24" in cal.figures["split"]
    assert held["model"]["trips"] > 3000
    assert held["model"]["median_abs_pct_error"] < 16.0
    assert held["free_flow"]["median_abs_pct_error"] > 25.0
    assert held["model"]["spearman"] > 0.9
    assert abs(held["model"]["bias_pct"]) < 3.0


def test_profile_round_trips_into_the_travel_table(
    hidden: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    """write_profile then [travel] profile = ...: the run's TravelSpec holds the fitted model
    and the run hashes the profile as an input."""
    _, _, cal = hidden
    write_profile(tmp_path / "travel.toml", cal)
    assert set(read_profile(tmp_path / "travel.toml", "t")) >= {"congestion", "length_ref_s"}
    spec = TravelSpec(profile="travel.toml", start_date="2024-03-25", actual_noise_cv=0.1)
    travel, entry = resolve_travel(spec, base_dir=tmp_path, source="s.toml")
    assert isinstance(travel.congestion, DayTypeCongestion) and travel.actual_noise_cv == 0.1
    np.testing.assert_allclose(travel.congestion.table(), cal.fit.table, atol=1e-4)
    assert travel.length_elasticity == pytest.approx(cal.fit.length_elasticity)
    assert entry is not None and len(entry["sha256"]) == 64
    for name in DAY_TYPES:
        assert len(getattr(travel.congestion, name)) == 24


def test_cli_calibrate_writes_profile_figures_and_figure(
    hidden: tuple[Path, Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints the split, drops and errors and writes three files."""
    scenario_path, cache, _ = hidden
    out = tmp_path / "travel.toml"
    argv = ["calibrate", str(scenario_path), "--out", str(out), "--until", "2024-03-24"]
    assert main([*argv, "--cache", str(cache), "--min-s", "1"]) == 0
    text = capsys.readouterr().out
    assert "held_out     model" in text and "recorded over max" in text
    assert out.is_file() and out.with_suffix(".png").is_file()
    figures = json.loads(out.with_suffix(".fit.json").read_text())
    assert figures["held_out"]["model"]["median_abs_pct_error"] < 16.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from", "2024-3-1"], "expected a date YYYY-MM-DD"),
        (["--from", "2024-03-10", "--until", "2024-03-01"], "is before --from"),
        (["--from", "2030-01-01"], "comparable trips on the fit dates"),
    ],
)
def test_cli_calibrate_bad_dates_exit_2(
    hidden: tuple[Path, Path, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    """Bad --from/--until print one error line and exit 2."""
    scenario_path, cache, _ = hidden
    argv = ["calibrate", str(scenario_path), "--out", str(tmp_path / "t.toml"), "--cache"]
    assert main([*argv, str(cache), *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_calibrate_bad_seconds_exit_2(tmp_path: Path) -> None:
    """--min-s must be a positive number of seconds."""
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "x.toml", "--out", str(tmp_path / "t.toml"), "--min-s", "-3"])
    assert exc.value.code == 2


def test_calibrate_needs_a_replay_with_durations(tmp_path: Path) -> None:
    """A scenario without recorded durations cannot be calibrated."""
    scenario = parse_scenario(
        {
            "name": "g",
            "seed": 1,
            "city": {"kind": "grid", "rows": 3, "cols": 3, "block_m": 100, "speed_kmh": 30},
            "time": {"duration_h": 1},
            "demand": {"requests_per_h": 10},
            "fleet": {"size": 1},
        },
        "g.toml",
    )
    with pytest.raises(InputError, match="columns.trip_seconds"):
        calibrate(scenario, source="g.toml", base_dir=tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "travel profile not found"),
        ("[travel\n", "is not valid TOML"),
        ("[travel]\nlength_ref_s = 3\n", "no [travel.congestion] table"),
        ("[travel]\nwho = 1\n[travel.congestion]\nweekday = []\n", "unknown [travel] keys"),
        (
            "[travel.congestion]\nweekday = [1.0]\nsaturday = [1.0]\nsunday = [1.0]\n",
            "must have 24 hourly factors",
        ),
    ],
)
def test_bad_profile_is_an_input_error(tmp_path: Path, content: str | None, message: str) -> None:
    """A missing, broken or foreign profile names the scenario, the field and the problem."""
    if content is not None:
        (tmp_path / "p.toml").write_text(content)
    with pytest.raises(InputError, match="travel.profile") as exc:
        resolve_travel(TravelSpec(profile="p.toml"), base_dir=tmp_path, source="s.toml")
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("travel", "message"),
    [
        ({"profile": "p.toml", "congestion": [1.0] * 24}, "congestion or profile, not both"),
        ({"start_date": "2024-13-01"}, "must be a date YYYY-MM-DD"),
        ({"holidays": ["2024-12-25", "25.12.2024"]}, "must be a date YYYY-MM-DD"),
        ({"congestion": {"weekday": [1.0] * 24, "saturday": [1.0] * 24}}, "sunday"),
        ({"congestion": [1.0] * 23}, "24 hourly factors"),
        ({"length_elasticity": 2.0}, "must be <= 1"),
        ({"length_range_s": [300.0, 100.0]}, "low <= high"),
    ],
)
def test_bad_travel_table_names_the_field(travel: dict[str, Any], message: str) -> None:
    """Bad [travel] values are scenario errors naming travel.<field>."""
    data = {
        "name": "g",
        "seed": 1,
        "city": {"kind": "grid", "rows": 3, "cols": 3, "block_m": 100, "speed_kmh": 30},
        "time": {"duration_h": 1},
        "demand": {"requests_per_h": 10},
        "fleet": {"size": 1},
        "travel": travel,
    }
    with pytest.raises(InputError, match="travel") as exc:
        parse_scenario(data, "g.toml")
    assert message in str(exc.value)


def test_chicago_trips_calibrate_and_report_honestly(shared_data: Path, cache_dir: Path) -> None:
    """The real Chicago trips on the Logan Square extract: few trips survive (tract centroids,
    a 2 km extract), every dropped trip is counted, and the model beats free flow on them."""
    path = Path(__file__).resolve().parents[2] / "scenarios" / "chicago_replay.toml"
    scenario = load_scenario(path)
    cal = calibrate(scenario, source=str(path), base_dir=path.parent, cache_dir=cache_dir)
    f = cal.figures
    dropped = sum(f["dropped"].values())
    assert f["rows_read"] == dropped + f["comparable_trips"]
    assert f["dropped"]["same_node"] > 0 and f["dropped"]["outside_area"] > 10_000
    fitted = f["fitted"]
    assert fitted["model"]["median_abs_pct_error"] < fitted["free_flow"]["median_abs_pct_error"]


FIDELITY = {
    "riders": {
        "choice": "always",
        "patience": "fixed",
        "patience_s": 86400,
        "cancel_after_match": {"base": 0, "per_min": 0},
    },
    "drivers": {"accept": "always"},
}


def test_a_replay_with_the_profile_reproduces_recorded_rides(
    hidden: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    """A fidelity replay of a held-out day (shift-aligned, so the run knows it is a Monday)
    with the written profile: the run's fidelity section is near the noise's 13.5% median
    error and beats the same replay in free flow by far."""
    scenario_path, cache, cal = hidden
    write_profile(scenario_path.parent / "fit.toml", cal)

    def replay(travel: dict[str, Any]) -> dict[str, Any]:
        overrides = {
            "time.start": "06:00",
            "time.duration_h": 12,
            "demand.start_date": "2024-03-25",
            "demand.end_date": "2024-03-25",
            "demand.area": "inside",
            "fleet.size": 300,
            **{f"{k}.{f}": v for k, t in FIDELITY.items() for f, v in t.items()},
            **{f"travel.{k}": v for k, v in travel.items()},
        }
        scenario = load_scenario(scenario_path, overrides=overrides)
        result = run_scenario(
            scenario,
            source=str(scenario_path),
            base_dir=scenario_path.parent,
            out=tmp_path / "runs",
            cache_dir=cache,
        )
        return result.metrics["replay"]

    fitted = replay({"profile": "fit.toml"})
    free = replay({})
    assert fitted["compared"] > 300
    assert fitted["excluded"]["recorded_over_max"] >= 0 and "same_node" in fitted["excluded"]
    assert fitted["median_abs_pct_error"] < 18.0 < 30.0 < free["median_abs_pct_error"]
    assert fitted["spearman"] > 0.85 and abs(fitted["bias_pct"]) < 6.0

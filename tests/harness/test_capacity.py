"""Capacity planning: the cost model and its fit, size scaling, the plan per city (shards,
cores, headroom), its monotonicity, a synthetic matcher with known cost, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import main
from harness.capacity import (
    City,
    SizeModel,
    Target,
    fit_cost,
    fit_model,
    growth_headroom,
    model_from_json,
    plan_capacity,
    plan_target,
    read_cities,
    shards_needed,
)
from tests.harness.gate_matchers import KnownCost

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "scenarios" / "grid_small.toml"

TRUE = KnownCost(base_ms=2.0, per_request_ms=0.05, per_driver_ms=0.002)
SIZE_R = (3.0, 0.02)  # open requests per call = 3 + 0.02 x shard requests per hour
SIZE_D = (5.0, 0.1)  # candidate drivers per call
NOISE = 0.02  # log-normal sigma of the wall time around the known cost
IMBALANCE = 1.1  # the worst of two shards gets 55% of the requests
WINDOW_S = 10.0


def synthetic_grid(loads: list[float], shard_counts: list[int], base_rate: float = 2000.0):
    """A grid measured on a matcher whose cost and call sizes are known exactly."""
    rng = np.random.default_rng(7)
    grid, calls = [], {}
    for load in loads:
        for s in shard_counts:
            rid = f"L{load:g}S{s}"
            shares = (
                [1.0] if s == 1 else [IMBALANCE / s] + [(1 - IMBALANCE / s) / (s - 1)] * (s - 1)
            )
            rows = []
            for shard, share in enumerate(shares):
                rate = base_rate * load * share
                r = round(SIZE_R[0] + SIZE_R[1] * rate)
                d = round(SIZE_D[0] + SIZE_D[1] * rate)
                wall = TRUE.cost_ms(r, d) * np.exp(rng.normal(0.0, NOISE, 360))
                cols = {"batch_id": np.arange(360), "shard_id": shard, "n_requests": r,
                        "n_drivers": d, "wall_ms": wall}  # fmt: skip
                rows.append(pd.DataFrame(cols))
            calls[rid] = pd.concat(rows, ignore_index=True)
            grid.append({"run_id": rid, "load": load, "shards": s,
                         "requests_per_h": base_rate * load, "completed_share": 0.9 - 0.01 * s,
                         "pickup_wait_mean_s": 100.0 + 5 * s})  # fmt: skip
    return pd.DataFrame(grid), calls


def true_shards(rate: float, target: Target) -> int:
    """The known answer: fewest shards meeting the SLO under the true cost and size law."""
    budget = target.budget_fraction * WINDOW_S * 1000.0
    tail = math.exp(2.326 * NOISE)  # p99 of the log-normal noise
    for s in range(1, 5000):
        lam = (1.0 if s == 1 else IMBALANCE) * rate / s
        r, d = SIZE_R[0] + SIZE_R[1] * lam, SIZE_D[0] + SIZE_D[1] * lam
        if tail * TRUE.cost_ms(r, d) <= budget and TRUE.cost_ms(r, d) / (1000 * WINDOW_S) <= (
            target.max_utilisation
        ):
            return s
    raise AssertionError("no answer")


@pytest.fixture(scope="module")
def synthetic():
    grid, calls = synthetic_grid([1, 2, 4, 8], [1, 2])
    return grid, calls, fit_model("known", WINDOW_S, grid, lambda rid: calls[rid])


def test_cost_fit_recovers_a_known_linear_cost(synthetic) -> None:
    """Calls costing exactly 2 + 0.05 R + 0.002 D ms (2% noise): the linear model is chosen
    and its coefficients come back within 5%; both models report their fit quality."""
    _, _, model = synthetic
    assert model.cost.kind == "linear"
    r = np.array([5.0, 50.0, 500.0])
    d = np.array([10.0, 200.0, 2000.0])
    truth = TRUE.cost_ms(r, d)
    assert np.allclose(model.cost.predict(r, d), truth, rtol=0.05)
    for q in model.alternatives.values():
        assert {"r2_log", "median_rel_err", "p90_rel_err", "holdout_p99_median_rel_err"} <= set(q)
    assert model.alternatives["linear"]["median_rel_err"] < 0.03
    # measured from the requests each shard saw (sizes are whole numbers): within 1%
    assert model.sizes.worst_imbalance(2) == pytest.approx(IMBALANCE, rel=0.01)
    assert model.sizes.worst_imbalance(16) == model.sizes.worst_imbalance(2)  # unmeasured


def test_model_predicts_held_out_grid_points_within_10_percent(synthetic) -> None:
    """Leave-one-grid-point-out: the predicted worst-shard p99 and mean per batch of every
    held-out point (including the extremes, extrapolated) are within 10% of the measured."""
    _, _, model = synthetic
    ho = model.holdout
    assert len(ho) == 8
    assert ho.p99_rel_err.max() < 0.10 and ho.mean_rel_err.max() < 0.10


def test_synthetic_matcher_with_known_cost_gives_the_known_answer(synthetic) -> None:
    """Far beyond the grid (up to 500x its largest load), the plan's shards equal the answer
    computed from the true cost and size law."""
    _, _, model = synthetic
    target = Target(1.0, [], 1.0, budget_fraction=0.3, max_utilisation=0.6)
    checked = 0
    for rate in (5e3, 5e4, 2e5, 1e6, 8e6):
        want = true_shards(rate, target)
        if true_shards(rate * 0.97, target) != want or true_shards(rate * 1.03, target) != want:
            continue  # too near a boundary for a 3% model error to be decisive
        assert shards_needed(model, rate, target) == want, rate
        checked += 1
    assert checked >= 4


def test_recommendation_is_monotone_in_load(synthetic) -> None:
    """More trips never need fewer shards or cores; more of today's load never leaves more
    headroom."""
    grid, _, model = synthetic
    cities = [City("a", 0.7, 1000, "r1"), City("b", 0.3, 500, "r2")]
    prev_shards, prev_cores = [0, 0], [0, 0]
    for trips in np.geomspace(1e5, 1e9, 25):
        plan, regions = plan_target(model, Target(trips, cities, trips / 10), 1 / 24, grid)
        shards, cores = plan.shards.tolist(), plan.cores.tolist()
        assert all(s >= p for s, p in zip(shards, prev_shards, strict=True))
        assert all(c >= p for c, p in zip(cores, prev_cores, strict=True))
        assert regions.cores.sum() == plan.cores.sum()
        prev_shards, prev_cores = shards, cores
    assert prev_shards[0] > 1  # the range did reach sharding
    target = Target(1.0, [], 1.0)
    rooms = [growth_headroom(model, rate, 4, target) for rate in (1e4, 1e5, 1e6)]
    assert rooms[0] > rooms[1] > rooms[2] > 0
    # headroom is where the SLO breaks: just below it holds, just above it does not
    assert shards_needed(model, 1e5 * rooms[1] * 0.999, target) <= 4
    assert shards_needed(model, 1e5 * rooms[1] * 1.01, target) > 4


def test_fit_needs_calls() -> None:
    """Too few calls to fit is a clear error, not a silent model."""
    calls = pd.DataFrame({"n_requests": [1, 2], "n_drivers": [3, 4], "wall_ms": [1.0, 2.0]})
    with pytest.raises(ValueError, match="too few matcher calls"):
        fit_cost(calls, "linear")


def test_capacity_plan_end_to_end_with_a_known_cost_matcher(tmp_path: Path) -> None:
    """The KnownCost matcher on the grid city: the fitted per-request and base costs are near
    the known ones, a 40 M trips/day target over three cities is planned with shards, cores and
    headroom, and the plan, its CSVs and both figures are written."""
    cities = tmp_path / "cities.csv"
    cities.write_text("city,trip_share,nodes,region\nbig,0.5,30000,eu\nmid,0.3,9000,eu\n"
                      "small,0.2,5000,us\n")  # fmt: skip
    known = "tests.harness.gate_matchers:KnownCost"
    scenario = tmp_path / "known.toml"
    text = GRID.read_text().replace(
        'matcher = "batched_greedy"',
        f'matcher = "{known}"\nparams = {{ base_ms = 2.0, per_request_ms = 1.0 }}',
    )
    scenario.write_text(text.replace("duration_h = 2", "duration_h = 1"))
    out = tmp_path / "plan"
    code = main(["capacity", str(scenario), "--shards", "1,2", "--loads", "1,2", "--out",
                 str(out), "--target-trips-per-day", "40000000", "--cities", str(cities),
                 "--time-to-match-p99-s", "300"])  # fmt: skip
    assert code == 0
    plan = pd.read_csv(out / "capacity_cities.csv")
    assert list(plan.city) == ["big", "mid", "small"]
    assert (plan.shards.astype(int) >= 1).all() and (plan.cores >= 1).all()
    assert plan.shards.astype(int).tolist() == sorted(plan.shards.astype(int), reverse=True)
    assert (plan.headroom_today_x > 1).all()
    assert plan.table_gb.iloc[0] == pytest.approx(4 * 30000**2 / 1e9)
    md = (out / "capacity.md").read_text()
    assert "40,000,000 trips/day over 3 cities" in md and "held-out p99" in md
    assert "rider-facing time to match p99" in md
    for name in ("capacity.html", "capacity.csv", "latency_vs_batch.png", "shards_vs_load.png"):
        assert (out / name).is_file()
    assert "data:image/png;base64," in (out / "capacity.html").read_text()
    grid = pd.read_csv(out / "capacity.csv")
    assert len(grid) == 4 and set(grid.shards) == {1, 2}
    # the known cost: 2 ms + 1 ms per request + 0.01 ms per driver (plus the greedy's own and
    # a shared machine's preemptions): the fitted cost of 18 more requests per call is within
    # 40% of the known 18 ms, and calls are fitted to within 50% (median)
    model = model_from_json(json.loads((out / "capacity_model.json").read_text()))
    truth = KnownCost(base_ms=2.0, per_request_ms=1.0)
    extra = float(model.cost.predict(20, 60) - model.cost.predict(2, 60))
    assert extra == pytest.approx(truth.cost_ms(20, 60) - truth.cost_ms(2, 60), rel=0.4)
    assert model.alternatives[model.cost.kind]["median_rel_err"] < 0.5
    assert model.alternatives[model.cost.kind]["holdout_p99_median_rel_err"] < 1.0


def test_grid_recommendation_rule(tmp_path: Path) -> None:
    """On the measured grid, a generous budget picks the fewest shards, an impossible one the
    most (flagged as not fitting)."""
    plan = plan_capacity(str(GRID), [1, 2], [1.0], tmp_path, budget_fraction=1.0)
    assert plan.recommendations.recommended_shards.tolist() == [1]
    assert plan.model is not None and plan.model.cost.kind in ("linear", "power")
    strict = plan_capacity(str(GRID), [1, 2], [1.0], tmp_path, budget_fraction=1e-9)
    assert strict.recommendations.recommended_shards.tolist() == [2]
    assert not strict.recommendations.fits_budget.any()


BAD_CITIES = [
    ("name,trip_share,nodes\na,1,10\n", "header: missing column(s) city"),
    ("city,trip_share,nodes\na,x,10\n", "line 2: trip_share: expected a number, got 'x'"),
    ("city,trip_share,nodes\na,-1,10\n", "line 2: trip_share: must be > 0"),
    ("city,trip_share,nodes\na,1,1\n", "line 2: nodes: must be >= 2"),
    ("city,trip_share,nodes\na,0.5,10\nb,0.2,10\n", "trip_share: shares must sum to 1"),
    ("city,trip_share,nodes\na,0.5,10\na,0.5,10\n", "city: city names must be unique"),
    ("city,trip_share,nodes,shards_today\na,1,10,0\n", "line 2: shards_today: must be 1..4096"),
    ("city,trip_share,nodes\n,1,10\n", "line 2: city: expected a city name"),
    ("city,trip_share,nodes\n", "expected a header row and at least one city"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CITIES)
def test_bad_cities_file_names_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    """Each bad cities-table field: InputError naming the file, the line and the field."""
    path = tmp_path / "cities.csv"
    path.write_text(text)
    with pytest.raises(Exception) as info:
        read_cities(path)
    assert type(info.value).__name__ == "InputError"
    assert str(path) in str(info.value) and expected in str(info.value)


BAD_FLAGS = [
    (["--shards", "a"], "--shards: expected comma-separated whole numbers 1..1024"),
    (["--shards", "0,2"], "--shards: expected comma-separated whole numbers 1..1024"),
    (["--loads", "1,x"], "--loads: expected comma-separated numbers > 0"),
    (["--loads", "-1"], "--loads: expected comma-separated numbers > 0"),
    (["--budget-fraction", "1.5"], "--budget-fraction: expected a share in (0, 1]"),
    (["--max-utilisation", "0"], "--max-utilisation: expected a share in (0, 1]"),
    (["--target-trips-per-day", "-5"], "--target-trips-per-day: expected a number > 0"),
    (["--today-trips-per-day", "nan"], "--today-trips-per-day: expected a number > 0"),
    (["--time-to-match-p99-s", "0"], "--time-to-match-p99-s: expected a number > 0"),
    (["--workers", "0"], "--workers: expected a whole number >= 1"),
    (["--target-trips-per-day", "100"], "--cities: give both --target-trips-per-day N and"),
    (["--cities", "c.csv"], "--target-trips-per-day: give both"),
    (["--target-trips-per-day", "100", "--cities", "missing.csv"], "cities file not found"),
]


@pytest.mark.parametrize(("flags", "expected"), BAD_FLAGS)
def test_bad_capacity_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    """Each bad capacity flag: exit 2 with one message naming the flag, before any run."""
    out = tmp_path / "out"
    try:
        code = main(["capacity", str(GRID), "--out", str(out), *flags])
    except SystemExit as exc:  # argparse rejected the value
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert "Traceback" not in err and not out.exists()


def test_immediate_dispatch_scenario_is_refused(tmp_path: Path, capsys) -> None:
    """Capacity needs batches: batch_window_s = 0 exits 2 naming the field."""
    scenario = tmp_path / "immediate.toml"
    scenario.write_text(GRID.read_text().replace("batch_window_s = 10", "batch_window_s = 0"))
    assert main(["capacity", str(scenario), "--out", str(tmp_path / "o")]) == 2
    assert "dispatch.batch_window_s: capacity planning needs a batched scenario" in (
        capsys.readouterr().err
    )


def test_imbalance_between_and_beyond_measured_shard_counts() -> None:
    """Imbalance is interpolated in log(shards) between measured counts and held beyond."""
    sizes = SizeModel((0, 1), (0, 1), (0, 1), (0, 1), {4: 1.5, 16: 4.75})
    assert sizes.worst_imbalance(1) == 1.0
    assert sizes.worst_imbalance(2) == pytest.approx(1.25)
    assert sizes.worst_imbalance(8) == pytest.approx((1.5 + 4.75) / 2)
    assert sizes.worst_imbalance(64) == pytest.approx(4.75)

"""The wild goose chase (Castillo, Knoepfle & Weyl, EC 2017) reproduced by the shipped
scenario family, and the sweep machinery that runs it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import harness.sweep
from harness.sweep import SweepPoint, longest_first, parse_vary, run_sweep, sweep_points

ROOT = Path(__file__).resolve().parents[2]
FIXED = str(ROOT / "scenarios" / "wild_goose_chase.toml")
SURGE = str(ROOT / "scenarios" / "wild_goose_chase_surge.toml")
GRID = str(ROOT / "scenarios" / "grid_small.toml")
MULTIPLIERS = [1, 2, 3, 6, 10]


@pytest.fixture(scope="module")
def curves(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("wgc")
    points = sweep_points([FIXED, SURGE], {"demand.multiplier": MULTIPLIERS})
    return run_sweep(points, out, workers=1)


def curve(table: pd.DataFrame, name: str, col: str) -> pd.Series:
    return table[table.scenario == name].set_index("demand.multiplier")[col]


def test_fixed_price_throughput_falls_past_its_peak(curves: pd.DataFrame) -> None:
    """Without surge, completed trips per hour at 10x demand are below the curve's peak, and
    the mean pickup wait at least doubles from 1x."""
    done = curve(curves, "wild_goose_chase", "completed_per_h")
    wait = curve(curves, "wild_goose_chase", "pickup_wait_mean_s")
    assert done[10] < 0.9 * done.max()
    assert done.idxmax() < 10
    assert wait[10] >= 2 * wait[1]


def test_surge_keeps_throughput_near_its_peak(curves: pd.DataFrame) -> None:
    """With ratio surge, completed trips per hour stay within 10% of their peak from the peak
    on, and beat fixed prices at 10x."""
    done = curve(curves, "wild_goose_chase_surge", "completed_per_h")
    peak_at = done.idxmax()
    assert (done[done.index >= peak_at] >= 0.9 * done.max()).all()
    assert done[10] > curve(curves, "wild_goose_chase", "completed_per_h")[10]


def _same_runs(table: pd.DataFrame, one: Path, other: pd.DataFrame, two: Path) -> None:
    cols = ["run_id", "requests", "completed_per_h", "pickup_wait_mean_s"]
    pd.testing.assert_frame_equal(table[cols], other[cols])
    for run_id in table.run_id:
        for name in ("events.parquet", "metrics.json"):
            assert (one / run_id / name).read_bytes() == (two / run_id / name).read_bytes()


def test_sweep_reuses_done_runs_and_is_worker_independent(tmp_path: Path) -> None:
    """A repeated sweep reuses every run; local worker processes give the same run ids,
    metrics and bytes as running in-process."""
    points = sweep_points([FIXED], parse_vary(["demand.multiplier=1,3"]), seeds=[5])
    inline = run_sweep(points, tmp_path / "a", workers=1)
    again = run_sweep(points, tmp_path / "a", workers=1)
    assert not inline.reused.any() and again.reused.all()
    pooled = run_sweep(points, tmp_path / "b", workers=2)
    assert not pooled.reused.any()
    _same_runs(inline, tmp_path / "a", pooled, tmp_path / "b")


def test_sweep_on_a_dask_scheduler_matches_in_process(tmp_path: Path) -> None:
    """Points sent to a Dask scheduler by address (a real cluster's path) give the same run
    ids, metrics and bytes as running in-process."""
    from distributed import LocalCluster

    points = sweep_points([GRID], parse_vary(["time.duration_h=0.5"]), seeds=[1, 2])
    inline = run_sweep(points, tmp_path / "a", workers=1)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        remote = run_sweep(points, tmp_path / "b", scheduler=cluster.scheduler_address)
    _same_runs(inline, tmp_path / "a", remote, tmp_path / "b")


def _missing_city(folder: Path) -> str:
    """A scenario whose road network file does not exist (found only when the city loads)."""
    bad = folder / "bad.toml"
    bad.write_text(
        'schema_version = 1\nname = "bad"\nseed = 1\n[city]\nosm = "missing.osm"\n'
        '[time]\nstart = "08:00"\nduration_h = 1\n[demand]\nrequests_per_h = 60\n'
        "[fleet]\nsize = 5\n"
    )
    return str(bad)


def test_bad_input_found_in_a_worker_comes_back_as_the_input_error(tmp_path: Path) -> None:
    """A point whose road network file is missing (found only when a worker loads the city)
    fails the sweep with the InputError naming the scenario file and city.osm."""
    from core.errors import InputError

    bad = _missing_city(tmp_path)
    with pytest.raises(InputError) as err:
        run_sweep(sweep_points([bad], {}, seeds=[1, 2]), tmp_path / "s", workers=2)
    assert err.value.source == bad and err.value.field == "city.osm"
    assert "missing.osm" in str(err.value)


def test_an_error_stops_the_runs_in_flight(tmp_path: Path) -> None:
    """When one point fails, the sweep reports it without waiting for a long run on the other
    worker to finish: that run is stopped and leaves no run directory, and no worker lives on."""
    import multiprocessing

    from core.errors import InputError

    before = set(multiprocessing.active_children())
    long = SweepPoint(GRID, {"time.duration_h": 24, "demand.multiplier": 4}, 1)
    points = [long, SweepPoint(_missing_city(tmp_path), {}, 1)]
    with pytest.raises(InputError, match="city.osm"):
        run_sweep(points, tmp_path / "s", workers=2)
    assert [p for p in (tmp_path / "s").glob("*") if (p / "metrics.json").is_file()] == []
    assert set(multiprocessing.active_children()) <= before


def _die(point: object, out: str, cache: str | None) -> dict:
    os._exit(3)  # a worker killed mid-run (the OOM killer, a segfault)


def test_a_worker_that_dies_fails_the_sweep_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a worker process dies mid-run the sweep raises one line saying so (and that
    finished runs are kept), instead of hanging or a pool traceback."""
    monkeypatch.setattr(harness.sweep, "run_point", _die)
    points = sweep_points([GRID], {}, seeds=[1, 2])
    with pytest.raises(
        RuntimeError,
        match=r"worker process failed \(.*terminated abruptly.*\) after 0 of 2 runs.* reuses them",
    ):
        run_sweep(points, tmp_path / "s", workers=2)


def test_points_are_handed_out_longest_first() -> None:
    """Workers take the points with the most expected events first (ties in point order), so
    the largest run does not start last."""
    assert longest_first([0, 1, 2, 3], [10.0, 50.0, 10.0, 20.0]) == [1, 3, 0, 2]
    assert longest_first([0, 2], [1.0, 9.0, 5.0]) == [2, 0]


def test_points_of_one_run_run_once_and_are_reported_per_point(tmp_path: Path) -> None:
    """`demand.multiplier=5,5.0,5` on 2 workers: one run, three rows (the repeats marked
    reused), and the sweep table is written."""
    points = sweep_points([GRID], parse_vary(["demand.multiplier=5,5.0,5"]), seeds=[3])
    seen = []
    table = run_sweep(points, tmp_path / "s", workers=2, on_done=seen.append)
    assert len(table) == 3 and table.run_id.nunique() == 1
    assert table.reused.tolist() == [False, True, True]
    assert len(seen) == 3
    assert (Path(table.attrs["sweep_dir"]) / "sweep.csv").is_file()
    runs = [p for p in (tmp_path / "s").iterdir() if p.is_dir() and p.name != "sweeps"]
    assert [p.name for p in runs] == [table.run_id[0]]


def test_each_sweep_writes_its_table_to_its_own_folder(tmp_path: Path) -> None:
    """Two different sweeps into one output folder keep both tables (named by content, under
    out/sweeps/), while the same sweep again lands in the same folder and reuses its runs."""
    one = sweep_points([GRID], parse_vary(["demand.multiplier=1"]), seeds=[3])
    two = sweep_points([GRID], parse_vary(["demand.multiplier=1,2"]), seeds=[3])
    a = run_sweep(one, tmp_path / "s", workers=1)
    b = run_sweep(two, tmp_path / "s", workers=1)
    again = run_sweep(one, tmp_path / "s", workers=1)
    dir_a, dir_b = Path(a.attrs["sweep_dir"]), Path(b.attrs["sweep_dir"])
    assert dir_a != dir_b and dir_a.parent == dir_b.parent == tmp_path / "s" / "sweeps"
    assert len(pd.read_csv(dir_a / "sweep.csv")) == 1
    assert len(pd.read_csv(dir_b / "sweep.csv")) == 2
    assert Path(again.attrs["sweep_dir"]) == dir_a and bool(again.reused.all())


@pytest.mark.parametrize(
    ("kwargs", "source"),
    [
        ({"workers": 0}, "--workers"),
        ({"workers": -1}, "--workers"),
        ({"scheduler": "tcp://127.0.0.1:1", "connect_timeout_s": 1.0}, "--scheduler"),
    ],
)
def test_bad_sweep_settings_are_input_errors_leaving_nothing(
    tmp_path: Path, kwargs: dict, source: str
) -> None:
    """Zero or negative workers and an unreachable scheduler fail fast with an InputError on
    the flag, and leave no output folder behind."""
    from core.errors import InputError

    points = sweep_points([GRID], {}, seeds=[1])
    with pytest.raises(InputError) as err:
        run_sweep(points, tmp_path / "s", **kwargs)
    assert err.value.source == source
    assert not (tmp_path / "s").exists()


def test_negative_seed_is_an_input_error() -> None:
    """A seed below 0 in a sweep is refused, naming --seeds."""
    from core.errors import InputError

    with pytest.raises(InputError, match="--seeds"):
        sweep_points([GRID], {}, seeds=[-1])


def test_a_heap_frozen_by_the_caller_stays_frozen(tmp_path: Path) -> None:
    """A sweep on local workers freezes the heap only around forking them, and leaves a heap
    the caller froze (as `cli.py run` does) frozen, and an unfrozen one unfrozen."""
    import gc

    points = sweep_points([GRID], parse_vary(["time.duration_h=0.1"]), seeds=[1, 2])
    gc.unfreeze()  # whatever ran before in this process
    run_sweep(points, tmp_path / "a", workers=2)
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        run_sweep(points, tmp_path / "b", workers=2)
        assert gc.get_freeze_count() > 0.9 * frozen  # a few frozen objects may die meanwhile
    finally:
        gc.unfreeze()

"""The wild goose chase (Castillo, Knoepfle & Weyl, EC 2017) reproduced by the shipped
scenario family, and the sweep machinery that runs it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.sweep import parse_vary, run_sweep, sweep_points

ROOT = Path(__file__).resolve().parents[2]
FIXED = str(ROOT / "scenarios" / "wild_goose_chase.toml")
SURGE = str(ROOT / "scenarios" / "wild_goose_chase_surge.toml")
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


def test_sweep_reuses_done_runs_and_is_worker_independent(tmp_path: Path) -> None:
    """A repeated sweep reuses every run; Dask workers give the same run ids and metrics as
    running in-process."""
    points = sweep_points([FIXED], parse_vary(["demand.multiplier=1,3"]), seeds=[5])
    inline = run_sweep(points, tmp_path / "a", workers=1)
    again = run_sweep(points, tmp_path / "a", workers=1)
    assert not inline.reused.any() and again.reused.all()
    dask = run_sweep(points, tmp_path / "b", workers=2)
    cols = ["run_id", "requests", "completed_per_h", "pickup_wait_mean_s"]
    pd.testing.assert_frame_equal(inline[cols], dask[cols])
    for run_id in inline.run_id:
        a = (tmp_path / "a" / run_id / "events.parquet").read_bytes()
        assert a == (tmp_path / "b" / run_id / "events.parquet").read_bytes()

"""The city-day benchmark's command line: bad flags, the skip without data, the shares, and
who supplies the zone bounds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench import bench_city_day
from harness.run import run_scenario
from harness.scenario import load_scenario
from sim.dispatcher import Dispatcher

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("hours", ["0", "-1", "25", "x"])
def test_bad_hours_exit_2(hours: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--hours outside (0, 24] (or not a number) is a usage error: one line, exit 2."""
    with pytest.raises(SystemExit) as e:
        bench_city_day.main(["--hours", hours])
    assert e.value.code == 2
    assert "--hours" in capsys.readouterr().err


def test_skips_with_reason_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Without the Milan extract the benchmark skips (exit 0) and its last line is JSON."""
    assert bench_city_day.main(["--hours", "1", "--data", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    assert figures["benchmark"] == "city_day" and "not found" in figures["skipped"]


def test_timers_add_up_each_wrapped_call() -> None:
    """A wrapped callable's wall and CPU time accumulate under its name (sleeping costs wall
    time, not CPU); results pass through."""
    timers = bench_city_day.Timers()
    slow = timers.wrap("nap", lambda s: (time.sleep(s), s)[1])
    assert slow(0.01) == 0.01 and slow(0.01) == 0.01
    assert timers.seconds["nap"] >= 0.02
    assert 0 <= timers.cpu_seconds["nap"] < timers.seconds["nap"]


def test_cpu_split_adds_up_to_the_run() -> None:
    """The CPU parts add up to the run's CPU, candidate search counted once (it runs inside
    the assignment matcher's timer)."""
    timed = {"assignment_total": 5.0, "candidates": 3.0, "repositioning": 1.0, "event_log": 0.5}
    split = bench_city_day.cpu_split(20.0, timed)
    assert split["assignment"] == 2.0 and split["engine_and_rest"] == 13.5
    assert abs(sum(split.values()) - 20.0) < 1e-12


def test_bounds_come_from_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the default city the snapshots carry the engine's zone bounds: the JSON says so."""
    # Undone after the test: install_bounds replaces Dispatcher.snapshot for the process.
    monkeypatch.setattr(Dispatcher, "snapshot", Dispatcher.snapshot)
    state = {"eta_bounds": "unset"}
    bench_city_day.install_bounds(state)
    path = ROOT / "scenarios" / "default.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 0.05})
    run_scenario(scenario, source=str(path), base_dir=path.parent, out=tmp_path)
    assert state["eta_bounds"] == "engine"

"""The default-run benchmark's command line: bad flags, and the figures its JSON line carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import bench_default_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("repeats", ["0", "-2", "x"])
def test_bad_repeats_exit_2(repeats: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--repeats below 1 (or not a whole number) is a usage error: one line naming it, exit 2."""
    with pytest.raises(SystemExit) as e:
        bench_default_run.main(["--repeats", repeats])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--repeats" in err[-1]


def test_missing_scenario_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --scenario that is not a file is a usage error naming the flag and the path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(SystemExit) as e:
        bench_default_run.main(["--scenario", str(missing)])
    assert e.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--scenario" in last and str(missing) in last


def test_registered_with_a_budget() -> None:
    """`python -m bench default_run` knows the benchmark, and budgets.toml has its wall budget."""
    assert bench_main.BENCHMARKS["default_run"] == ["bench.bench_default_run"]
    from bench.common import load_budget

    assert load_budget("default_run") == {"wall_s_max": 2.5}


def test_json_line_has_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a small scenario, the last line is JSON with median wall/CPU seconds, every sample
    and the load average; nothing is left in the temporary runs folder."""
    text = (ROOT / "scenarios" / "grid_small.toml").read_text()
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(text.replace("duration_h = 2", "duration_h = 0.1"))
    code = bench_default_run.main(["--repeats", "2", "--scenario", str(scenario)])
    assert code in (0, 1)  # the verdict depends on this machine's speed, not checked here
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["benchmark"] == "default_run" and figures["repeats"] == 2
    assert len(figures["walls_s"]) == 2 and len(figures["cpus_s"]) == 2
    assert sorted(figures["walls_s"])[0] <= figures["wall_s"] <= sorted(figures["walls_s"])[1]
    assert sorted(figures["cpus_s"])[0] <= figures["cpu_s"] <= sorted(figures["cpus_s"])[1]
    assert all(c > 0 for c in figures["cpus_s"])  # the CLI's own CPU is counted
    assert {"load_average_before", "load_average_after"} <= figures.keys()
    assert any(line.startswith("  wall_s") and "budget <= 2.5" in line for line in out)
    assert code == (0 if figures["wall_s"] <= 2.5 else 1)


def test_runs_keep_the_bytecode_cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timed runs get this environment less PYTHONDONTWRITEBYTECODE (a user's second run
    reads cached bytecode), and nothing else is dropped."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("RIDESIM_BENCH_PROBE", "kept")
    env = bench_default_run._user_env()
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["RIDESIM_BENCH_PROBE"] == "kept"

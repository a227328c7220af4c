"""The sweep benchmark's command line: bad flags, and the figures its JSON line carries."""

from __future__ import annotations

import json

import pytest

from bench import __main__ as bench_main
from bench import bench_sweep


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--repeats", "0"], "--repeats"),
        (["--repeats", "x"], "--repeats"),
        (["--short-hours", "0"], "--short-hours"),
        (["--long-hours", "-1"], "--long-hours"),
    ],
)
def test_bad_flags_exit_2(flags: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Repeats below 1 and hours that are not positive are usage errors: one line naming the
    flag, exit 2."""
    with pytest.raises(SystemExit) as e:
        bench_sweep.main(flags)
    assert e.value.code == 2
    assert named in capsys.readouterr().err.strip().splitlines()[-1]


def test_registered_with_a_budget() -> None:
    """`python -m bench sweep` knows the benchmark, and budgets.toml has both speed-ups."""
    from bench.common import load_budget

    assert bench_main.BENCHMARKS["sweep"] == ["bench.bench_sweep"]
    assert load_budget("sweep") == {"speedup_short_min": 1.6, "speedup_seconds_min": 1.8}


def test_json_line_has_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """With tiny runs, the last line is JSON with both speed-ups, each sweep's wall and CPU,
    the cores it obtained, the CPU of the runs in workers against serial (each run timed in
    the process that ran it) and the load average."""
    code = bench_sweep.main(["--repeats", "1", "--short-hours", "0.05", "--long-hours", "0.1"])
    assert code in (0, 1)  # the verdict depends on this machine's load, not checked here
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    for label in ("short", "seconds"):
        for sweep in ("serial", "workers2"):
            assert figures[f"{label}_{sweep}_wall_s"] > 0
            assert figures[f"{label}_{sweep}_cpu_s"] > 0
            assert figures[f"{label}_{sweep}_cores"] > 0
        assert figures[f"speedup_{label}"] == pytest.approx(
            figures[f"{label}_serial_wall_s"] / figures[f"{label}_workers2_wall_s"], rel=0.01
        )
        assert figures[f"{label}_run_cpu_ratio"] > 0
        assert figures[f"{label}_workers2_fixed_cpu_s"] > 0  # the pool: forks, pickles, pipes
        assert figures[f"speedup_{label}_cpu_model"] > 0
    assert {"load_average_before", "load_average_after"} <= figures.keys()
    assert any(line.startswith("  speedup_short") and "budget >= 1.6" in line for line in out)

"""The ridepy peer benchmark's command line: bad flags, the skip without ridepy, the ratio."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import bench_ridepy
from bench.common import load_budget


def _interpreter(tmp_path: Path, body: str) -> str:
    # A stand-in for a Python with (or without) ridepy: a script answering the two calls the
    # benchmark makes (the import probe and one run), so the plumbing is checked without
    # building ridepy.
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--requests", "0"], "--requests"),
        (["--repeats", "0"], "--repeats"),
        (["--repeats", "x"], "--repeats"),
        (["--ridepy-python", "/nonexistent/python"], "--ridepy-python"),
    ],
)
def test_bad_flags_exit_2(flags: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad flag is a usage error: one line naming it, exit 2."""
    with pytest.raises(SystemExit) as e:
        bench_ridepy.main(flags)
    assert e.value.code == 2
    assert named in capsys.readouterr().err.strip().splitlines()[-1]


def test_skips_with_reason_without_ridepy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interpreter that cannot import ridepy: a skip line with the reason, exit 0."""
    python = _interpreter(
        tmp_path,
        "print(\"ModuleNotFoundError: No module named 'ridepy'\", file=sys.stderr)\nsys.exit(1)",
    )
    assert bench_ridepy.main(["--ridepy-python", python]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("ridepy: skipped:") and "No module named 'ridepy'" in out[0]
    assert "No module named 'ridepy'" in json.loads(out[-1])["skipped"]


def test_ratio_of_medians_against_the_plane_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --with-plane the plane run is real (300 requests in a fresh interpreter) and the
    ratio is ridepy's median CPU seconds over the plane's, checked against the budget."""
    python = _interpreter(
        tmp_path,
        "if sys.argv[1:2] == ['-c'] and 'import ridepy' in sys.argv[2]:\n"
        "    sys.exit(0)\n"
        'print(\'{"cpu_s": 50.0, "wall_s": 50.5, "events": {"PickupEvent": 3}}\')',
    )
    code = bench_ridepy.main(
        ["--ridepy-python", python, "--requests", "300", "--repeats", "1", "--with-plane"]
    )
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["ridepy_cpu_s"] == 50.0 and figures["ridepy_events"] == {"PickupEvent": 3}
    assert figures["ridepy_requests_per_cpu_s"] == 300 / 50.0
    assert 0 < figures["plane_cpu_s"] < 50.0
    assert figures["plane_over_ridepy"] == pytest.approx(50.0 / figures["plane_cpu_s"])
    assert "[ridepy]" in out and code == (0 if figures["plane_over_ridepy"] >= 20 else 1)
    # The plane's sample is the plane benchmark's figure: the median of its three timed runs.
    assert figures["plane_sample_cpu_s"] == [figures["plane_cpu_s"]]
    (line,) = [s for s in out if s.startswith("  plane  run 0:")]
    runs = [float(x) for x in line.split("median of 3: ")[1].rstrip(")").split(", ")]
    assert len(runs) == bench_ridepy.PLANE_REPEATS == 3
    assert f"{figures['plane_cpu_s']:.2f}" == f"{sorted(runs)[1]:.2f}"


def test_registered_with_a_budget() -> None:
    """`python -m bench ridepy` alternates with the plane run; budgets.toml has the ratio."""
    assert bench_main.BENCHMARKS["ridepy"] == ["bench.bench_ridepy", "--with-plane"]
    assert load_budget("ridepy") == {"plane_over_ridepy_min": 20}

"""The host-speed probe beside the benchmarks, and the nightly runner's verdict lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import common, host


def test_reference_loop_is_timed_in_cpu_seconds() -> None:
    """The loop does its fixed work (the same sum every time) and takes a sane CPU time."""
    assert host._loop() == host._loop() == sum(i * i % 7 for i in range(host.LOOPS))
    t = host.reference_s(samples=3)
    assert 0.001 < t < 5.0


def test_fast_reference_comes_from_the_budgets_file() -> None:
    """A fast host's loop time is read from bench/budgets.toml [host], not from the code."""
    assert host.fast_reference_s() == 0.058


@pytest.mark.parametrize(
    ("before", "after", "slow"),
    [(0.058, 0.060, False), (0.058, 0.072, False), (0.0725, 0.058, True), (0.06, 0.09, True)],
)
def test_slow_spell_is_1_25x_a_fast_host(before: float, after: float, slow: bool) -> None:
    """Either probe at 1.25x the fast host's time or more is a slow spell, and the line
    says so; otherwise it gives the times and the ratio only."""
    assert host.was_slow(before, after, 0.058) is slow
    line = host.describe(before, after, 0.058)
    assert f"{before:.3f} s before, {after:.3f} s after" in line
    assert f"({max(before, after) / 0.058:.2f}x a fast host's 0.058 s)" in line
    assert host.slowdown(before, after, 0.058) == round(max(before, after) / 0.058, 2)
    assert line.endswith(": the host was slow") is slow


@pytest.mark.parametrize(
    ("probes", "tag"), [((0.057, 0.059), ""), ((0.057, 0.090), " (host slow)")]
)
def test_runner_reports_the_host_beside_each_verdict(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    probes: tuple[float, float],
    tag: str,
) -> None:
    """An over-budget benchmark still fails the run (exit 1) whatever the host did; its
    verdict line carries the probes around it, and the summary names a slow host."""
    times = iter(probes)
    monkeypatch.setattr(bench_main, "reference_s", lambda: next(times))
    monkeypatch.setattr(bench_main.subprocess, "call", lambda cmd: 1)
    assert bench_main.main(["plane"]) == 1
    err = capsys.readouterr().err
    assert (
        f"=== plane: exit 1 after 0 s; {host.describe(*probes, host.fast_reference_s())}\n" in err
    )
    assert err.strip().splitlines()[-1] == f"over budget or failed: plane{tag}"


def test_runner_passes_with_the_host_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Benchmarks within budget pass (exit 0), each verdict line with the host's probes."""
    monkeypatch.setattr(bench_main, "reference_s", lambda: 0.058)
    monkeypatch.setattr(bench_main.subprocess, "call", lambda cmd: 0)
    assert bench_main.main(["default_run", "sweep"]) == 0
    err = capsys.readouterr().err
    assert err.count("host reference loop 0.058 s before, 0.058 s after (1.00x") == 2
    assert err.strip().splitlines()[-1] == "over budget or failed: none"


def test_unknown_benchmark_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A name the runner does not know is a usage error: one line naming it, exit 2."""
    assert bench_main.main(["planes"]) == 2
    assert "unknown benchmark(s) ['planes']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("", "missing; expected a positive number of seconds"),
        ("[host]\n", "missing; expected a positive number of seconds"),
        (
            '[host]\nreference_fast_s = "fast"\n',
            "expected a positive number of seconds, got 'fast'",
        ),
        ("[host]\nreference_fast_s = 0\n", "expected a positive number of seconds, got 0"),
        ("[host]\nreference_fast_s = -0.05\n", "got -0.05"),
        ("[host]\nreference_fast_s = true\n", "got True"),
    ],
)
def test_bad_fast_reference_exits_2_before_any_benchmark(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    section: str,
    expected: str,
) -> None:
    """A missing or non-positive [host] reference_fast_s is one line naming the file and the
    field, exit 2, and no benchmark starts."""
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(section + "[plane]\nrequests_per_cpu_s_min = 22_000\n")
    monkeypatch.setattr(common, "BUDGETS", budgets)
    started: list[object] = []
    monkeypatch.setattr(bench_main.subprocess, "call", started.append)
    assert bench_main.main(["plane"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{budgets}: [host] reference_fast_s: ") and line.endswith(expected)
    assert started == []


def test_budgets_file_that_is_not_toml_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A budgets file that does not parse is one line naming it, exit 2, nothing started."""
    budgets = tmp_path / "budgets.toml"
    budgets.write_text("[host\nreference_fast_s = 0.058\n")
    monkeypatch.setattr(common, "BUDGETS", budgets)
    started: list[object] = []
    monkeypatch.setattr(bench_main.subprocess, "call", started.append)
    assert bench_main.main(["plane"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{budgets}: not valid TOML (") and started == []

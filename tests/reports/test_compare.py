"""Run comparison on real runs: columns labelled by what differs, seed groups whose intervals
say how many seeds they rest on and never leave the possible range, input errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_family
from report_helpers import manifest
from test_html_report import external_refs

from core.errors import InputError
from reports.compare import (
    KPIS,
    MIN_SEEDS,
    comparison_dir,
    comparison_tables,
    interval,
    mean_ci95,
    run_labels,
    write_comparison,
)
from reports.run import load_run


@pytest.fixture(scope="module")
def arms(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, Path]:
    """grid_small with its own matcher (seeds 7 and 8) and with the assignment matcher."""
    out = tmp_path_factory.mktemp("compare-runs")
    return {
        "greedy7": run_family("grid_small", out, cache_dir),
        "greedy8": run_family("grid_small", out, cache_dir, seed=8),
        "assignment": run_family(
            "grid_small", out, cache_dir, **{"dispatch.matcher": "assignment"}
        ),
    }


def test_labels_name_what_differs(arms: dict[str, Path], tmp_path: Path) -> None:
    """Two matchers on the same scenario are labelled by matcher, never by the same name."""
    runs = [load_run(arms["greedy7"]), load_run(arms["assignment"])]
    assert run_labels(runs) == ["matcher=batched_greedy", "matcher=assignment"]
    out = write_comparison([arms["greedy7"], arms["assignment"]], tmp_path / "cmp")
    page = out.read_text(encoding="utf-8")
    assert "matcher=batched_greedy (baseline)" in page and "matcher=assignment" in page
    assert "Runs differ in: dispatch.matcher." in page
    assert "Seed group" not in page  # different matchers: no group
    assert page.count('src="data:image/png;base64,') == 1
    assert external_refs(page) == []
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert md.startswith("# Run comparison (2 runs)") and "| match rate |" in md


def test_three_way_labels(arms: dict[str, Path]) -> None:
    """Matcher and seed both differ: each label names both."""
    labels = run_labels([load_run(arms[k]) for k in ("greedy7", "greedy8", "assignment")])
    assert labels == [
        "matcher=batched_greedy, seed=7",
        "matcher=batched_greedy, seed=8",
        "matcher=assignment, seed=7",
    ]


def test_seed_group_intervals_stay_possible(arms: dict[str, Path], tmp_path: Path) -> None:
    """Two seeds form a group flagged as too few; every bound is possible (shares in 0..1,
    times and counts never negative) and each interval says it rests on two seeds."""
    runs = [load_run(arms["greedy7"]), load_run(arms["greedy8"])]
    (group,) = comparison_tables(runs)["seed_groups"]
    assert group["seeds"] == [7, 8]
    checked = 0
    for k, ci in zip(KPIS, group["kpis"], strict=True):
        if ci is None:
            continue
        checked += 1
        assert ci["n"] == 2
        assert ci["low"] <= ci["mean"] <= ci["high"]
        if k.unit == "share":
            assert 0.0 <= ci["low"] and ci["high"] <= 1.0, k.label
        elif k.unit != "signed_s":
            assert ci["low"] >= 0.0, k.label
    assert checked > 10
    page = write_comparison([arms["greedy7"], arms["greedy8"]], tmp_path / "c").read_text()
    assert "Seed group: grid_small (2 seeds)" in page
    assert "Only 2 seeds" in page and f"at least {MIN_SEEDS} seeds" in page


def test_interval_scales() -> None:
    """Shares use the logit scale, positive quantities the log scale, signed ones plain t."""
    share = interval([0.97, 0.995], "share")
    assert share is not None and share["scale"] == "logit" and share["high"] < 1.0
    plain = mean_ci95([0.97, 0.995])
    assert plain is not None and plain[2] > 1.0  # what the plain interval would have said
    pos = interval([5.0, 300.0], "s")
    assert pos is not None and pos["scale"] == "log" and pos["low"] > 0.0
    signed = interval([-3.0, 4.0, 1.0], "signed_s")
    assert signed is not None and signed["scale"] == "plain"
    assert (signed["mean"], signed["low"], signed["high"]) == pytest.approx(
        mean_ci95([-3.0, 4.0, 1.0])
    )
    assert interval([0.5], "share") is None


def test_plain_interval_is_students_t() -> None:
    """mean ± t(0.975, 2)·s/√3, with t from a table."""
    x = [0.80, 0.85, 0.87]
    mean = sum(x) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / 2)
    got = mean_ci95(x)
    assert got is not None
    assert got[1] == pytest.approx(mean - 4.302653 * sd / math.sqrt(3), rel=1e-6)
    assert mean_ci95([1.0]) is None and mean_ci95([2.0, 2.0]) == (2.0, 2.0, 2.0)


def test_comparison_dirs_do_not_collide(tmp_path: Path) -> None:
    """Each set of compared runs gets its own folder, the same one every time."""
    a, b = tmp_path / "runs" / "aaa", tmp_path / "runs" / "bbb"
    assert comparison_dir([a, b], tmp_path) == comparison_dir([a, b], tmp_path)
    assert comparison_dir([a, b], tmp_path) != comparison_dir([b, a], tmp_path)
    assert comparison_dir([a], tmp_path).parent == tmp_path


def test_incomplete_run_dir_is_an_input_error(grid_run: Path, tmp_path: Path) -> None:
    """A run directory without its event log is named in the error, before anything is written."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps(manifest()))
    with pytest.raises(InputError) as err:
        write_comparison([grid_run, broken], tmp_path / "cmp")
    assert str(broken) in str(err.value) and "events.parquet" in str(err.value)
    assert not (tmp_path / "cmp").exists()
    with pytest.raises(InputError, match="not a run directory"):
        write_comparison([tmp_path / "missing"], tmp_path / "cmp")

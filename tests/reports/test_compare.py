"""Run comparison: side-by-side KPIs, seed groups with t confidence intervals, input errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from report_helpers import grid_nodes, manifest, perf_json, synthetic_events, write_run
from test_html_report import external_refs

from core.errors import InputError
from reports.compare import mean_ci95, write_comparison


def test_compare_two_runs(grid_run: Path, osm_run: Path, tmp_path: Path) -> None:
    """Two runs: both labelled, differences shown against the first, files self-contained."""
    out = write_comparison([grid_run, osm_run], tmp_path / "cmp")
    page = out.read_text(encoding="utf-8")
    assert out.name == "compare.html"
    assert "tiny · seed 1 (baseline)" in page and "berlin-am · seed 1" in page
    assert "vs baseline" in page and " pts" in page
    assert "Seed group" not in page  # different scenarios: no group
    assert "wall-clock" in page
    assert page.count('src="data:image/png;base64,') == 1
    assert external_refs(page) == []
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert md.startswith("# Run comparison (2 runs)")
    assert "| match rate |" in md


def test_seed_group_confidence_interval(tmp_path: Path) -> None:
    """Three seeds of one scenario form a group whose interval is mean ± t(0.975, 2)·s/√3."""
    dirs = [
        write_run(
            tmp_path / f"s{s}",
            synthetic_events(s),
            manifest(seed=s),
            grid_nodes(),
            None,
            perf_json(),
        )
        for s in (1, 2, 3)
    ]
    out = write_comparison(dirs, tmp_path / "cmp")
    page = out.read_text(encoding="utf-8")
    assert "Seed group: tiny (3 seeds)" in page
    rates = [json.loads((d / "metrics.json").read_text())["requests"]["match_rate"] for d in dirs]
    mean = sum(rates) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / 2)
    half = 4.302653 * sd / math.sqrt(3)  # t(0.975, df=2) from a table
    got = mean_ci95(rates)
    assert got is not None
    assert got[0] == pytest.approx(mean)
    assert got[1] == pytest.approx(mean - half, rel=1e-6)
    assert got[2] == pytest.approx(mean + half, rel=1e-6)
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "## Seed group: tiny (seeds 1, 2, 3)" in md


def test_ci_needs_two_values() -> None:
    """One value has no confidence interval."""
    assert mean_ci95([1.0]) is None
    assert mean_ci95([2.0, 2.0]) == (2.0, 2.0, 2.0)


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

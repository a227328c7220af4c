"""The nightly gate: an unchanged tree passes its own baseline; a worse or slower matcher fails
with a readable message; the JUnit XML is what CI systems read; bad input exits 2."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xmlschema
from junitparser import Failure, JUnitXml

from cli import main
from harness.check import batch_p99_ms, judge_baseline, judge_perf, run_check
from harness.suite import BaselineRule, PerfRule, is_suite, load_suite

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "nightly" / "smoke.toml"
GRID = ROOT / "scenarios" / "grid_small.toml"
XSD = Path(__file__).with_name("junit.xsd")
WORSE = "tests.harness.gate_matchers:SkipEveryOtherBatch"
SLOWER = "tests.harness.gate_matchers:SlowMatcher"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_suite(path: Path, entries: list[dict[str, Any]], **top: Any) -> Path:
    """A suite file from plain data (top-level keys, then one [[scenario]] per entry)."""
    lines = [f"{k} = {_toml(v)}" for k, v in top.items() if not isinstance(v, dict)]
    for k, v in top.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{kk} = {_toml(vv)}" for kk, vv in v.items()]
    for e in entries:
        lines += ["[[scenario]]"] + [f"{k} = {_toml(v)}" for k, v in e.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def grid_1x(**extra: Any) -> dict[str, Any]:
    """The smoke suite's grid_1x entry, with extra overrides."""
    return {"name": "grid_1x", "file": str(GRID), "set": {"time.duration_h": 1, **extra}}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped smoke suite's baseline, made by --update-baseline."""
    root = tmp_path_factory.mktemp("check-baseline")
    code = main(
        ["check", str(SMOKE), "--baseline", str(root / "base"), "--update-baseline",
         "--out", str(root / "out"), "--workers", "1", "--reports", "none"]
    )  # fmt: skip
    assert code == 0
    return root / "base"


def test_unchanged_tree_passes_its_own_baseline(baseline: Path, tmp_path: Path) -> None:
    """Fresh runs of the same code: SLO gates pass, every KPI is identical on every seed, the
    performance ratios stay inside the default bounds, and the CLI exits 0."""
    code = main(
        ["check", str(SMOKE), "--baseline", str(baseline), "--out", str(tmp_path),
         "--workers", "1", "--reports", "none"]
    )  # fmt: skip
    doc = json.loads((tmp_path / "check.json").read_text())
    assert code == 0 and doc["status"] == "pass"
    gates = doc["gates"]
    assert {g["kind"] for g in gates} == {"slo", "baseline", "perf"}
    assert all(g["status"] == "pass" for g in gates), [g for g in gates if g["status"] != "pass"]
    assert all("identical" in g["message"] for g in gates if g["kind"] == "baseline")
    assert not any(r["reused"] for r in doc["runs"])  # fresh runs, so perf was re-measured
    assert len(doc["runs"]) == 6 and {r["scenario"] for r in doc["runs"]} == {"grid_1x", "grid_10x"}
    assert "Nothing regressed." in (tmp_path / "summary.md").read_text()


def test_worse_matcher_fails_with_a_readable_message(
    baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A matcher that skips every other batch: completion and match rate regress on every seed;
    the message says from what to what; the summary links the failed runs' reports; exit 1."""
    suite = write_suite(
        tmp_path / "worse.toml",
        [grid_1x(**{"dispatch.matcher": WORSE})],
        name="smoke",
        seeds=[1, 2, 3],
    )
    out = tmp_path / "out"
    code = main(["check", str(suite), "--baseline", str(baseline), "--out", str(out),
                 "--workers", "1"])  # fmt: skip
    assert code == 1
    printed = capsys.readouterr().out
    doc = json.loads((out / "check.json").read_text())
    gates = {g["case"]: g for g in doc["gates"]}
    match = gates["baseline:match_rate"]
    assert match["status"] in ("fail", "changed") and match["change"] > 0.01
    assert "worse on 3 of 3 seeds" in match["message"] and "->" in match["message"]
    failed = [g for g in doc["gates"] if g["status"] == "fail"]
    assert failed and all(g["kind"] == "baseline" for g in failed)
    for g in failed:  # says what moved, from what to what, on how many seeds, and the test
        assert "worse on 3 of 3 seeds" in g["message"] and "->" in g["message"]
        assert "paired t-test over 3 seeds, one-sided p = " in g["message"]
        assert re.search(rf"grid_1x +{g['case']} +FAIL +", printed)
    assert "check smoke: FAIL" in printed
    summary = (out / "summary.md").read_text()
    assert "## What regressed" in summary and failed[0]["case"] in summary
    for run in doc["runs"]:
        assert (out / run["report"]).name == "report.html" and (out / run["report"]).is_file()
        assert run["report"] in summary and run["report"] in (out / "summary.html").read_text()


def test_slower_matcher_fails_the_performance_gate(baseline: Path, tmp_path: Path) -> None:
    """Same decisions 40 ms slower per call: KPIs identical to the baseline, but requests/s and
    the matcher p99 per batch fail their ratio bounds (40 ms stays beyond x2.5 of a baseline p99
    measured on a loaded 2-core machine, which reaches several ms)."""
    slow = {"dispatch.matcher": SLOWER, "dispatch.params.delay_ms": 40.0}
    suite = write_suite(
        tmp_path / "slow.toml",
        [grid_1x(**slow) | {"seeds": [1]}],
        name="smoke",
    )
    result = run_check(suite, tmp_path / "out", baseline=baseline, workers=1, reports="none")
    by_case = {g.case: g for g in result.gates}
    assert result.status == "fail"
    assert all(g.status == "pass" for g in result.gates if g.kind == "baseline")
    assert by_case["perf:requests_per_s"].status == "fail"
    assert by_case["perf:requests_per_s"].change < 0.25
    assert by_case["perf:matcher_p99_ms"].status == "fail"
    assert "allowed <= x2.5" in by_case["perf:matcher_p99_ms"].message


def test_junit_xml_validates_and_reads_as_ci_does(baseline: Path, tmp_path: Path) -> None:
    """The JUnit file validates against the CI schema (tests/harness/junit.xsd) and a JUnit
    reader sees one test case per scenario x gate, failed gates as failures."""
    suite = write_suite(
        tmp_path / "worse.toml",
        [grid_1x(**{"dispatch.matcher": WORSE}) | {"seeds": [1]}],
        name="smoke",
        slo={"match_rate_min": 0.99},
    )
    junit = tmp_path / "ci" / "ridesim.xml"
    result = run_check(
        suite, tmp_path / "out", baseline=baseline, junit=junit, workers=1, reports="none"
    )
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    xml = JUnitXml.fromfile(str(junit))
    cases = {(s.name, c.name): c for s in xml for c in s}
    assert set(cases) == {(g.scenario, g.case) for g in result.gates}
    failed = {k for k, c in cases.items() if any(isinstance(r, Failure) for r in c.result)}
    assert failed == {(g.scenario, g.case) for g in result.failed}
    assert ("grid_1x", "slo:match_rate_min") in failed
    assert xml.failures == len(result.failed) == len(failed)
    assert xml.tests == len(result.gates)


def test_entries_whose_data_is_absent_are_skipped_with_a_reason(tmp_path: Path) -> None:
    """An entry that requires a missing file (a real extract) is skipped, listed with why."""
    suite = write_suite(
        tmp_path / "s.toml",
        [{"name": "big", "file": "nowhere.toml", "requires": "missing/milan.osm.pbf"}],
        name="s",
    )
    result = run_check(suite, tmp_path / "out", workers=1, reports="none")
    assert result.status == "pass" and not result.runs and not result.gates
    assert "missing/milan.osm.pbf" in result.skipped["big"]
    with pytest.raises(xmlschema.XMLSchemaValidationError):  # the schema rejects a bare case
        xmlschema.XMLSchema(str(XSD)).validate(
            "<testsuites><testsuite name='a' tests='1'>"
            "<testcase name='x'/></testsuite></testsuites>"
        )
    xmlschema.XMLSchema(str(XSD)).validate(str(tmp_path / "out" / "junit.xml"))


def test_baseline_judge_exact_tolerance_and_tests() -> None:
    """Exact and tolerance rules per seed; beyond tolerance, a consistent shift is significant
    (paired t / Wilcoxon) and a mixed one is only 'changed'; one seed beyond fails outright."""
    same = [(s, 0.9, 0.9) for s in range(3)]
    assert judge_baseline("a", "match_rate", BaselineRule(), same).status == "pass"
    small = [(0, 0.9, 0.895), (1, 0.9, 0.899)]
    assert judge_baseline("a", "match_rate", BaselineRule(tolerance=0.01), small).status == "pass"
    shift = [(s, 0.9, 0.85 + 0.001 * s) for s in range(5)]
    g = judge_baseline("a", "match_rate", BaselineRule(), shift)
    assert g.status == "fail" and g.detail["test"] == "paired_t" and g.detail["p_value"] < 0.05
    mixed = [(0, 0.9, 0.85), (1, 0.9, 0.95), (2, 0.9, 0.91)]
    g = judge_baseline("a", "match_rate", BaselineRule(), mixed)
    assert g.status == "changed" and "not significant" in g.message
    assert judge_baseline("a", "match_rate", BaselineRule(), [(0, 0.9, 0.89)]).status == "fail"
    better = [(s, 0.9, 0.95) for s in range(3)]  # higher match rate is better: no regression
    assert judge_baseline("a", "match_rate", BaselineRule(), better).status == "pass"
    waits = [(s, 100.0, 112.0 + s) for s in range(6)]
    rel = BaselineRule(tolerance=0.05, relative=True)
    g = judge_baseline("a", "pickup_wait_p95_s", rel, waits)
    assert g.status == "fail" and g.detail["test"] == "wilcoxon"
    assert judge_baseline("a", "pickup_wait_p95_s", BaselineRule(tolerance=0.2, relative=True),
                          waits).status == "pass"  # fmt: skip


def test_perf_judge_ratios_and_floor() -> None:
    """Median ratios against bounds; the floor keeps sub-floor timings from flapping."""
    assert judge_perf("a", "requests_per_s", PerfRule(min_ratio=0.5), [100.0], [60.0]).status == (
        "pass"
    )
    assert judge_perf("a", "requests_per_s", PerfRule(min_ratio=0.5), [100.0], [40.0]).status == (
        "fail"
    )
    rule = PerfRule(max_ratio=2.5, floor=5.0)
    assert judge_perf("a", "matcher_p99_ms", rule, [0.4, 0.3], [4.3, 4.2]).status == "pass"
    g = judge_perf("a", "matcher_p99_ms", rule, [0.4], [15.2])
    assert g.status == "fail" and g.change == pytest.approx(15.2 / 5.0)


def test_batch_p99_takes_each_batch_slowest_shard() -> None:
    """A batch's time is its slowest shard's call."""
    batches = np.array([[b, s, 1, 1, 1.0 + 10 * s] for b in range(100) for s in range(2)])
    assert batch_p99_ms(batches) == pytest.approx(11.0)
    assert batch_p99_ms(np.zeros((0, 5))) is None


def test_shipped_suites_load() -> None:
    """Every suite in scenarios/nightly/ is valid (entries with absent data are not read)."""
    suites = [p for p in sorted((ROOT / "scenarios" / "nightly").glob("*.toml")) if is_suite(p)]
    assert {p.name for p in suites} >= {"smoke.toml", "nightly.toml"}
    for path in suites:
        suite, _ = load_suite(path)
        assert suite.scenario


BAD_SUITES = [
    ("name = 's'\nbogus = 1\n[[scenario]]\nfile = 'x.toml'\n", "bogus: unknown key"),
    ("name = 's'\n", "scenario: required key is missing"),
    (
        "name = 's'\n[[scenario]]\nfile = 'missing.toml'\n",
        "scenario.0.file: scenario file not found",
    ),
    ("name = 's'\n[baseline]\nwaits = {}\n[[scenario]]\nfile = 'g.toml'\n", "unknown KPI 'waits'"),
    (
        "name = 's'\n[baseline]\nmatch_rate = { tolerance = -1 }\n[[scenario]]\nfile = 'g.toml'\n",
        "baseline.match_rate.tolerance: must be >= 0",
    ),
    (
        "name = 's'\n[baseline]\nmatch_rate = { test = 'ks' }\n[[scenario]]\nfile = 'g.toml'\n",
        "baseline.match_rate.test: must be one of",
    ),
    (
        "name = 's'\nseeds = [1, 2]\n[baseline]\nmatch_rate = { test = 'wilcoxon' }\n"
        "[[scenario]]\nfile = 'g.toml'\n",
        "baseline.match_rate.test: wilcoxon at alpha 0.05 needs >= 5",
    ),
    (
        "name = 's'\n[baseline]\nmatch_rate = { test = 'paired_t' }\n"
        "[[scenario]]\nfile = 'g.toml'\n",
        "baseline.match_rate.test: paired_t needs >= 2 seeds",
    ),
    (
        "name = 's'\n[performance]\nrequests_per_s = { max_ratio = 2 }\n"
        "[[scenario]]\nfile = 'g.toml'\n",
        "requests_per_s: give min_ratio",
    ),
    (
        "name = 's'\n[performance]\nfps = { max_ratio = 2 }\n[[scenario]]\nfile = 'g.toml'\n",
        "unknown figure 'fps'",
    ),
    (
        "name = 's'\n[performance]\npeak_rss_mb = { max_ratio = 0 }\n"
        "[[scenario]]\nfile = 'g.toml'\n",
        "performance.peak_rss_mb.max_ratio: must be > 0",
    ),
    (
        "name = 's'\n[slo]\nwait_max = 3\n[[scenario]]\nfile = 'g.toml'\n",
        "slo.wait_max: unknown SLO key",
    ),
    ("name = 's'\n[[scenario]]\nfile = 'g.toml'\nslo = { fast_s = 1 }\n", "scenario.0.slo.fast_s"),
    ("name = 's'\nseeds = [-1]\n[[scenario]]\nfile = 'g.toml'\n", "seeds.0: must be >= 0"),
    (
        "name = 's'\n[[scenario]]\nfile = 'g.toml'\n[[scenario]]\nfile = 'g.toml'\n",
        "scenario names must be unique; repeated: g",
    ),
    (
        "name = 's'\n[[scenario]]\nfile = 'g.toml'\nset = { 'demand.multiplier' = -1 }\n",
        "demand.multiplier: must be > 0",
    ),
    ("name = 's'\n[[scenario]]\nfile = 'g.toml'\nrequires = 3\n", "scenario.0.requires"),
    ("name = 's' = 1\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_SUITES)
def test_bad_suite_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    """Each bad suite field: exit 2 and a message naming the suite file, the field, the rule."""
    (tmp_path / "g.toml").write_text(GRID.read_text())
    suite = tmp_path / "suite.toml"
    suite.write_text(text)
    code = main(["check", str(suite), "--out", str(tmp_path / "out"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and (str(suite) in err or "g.toml" in err), err
    assert "Traceback" not in err


def test_bad_flags_and_baselines_exit_2(
    baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--update-baseline without --baseline, a folder without baseline.json, a malformed one,
    --workers 0 and an unknown --reports value: exit 2 with one line naming the flag or file."""

    def run(*extra: str) -> tuple[int, str]:
        try:
            code = main(["check", str(SMOKE), "--out", str(tmp_path / "o"), *extra])
        except SystemExit as exc:  # argparse rejects the value
            code = int(exc.code or 0)
        return code, capsys.readouterr().err

    code, err = run("--update-baseline")
    assert code == 2 and "--update-baseline: needs --baseline DIR" in err
    code, err = run("--baseline", str(tmp_path / "empty"))
    assert code == 2 and "no baseline.json" in err and str(tmp_path / "empty") in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "baseline.json").write_text('{"scenarios": []}')
    code, err = run("--baseline", str(tmp_path / "bad"))
    assert code == 2 and "baseline.json: baseline_version: expected a ridesim check baseline" in err
    code, err = run("--workers", "0")
    assert code == 2 and "--workers: expected a whole number >= 1, got '0'" in err
    code, err = run("--reports", "some")
    assert code == 2 and "--reports: invalid choice: 'some'" in err
    assert not (tmp_path / "o" / "runs").exists()  # nothing ran

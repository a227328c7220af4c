"""The nightly gate: run a suite of scenarios and turn the results into a pass/fail verdict.

Each suite entry x seed is an ordinary run, run through :func:`harness.sweep.run_sweep` (local
worker processes, Dask, or in process with one worker; a run already done is reused by its run
id). Metrics and wall-clock figures are read back from the run directories
(:func:`reports.run.load_run`). Three kinds of gate, one verdict each per scenario:

* **SLO** (``slo:<key>``): the scenario's ``[slo]`` table, or the suite's when it has none, is
  evaluated on every seed's metrics (:func:`reports.slo.evaluate`); one failing seed fails it.
* **baseline** (``baseline:<kpi>``): each seed's KPI against the same seed in the baseline. The
  change in the worse direction must be within the rule's tolerance (0: exact; results are
  deterministic, so an unchanged tree is identical). A change beyond tolerance on some seed is
  judged across seeds, paired by seed (same seed, same demand): a one-sided paired t-test for
  means and shares, a one-sided Wilcoxon signed-rank test for tail quantiles (skewed per-seed
  values), on ``worse change - tolerance``; significant at ``alpha`` fails, otherwise the gate
  reports ``changed``. With one seed (or ``test = "none"``) any seed beyond tolerance fails.
* **performance** (``perf:<figure>``): requests simulated per wall second, matcher p99 per batch
  (a batch's time is its slowest shard's call) and peak memory, as the ratio of tonight's median
  over seeds to the baseline's, against the declared ratio bounds.

A scenario whose runs met an outage of their matcher service (a remote matcher that could not
be reached) also gets a failed ``service:matcher_service`` gate: such a run is not a clean
measurement of anything, and it is never stored in a baseline.

Outputs in ``out``: ``check.json``, ``junit.xml`` (one test case per scenario x gate),
``summary.md`` and ``summary.html`` (what regressed, by how much, with links to the runs'
reports). The verdict is ``pass`` unless a gate failed (exit 1 from the CLI).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import platform
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from core.errors import InputError
from harness.run import check_out_dir
from harness.scenario import load_scenario
from harness.suite import (
    BaselineRule,
    PerfRule,
    Suite,
    better_of,
    entry_name,
    is_quantile,
    load_suite,
)
from harness.sweep import SweepPoint, run_sweep
from reports.compare import seed_group_key
from reports.run import RunData, load_json, load_run
from reports.slo import SLO_METRICS, evaluate, metric_value

BASELINE_FILE = "baseline.json"
BASELINE_VERSION = 1
STATUSES = ("fail", "changed", "new", "skip", "pass")
"""Gate outcomes, worst first. Only ``fail`` fails the check."""


@dataclass(frozen=True)
class Gate:
    """One verdict of the check: a scenario x gate."""

    scenario: str
    kind: str
    """``slo``, ``baseline``, ``perf`` or ``service`` (only when a matcher service failed)."""
    name: str
    status: str
    message: str
    value: float | None = None
    """Tonight's figure (the worst seed for SLO gates, the median or mean change otherwise)."""
    reference: float | None = None
    """The SLO target, or the baseline's figure."""
    change: float | None = None
    """Worse change (baseline gates, per-seed mean) or ratio tonight / baseline (perf gates)."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def case(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class RunRecord:
    """What the check keeps of one run: identity, every KPI, the performance figures."""

    scenario: str
    seed: int
    run_id: str
    run_dir: str
    scenario_key: str
    kpis: dict[str, float | None]
    perf: dict[str, float | None]
    slo: dict[str, Any]
    reused: bool = False
    service_outages: int = 0
    """Outages of the matcher service the run met (0: a clean run)."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict, every gate, every run and where the outputs are."""

    suite: str
    status: str
    gates: list[Gate]
    runs: list[RunRecord]
    skipped: dict[str, str]
    """Suite entries not run, with the reason (e.g. a data file that is absent)."""
    out: Path
    notes: list[str]

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if g.status == "fail"]


# ---------------------------------------------------------------------------------------------
# Reading runs


def batch_p99_ms(batches: np.ndarray) -> float | None:
    """p99 over batches of a batch's matcher wall time: its slowest shard's call (shards of a
    batch run side by side in production)."""
    if batches.shape[0] == 0:
        return None
    order = np.argsort(batches[:, 0], kind="stable")
    ids, walls = batches[order, 0], batches[order, 4]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    per_batch = np.maximum.reduceat(walls, starts)
    return float(np.percentile(per_batch, 99))


def perf_figures(run: RunData) -> dict[str, float | None]:
    """The gated performance figures of one run (from perf.json and the matcher calls)."""
    perf = run.perf or {}
    return {
        "requests_per_s": perf.get("requests_per_s"),
        "matcher_p99_ms": batch_p99_ms(run.batches),
        "peak_rss_mb": perf.get("peak_rss_mb"),
    }


def record_run(name: str, run_dir: Path, reused: bool) -> RunRecord:
    """Read one finished run directory into a :class:`RunRecord`."""
    run = load_run(run_dir)
    scenario = run.manifest["scenario"]
    key = hashlib.sha256(seed_group_key(run.manifest).encode()).hexdigest()[:16]
    return RunRecord(
        scenario=name,
        seed=int(scenario["seed"]),
        run_id=run.run_id,
        run_dir=str(run_dir),
        scenario_key=key,
        kpis={m: metric_value(run.metrics, m) for m in sorted(SLO_METRICS)},
        perf=perf_figures(run),
        slo=scenario.get("slo") or {},
        reused=reused,
        service_outages=int((run.metrics.get("faults") or {}).get("service_outages") or 0),
    )


# ---------------------------------------------------------------------------------------------
# Judging


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "—"
    if metric in ("requests_per_s", "completed_per_h"):
        return f"{v:,.0f}"
    if metric.endswith("_s"):
        return f"{v:,.1f} s"
    if metric.endswith("_ms"):
        return f"{v:,.3g} ms"
    if metric.endswith("_mb"):
        return f"{v:,.0f} MB"
    if metric in ("requests_per_s", "completed_per_h"):
        return f"{v:,.0f}"
    if abs(v) <= 1.0 and ("rate" in metric or "share" in metric or metric in ("utilisation",)):
        return f"{100 * v:.1f}%"
    return f"{v:,.4g}"


def _fmt_change(metric: str, d: float, relative: bool) -> str:
    if relative:
        return f"{100 * d:+.1f}%"
    if metric.endswith("_s"):
        return f"{d:+,.1f} s"
    if "rate" in metric or "share" in metric or metric == "utilisation":
        return f"{100 * d:+.2f} pts"
    return f"{d:+,.4g}"


def judge_slo(scenario: str, slo: dict[str, float], runs: list[RunRecord]) -> list[Gate]:
    """One gate per SLO key: fails when any seed fails it."""
    gates = []
    per_seed = [(r, evaluate_kpis(r, slo)) for r in runs]
    for key in sorted(slo):
        rows = [(r, next(x for x in ev["rows"] if x["key"] == key)) for r, ev in per_seed]
        failing = [(r, x) for r, x in rows if x["status"] == "fail"]
        valued = [(r, x) for r, x in rows if x["value"] is not None]
        target = float(slo[key])
        if not valued:
            gates.append(Gate(scenario, "slo", key, "skip", "no value in any seed", None, target))
            continue
        bound = valued[0][1]["bound"]
        worst_r, worst = (max if bound == "max" else min)(valued, key=lambda t: t[1]["value"])
        sign = "<=" if bound == "max" else ">="
        metric = worst["metric"]
        if failing:
            seeds = ", ".join(str(r.seed) for r, _ in failing)
            msg = (
                f"{metric} {_fmt(metric, worst['value'])} (seed {worst_r.seed}) breaks the SLO "
                f"{sign} {_fmt(metric, target)} on {len(failing)} of {len(rows)} seeds ({seeds})"
            )
            status = "fail"
        else:
            msg = f"{metric} worst {_fmt(metric, worst['value'])} {sign} {_fmt(metric, target)}"
            status = "pass"
        gates.append(
            Gate(
                scenario,
                "slo",
                key,
                status,
                msg,
                worst["value"],
                target,
                detail={"per_seed": {str(r.seed): x["value"] for r, x in rows}},
            )
        )
    return gates


def judge_service(scenario: str, runs: list[RunRecord]) -> Gate | None:
    """A failed gate when any seed's matcher service had an outage (None when none had)."""
    hit = [r for r in runs if r.service_outages]
    if not hit:
        return None
    n = sum(r.service_outages for r in hit)
    seeds = ", ".join(str(r.seed) for r in hit)
    return Gate(
        scenario,
        "service",
        "matcher_service",
        "fail",
        f"the matcher service could not be reached ({n} outage{'s' if n != 1 else ''}, "
        f"seed {seeds}): not a clean run; its KPIs and timings are not compared, nor stored "
        "in a baseline",
        float(n),
        0.0,
    )


def evaluate_kpis(run: RunRecord, slo: dict[str, float]) -> dict[str, Any]:
    """:func:`reports.slo.evaluate` on the KPIs the check kept of a run."""
    metrics: dict[str, Any] = {}
    for name, value in run.kpis.items():
        node = metrics
        path = SLO_METRICS[name]
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return evaluate(metrics, slo)


def choose_test(metric: str, rule: BaselineRule, n: int) -> str:
    """The cross-seed test a baseline rule uses with ``n`` paired seeds."""
    if rule.test != "auto":
        return rule.test if n >= 2 else "none"
    if n < 2:
        return "none"
    if is_quantile(metric) and 0.5**n < rule.alpha:
        return "wilcoxon"
    return "paired_t"


def one_sided_p(test: str, excess: np.ndarray) -> float:
    """p-value for "the mean (t) / median (Wilcoxon) of ``excess`` is > 0"."""
    if test == "paired_t":
        sd = float(excess.std(ddof=1))
        if sd == 0.0:
            return 0.0 if float(excess.mean()) > 0 else 1.0
        return float(stats.ttest_1samp(excess, 0.0, alternative="greater").pvalue)
    if not np.any(excess != 0):
        return 1.0
    return float(stats.wilcoxon(excess, alternative="greater", zero_method="zsplit").pvalue)


def judge_baseline(
    scenario: str,
    metric: str,
    rule: BaselineRule,
    pairs: list[tuple[int, float | None, float | None]],
) -> Gate:
    """Compare (seed, baseline, tonight) pairs of one KPI; see the module docstring."""
    better = rule.better or better_of(metric) or "lower"
    have = [(s, b, v) for s, b, v in pairs if b is not None and v is not None]
    base = float(np.mean([b for _, b, _ in have])) if have else None
    now = float(np.mean([v for _, _, v in have])) if have else None
    if not have:
        return Gate(scenario, "baseline", metric, "skip", "no value in the baseline or tonight")
    if all(b == v for _, b, v in have):
        return Gate(
            scenario,
            "baseline",
            metric,
            "pass",
            f"identical to the baseline on {len(have)} seeds ({_fmt(metric, now)})",
            now,
            base,
            0.0,
        )
    sign = 1.0 if better == "lower" else -1.0
    worse = np.array([sign * (v - b) for _, b, v in have])
    if rule.relative:
        worse = worse / np.array([max(abs(b), 1e-12) for _, b, _ in have])
    tol = rule.tolerance
    per_seed = {str(s): {"baseline": b, "tonight": v} for s, b, v in have}
    worst_i = int(np.argmax(worse))
    ws, wb, wv = have[worst_i]
    tol_text = "exact" if tol == 0 else f"tolerance {_fmt_change(metric, tol, rule.relative)}"
    change_text = (
        f"{_fmt(metric, wb)} -> {_fmt(metric, wv)} "
        f"({_fmt_change(metric, sign * worse[worst_i], rule.relative)})"
    )
    detail: dict[str, Any] = {
        "per_seed": per_seed,
        "better": better,
        "tolerance": tol,
        "relative": rule.relative,
    }
    mean_worse = float(worse.mean())
    if np.all(worse <= tol + 1e-12):
        return Gate(
            scenario,
            "baseline",
            metric,
            "pass",
            (
                f"within {tol_text}: worst seed {ws} {change_text}"
                if tol > 0
                else f"changed, worse on no seed: seed {ws} {change_text}"
            ),
            now,
            base,
            mean_worse,
            detail,
        )
    beyond = int(np.sum(worse > tol + 1e-12))
    test = choose_test(metric, rule, len(have))
    detail["test"] = test
    worse_text = (
        f"worse on {beyond} of {len(have)} seeds, worst seed {ws}: {change_text}; {tol_text}"
    )
    if test == "none":
        return Gate(scenario, "baseline", metric, "fail", worse_text, now, base, mean_worse, detail)
    p = one_sided_p(test, worse - tol)
    detail["p_value"] = p
    label = "paired t-test" if test == "paired_t" else "Wilcoxon signed-rank"
    stat_text = f"{label} over {len(have)} seeds, one-sided p = {p:.3g} (alpha {rule.alpha:g})"
    if p < rule.alpha:
        mean_text = _fmt_change(metric, sign * mean_worse, rule.relative)
        return Gate(
            scenario,
            "baseline",
            metric,
            "fail",
            f"mean change {mean_text}: {worse_text}; {stat_text}",
            now,
            base,
            mean_worse,
            detail,
        )
    return Gate(
        scenario,
        "baseline",
        metric,
        "changed",
        f"{worse_text}; not significant ({stat_text})",
        now,
        base,
        mean_worse,
        detail,
    )


def judge_perf(
    scenario: str, figure: str, rule: PerfRule, base: list[float | None], now: list[float | None]
) -> Gate:
    """Ratio of tonight's median over seeds to the baseline's, against the rule's bounds."""
    b = [x for x in base if x is not None]
    n = [x for x in now if x is not None]
    if not b or not n:
        return Gate(scenario, "perf", figure, "skip", "not measured in the baseline or tonight")
    mb, mn = float(np.median(b)), float(np.median(n))
    lb, ln = max(mb, rule.floor), max(mn, rule.floor)
    if lb <= 0:
        return Gate(scenario, "perf", figure, "skip", "baseline figure is 0", mn, mb)
    ratio = ln / lb
    floor_text = f", both lifted to >= {_fmt(figure, rule.floor)}" if rule.floor else ""
    if rule.min_ratio is not None:
        ok, bound_text = ratio >= rule.min_ratio, f"allowed >= x{rule.min_ratio:g}"
    else:
        ok, bound_text = ratio <= (rule.max_ratio or math.inf), f"allowed <= x{rule.max_ratio:g}"
    msg = (
        f"median {_fmt(figure, mb)} -> {_fmt(figure, mn)} (x{ratio:.2f}, {bound_text}{floor_text})"
    )
    detail = {"baseline": b, "tonight": n, "floor": rule.floor}
    return Gate(scenario, "perf", figure, "pass" if ok else "fail", msg, mn, mb, ratio, detail)


# ---------------------------------------------------------------------------------------------
# The baseline


def machine() -> dict[str, Any]:
    """What the performance figures were measured on."""
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def read_baseline(directory: Path) -> dict[str, Any]:
    """``baseline.json`` of a baseline folder (InputError when absent or malformed)."""
    path = directory / BASELINE_FILE
    if not path.is_file():
        raise InputError(
            str(directory),
            "",
            f"no {BASELINE_FILE} in the baseline folder (create it with --update-baseline)",
        )
    data = load_json(path, "the check baseline")
    if data.get("baseline_version") != BASELINE_VERSION or not isinstance(
        data.get("scenarios"), dict
    ):
        raise InputError(
            str(path),
            "baseline_version",
            f"expected a ridesim check baseline, version {BASELINE_VERSION}",
        )
    return data


def write_baseline(directory: Path, suite: Suite, runs: list[RunRecord]) -> Path:
    """Store tonight's runs as the baseline (KPIs of every seed, perf figures, the machine)."""
    directory.mkdir(parents=True, exist_ok=True)
    scenarios: dict[str, Any] = {}
    for r in runs:
        if r.service_outages:  # not a clean run: judged failed, never a reference
            continue
        scenarios.setdefault(r.scenario, {})[str(r.seed)] = {
            "run_id": r.run_id,
            "scenario_key": r.scenario_key,
            "kpis": r.kpis,
            "perf": r.perf,
        }
    data = {
        "baseline_version": BASELINE_VERSION,
        "suite": suite.name,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "scenarios": scenarios,
    }
    path = directory / BASELINE_FILE
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Running a suite


def run_check(
    suite_path: str | Path,
    out: Path,
    *,
    baseline: Path | None = None,
    update_baseline: bool = False,
    junit: Path | None = None,
    runs_dir: Path | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    cache_dir: Path | None = None,
    reports: str = "failed",
    on_done: Any = None,
) -> CheckResult:
    """Run every entry x seed of a suite, judge every gate and write the outputs.

    ``reports`` is which runs get a report.html linked from the summary: ``failed`` (runs of a
    scenario with a failed gate), ``all`` or ``none``."""
    if reports not in ("failed", "all", "none"):
        raise InputError("--reports", reports, "expected failed, all or none")
    if workers < 1:
        raise InputError("--workers", str(workers), "expected a whole number >= 1")
    if update_baseline and baseline is None:
        raise InputError("--update-baseline", "", "needs --baseline DIR (where to write it)")
    suite, base_dir = load_suite(suite_path)
    out = Path(out)
    check_out_dir(out)  # before any run: the outputs must have somewhere to go
    prior = None
    if baseline is not None and not update_baseline:
        prior = read_baseline(baseline)
    runs_dir = runs_dir or out / "runs"
    skipped: dict[str, str] = {}
    points: list[SweepPoint] = []
    owners: list[str] = []
    for entry in suite.scenario:
        name = entry_name(entry)
        if entry.requires is not None and not (base_dir / entry.requires).exists():
            skipped[name] = f"requires {entry.requires}, which is absent"
            continue
        file = str(base_dir / entry.file)
        seeds = entry.seeds or suite.seeds or [load_scenario(file, overrides=entry.set).seed]
        for seed in seeds:
            points.append(SweepPoint(file, dict(entry.set), seed))
            owners.append(name)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[RunRecord] = []
    if points:
        table = run_sweep(
            points,
            runs_dir,
            workers=workers,
            scheduler=scheduler,
            cache_dir=cache_dir,
            on_done=on_done,
        )
        for name, row in zip(owners, table.to_dict("records"), strict=True):
            runs.append(record_run(name, runs_dir / row["run_id"], bool(row["reused"])))
    notes: list[str] = []
    gates = judge_suite(suite, runs, prior, update_baseline, notes)
    if update_baseline and baseline is not None:
        notes.append(f"baseline written: {write_baseline(baseline, suite, runs)}")
    status = "fail" if any(g.status == "fail" for g in gates) else "pass"
    result = CheckResult(suite.name, status, gates, runs, skipped, out, notes)
    links = write_reports(result, reports)
    write_outputs(result, junit or out / "junit.xml", links)
    return result


def judge_suite(
    suite: Suite,
    runs: list[RunRecord],
    prior: dict[str, Any] | None,
    update_baseline: bool,
    notes: list[str],
) -> list[Gate]:
    """Every gate of every scenario that ran."""
    gates: list[Gate] = []
    by_name: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_name.setdefault(r.scenario, []).append(r)
    if prior is not None and prior.get("machine", {}).get("node") != machine()["node"]:
        notes.append(
            f"the baseline was measured on {prior.get('machine', {}).get('node')!r}, tonight on "
            f"{machine()['node']!r}: performance ratios compare different machines"
        )
    for entry in suite.scenario:
        name = entry_name(entry)
        group = by_name.get(name)
        if not group:
            continue
        slo = entry.slo if entry.slo is not None else (group[0].slo or suite.slo)
        gates += judge_slo(name, slo, group)
        service = judge_service(name, group)
        if service is not None:
            gates.append(service)
        if update_baseline:
            reason = "baseline being updated tonight"
        elif prior is None:
            reason = "no --baseline given"
        else:
            reason = ""
        if reason:
            for metric in suite.baseline:
                gates.append(Gate(name, "baseline", metric, "skip", reason))
            for figure in suite.performance:
                gates.append(Gate(name, "perf", figure, "skip", reason))
            continue
        stored = (prior or {}).get("scenarios", {}).get(name)
        if not stored:
            for metric in suite.baseline:
                gates.append(Gate(name, "baseline", metric, "new", "not in the baseline yet"))
            for figure in suite.performance:
                gates.append(Gate(name, "perf", figure, "new", "not in the baseline yet"))
            continue
        keys = {rec.get("scenario_key") for rec in stored.values()}
        if keys != {group[0].scenario_key}:
            notes.append(
                f"{name}: the scenario differs from the one the baseline ran (code, overrides or "
                "scenario file changed); compared by seed all the same"
            )
        paired = [r for r in group if str(r.seed) in stored]
        unpaired = [r.seed for r in group if str(r.seed) not in stored]
        if unpaired:
            notes.append(f"{name}: seeds {unpaired} are not in the baseline (not compared)")
        for metric, rule in suite.baseline.items():
            pairs = [
                (r.seed, stored[str(r.seed)]["kpis"].get(metric), r.kpis[metric]) for r in paired
            ]
            gates.append(judge_baseline(name, metric, rule, pairs))
        for figure, prule in suite.performance.items():
            gates.append(
                judge_perf(
                    name,
                    figure,
                    prule,
                    [rec["perf"].get(figure) for rec in stored.values()],
                    [r.perf.get(figure) for r in group],
                )
            )
    return gates


# ---------------------------------------------------------------------------------------------
# Outputs


def write_reports(result: CheckResult, which: str) -> dict[str, str]:
    """Write report.html for the chosen runs; returns run id -> link relative to ``out``."""
    # deferred: the HTML report pulls in matplotlib, which a passing night never needs
    from reports.html import write_report

    failing = {g.scenario for g in result.failed}
    links: dict[str, str] = {}
    for r in result.runs:
        run_dir = Path(r.run_dir)
        if which == "all" or (which == "failed" and r.scenario in failing):
            if not (run_dir / "report.html").is_file():
                write_report(run_dir)
        target = run_dir / "report.html" if (run_dir / "report.html").is_file() else run_dir
        links[r.run_id] = os.path.relpath(target, result.out)
    return links


def gate_table(result: CheckResult) -> str:
    """The terminal table: one line per scenario x gate, failures first within a scenario."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    gates = sorted(result.gates, key=lambda g: (g.scenario, rank[g.status], g.kind, g.name))
    w1 = max([len(g.scenario) for g in gates] + [8])
    w2 = max([len(g.case) for g in gates] + [4])
    lines = [f"{'scenario':<{w1}}  {'gate':<{w2}}  {'status':<7}  detail"]
    lines.append("-" * len(lines[0]))
    for g in gates:
        lines.append(f"{g.scenario:<{w1}}  {g.case:<{w2}}  {g.status.upper():<7}  {g.message}")
    for name, why in sorted(result.skipped.items()):
        lines.append(f"{name:<{w1}}  {'(all)':<{w2}}  {'SKIP':<7}  {why}")
    return "\n".join(lines)


def counts(gates: list[Gate]) -> dict[str, int]:
    return {s: sum(g.status == s for g in gates) for s in STATUSES}


def write_outputs(result: CheckResult, junit: Path, links: dict[str, str]) -> None:
    """check.json, JUnit XML, summary.md and summary.html."""
    out = result.out
    doc = {
        "suite": result.suite,
        "status": result.status,
        "counts": counts(result.gates),
        "machine": machine(),
        "load_average": list(os.getloadavg()),
        "notes": result.notes,
        "skipped": result.skipped,
        "gates": [{**asdict(g), "case": g.case} for g in result.gates],
        "runs": [{**asdict(r), "report": links.get(r.run_id)} for r in result.runs],
    }
    (out / "check.json").write_text(
        json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n"
    )
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.write_bytes(junit_xml(result))
    (out / "summary.md").write_text(summary_markdown(result, links))
    (out / "summary.html").write_text(summary_html(result, links))


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def junit_xml(result: CheckResult) -> bytes:
    """JUnit XML as CI systems read it: <testsuites> of one <testsuite> per scenario, one
    <testcase> per gate; a failed gate has <failure>, a skipped one <skipped>."""
    root = ET.Element("testsuites", name=f"ridesim check {result.suite}")
    by_scenario: dict[str, list[Gate]] = {}
    for g in result.gates:
        by_scenario.setdefault(g.scenario, []).append(g)
    total = {"tests": 0, "failures": 0, "skipped": 0}
    for scenario in sorted(by_scenario):
        gates = by_scenario[scenario]
        n_fail = sum(g.status == "fail" for g in gates)
        n_skip = sum(g.status in ("skip", "new") for g in gates)
        suite_el = ET.SubElement(
            root,
            "testsuite",
            name=scenario,
            tests=str(len(gates)),
            failures=str(n_fail),
            errors="0",
            skipped=str(n_skip),
            time="0",
        )
        ids = [r.run_id for r in result.runs if r.scenario == scenario]
        for g in sorted(gates, key=lambda g: g.case):
            case = ET.SubElement(
                suite_el,
                "testcase",
                name=g.case,
                classname=f"ridesim.check.{result.suite}.{scenario}",
                time="0",
            )
            if g.status == "fail":
                fail = ET.SubElement(case, "failure", message=g.message, type=f"{g.kind}_gate")
                fail.text = json.dumps(g.detail, sort_keys=True, default=_json_default)
            elif g.status in ("skip", "new"):
                ET.SubElement(case, "skipped", message=g.message)
            else:
                out_el = ET.SubElement(case, "system-out")
                out_el.text = f"{g.status}: {g.message}"
        props = ET.Element("properties")
        ET.SubElement(props, "property", name="run_ids", value=",".join(ids))
        suite_el.insert(0, props)
        total["tests"] += len(gates)
        total["failures"] += n_fail
        total["skipped"] += n_skip
    root.set("tests", str(total["tests"]))
    root.set("failures", str(total["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(total["skipped"]))
    root.set("time", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _regressions(result: CheckResult) -> list[Gate]:
    return [g for g in result.gates if g.status in ("fail", "changed")]


def _run_links(result: CheckResult, scenario: str, links: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (f"seed {r.seed}", links[r.run_id])
        for r in result.runs
        if r.scenario == scenario and r.run_id in links
    ]


def _change_text(g: Gate) -> str:
    if g.change is None:
        return ""
    if g.kind == "perf":
        return f"x{g.change:.2f}"
    if g.kind == "baseline":
        rel = bool(g.detail.get("relative"))
        return _fmt_change(g.name, g.change, rel) + " worse"
    return ""


def summary_markdown(result: CheckResult, links: dict[str, str]) -> str:
    """What regressed, by how much, with links to the runs' reports; then every gate."""
    c = counts(result.gates)
    lines = [
        f"# ridesim check: {result.suite}: {result.status.upper()}",
        "",
        f"{c['fail']} failed, {c['changed']} changed (not significant), {c['pass']} passed, "
        f"{c['skip'] + c['new']} skipped or new; {len(result.runs)} runs.",
        "",
    ]
    for note in result.notes:
        lines.append(f"- note: {note}")
    for name, why in sorted(result.skipped.items()):
        lines.append(f"- skipped {name}: {why}")
    regs = _regressions(result)
    if regs:
        lines += [
            "",
            "## What regressed",
            "",
            "| scenario | gate | status | by how much | what | runs |",
        ]
        lines.append("|---|---|---|---|---|---|")
        for g in regs:
            runs = " ".join(f"[{t}]({u})" for t, u in _run_links(result, g.scenario, links))
            cells = [g.scenario, g.case, g.status, _change_text(g), g.message, runs]
            lines.append("| " + " | ".join(cells) + " |")
    else:
        lines += ["", "Nothing regressed."]
    lines += ["", "## Every gate", "", "| scenario | gate | status | detail |", "|---|---|---|---|"]
    for g in result.gates:
        lines.append(f"| {g.scenario} | {g.case} | {g.status} | {g.message} |")
    return "\n".join(lines) + "\n"


def summary_html(result: CheckResult, links: dict[str, str]) -> str:
    """The same summary as a self-contained HTML page."""
    esc = html.escape
    colour = {"fail": "#b00020", "changed": "#b26a00", "pass": "#1b5e20"}

    def row(cells: list[str]) -> str:
        return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    def status(s: str) -> str:
        return f'<b style="color:{colour.get(s, "#555")}">{esc(s)}</b>'

    c = counts(result.gates)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ridesim check {esc(result.suite)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:72em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left;vertical-align:top}</style></head><body>",
        f"<h1>ridesim check {esc(result.suite)}: {status(result.status)}</h1>",
        f"<p>{c['fail']} failed, {c['changed']} changed (not significant), {c['pass']} passed, "
        f"{c['skip'] + c['new']} skipped or new; {len(result.runs)} runs.</p>",
    ]
    items = [f"note: {esc(n)}" for n in result.notes]
    items += [f"skipped {esc(k)}: {esc(v)}" for k, v in sorted(result.skipped.items())]
    if items:
        parts.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    regs = _regressions(result)
    if regs:
        parts.append(
            "<h2>What regressed</h2><table><tr><th>scenario</th><th>gate</th>"
            "<th>status</th><th>by how much</th><th>what</th><th>runs</th></tr>"
        )
        for g in regs:
            runs = " ".join(
                f'<a href="{esc(u)}">{esc(t)}</a>' for t, u in _run_links(result, g.scenario, links)
            )
            parts.append(
                row(
                    [
                        esc(g.scenario),
                        esc(g.case),
                        status(g.status),
                        esc(_change_text(g)),
                        esc(g.message),
                        runs,
                    ]
                )
            )
        parts.append("</table>")
    else:
        parts.append("<p>Nothing regressed.</p>")
    parts.append(
        "<h2>Every gate</h2><table><tr><th>scenario</th><th>gate</th><th>status</th>"
        "<th>detail</th></tr>"
    )
    for g in result.gates:
        parts.append(row([esc(g.scenario), esc(g.case), status(g.status), esc(g.message)]))
    parts.append("</table></body></html>\n")
    return "\n".join(parts)

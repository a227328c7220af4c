"""Comparing runs: KPIs side by side with differences from the first run, seed groups summarised
with a mean and a 95% confidence interval, and overlaid wait distributions.

Runs whose scenarios are identical except for the seed form a *seed group*; for each KPI the
group gets the mean over its runs and a two-sided 95% confidence interval for that mean from
Student's t distribution (mean ± t(0.975, n-1) · s / √n), which is honest for the handful of
seeds a sweep usually has. Output: ``compare.html`` (self-contained, like the run report) and
``compare.md`` in ``out_dir``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from core.errors import InputError
from reports.figures import wait_overlay_figure
from reports.figures._style import png_base64
from reports.html import CSS, _md_table, _table, esc, fmt_num, fmt_pct, fmt_s, get
from reports.run import RunData, check_run_dir, load_run


@dataclass(frozen=True)
class Kpi:
    """One compared KPI: label, path into metrics.json, unit (``s``, ``share``, ``n``), and
    whether higher is better (None: neither)."""

    label: str
    path: tuple[str, ...]
    unit: str
    higher_is_better: bool | None


KPIS: tuple[Kpi, ...] = (
    Kpi("riders arrived", ("funnel", "stages", "arrived"), "n", None),
    Kpi("quote conversion", ("funnel", "conversion"), "share", True),
    Kpi("requests", ("requests", "count"), "n", None),
    Kpi("completed share", ("requests", "completed_share"), "share", True),
    Kpi("match rate", ("requests", "match_rate"), "share", True),
    Kpi("cancelled share", ("requests", "cancelled_share"), "share", False),
    Kpi("time to match p50", ("time_to_match_s", "p50"), "s", False),
    Kpi("time to match p95", ("time_to_match_s", "p95"), "s", False),
    Kpi("time to match p99", ("time_to_match_s", "p99"), "s", False),
    Kpi("pickup wait p50", ("pickup_wait_s", "p50"), "s", False),
    Kpi("pickup wait p95", ("pickup_wait_s", "p95"), "s", False),
    Kpi("pickup wait p99", ("pickup_wait_s", "p99"), "s", False),
    Kpi("in-vehicle time mean", ("in_vehicle_s", "mean"), "s", None),
    Kpi("ETA mean abs. error", ("eta_error_s", "mae"), "s", False),
    Kpi("ETA bias (late > 0)", ("eta_error_s", "bias"), "s", None),
    Kpi("quoted pickup time mean abs. error", ("quote_error_s", "mae"), "s", False),
    Kpi("driver decline rate", ("offers", "decline_rate"), "share", False),
    Kpi("offers per completed trip", ("offers", "offers_per_completed"), "n", False),
    Kpi("driver utilisation", ("drivers", "utilisation"), "share", True),
    Kpi("repositioning share", ("drivers", "repositioning_share"), "share", None),
    Kpi("deadhead share", ("drivers", "deadhead_share"), "share", False),
    Kpi("mean fare per trip", ("money", "fare_per_trip", "mean"), "n", None),
    Kpi("driver income per online hour", ("money", "driver_income_per_online_h"), "n", True),
    Kpi("requests under surge", ("surge", "requests", "share_surging"), "share", None),
    Kpi("replay median trip-time ratio", ("replay", "median_ratio"), "n", None),
    Kpi("completed trips per hour", ("throughput", "completed_per_h"), "n", True),
    Kpi("income Gini", ("fairness", "gini"), "n", False),
    Kpi("worst zone match rate", ("zones", "worst_match_rate", "match_rate"), "share", True),
    Kpi("zone match-rate spread", ("zones", "spread", "match_rate"), "share", False),
    Kpi("SLOs failed", ("slo", "failed"), "n", False),
)
"""The deterministic KPIs compared, in display order."""


def fmt_unit(unit: str, v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return fmt_s(v) if unit == "s" else fmt_pct(v) if unit == "share" else fmt_num(v, 3)


def fmt_diff(kpi: Kpi, base: float | None, v: float | None) -> str:
    """Difference from the first run: absolute (in points for shares) and relative."""
    if base is None or v is None:
        return "—"
    d = v - base
    if kpi.unit == "share":
        text = f"{100 * d:+.1f} pts"
    elif kpi.unit == "s":
        text = f"{d:+.1f} s"
    else:
        text = f"{d:+,.3g}"
    if base:
        text += f" ({100 * d / abs(base):+.1f}%)"
    return text


def seed_group_key(manifest: dict[str, Any]) -> str:
    """Canonical JSON of the scenario without its seed: equal keys differ only by seed."""
    sc = {k: v for k, v in manifest.get("scenario", {}).items() if k != "seed"}
    return json.dumps(sc, sort_keys=True, separators=(",", ":"))


def mean_ci95(values: list[float]) -> tuple[float, float, float] | None:
    """(mean, low, high) of a 95% t-interval for the mean; None with fewer than 2 values."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size < 2:
        return None
    mean = float(x.mean())
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def _labels(runs: list[RunData]) -> list[str]:
    """Short unique labels: scenario name and seed, plus the run id if that is ambiguous."""
    base = [
        f"{get(r.manifest, 'scenario', 'name')} · seed {get(r.manifest, 'scenario', 'seed')}"
        for r in runs
    ]
    return [
        f"{b} ({r.run_id[:10]})" if base.count(b) > 1 else b
        for b, r in zip(base, runs, strict=True)
    ]


def comparison_tables(runs: list[RunData]) -> dict[str, Any]:
    """The comparison as plain data: labels, per-KPI values and diffs, seed groups."""
    labels = _labels(runs)
    values = [[get(r.metrics, *k.path) for r in runs] for k in KPIS]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(seed_group_key(r.manifest), []).append(i)
    seed_groups = []
    for members in groups.values():
        if len(members) < 2:
            continue
        name = get(runs[members[0]].manifest, "scenario", "name")
        seeds = [get(runs[i].manifest, "scenario", "seed") for i in members]
        seed_groups.append(
            {
                "name": str(name),
                "seeds": seeds,
                "members": members,
                "kpis": [mean_ci95([row[i] for i in members]) for row in values],
            }
        )
    return {"labels": labels, "values": values, "seed_groups": seed_groups}


def _matcher_p99(run: RunData) -> float | None:
    return get(run.perf or {}, "matcher", "p99_ms")


def render_compare_html(runs: list[RunData]) -> str:
    """The comparison page as a self-contained HTML string."""
    t = comparison_tables(runs)
    labels = t["labels"]
    head = ["KPI", esc(labels[0]) + " (baseline)"]
    for lab in labels[1:]:
        head += [esc(lab), "vs baseline"]
    rows = []
    for k, vals in zip(KPIS, t["values"], strict=True):
        row = [esc(k.label), esc(fmt_unit(k.unit, vals[0]))]
        for v in vals[1:]:
            row += [esc(fmt_unit(k.unit, v)), esc(fmt_diff(k, vals[0], v))]
        rows.append(row)
    wall = ["matcher p99 per call (wall-clock)"] + [
        "—" if _matcher_p99(r) is None else f"{_matcher_p99(r):.2f} ms" for r in runs
    ]
    wall_row = [esc(wall[0]), esc(wall[1])]
    for w in wall[2:]:
        wall_row += [esc(w), ""]
    num_cols = set(range(1, len(head)))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Run comparison ({len(runs)} runs)</title><style>{CSS}</style></head><body>",
        f"<h1>Run comparison ({len(runs)} runs)</h1>",
        '<p class="sub">Deterministic KPIs side by side; differences are against the first run '
        "(the baseline). Shares differ in percentage points (pts).</p>",
        "<h2>KPIs</h2>",
        _table(head, rows + [wall_row], num_cols),
        '<p class="note">The last row is measured wall-clock time: it varies between machines '
        "and runs and is not part of the deterministic results.</p>",
    ]
    for g in t["seed_groups"]:
        g_rows = []
        for k, ci in zip(KPIS, g["kpis"], strict=True):
            if ci is None:
                g_rows.append([esc(k.label), "—", "—"])
                continue
            mean, lo, hi = ci
            g_rows.append(
                [
                    esc(k.label),
                    esc(fmt_unit(k.unit, mean)),
                    esc(f"{fmt_unit(k.unit, lo)} … {fmt_unit(k.unit, hi)}"),
                ]
            )
        parts += [
            f"<h2>Seed group: {esc(g['name'])} ({len(g['members'])} seeds)</h2>",
            f'<p class="note">Runs identical except for the seed (seeds '
            f"{esc(', '.join(str(s) for s in g['seeds']))}). The interval is where the true "
            "mean over all seeds lies with 95% confidence (Student's t).</p>",
            _table(["KPI", "mean", "95% confidence interval"], g_rows, {1, 2}),
        ]
    fig = wait_overlay_figure(list(zip(labels, runs, strict=True)))
    parts += [
        "<h2>Pickup wait distributions</h2>",
        '<p class="note">For each run, the share of picked-up riders who waited at most x '
        "minutes; a curve further left and higher means shorter waits.</p>",
        f'<img alt="pickup wait distributions" src="data:image/png;base64,{png_base64(fig)}">',
        "<h2>Runs</h2>",
        _table(
            ["label", "run id", "directory"],
            [
                [esc(lab), f"<code>{esc(r.run_id)}</code>", esc(r.run_dir.name)]
                for lab, r in zip(labels, runs, strict=True)
            ],
        ),
    ]
    if any(r.geographic for r in runs):
        parts.append("<footer>Map data © OpenStreetMap contributors.</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_compare_markdown(runs: list[RunData]) -> str:
    """The comparison tables in Markdown."""
    t = comparison_tables(runs)
    labels = t["labels"]
    head = ["KPI", labels[0] + " (baseline)"]
    for lab in labels[1:]:
        head += [lab, "vs baseline"]
    rows = []
    for k, vals in zip(KPIS, t["values"], strict=True):
        row = [k.label, fmt_unit(k.unit, vals[0])]
        for v in vals[1:]:
            row += [fmt_unit(k.unit, v), fmt_diff(k, vals[0], v)]
        rows.append(row)
    out = [f"# Run comparison ({len(runs)} runs)", "", _md_table(head, rows)]
    for g in t["seed_groups"]:
        g_rows = [
            [k.label, "—", "—"]
            if ci is None
            else [
                k.label,
                fmt_unit(k.unit, ci[0]),
                f"{fmt_unit(k.unit, ci[1])} … {fmt_unit(k.unit, ci[2])}",
            ]
            for k, ci in zip(KPIS, g["kpis"], strict=True)
        ]
        out += [
            "",
            f"## Seed group: {g['name']} (seeds {', '.join(str(s) for s in g['seeds'])})",
            "",
            _md_table(["KPI", "mean", "95% CI (t)"], g_rows),
        ]
    return "\n".join(out) + "\n"


def write_comparison(run_dirs: list[Path], out_dir: Path) -> Path:
    """Compare runs (the first is the baseline); writes compare.html and compare.md into
    ``out_dir`` and returns the HTML path. Raises InputError for an incomplete run directory."""
    if not run_dirs:
        raise InputError("compare", "runs", "expected at least one run directory")
    for d in run_dirs:
        check_run_dir(Path(d))  # fail on the first incomplete one before any work
    runs = [load_run(Path(d)) for d in run_dirs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "compare.html"
    out.write_text(render_compare_html(runs), encoding="utf-8")
    (out_dir / "compare.md").write_text(render_compare_markdown(runs), encoding="utf-8")
    return out

"""Comparing runs: KPIs side by side with differences from the first run, seed groups summarised
with a mean and a 95% confidence interval, and overlaid wait distributions.

Each run is labelled by the scenario parameters that differ between the compared runs (the
matcher, ``--set`` overrides, the seed ...), read from the canonical scenarios in their
manifests, so two columns never carry the same name.

Runs whose scenarios are identical except for the seed form a *seed group*. For each KPI the
group gets the mean over its seeds and a 95% confidence interval for it from Student's t
distribution, on a scale where the interval cannot leave the possible range: the logit of a
share (so a match rate stays within 0..100%), the logarithm of a positive quantity (a time,
a count, money: never below zero), and the plain scale only for signed values (an ETA bias).
Every interval says how many seeds it rests on, and a group of fewer than
:data:`MIN_SEEDS` seeds is flagged: its interval is too rough to decide on. Output:
``compare.html`` (self-contained, like the run report) and ``compare.md`` in ``out_dir``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from core.errors import InputError
from reports.figures._style import compose
from reports.figures.distributions import draw_wait_curves
from reports.html import Block, Section, figure, note, render_markdown_sections, render_page, table
from reports.kpis import ensure_metrics
from reports.run import RunData, check_run_dir, load_run
from reports.text import fmt_count, fmt_num, fmt_pct, fmt_rate, fmt_s, get

MIN_SEEDS = 5
"""Below this many seeds a confidence interval is flagged as too rough to decide on."""


@dataclass(frozen=True)
class Kpi:
    """One compared KPI: label, path into metrics.json, unit, and whether higher is better
    (None: neither). Units: ``share`` (0..1), ``s`` (positive seconds), ``signed_s``, ``count``,
    ``rate`` (per hour), ``ratio``, ``money``."""

    label: str
    path: tuple[str, ...]
    unit: str
    higher_is_better: bool | None


KPIS: tuple[Kpi, ...] = (
    Kpi("riders who opened the app", ("funnel", "stages", "arrived"), "count", None),
    Kpi("quote conversion", ("funnel", "conversion"), "share", True),
    Kpi("requests", ("requests", "count"), "count", None),
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
    Kpi("quoted pickup time: mean error", ("quote_error_s", "mae"), "s", False),
    Kpi("driver's ETA at assignment: mean error", ("eta_error_s", "mae"), "s", False),
    Kpi("driver's ETA bias (late > 0)", ("eta_error_s", "bias"), "signed_s", None),
    Kpi("driver decline rate", ("offers", "decline_rate"), "share", False),
    Kpi("offers per completed trip", ("offers", "offers_per_completed"), "ratio", False),
    Kpi("driver utilisation", ("drivers", "utilisation"), "share", True),
    Kpi("repositioning share", ("drivers", "repositioning_share"), "share", None),
    Kpi("deadhead share", ("drivers", "deadhead_share"), "share", False),
    Kpi("mean fare per trip", ("money", "fare_per_trip", "mean"), "money", None),
    Kpi("driver income per online hour", ("money", "driver_income_per_online_h"), "money", True),
    Kpi("requests under surge", ("surge", "requests", "share_surging"), "share", None),
    Kpi("replay median trip-time ratio", ("replay", "median_ratio"), "ratio", None),
    Kpi("completed trips per hour", ("throughput", "completed_per_h"), "rate", True),
    Kpi("income Gini", ("fairness", "gini"), "share", False),
    Kpi("worst area match rate", ("zones", "worst_match_rate", "match_rate"), "share", True),
    Kpi("area match-rate spread", ("zones", "spread", "match_rate"), "share", False),
    Kpi("SLOs failed", ("slo", "failed"), "count", False),
)
"""The deterministic KPIs compared, in display order."""


def fmt_unit(unit: str, v: float | None, currency: str | None = None) -> str:
    """A KPI value in its unit's convention."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if unit in ("s", "signed_s"):
        return fmt_s(v)
    if unit == "share":
        return fmt_pct(v)
    if unit == "count":
        return fmt_count(v)
    if unit == "rate":
        return fmt_rate(v)
    if unit == "money":
        return f"{v:,.2f} {currency}" if currency else f"{v:,.2f}"
    return fmt_num(v)


def fmt_diff(kpi: Kpi, base: float | None, v: float | None) -> str:
    """Difference from the first run: absolute (in points for shares) and relative."""
    if base is None or v is None:
        return "—"
    d = v - base
    if kpi.unit == "share":
        text = f"{100 * d:+.1f} pts"
    elif kpi.unit in ("s", "signed_s"):
        text = f"{d:+.1f} s"
    elif kpi.unit in ("count", "rate"):
        text = f"{d:+,.0f}" if abs(d) >= 100 or float(d).is_integer() else f"{d:+,.1f}"
    else:
        text = f"{d:+,.2f}"
    if base:
        text += f" ({100 * d / abs(base):+.1f}%)"
    return text


# ---------------------------------------------------------------------------------------------
# Labels: what differs between the runs


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict ({"a": {"b": 1}} -> {"a.b": 1}); lists stay values."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k in sorted(obj):
        out.update(flatten(obj[k], f"{prefix}.{k}" if prefix else str(k)))
    return out


def differing_parameters(runs: Sequence[RunData]) -> list[str]:
    """Dotted scenario keys whose values are not the same in every run (the scenario name
    and the seed last, since they say least about what was changed)."""
    flat = [flatten(r.manifest.get("scenario", {})) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    last = [k for k in ("name", "seed") if k in differ]
    return [k for k in differ if k not in last] + last


def _value(v: Any) -> str:
    if v is None:
        return "unset"
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """One label per run naming the parameters that differ ("dispatch.matcher=assignment,
    seed=8"); identical scenarios are told apart by run id."""
    keys = differing_parameters(runs)
    flat = [flatten(r.manifest.get("scenario", {})) for r in runs]
    labels = []
    for r, f in zip(runs, flat, strict=True):
        parts = [
            f"{k.removeprefix('dispatch.') if k == 'dispatch.matcher' else k}={_value(f.get(k))}"
            for k in keys
        ]
        labels.append(", ".join(parts) if parts else str(get(r.manifest, "scenario", "name")))
    return [
        f"{lab} ({r.run_id[:10]})" if labels.count(lab) > 1 else lab
        for lab, r in zip(labels, runs, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Seed groups and confidence intervals


def seed_group_key(manifest: dict[str, Any]) -> str:
    """Canonical JSON of the scenario without its seed: equal keys differ only by seed."""
    sc = {k: v for k, v in manifest.get("scenario", {}).items() if k != "seed"}
    return json.dumps(sc, sort_keys=True, separators=(",", ":"))


def mean_ci95(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    """(mean, low, high) of a plain 95% t-interval for the mean; None with fewer than 2
    values. For signed quantities; see :func:`interval` for shares and positive ones."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size < 2:
        return None
    mean = float(x.mean())
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def _t_bounds(z: np.ndarray) -> tuple[float, float]:
    half = float(stats.t.ppf(0.975, z.size - 1) * z.std(ddof=1) / math.sqrt(z.size))
    m = float(z.mean())
    return m - half, m + half


SHARE_EPS = 1e-4
"""Shares of exactly 0 or 1 are moved this far inside before the logit (which is infinite
there)."""


def interval(values: Sequence[float | None], unit: str) -> dict[str, Any] | None:
    """Mean over the seeds and a 95% interval that stays within the possible range: a
    t-interval on the logit scale for shares, on the log scale for positive quantities (when
    every value is positive), else plain. None with fewer than two values."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size < 2:
        return None
    mean = float(x.mean())
    if unit == "share":
        p = np.clip(x, SHARE_EPS, 1 - SHARE_EPS)
        lo, hi = _t_bounds(np.log(p / (1 - p)))
        low, high, scale = float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi))), "logit"
        low, high = min(low, mean), max(high, mean)
    elif unit != "signed_s" and bool(np.all(x > 0)):
        lo, hi = _t_bounds(np.log(x))
        low, high, scale = float(np.exp(lo)), float(np.exp(hi)), "log"
        low, high = min(low, mean), max(high, mean)
    else:
        _, low, high = mean_ci95(x.tolist()) or (mean, mean, mean)
        scale = "plain"
        if unit != "signed_s":  # a non-negative quantity with a zero among its values
            low = max(low, 0.0)
    return {"mean": mean, "low": low, "high": high, "n": int(x.size), "scale": scale}


def comparison_tables(runs: Sequence[RunData]) -> dict[str, Any]:
    """The comparison as plain data: labels, per-KPI values, seed groups with intervals."""
    labels = run_labels(runs)
    values = [[get(r.metrics, *k.path) for r in runs] for k in KPIS]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(seed_group_key(r.manifest), []).append(i)
    seed_groups = []
    for members in groups.values():
        if len(members) < 2:
            continue
        sub = [runs[i] for i in members]
        others = [k for k in differing_parameters(runs) if k != "seed"]
        flat = flatten(sub[0].manifest.get("scenario", {}))
        name = ", ".join(f"{k}={_value(flat.get(k))}" for k in others) or str(
            get(sub[0].manifest, "scenario", "name")
        )
        seed_groups.append(
            {
                "name": name,
                "seeds": [get(r.manifest, "scenario", "seed") for r in sub],
                "members": members,
                "kpis": [
                    interval([row[i] for i in members], k.unit)
                    for k, row in zip(KPIS, values, strict=True)
                ],
            }
        )
    return {"labels": labels, "values": values, "seed_groups": seed_groups}


# ---------------------------------------------------------------------------------------------
# Pages


def _currency(runs: Sequence[RunData]) -> str | None:
    cur = {get(r.metrics, "money", "currency") for r in runs} - {None}
    return cur.pop() if len(cur) == 1 else None


def compare_sections(runs: Sequence[RunData], draw: bool = True) -> list[Section]:
    """The comparison's sections."""
    t = comparison_tables(runs)
    labels = t["labels"]
    cur = _currency(runs)
    head = ["KPI", labels[0] + " (baseline)"]
    for lab in labels[1:]:
        head += [lab, "vs baseline"]
    rows = []
    for k, vals in zip(KPIS, t["values"], strict=True):
        if all(v is None for v in vals):
            continue  # a KPI none of the runs measured
        row = [k.label, fmt_unit(k.unit, vals[0], cur)]
        for v in vals[1:]:
            row += [fmt_unit(k.unit, v, cur), fmt_diff(k, vals[0], v)]
        rows.append(row)
    p99 = [get(r.perf or {}, "matcher", "p99_ms") for r in runs]
    wall = ["matcher p99 per call (wall-clock)", "—" if p99[0] is None else f"{p99[0]:.2f} ms"]
    for w in p99[1:]:
        wall += ["—" if w is None else f"{w:.2f} ms", ""]
    differ = differing_parameters(runs)
    out = [
        Section(
            "kpis",
            "KPIs",
            [
                note(
                    "Runs differ in: "
                    + (", ".join(differ) if differ else "nothing (identical scenarios)")
                    + ". The last row is measured wall-clock time: it varies between machines "
                    "and runs and is not part of the deterministic results."
                ),
                table(head, [*rows, wall], num_cols=range(1, len(head))),
            ],
        )
    ]
    for g in t["seed_groups"]:
        n = len(g["members"])
        g_rows = []
        for k, ci in zip(KPIS, g["kpis"], strict=True):
            if ci is None:
                continue
            g_rows.append(
                [
                    k.label,
                    fmt_unit(k.unit, ci["mean"], cur),
                    f"{fmt_unit(k.unit, ci['low'], cur)} … {fmt_unit(k.unit, ci['high'], cur)}",
                    str(ci["n"]),
                ]
            )
        blocks: list[Block] = [
            note(
                f"Runs identical except for the seed ({n} seeds: "
                f"{', '.join(str(s) for s in g['seeds'])}). The interval is where the mean over "
                "all seeds lies with 95% confidence (Student's t on the logit scale for shares "
                "and on the log scale for positive quantities, so bounds stay possible)."
            )
        ]
        if n < MIN_SEEDS:
            blocks.append(
                Block(
                    "warn",
                    text=f"Only {n} seeds: these intervals are rough and wide. Run at least "
                    f"{MIN_SEEDS} seeds before deciding on a difference.",
                )
            )
        blocks.append(
            table(["KPI", "mean", "95% confidence interval", "seeds"], g_rows, num_cols=(1, 2, 3))
        )
        out.append(Section("seed-group", f"Seed group: {g['name']} ({n} seeds)", blocks))
    pairs = list(zip(labels, runs, strict=True))
    out += [
        Section(
            "waits",
            "Pickup wait distributions",
            [
                note(
                    "For each run, the share of picked-up riders who waited at most x minutes; "
                    "a curve further left and higher means shorter waits."
                ),
                figure(
                    lambda: compose([lambda ax: draw_wait_curves(ax, pairs)], 9.0, 3.8),
                    "pickup wait distributions",
                    draw,
                ),
            ],
        ),
        Section(
            "runs",
            "Runs",
            [
                table(
                    ["label", "run id", "directory"],
                    [[lab, r.run_id, r.run_dir.name] for lab, r in pairs],
                    code_cols=(1,),
                )
            ],
        ),
    ]
    return out


def render_compare_html(runs: Sequence[RunData]) -> str:
    """The comparison page as a self-contained HTML string."""
    return render_page(
        "compare.html.j2",
        title=f"Run comparison ({len(runs)} runs)",
        subtitle="Deterministic KPIs side by side; differences are against the first run (the "
        "baseline). Shares differ in percentage points (pts).",
        sections=compare_sections(runs),
        osm=any(r.geographic for r in runs),
    )


def render_compare_markdown(runs: Sequence[RunData]) -> str:
    """The comparison tables in Markdown."""
    return render_markdown_sections(
        f"Run comparison ({len(runs)} runs)",
        "Differences are against the first run (the baseline).",
        compare_sections(runs, draw=False),
    )


def comparison_dir(run_dirs: Sequence[Path], root: Path) -> Path:
    """A comparison's own folder under ``root``, named by the runs it compares (in order), so
    comparing other runs never overwrites it."""
    ids = "\n".join(Path(d).resolve().name for d in run_dirs)
    return Path(root) / f"compare-{hashlib.sha256(ids.encode()).hexdigest()[:12]}"


def write_comparison(run_dirs: Sequence[Path], out_dir: Path) -> Path:
    """Compare runs (the first is the baseline); writes compare.html and compare.md into
    ``out_dir`` and returns the HTML path. Raises InputError for an incomplete run directory."""
    if not run_dirs:
        raise InputError("compare", "runs", "expected at least one run directory")
    for d in run_dirs:
        check_run_dir(Path(d))  # fail on the first incomplete one before any work
    for d in run_dirs:
        ensure_metrics(Path(d))
    runs = [load_run(Path(d)) for d in run_dirs]
    out_dir = Path(out_dir)
    out = out_dir / "compare.html"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        out.write_text(render_compare_html(runs), encoding="utf-8")
        (out_dir / "compare.md").write_text(render_compare_markdown(runs), encoding="utf-8")
    except (PermissionError, FileExistsError, NotADirectoryError) as e:
        raise InputError(
            str(out_dir),
            "",
            f"cannot write the comparison there: {e.strerror} (expected a "
            "folder this user may write)",
        ) from None
    return out

"""Sweeps: many runs over scenario files x varied values x seeds, in parallel, skipping runs
already done.

Every point of a sweep is an ordinary run (its own content-addressed run directory), so a
sweep that is interrupted or extended recomputes nothing it already has, and any point can be
reported on or compared like a single run. Points run on Dask distributed: a local cluster by
default, or the scheduler at ``scheduler`` (a real cluster); ``workers=1`` runs them in this
process. Results do not depend on where a point ran.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import InputError
from harness.run import run_scenario
from harness.scenario import load_scenario, parse_overrides

SUMMARY_METRICS = {
    "requests": ("requests", "count"),
    "completed_share": ("requests", "completed_share"),
    "completed_per_h": ("throughput", "completed_per_h"),
    "pickup_wait_mean_s": ("pickup_wait_s", "mean"),
    "pickup_wait_p95_s": ("pickup_wait_s", "p95"),
    "time_to_match_p95_s": ("time_to_match_s", "p95"),
    "utilisation": ("drivers", "utilisation"),
    "deadhead_share": ("drivers", "deadhead_share"),
}
"""Columns of the sweep table: name -> path into metrics.json."""


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: a scenario file, dotted-key overrides and optionally a seed."""

    scenario: str
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None


def parse_vary(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["demand.multiplier=1,2,5"]`` -> ``{"demand.multiplier": [1, 2, 5]}`` (TOML values)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise InputError("--vary", item, "expected KEY=V1,V2,... e.g. demand.multiplier=1,2,5")
        out[key.strip()] = [parse_overrides([f"{key}={v}"])[key.strip()] for v in values.split(",")]
    return out


def sweep_points(
    scenarios: Sequence[str], vary: dict[str, list[Any]], seeds: Sequence[int] | None = None
) -> list[SweepPoint]:
    """The full grid: every scenario x every combination of varied values x every seed."""
    keys = sorted(vary)
    combos = list(itertools.product(*(vary[k] for k in keys))) or [()]
    return [
        SweepPoint(str(s), dict(zip(keys, combo, strict=True)), seed)
        for s in scenarios
        for combo in combos
        for seed in (list(seeds) if seeds else [None])
    ]


def run_point(point: SweepPoint, out: str, cache_dir: str | None = None) -> dict[str, Any]:
    """Run (or find already done) one point; returns its row of the sweep table."""
    scenario = load_scenario(point.scenario, overrides=point.overrides)
    if point.seed is not None:
        scenario = scenario.with_seed(point.seed)
    result = run_scenario(
        scenario,
        source=point.scenario,
        base_dir=Path(point.scenario).resolve().parent,
        out=Path(out),
        cache_dir=Path(cache_dir) if cache_dir else None,
        skip_existing=True,
    )
    row: dict[str, Any] = {
        "scenario": scenario.name,
        **{k: v for k, v in point.overrides.items()},
        "seed": scenario.seed,
        "run_id": result.run_id,
        "reused": result.reused,
    }
    for name, (a, b) in SUMMARY_METRICS.items():
        row[name] = (result.metrics.get(a) or {}).get(b)
    return row


def run_sweep(
    points: Sequence[SweepPoint],
    out: Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    cache_dir: Path | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Run every point (in parallel unless ``workers == 1``); returns the sweep table, also
    written to ``out/sweep.csv`` and ``out/sweep.md``, in the order of ``points``."""
    out.mkdir(parents=True, exist_ok=True)
    for point in points:  # bad input fails here, before any worker starts
        load_scenario(point.scenario, overrides=point.overrides)
    cache = str(cache_dir) if cache_dir else None
    rows: list[dict[str, Any]] = [{} for _ in points]
    if workers == 1 and scheduler is None:
        for i, point in enumerate(points):
            rows[i] = run_point(point, str(out), cache)
            if on_done:
                on_done(rows[i])
    else:
        # deferred: dask.distributed costs a second to import and serial sweeps never need it
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
        client = Client(scheduler or cluster)
        try:
            futures = {
                client.submit(run_point, p, str(out), cache, pure=False): i
                for i, p in enumerate(points)
            }
            for future in as_completed(futures):
                rows[futures[future]] = future.result()
                if on_done:
                    on_done(rows[futures[future]])
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    table = pd.DataFrame(rows)
    table.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(markdown_table(table))
    (out / "sweep.json").write_text(json.dumps(rows, indent=2, sort_keys=True, default=str) + "\n")
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (numbers to 4 significant digits)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

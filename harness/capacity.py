"""Capacity planning: how many geo-partitioned matcher shards a target load needs.

For each load level and shard count, the scenario runs as an ordinary (cached) sweep point;
each run's measured matcher wall time per shard call (matcher_calls.parquet) is compared with
the batch window. The recommendation for a load is the smallest shard count whose worst
shard's p99 call time fits in ``budget_fraction`` of the batch window, together with what the
borders cost in service (completed share and pickup wait against one shard).

Wall times are measurements of this machine (perf), never inputs to a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from harness.scenario import load_scenario
from harness.sweep import SweepPoint, markdown_table, run_sweep


@dataclass(frozen=True)
class CapacityPlan:
    """The measured grid and one recommendation per load."""

    table: pd.DataFrame
    recommendations: pd.DataFrame


def plan_capacity(
    scenario: str,
    shard_counts: list[int],
    loads: list[float],
    out: Path,
    *,
    budget_fraction: float = 0.5,
    workers: int = 1,
    cache_dir: Path | None = None,
) -> CapacityPlan:
    """Run the load x shard grid and recommend a shard count per load."""
    spec = load_scenario(scenario)
    window_s = spec.dispatch.batch_window_s
    if window_s <= 0:
        raise ValueError("capacity planning needs a batched scenario (dispatch.batch_window_s > 0)")
    points = [
        SweepPoint(scenario, {"demand.multiplier": load, "dispatch.shards": shards})
        for load in loads
        for shards in shard_counts
    ]
    sweep = run_sweep(points, out, workers=workers, cache_dir=cache_dir)
    rows = []
    for point, row in zip(points, sweep.to_dict("records"), strict=True):
        calls = pq.read_table(out / row["run_id"] / "matcher_calls.parquet").to_pandas()
        by_shard = calls.groupby("shard_id")
        p99 = by_shard["wall_ms"].quantile(0.99)
        rows.append(
            {
                "load": point.overrides["demand.multiplier"],
                "shards": point.overrides["dispatch.shards"],
                "worst_shard_p99_ms": float(p99.max()) if len(p99) else np.nan,
                "worst_shard_max_ms": float(by_shard["wall_ms"].max().max())
                if len(calls)
                else np.nan,
                "max_requests_per_call": int(calls["n_requests"].max()) if len(calls) else 0,
                "max_drivers_per_call": int(calls["n_drivers"].max()) if len(calls) else 0,
                "completed_share": row["completed_share"],
                "pickup_wait_mean_s": row["pickup_wait_mean_s"],
                "run_id": row["run_id"],
            }
        )
    table = pd.DataFrame(rows)
    budget_ms = budget_fraction * window_s * 1000.0
    recs = []
    for load, g in table.groupby("load", sort=True):
        g = g.sort_values("shards")
        base = g.iloc[0]
        fits = g[g.worst_shard_p99_ms <= budget_ms]
        pick = fits.iloc[0] if len(fits) else g.iloc[-1]
        recs.append(
            {
                "load": load,
                "recommended_shards": int(pick.shards),
                "fits_budget": bool(len(fits)),
                "worst_shard_p99_ms": pick.worst_shard_p99_ms,
                "budget_ms": budget_ms,
                "completed_share_change": pick.completed_share - base.completed_share,
                "pickup_wait_change_s": pick.pickup_wait_mean_s - base.pickup_wait_mean_s,
            }
        )
    recommendations = pd.DataFrame(recs)
    table.to_csv(out / "capacity.csv", index=False)
    recommendations.to_csv(out / "capacity_recommendations.csv", index=False)
    (out / "capacity.md").write_text(
        f"# Capacity plan: {spec.name}\n\nBatch window {window_s:g} s; budget: worst shard p99 "
        f"matcher call <= {budget_fraction:.0%} of it ({budget_ms:.0f} ms). Wall-clock "
        "figures of the machine that ran the plan.\n\n"
        + markdown_table(recommendations)
        + "\n\n## All runs\n\n"
        + markdown_table(table)
        + "\n"
    )
    return CapacityPlan(table, recommendations)

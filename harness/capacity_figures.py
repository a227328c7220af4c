"""The capacity plan's figures: matcher latency against batch size with the fitted model, and
shards needed against load. One function per figure, each drawing on a given axes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq
from matplotlib.axes import Axes

from reports.figures._style import BLUE, GREEN, ORANGE, PURPLE, RED, new_figure, style_axes

if TYPE_CHECKING:
    from harness.capacity import CapacityPlan, Model, Target

COLOURS = (BLUE, ORANGE, GREEN, PURPLE, RED, "#0891b2", "#65a30d", "#db2777")
MAX_POINTS = 6000


def latency_vs_batch(ax: Axes, plan: CapacityPlan, out: Path) -> None:
    """Every measured call (requests per call vs wall ms, one colour per shard count) and the
    fitted cost at the size model's drivers-per-request ratio."""
    model = plan.model
    shard_counts = sorted(set(plan.table.shards))
    for i, s in enumerate(shard_counts):
        r, y = [], []
        for rid in plan.table[plan.table.shards == s].run_id:
            t = pq.read_table(
                out / rid / "matcher_calls.parquet", columns=["n_requests", "wall_ms"]
            )
            r.append(t["n_requests"].to_numpy())
            y.append(t["wall_ms"].to_numpy())
        rr, yy = np.concatenate(r), np.concatenate(y)
        keep = rr >= 1
        rr, yy = rr[keep], yy[keep]
        step = max(1, len(rr) // MAX_POINTS)  # every k-th call: deterministic thinning
        ax.scatter(rr[::step], yy[::step], s=4, alpha=0.35, color=COLOURS[i % len(COLOURS)],
                   label=f"{s} shard{'s' if s > 1 else ''}", linewidths=0)  # fmt: skip
    if model is not None:
        top = max(float(plan.table.max_requests_per_call.max()), 2.0)
        grid = np.geomspace(1.0, top * 10, 100)
        ratio = model.sizes.d99[1] / model.sizes.r99[1] if model.sizes.r99[1] > 0 else 1.0
        ax.plot(grid, model.cost.predict(grid, ratio * grid), color="black", linewidth=1.5,
                label=f"fit ({model.cost.kind}), D = {ratio:.3g}·R")  # fmt: skip
        ax.axvline(top, color="#6b7280", linestyle=":", linewidth=1)
        ax.text(top, ax.get_ylim()[1], " largest measured", va="top", fontsize=8, color="#6b7280")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("open requests per matcher call (R)")
    ax.set_ylabel("matcher wall time per call (ms)")
    ax.set_title("Matcher latency vs batch size, with the fitted cost model")
    ax.legend(fontsize=8, loc="upper left")
    style_axes(ax)


def shards_vs_load(ax: Axes, model: Model, target: Target | None, peak_share: float) -> None:
    """Shards needed per city (or for the scenario's city) as load grows."""
    # deferred: harness.capacity imports this module's writer lazily; no cycle at import time
    from harness.capacity import shards_needed

    if target is not None:
        growth = np.geomspace(0.1, 2.0, 40) * target.trips_per_day / target.today_trips_per_day
        cities = sorted(target.cities, key=lambda c: -c.trip_share)[: len(COLOURS)]
        for i, c in enumerate(cities):
            ys = [shards_needed(model, g * target.today_trips_per_day * c.trip_share * peak_share,
                                target) for g in growth]  # fmt: skip
            ax.plot(growth, [y if y is not None else np.nan for y in ys],
                    color=COLOURS[i], label=c.name, drawstyle="steps-post")  # fmt: skip
        ax.axvline(target.trips_per_day / target.today_trips_per_day, color="#6b7280",
                   linestyle=":", linewidth=1)  # fmt: skip
        ax.set_xlabel("load (x today's trips per day)")
        ax.legend(fontsize=8, loc="upper left", ncols=2)
    ax.set_xscale("log")
    ax.set_ylabel("matcher shards needed")
    ax.set_title("Shards needed vs load (predicted by the model)")
    style_axes(ax)


def write_figures(
    plan: CapacityPlan, target: Target | None, out: Path, limits: Target, peak_share: float
) -> list[Path]:
    """Both figures as PNG files in ``out`` (only the first without a model). ``limits``
    carries the SLO budget and utilisation cap when there is no target."""
    paths = []
    fig = new_figure(8.0, 4.5)
    latency_vs_batch(fig.add_subplot(), plan, out)
    paths.append(_save(fig, out / "latency_vs_batch.png"))
    if plan.model is not None:
        fig = new_figure(8.0, 4.5)
        ax = fig.add_subplot()
        if target is None:
            _shards_vs_rate(ax, plan.model, plan, limits)
        else:
            shards_vs_load(ax, plan.model, target, peak_share)
        paths.append(_save(fig, out / "shards_vs_load.png"))
    return paths


def _shards_vs_rate(ax: Axes, model: Model, plan: CapacityPlan, limits: Target) -> None:
    """Without a target: shards for the scenario's city as its request rate grows."""
    # deferred: harness.capacity imports this module's writer lazily; no cycle at import time
    from harness.capacity import shards_needed

    base = float(plan.table.requests_per_h.min())
    rates = np.geomspace(base, base * 1000, 40)
    ys: list[Any] = [shards_needed(model, r, limits) for r in rates]
    ax.plot(rates, [y if y is not None else np.nan for y in ys], color=BLUE,
            drawstyle="steps-post")  # fmt: skip
    ax.set_xlabel("city requests per hour")


def _save(fig: Any, path: Path) -> Path:
    # metadata={"Software": None} keeps the bytes free of the matplotlib version string.
    fig.savefig(path, format="png", metadata={"Software": None})
    return path

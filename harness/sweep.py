"""Sweeps: many runs over scenario files x varied values x seeds, in parallel, skipping runs
already done.

Every point of a sweep is an ordinary run (its own content-addressed run directory), so a
sweep that is interrupted or extended recomputes nothing it already has, and any point can be
reported on or compared like a single run. Points run on ``workers`` local worker processes
forked from this process, on Dask distributed at ``scheduler`` (a real cluster),
or, with ``workers=1``, in this process. Results do not depend on where a point ran.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed as completed_in_pool
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import InputError
from harness.estimate import estimate
from harness.run import check_out_dir, read_scenario, run_scenario
from harness.scenario import Scenario, parse_overrides

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
    for seed in seeds or []:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise InputError("--seeds", str(seed), "expected whole numbers >= 0 and < 2**63")
    keys = sorted(vary)
    combos = list(itertools.product(*(vary[k] for k in keys))) or [()]
    return [
        SweepPoint(str(s), dict(zip(keys, combo, strict=True)), seed)
        for s in scenarios
        for combo in combos
        for seed in (list(seeds) if seeds else [None])
    ]


def load_point(point: SweepPoint) -> Scenario:
    """The validated scenario of one point (overrides and seed applied)."""
    scenario = read_scenario(point.scenario, overrides=point.overrides)
    return scenario.with_seed(point.seed) if point.seed is not None else scenario


def point_key(point: SweepPoint, scenario: Scenario) -> str:
    """What a point's run id follows from besides the code and the files it names: the
    canonical scenario and the folder its relative paths resolve against. Points with the same
    key are the same run."""
    folder = str(Path(point.scenario).resolve().parent)
    return json.dumps([scenario.canonical(), folder], sort_keys=True)


def run_point(point: SweepPoint, out: str, cache_dir: str | None = None) -> dict[str, Any]:
    """Run (or find already done) one point; returns its row of the sweep table."""
    scenario = load_point(point)
    result = run_scenario(
        scenario,
        source=point.scenario,
        base_dir=Path(point.scenario).resolve().parent,
        out=Path(out),
        cache_dir=Path(cache_dir) if cache_dir else None,
        skip_existing=True,
        keep_city=True,  # the next point on this worker likely runs on the same city
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
    outages = (result.metrics.get("faults") or {}).get("service_outages")
    if outages:  # flagged: the row is not a clean run (the column appears only then)
        row["service_outages"] = outages
    return row


CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a Dask scheduler given by address before giving up."""


def run_sweep(
    points: Sequence[SweepPoint],
    out: Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    cache_dir: Path | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> pd.DataFrame:
    """Run every point (in parallel unless ``workers == 1``); returns the sweep table, in the
    order of ``points``. Runs land in ``out/<run-id>/`` (shared with every other sweep, so done
    runs are reused); the table is written to ``sweep.csv``, ``sweep.md`` and ``sweep.json`` in
    the sweep's own folder ``out/sweeps/<sweep-id>/`` (named by the points' content, so two
    different sweeps never overwrite each other), given in ``table.attrs["sweep_dir"]``.

    Points that resolve to the same run (e.g. ``demand.multiplier=5,5.0``) run once; each
    still gets its own row (``reused`` is true for the repeats)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("--workers", str(workers), "expected a whole number >= 1")
    if not points:
        raise InputError("sweep", "", "no points to run (give at least one scenario file)")
    first: dict[str, int] = {}  # point key -> index of the first point with it
    same_as: list[int] = []
    cost: list[float] = []
    for i, point in enumerate(points):  # bad input fails here, before any worker starts
        scenario = load_point(point)
        same_as.append(first.setdefault(point_key(point, scenario), i))
        cost.append(estimate(scenario, base_dir=Path(point.scenario).resolve().parent).events)
    check_out_dir(out)
    unique = [i for i, j in enumerate(same_as) if i == j]
    cache = str(cache_dir) if cache_dir else None
    rows: list[dict[str, Any]] = [{} for _ in points]

    def finish(i: int, row: dict[str, Any]) -> None:
        for k, j in enumerate(same_as):
            if j != i:
                continue
            rows[k] = row if k == i else _repeat_row(row, points[i], points[k])
            if on_done:
                on_done(rows[k])

    if scheduler is None and workers == 1:
        for i in unique:
            finish(i, run_point(points[i], str(out), cache))
    elif scheduler is None:
        order = longest_first(unique, cost)
        _run_on_local_workers(points, order, out, cache, workers, finish)
    else:
        order = longest_first(unique, cost)
        _run_on_dask(points, order, out, cache, scheduler, connect_timeout_s, finish)
    folder = sweep_dir(out, points)
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(folder / "sweep.csv", index=False)
    (folder / "sweep.md").write_text(markdown_table(table))
    (folder / "sweep.json").write_text(
        json.dumps(rows, indent=2, sort_keys=True, default=str) + "\n"
    )
    table.attrs["sweep_dir"] = str(folder)
    return table


def longest_first(indices: Sequence[int], cost: Sequence[float]) -> list[int]:
    """``indices`` ordered by ``cost[i]``, largest first (ties keep their order): workers that
    each take the next point when free then finish close together, instead of one running
    the largest point alone at the end."""
    return sorted(indices, key=lambda i: -cost[i])


def sweep_dir(out: Path, points: Sequence[SweepPoint]) -> Path:
    """The folder of the sweep over ``points``: ``out/sweeps/<id>``, the id hashing every
    point's scenario file, overrides and seed in order (the same sweep always lands in the
    same folder; a different one never overwrites it)."""
    spec = [[str(Path(p.scenario).resolve()), sorted(p.overrides.items()), p.seed] for p in points]
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return out / "sweeps" / digest[:16]


def _repeat_row(row: dict[str, Any], ran: SweepPoint, point: SweepPoint) -> dict[str, Any]:
    """The row of a point that is the same run as ``ran``: its own overrides, the run's
    results, marked reused."""
    own = {k: v for k, v in row.items() if k not in ran.overrides}
    return {**own, **point.overrides, "reused": True}


def _run_on_local_workers(
    points: Sequence[SweepPoint],
    unique: list[int],
    out: Path,
    cache: str | None,
    workers: int,
    finish: Callable[[int, dict[str, Any]], None],
) -> None:
    """Run the points on ``workers`` local processes, each taking the next point when free.

    A plain process pool, not a local Dask cluster: on 2 cores a Dask worker spent 10-15%
    more CPU per run than the same run in one process (its event loop, heartbeats and
    sampling profiler run beside the task), and the scheduler and nannies shared the cores
    with the workers. A pool's worker only waits on a pipe between points."""
    # On Linux the workers are forked from this process, which has imported the whole run
    # stack: a worker is ready in milliseconds instead of re-importing numpy, scipy, pandas...
    # (1-2 s each). No warm-up run here first: it cost the sweep 0.06-0.08 s before any worker
    # started, and the workers' first runs were no cheaper for it (their copy-on-write page
    # faults dominate); without it, 6 two-hour runs on 2 workers took 0.80-0.85 s against
    # 0.85-0.88 s, alternating in the same minutes (bench/bench_sweep.py).
    method = "fork" if sys.platform == "linux" else "spawn"
    others = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        min(workers, len(unique)),
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_start,
    )
    finished = False
    try:
        # Frozen objects are never visited by the garbage collector, so forked workers do not
        # copy the inherited heap page by page when they collect. The pool forks every worker
        # on the first submit. A heap frozen by the caller already stays as the caller left it.
        ours = gc.get_freeze_count() == 0
        if ours:
            gc.freeze()
        try:
            futures = {pool.submit(run_point, points[i], str(out), cache): i for i in unique}
        finally:
            if ours:
                gc.unfreeze()
        done = 0
        for future in completed_in_pool(futures):
            try:
                row = future.result()
            except BrokenProcessPool as exc:
                # e.g. the kernel's OOM killer took a worker: say so in one line
                raise RuntimeError(
                    f"a sweep worker process failed ({exc}) after {done} of {len(futures)} "
                    "runs had finished; they are kept, and a rerun reuses them"
                ) from None
            finish(futures[future], row)
            done += 1
        finished = True
    finally:
        if not finished:
            # An error or Ctrl-C: stop the runs in flight now rather than wait minutes for
            # results nobody will read (a rerun cleans their partial folders).
            for process in set(multiprocessing.active_children()) - others:
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_start() -> None:
    """In each local worker: Ctrl-C goes to the sweep's own process, which stops the workers
    (instead of every worker printing its own traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_on_dask(
    points: Sequence[SweepPoint],
    unique: list[int],
    out: Path,
    cache: str | None,
    scheduler: str,
    connect_timeout_s: float,
    finish: Callable[[int, dict[str, Any]], None],
) -> None:
    """Run the points on the Dask cluster whose scheduler is at ``scheduler``."""
    # deferred: dask.distributed costs a second to import and only a real cluster needs it
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout=connect_timeout_s)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            "--scheduler",
            str(scheduler),
            f"no Dask scheduler answered within {connect_timeout_s:g} s "
            f"(expected an address like tcp://host:8786): {type(exc).__name__}",
        ) from None
    try:
        futures = {
            client.submit(run_point, points[i], str(out), cache, pure=False): i for i in unique
        }
        for future in as_completed(futures):
            finish(futures[future], future.result())
    finally:
        client.close()


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (numbers to 4 significant digits)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

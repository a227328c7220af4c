"""The city-day benchmark: Milan, 24 simulated hours at 10x load, end to end.

Runs ``bench/scenarios/milan_10x_day.toml`` (about 3,000,000 requests following the default
daily profile, about 60,000 drivers in shifts, the default scenario's market, batched
assignment every 15 s, 10-minute max pickup ETA) through ``run_scenario``: city load,
simulation, event log, metrics. Milan comes from ``../shared/data/milan-otp`` (``--data``);
without it the benchmark is skipped with the reason. ``--hours H`` runs the first H hours
(``--start`` moves the window, e.g. to the morning peak) for quick checks; budgets in
bench/budgets.toml [city_day] hold for the whole day (peak memory and matcher p99 for any run).

Where the time goes is measured by timing wrappers installed in this process only (the code
under test is unchanged): candidate generation (``candidate_pairs`` inside the assignment
matcher), assignment (the rest of ``Assignment.match``), repositioning (the policy's
``decide``), I/O (city load, event-log flushes, writing the run directory) and the engine
(everything else in the simulation). The last line printed is one JSON object; its ``seconds``
are wall seconds per part and ``cpu_seconds`` this process's CPU seconds per part (the figures to
compare on a shared machine, where wall time also counts waiting for a core).

The engine passes the city's zone bounds (``MatchRequest.eta_bounds``) to the matcher, so
candidate search skips zones of drivers that cannot be among a request's nearest; the JSON's
``eta_bounds`` says whether the snapshots carried them ("engine") or not ("none").

    python -m bench city_day [--hours H] [--start HH:MM] [--data DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import load_budget
from harness.run import run_scenario
from harness.scenario import load_scenario
from matching.api import MatchRequest
from matching.matchers import assignment as assignment_mod
from sim import dispatcher as dispatcher_mod
from sim import events as events_mod
from sim import reposition as reposition_mod

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "bench" / "scenarios" / "milan_10x_day.toml"
DATA = ROOT.parent / "shared" / "data"
MILAN = Path("milan-otp") / "milan_italy_small.osm.pbf"
SECTION = "city_day"


class Timers:
    """Wall and CPU seconds spent inside wrapped callables, by name (nested names are
    subtracted later). CPU seconds are this process's: on a shared machine they say where
    the work goes when wall seconds also count waiting for a core."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` that adds its wall and CPU time to ``name``."""
        self.seconds.setdefault(name, 0.0)
        self.cpu_seconds.setdefault(name, 0.0)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.cpu_seconds[name] += time.process_time() - c0

        return timed


def install(timers: Timers) -> None:
    """Time candidate generation, the assignment matcher, repositioning and event-log I/O."""
    assignment_mod.candidate_pairs = timers.wrap("candidates", assignment_mod.candidate_pairs)
    cls = assignment_mod.Assignment
    cls.match = timers.wrap("assignment_total", cls.match)  # type: ignore[method-assign]
    for policy in (reposition_mod.TowardDemand,):
        policy.decide = timers.wrap("repositioning", policy.decide)  # type: ignore[method-assign]
    log = events_mod.EventLog
    log.flush = timers.wrap("event_log", log.flush)  # type: ignore[method-assign]


def install_bounds(state: dict[str, str]) -> None:
    """Record in ``state["eta_bounds"]`` whether the engine's snapshots carry zone bounds
    ("engine": candidate search uses the zone path; "none": off a road network, or a travel
    model that scales each leg by its own length)."""
    original = dispatcher_mod.Dispatcher.snapshot

    @functools.wraps(original)
    def snapshot(self: Any, *args: Any, **kwargs: Any) -> MatchRequest:
        request = original(self, *args, **kwargs)
        state["eta_bounds"] = "none" if request.eta_bounds is None else "engine"
        return request

    dispatcher_mod.Dispatcher.snapshot = snapshot  # type: ignore[method-assign]


def cpu_split(cpu: float, timed: dict[str, float]) -> dict[str, float]:
    """The run's CPU seconds by part, adding up to ``cpu``: the timed parts (``candidates``
    runs inside ``assignment_total``, so assignment is the difference) and what no timer
    covers (the engine, the city load and writing the run directory)."""
    return {
        "engine_and_rest": cpu
        - timed["assignment_total"]
        - timed["repositioning"]
        - timed["event_log"],
        "candidates": timed["candidates"],
        "assignment": timed["assignment_total"] - timed["candidates"],
        "repositioning": timed["repositioning"],
        "event_log": timed["event_log"],
    }


def run(hours: float, start: str, osm: Path) -> dict[str, Any]:
    """One run of the first ``hours`` from ``start``; the figures as a dict."""
    scenario = load_scenario(
        SCENARIO,
        overrides={"city.osm": str(osm), "time.duration_h": hours, "time.start": start},
    )
    timers = Timers()
    install(timers)
    state = {"eta_bounds": "none"}
    install_bounds(state)
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = run_scenario(
            scenario, source=str(SCENARIO), base_dir=SCENARIO.parent, out=Path(tmp)
        )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    p, m = result.perf, result.metrics
    t = timers.seconds
    sim_wall = float(p["sim_wall_s"])
    assignment = t["assignment_total"] - t["candidates"]
    writing = wall - sim_wall - float(p["city_load_s"])  # run directory, metrics
    io = float(p["city_load_s"]) + t["event_log"] + writing
    engine = sim_wall - t["assignment_total"] - t["repositioning"] - t["event_log"]
    share = {
        "engine": engine,
        "candidates": t["candidates"],
        "assignment": assignment,
        "repositioning": t["repositioning"],
        "io": io,
    }
    cpu_share = cpu_split(cpu, timers.cpu_seconds)
    requests = int(m["requests"]["count"])
    return {
        "benchmark": SECTION,
        "hours": hours,
        "start": start,
        "requests": requests,
        "events": int(p["events"]),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "city_load_s": round(float(p["city_load_s"]), 2),
        "sim_wall_s": round(sim_wall, 2),
        "requests_per_s": round(requests / wall, 1),
        "events_per_s": round(int(p["events"]) / wall, 1),
        "matcher_p50_ms": round(float(p["matcher"]["p50_ms"]), 2),
        "matcher_p99_ms": round(float(p["matcher"]["p99_ms"]), 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "completed_share": m["requests"]["completed_share"],
        "eta_bounds": state["eta_bounds"],
        "share": {k: round(v / wall, 4) for k, v in share.items()},
        "seconds": {k: round(v, 2) for k, v in share.items()},
        "cpu_seconds": {k: round(v, 2) for k, v in cpu_share.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--start", default="00:00", help="clock time the run starts (HH:MM)")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    args = parser.parse_args(argv)
    if not 0 < args.hours <= 24:
        parser.error(f"--hours: expected a number in (0, 24], got {args.hours}")
    osm = args.data / MILAN
    if not osm.is_file():
        reason = f"Milan extract not found at {osm} (the shared data folder is absent)"
        print(f"skipped: {reason}")
        print(json.dumps({"benchmark": SECTION, "skipped": reason}))
        return 0
    figures = run(args.hours, args.start, osm.resolve())
    print(f"[{SECTION}]" + ("" if args.hours == 24 else f" (first {args.hours:g} h only)"))
    measured = {k: figures[k] for k in ("peak_rss_gb", "matcher_p99_ms")}
    if args.hours == 24 and args.start == "00:00":
        measured["wall_s"] = figures["wall_s"]
    else:
        print("  wall_s budget: applies to the whole day (--hours 24) only")
    ok = True
    for key, limit in load_budget(SECTION).items():
        name = key.removesuffix("_min").removesuffix("_max")
        if name not in measured:
            continue
        value = measured[name]
        good = value >= limit if key.endswith("_min") else value <= limit
        ok &= good
        sign = ">=" if key.endswith("_min") else "<="
        verdict = "ok" if good else "OVER BUDGET"
        print(f"  {name:<16} {value:>10.3f}  budget {sign} {limit:<8}  {verdict}")
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The peer on the plane benchmark's setting: ridepy (C++/Cython core), when it is installed.

Issue 10 sets the plane budget at 20x ridepy's requests per CPU-second on this setting. Host
speed on a shared machine moves by half within minutes, so the fair comparison runs both in
the same minutes: this benchmark measures ridepy alone, and ``--with-plane`` (what
``python -m bench ridepy`` passes) alternates it with the plane benchmark's own 20,000-request
figure (ridepy, plane, ridepy, plane, ...), prints the ratio of the medians of their CPU
seconds and checks it against bench/budgets.toml [ridepy]. Each sample of either side is a
fresh interpreter; the plane's is ``bench.bench_plane``'s measurement as [plane] checks it (a
warm-up run, then the median of three timed runs), ridepy's one simulation of its own.

The setting (as :mod:`bench.bench_plane`): Euclidean unit square at speed 1, 1,000 vehicles of
one seat starting uniformly, uniform origins and destinations, Poisson arrivals at load 0.8, a
request rejected when no vehicle can pick it up within 0.25. ridepy's dispatcher is its Cython
``BruteForceTotalTravelTimeMinimizingDispatcher`` (with one seat: the vehicle that adds the
least travel time, an idle one that is nearest), its space ``Euclidean2D``, its vehicles the
Cython ``VehicleState``: its fastest configuration for this setting.

ridepy is not a dependency of ridesim: it builds from source against Boost
(``apt-get install libboost-graph-dev; pip install ridepy==2.10``), and may pin other versions
of what ridesim uses, so it is best installed in a venv of its own; ``--ridepy-python`` names
that interpreter (``python -m bench ridepy --ridepy-python /path/to/venv/bin/python``). Without
ridepy the benchmark says so and exits 0 (nothing was measured, so nothing is over budget).
The last line printed is one JSON object.

    python -m bench.bench_ridepy [--requests 20000] [--repeats 3]
        [--ridepy-python /path/to/venv/bin/python] [--with-plane]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.bench_plane import MEAN_DISTANCE
from bench.common import check

N_VEHICLES = 1000
LOAD = 0.8
MAX_PICKUP_DELAY = 0.25
PLANE_REPEATS = 3
"""Timed runs in each of the plane's samples: the plane benchmark's own figure (its median of
3, after a warm-up run), so the ratio compares the figure [plane] checks with ridepy's."""

_RIDEPY_RUN = """
import itertools, json, sys, time
import numpy as np
from ridepy.fleet_state import SlowSimpleFleetState
from ridepy.vehicle_state_cython import VehicleState
from ridepy.data_structures_cython import TransportationRequest
from ridepy.util.spaces_cython import Euclidean2D
from ridepy.util.dispatchers_cython import BruteForceTotalTravelTimeMinimizingDispatcher
from ridepy.util.request_generators import RandomRequestGenerator

n_requests, n_vehicles, rate, window, seed = json.loads(sys.argv[1])
space = Euclidean2D(velocity=1)
starts = np.random.default_rng(seed).uniform(0.0, 1.0, size=(n_vehicles, 2))
fleet = SlowSimpleFleetState(
    initial_locations={v: tuple(starts[v]) for v in range(n_vehicles)},
    seat_capacities=1,
    space=space,
    dispatcher=BruteForceTotalTravelTimeMinimizingDispatcher(space.loc_type),
    vehicle_state_class=VehicleState,
)
requests = RandomRequestGenerator(
    rate=rate,
    max_pickup_delay=window,
    max_delivery_delay_rel=float("inf"),
    space=space,
    request_class=TransportationRequest,
    seed=seed,
)
c0, w0 = time.process_time(), time.perf_counter()
events = list(fleet.simulate(itertools.islice(requests, n_requests)))
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
kinds = {}
for e in events:
    kind = e["event_type"] if isinstance(e, dict) else type(e).__name__
    kinds[kind] = kinds.get(kind, 0) + 1
print(json.dumps({"cpu_s": cpu, "wall_s": wall, "events": kinds}))
"""


def ridepy_available(python: str) -> str | None:
    """None when ``python`` imports ridepy, else why not (one line)."""
    probe = subprocess.run(
        [python, "-c", "import ridepy.util.dispatchers_cython"],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
    return f"{python} cannot import ridepy's Cython core ({last})"


def run_ridepy(python: str, n_requests: int, seed: int = 1) -> dict[str, Any]:
    """One ridepy simulation of ``n_requests`` in a fresh ``python``: CPU and wall seconds."""
    rate = LOAD * N_VEHICLES / MEAN_DISTANCE
    args = json.dumps([n_requests, N_VEHICLES, rate, MAX_PICKUP_DELAY, seed])
    out = subprocess.run(
        [python, "-c", _RIDEPY_RUN, args], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_plane(n_requests: int, repeats: int = PLANE_REPEATS) -> dict[str, Any]:
    """The plane benchmark's own figure for ``n_requests`` (``bench.bench_plane``: one warm-up
    run, then the median of ``repeats`` timed runs of run_scenario), measured in a fresh
    interpreter like each ridepy run: its CPU and wall seconds, and every timed run's CPU
    seconds. Its verdict against [plane] is not this benchmark's, so its exit status 1 (over
    budget) is a result here, not a failure."""
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "bench.bench_plane", "--requests", str(n_requests)]
    cmd += ["--repeats", str(repeats)]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr[-500:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "cpu_s": figures["cpu_s"],
        "wall_s": figures["wall_s"],
        "cpus_s": figures["sizes"][str(n_requests)]["cpus_s"],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure ridepy (and with ``--with-plane`` the plane run beside it); 1 if over budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--ridepy-python", default=sys.executable, help="an interpreter with ridepy"
    )
    parser.add_argument(
        "--with-plane", action="store_true", help="alternate with the plane benchmark's run"
    )
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error(f"--requests: expected a whole number >= 1, got {args.requests}")
    if args.repeats < 1:
        parser.error(f"--repeats: expected a whole number >= 1, got {args.repeats}")
    if not os.access(args.ridepy_python, os.X_OK) or os.path.isdir(args.ridepy_python):
        parser.error(f"--ridepy-python: not an executable file: {args.ridepy_python}")
    why = ridepy_available(args.ridepy_python)
    if why is not None:
        print(f"ridepy: skipped: {why}")
        print(json.dumps({"benchmark": "ridepy", "skipped": why}))
        return 0
    ridepy_runs: list[dict[str, Any]] = []
    plane_runs: list[dict[str, Any]] = []
    for k in range(args.repeats):
        ridepy_runs.append(run_ridepy(args.ridepy_python, args.requests))
        r = ridepy_runs[-1]
        print(
            f"  ridepy run {k}: {args.requests:,} requests, {r['cpu_s']:.2f} CPU-s, "
            f"{r['wall_s']:.2f} s wall",
            flush=True,
        )
        if args.with_plane:
            plane_runs.append(run_plane(args.requests))
            p = plane_runs[-1]
            runs = ", ".join(f"{c:.2f}" for c in p["cpus_s"])
            print(
                f"  plane  run {k}: {args.requests:,} requests, {p['cpu_s']:.2f} CPU-s, "
                f"{p['wall_s']:.2f} s wall (median of {len(p['cpus_s'])}: {runs})",
                flush=True,
            )
    cpu = statistics.median(r["cpu_s"] for r in ridepy_runs)
    figures: dict[str, Any] = {
        "benchmark": "ridepy",
        "requests": args.requests,
        "ridepy_cpu_s": cpu,
        "ridepy_wall_s": statistics.median(r["wall_s"] for r in ridepy_runs),
        "ridepy_requests_per_cpu_s": args.requests / cpu,
        "ridepy_events": ridepy_runs[-1]["events"],
        "repeats": args.repeats,
        "load_avg": list(os.getloadavg()),
    }
    ok = True
    if plane_runs:
        plane_cpu = statistics.median(p["cpu_s"] for p in plane_runs)
        figures["plane_cpu_s"] = plane_cpu
        figures["plane_sample_cpu_s"] = [p["cpu_s"] for p in plane_runs]
        figures["plane_wall_s"] = statistics.median(p["wall_s"] for p in plane_runs)
        figures["plane_requests_per_cpu_s"] = args.requests / plane_cpu
        figures["plane_over_ridepy"] = cpu / plane_cpu
        print("[ridepy]")
        ok = check("ridepy", {"plane_over_ridepy": figures["plane_over_ridepy"]})
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

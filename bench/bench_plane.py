"""The "plane" benchmark: the setting published dispatch simulators report.

Euclidean unit square, speed 1, 1,000 drivers starting uniformly, uniform origins and
destinations, Poisson arrivals at load 0.8 (rate = 0.8 x 1000 / 0.5214, 0.5214 being the mean
distance between two uniform points), immediate dispatch to the nearest idle driver within a
pickup time of 0.25; a request nobody can reach in time is rejected.

Each size (default 20,000 and 100,000 requests) runs ``run_scenario`` ``--repeats`` times in
this process after one small warm-up run (imports and first-use costs stay out of the figures),
and reports medians of CPU seconds (``time.process_time``: the machine may be shared) and wall
seconds. The budget in bench/budgets.toml [plane] applies to the lowest requests per CPU-second
over the sizes. The last line printed is one JSON object.

    python -m bench.bench_plane [--requests 20000,100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import check
from harness.run import run_scenario
from harness.scenario import Scenario, parse_scenario

MEAN_DISTANCE = 0.5214
WARM_UP_REQUESTS = 1000


def plane_scenario(n_requests: int, n_drivers: int = 1000, load: float = 0.8, seed: int = 1):
    """The benchmark as a scenario: arrival rate per second and horizon for ``n_requests``."""
    rate_per_s = load * n_drivers / MEAN_DISTANCE
    return parse_scenario(
        {
            "name": "plane_benchmark",
            "seed": seed,
            "city": {"kind": "plane", "side_m": 1.0, "speed_mps": 1.0},
            "time": {"start": "00:00", "duration_s": n_requests / rate_per_s},
            "demand": {
                "requests_per_h": rate_per_s * 3600,
                "profile": [1.0] * 24,
                "destinations": "independent",  # uniform origin and destination
            },
            "fleet": {"size": n_drivers},
            "dispatch": {
                "matcher": "immediate_greedy",
                "batch_window_s": 0,
                "max_pickup_eta_s": 0.25,
            },
            # The published setting: everyone requests and accepts, nobody cancels later.
            "riders": {
                "patience_s": 0,
                "patience": "fixed",
                "choice": "always",
                "cancel_after_match": {"base": 0, "per_min": 0},
            },
            "drivers": {"accept": "always"},
        },
        "bench_plane",
    )


def measure(scenario: Scenario, repeats: int, out: Path) -> dict[str, Any]:
    """Medians over ``repeats`` runs of one scenario (CPU and wall seconds of run_scenario)."""
    cpu, wall, events, requests = [], [], [], 0
    for k in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = run_scenario(scenario, source="bench_plane", base_dir=Path("."), out=out / str(k))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        events.append(result.perf["events"])
        requests = int(result.metrics["requests"]["count"])
        m = result.metrics
        print(
            f"  run {k}: {requests:,} requests, {cpu[-1]:.2f} CPU-s, {wall[-1]:.2f} s wall, "
            f"served {m['requests']['completed_share']:.3f}, "
            f"mean wait {m['pickup_wait_s']['mean']:.4f}",
            flush=True,
        )
    cpu_s, wall_s = statistics.median(cpu), statistics.median(wall)
    return {
        "requests": requests,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "requests_per_s": requests / wall_s,
        "requests_per_cpu_s": requests / cpu_s,
        "events_per_s": statistics.median(events) / wall_s,
        "cpus_s": [round(c, 4) for c in cpu],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", default="20000,100000", help="comma-separated sizes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.requests.split(",")]
    by_size: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(
            plane_scenario(WARM_UP_REQUESTS),
            source="bench_plane",
            base_dir=Path("."),
            out=Path(tmp) / "warm-up",
        )
        for n in sizes:
            print(f"plane, {n:,} requests:", flush=True)
            by_size[str(n)] = measure(plane_scenario(n), args.repeats, Path(tmp) / str(n))
    head = by_size[str(sizes[0])]
    figures = {
        **head,
        "requests_per_cpu_s_min_over_sizes": min(f["requests_per_cpu_s"] for f in by_size.values()),
        "sizes": by_size,
        "repeats": args.repeats,
        "load_avg": list(os.getloadavg()),
    }
    print("[plane]")
    ok = check("plane", {"requests_per_cpu_s": figures["requests_per_cpu_s_min_over_sizes"]})
    print(json.dumps(figures))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""The "plane" benchmark: the setting published dispatch simulators report.

Euclidean unit square, speed 1, 1,000 drivers starting uniformly, 100,000 requests with
uniform origins and destinations, Poisson arrivals at load 0.8 (rate = 0.8 x 1000 / 0.5214,
0.5214 being the mean distance between two uniform points), immediate dispatch to the
nearest idle driver within a pickup time of 0.25; a request nobody can reach in time is
rejected. Prints requests per wall-clock second (median of --repeats runs), the served share
and the mean wait, and checks the budget in bench/budgets.toml [plane].

    python -m bench.bench_plane [--requests 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import finish
from harness.run import run_scenario
from harness.scenario import parse_scenario

MEAN_DISTANCE = 0.5214


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scenario = plane_scenario(args.requests)
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            t0 = time.perf_counter()
            result = run_scenario(
                scenario, source="bench_plane", base_dir=Path("."), out=Path(tmp) / str(k)
            )
            total = time.perf_counter() - t0
            m = result.metrics
            n = result.perf["requests_per_s"] * result.perf["sim_wall_s"]
            rates.append(result.perf["requests_per_s"])
            print(
                f"run {k}: {n:,.0f} requests in {result.perf['sim_wall_s']:.2f} s simulation "
                f"({total:.2f} s with city and outputs): "
                f"{result.perf['requests_per_s']:,.0f} requests/s, "
                f"served {m['requests']['completed_share']:.3f}, "
                f"mean wait {m['pickup_wait_s']['mean']:.4f}"
            )
    finish("plane", {"requests_per_s": statistics.median(rates)})


if __name__ == "__main__":
    main()

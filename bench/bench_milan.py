"""The real-city engine benchmark: 6 simulated hours on Milan, ~100,000 requests, 3,000 drivers.

Runs ``bench/scenarios/milan_6h.toml`` (batched assignment every 10 s, the default rider and
driver behaviour) end to end with the travel-time cache (build it first with
``python -m bench.bench_city``, or the first repeat builds it and its city load time shows
that), each repeat in a fresh process so that each peak resident memory is one run's alone.
Prints requests per wall-clock second of simulation (median of --repeats) and the largest
peak memory, and checks both against bench/budgets.toml [city_milan].

    python -m bench.bench_milan [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import load_budget

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "bench" / "scenarios" / "milan_6h.toml"


def one_run(out: str) -> None:
    """Run the scenario once in this process and print its figures as one JSON line."""
    import resource

    from harness.run import run_scenario
    from harness.scenario import load_scenario

    scenario = load_scenario(SCENARIO)
    result = run_scenario(scenario, source=str(SCENARIO), base_dir=SCENARIO.parent, out=Path(out))
    p, m = result.perf, result.metrics
    figures = {
        "city_load_s": p["city_load_s"],
        "sim_wall_s": p["sim_wall_s"],
        "requests_per_s": p["requests_per_s"],
        "events_per_s": p["events_per_s"],
        "matcher_p50_ms": p["matcher"]["p50_ms"],
        "matcher_p99_ms": p["matcher"]["p99_ms"],
        "completed_share": m["requests"]["completed_share"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    print(json.dumps(figures))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-run", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_run:
        one_run(args.one_run)
        return 0
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            proc = subprocess.run(
                [sys.executable, "-m", "bench.bench_milan", "--one-run", f"{tmp}/{k}"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            )
            f = json.loads(proc.stdout.strip().splitlines()[-1])
            runs.append(f)
            print(
                f"run {k}: city load {f['city_load_s']:.1f} s, simulation {f['sim_wall_s']:.1f} s, "
                f"{f['requests_per_s']:,.0f} riders/s, {f['events_per_s']:,.0f} events/s, "
                f"matcher p50 {f['matcher_p50_ms']:.1f} ms p99 {f['matcher_p99_ms']:.1f} ms, "
                f"peak {f['peak_rss_gb']:.2f} GB; completed {f['completed_share']:.3f}"
            )
    measured = {
        "requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
        "peak_rss_gb": max(r["peak_rss_gb"] for r in runs),
    }
    budget = load_budget("city_milan")
    ok = True
    print("[city_milan]")
    for key in ("requests_per_s_min", "peak_rss_gb_max"):
        name = key.rsplit("_", 1)[0]
        value, limit = measured[name], budget[key]
        good = value >= limit if key.endswith("_min") else value <= limit
        ok &= good
        sign = ">=" if key.endswith("_min") else "<="
        print(
            f"  {name:<24} {value:>12.2f}  budget {sign} {limit}  {'ok' if good else 'OVER BUDGET'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

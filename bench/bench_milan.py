"""The real-city engine benchmark: 6 simulated hours on Milan, ~100,000 requests, 3,000 drivers.

Runs ``bench/scenarios/milan_6h.toml`` (batched assignment every 10 s, the default rider and
driver behaviour) end to end with the travel-time cache (build it first with
``python -m bench.bench_city`` or let the first repeat build it; that time is reported apart),
then prints requests per wall-clock second of simulation (median of --repeats) and the peak
resident memory of the process, and checks both against bench/budgets.toml [city_milan].

    python -m bench.bench_milan [--repeats 1]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import load_budget
from sim.run import run_scenario
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "bench" / "scenarios" / "milan_6h.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    scenario = load_scenario(SCENARIO)
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            result = run_scenario(
                scenario, source=str(SCENARIO), base_dir=SCENARIO.parent, out=Path(tmp) / str(k)
            )
            p, m = result.perf, result.metrics
            rates.append(p["requests_per_s"])
            print(
                f"run {k}: city load {p['city_load_s']:.1f} s, simulation {p['sim_wall_s']:.1f} s, "
                f"{p['requests_per_s']:,.0f} riders/s, {p['events_per_s']:,.0f} events/s, "
                f"matcher p50 {p['matcher']['p50_ms']:.1f} ms p99 {p['matcher']['p99_ms']:.1f} ms; "
                f"completed {m['requests']['completed_share']:.3f}"
            )
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    measured = {"requests_per_s": statistics.median(rates), "peak_rss_gb": peak_gb}
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

"""The 10x scale benchmark: a whole city-day at ten times today's load, end to end.

Runs ``bench/scenarios/campo_grande_10x_day.toml`` (about 360,000 riders and 6,500 drivers on
the shipped Campo Grande network, realistic market, batched assignment every 15 s) and checks
its wall time and peak memory against bench/budgets.toml [scale_10x_day]. Prints the headline
KPIs too, so a nightly log shows quality as well as speed.

    python -m bench.bench_scale
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.common import finish
from harness.run import run_scenario
from harness.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "campo_grande_10x_day.toml"


def main() -> None:
    scenario = load_scenario(SCENARIO)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_scenario(
            scenario, source=str(SCENARIO), base_dir=SCENARIO.parent, out=Path(tmp)
        )
        wall = time.perf_counter() - t0
    m, p = result.metrics, result.perf
    print(
        f"{m['requests']['count']:,} requests, {p['events']:,} events in {wall:.1f} s "
        f"({p['events_per_s']:,.0f} events/s); completed {m['requests']['completed_share']:.3f}, "
        f"pickup wait median {m['pickup_wait_s']['p50']:.0f} s"
    )
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    finish("scale_10x_day", {"wall_s": wall, "peak_rss_gb": peak_gb})


if __name__ == "__main__":
    sys.exit(main())

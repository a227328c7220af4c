"""The "sweep" benchmark: does a sweep on two local Dask workers pay off against serial?

Six runs of ``scenarios/grid_small.toml`` (six seeds) as one sweep, twice: short runs (half a
second each) and runs of a few seconds. Each sweep runs in a fresh process (a cold start, as
from the command line: the cluster, its workers and every import are inside the timed part,
only the ``harness.sweep`` import is not), serial (``workers=1``) against two workers, median
of ``--repeats``. Prints wall and CPU seconds and the speed-up, checks [sweep] in
bench/budgets.toml; the last line is one JSON object.

    python -m bench.bench_sweep [--repeats 3] [--short-hours 2] [--long-hours 12]

The machine is 2 cores: a parallel speed-up needs both of them idle, so quote the load average
printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import finish

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = str(ROOT / "scenarios" / "grid_small.toml")
RUNS = 6


def one(hours: float, workers: int) -> dict[str, float]:
    """Time one sweep of RUNS seeds in this (fresh) process."""
    from harness.sweep import run_sweep, sweep_points

    points = sweep_points([SCENARIO], {"time.duration_h": [hours]}, seeds=list(range(RUNS)))
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as out:
        c0 = _cpu()
        t0 = time.perf_counter()
        table = run_sweep(points, Path(out), workers=workers)
        wall = time.perf_counter() - t0
        cpu = _cpu() - c0
    assert len(table) == RUNS and not table.reused.any()
    return {"wall_s": wall, "cpu_s": cpu}


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(hours: float, workers: int, repeats: int) -> dict[str, float]:
    """Median wall and CPU seconds of ``repeats`` sweeps, each in its own process."""
    samples = []
    for _ in range(repeats):
        cmd = [sys.executable, "-m", "bench.bench_sweep", "--one", str(hours), str(workers)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "wall_s": statistics.median(s["wall_s"] for s in samples),
        "cpu_s": statistics.median(s["cpu_s"] for s in samples),
        "walls": [round(s["wall_s"], 2) for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--short-hours", type=float, default=2.0, help="simulated hours, short runs")
    ap.add_argument("--long-hours", type=float, default=12.0, help="simulated hours, long runs")
    ap.add_argument("--one", nargs=2, metavar=("HOURS", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(float(args.one[0]), int(args.one[1]))))
        return 0
    print(f"load average before: {os.getloadavg()}")
    result: dict[str, float] = {}
    for label, hours in (("short", args.short_hours), ("seconds", args.long_hours)):
        serial = measure(hours, 1, args.repeats)
        dask = measure(hours, 2, args.repeats)
        speedup = serial["wall_s"] / dask["wall_s"]
        print(
            f"{label:>8}: {RUNS} runs of {hours:g} h: serial {serial['wall_s']:.2f} s "
            f"(cpu {serial['cpu_s']:.2f}; {serial['walls']}), 2 workers {dask['wall_s']:.2f} s "
            f"(cpu {dask['cpu_s']:.2f}; {dask['walls']}): speed-up {speedup:.2f}x"
        )
        result |= {
            f"{label}_serial_wall_s": serial["wall_s"],
            f"{label}_serial_cpu_s": serial["cpu_s"],
            f"{label}_workers2_wall_s": dask["wall_s"],
            f"{label}_workers2_cpu_s": dask["cpu_s"],
            f"speedup_{label}": speedup,
            f"{label}_run_s": serial["wall_s"] / RUNS,
        }
    result["load_average_after"] = os.getloadavg()[0]
    try:
        finish("sweep", result)
    finally:
        print(json.dumps({k: round(v, 3) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

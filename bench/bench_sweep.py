"""The "sweep" benchmark: does a sweep on two local workers pay off against serial?

Six runs of ``scenarios/grid_small.toml`` (six seeds) as one sweep, twice: short runs (2
simulated hours, about a quarter of a CPU-second each) and runs of a few seconds (24 hours,
about 2.5 CPU-seconds each). Each sweep runs in a fresh process (a cold start, as from the
command line: the workers and every first-call cost are inside the timed part, only the
``harness.sweep`` import is not), serial (``workers=1``) against two workers; the samples
alternate (serial, two workers, ...) so that a change in the machine's load hits both alike,
and the medians of ``--repeats`` are compared. Prints wall and CPU seconds, the speed-up, the
cores each sweep obtained, and where the extra CPU of the parallel sweep goes (the runs, timed
inside each worker, against the rest); checks [sweep] in bench/budgets.toml; the last line is
one JSON object.

    python -m bench.bench_sweep [--repeats 3] [--short-hours 2] [--long-hours 24]

The machine has 2 cores, and Linux shares them between sessions (autogroups), not processes:
while other sessions keep the cores busy, the two workers together get what one serial process
gets, and the speed-up falls to about 1x. Read it with the cores obtained (docs/sweeps.md).
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
from typing import Any

from bench.common import check

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = str(ROOT / "scenarios" / "grid_small.toml")
RUNS = 6


def timed_point(*args: Any) -> dict[str, Any]:
    """``harness.sweep.run_point``, with the CPU seconds of the run (in whichever process it
    ran) added to its row."""
    c0 = time.process_time()
    row = _run_point(*args)
    return {**row, "run_cpu_s": time.process_time() - c0, "run_pid": os.getpid()}


_run_point: Any = None
"""The original ``run_point`` while :func:`timed_point` stands in for it."""


def one(hours: float, workers: int) -> dict[str, float]:
    """Time one sweep of RUNS seeds in this (fresh) process."""
    global _run_point
    # deferred: the import is outside the timed part but inside the fresh process
    from harness import sweep

    # Workers are forked from this process (or import this module by name), so they run the
    # timed stand-in too; it only adds a column to the table.
    _run_point, sweep.run_point = sweep.run_point, timed_point
    points = sweep.sweep_points([SCENARIO], {"time.duration_h": [hours]}, seeds=list(range(RUNS)))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as out:
        c0, own0 = _cpu(), time.process_time()
        t0 = time.perf_counter()
        table = sweep.run_sweep(points, Path(out), workers=workers)
        wall = time.perf_counter() - t0
        cpu, own = _cpu() - c0, time.process_time() - own0
    assert len(table) == RUNS and not table.reused.any()
    runs_cpu = float(table.run_cpu_s.sum())
    busiest = float(table.groupby("run_pid").run_cpu_s.sum().max())
    # On a machine to itself each process has a core: the sweep would take this process's
    # own CPU (with the runs, when it runs them itself) plus the busiest worker's runs.
    idle_wall = own if workers == 1 else own + busiest
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "runs_cpu_s": runs_cpu,
        "idle_wall_s": idle_wall,
        "cores": cpu / wall,
        "load": load,
    }


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def sample(hours: float, workers: int) -> dict[str, float]:
    """One sweep in a fresh process."""
    cmd = [sys.executable, "-m", "bench.bench_sweep", "--one", str(hours), str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(hours: float, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of ``repeats`` serial and two-worker sweeps, taken alternately (the order
    flips each round)."""
    samples: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for r in range(repeats):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            samples[workers].append(sample(hours, workers))
    medians = []
    for workers in (1, 2):
        got = samples[workers]
        med = {k: statistics.median(s[k] for s in got) for k in got[0]}
        med["walls"] = [round(s["wall_s"], 2) for s in got]  # type: ignore[assignment]
        medians.append(med)
    return medians[0], medians[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--short-hours", type=float, default=2.0, help="simulated hours, short runs")
    ap.add_argument("--long-hours", type=float, default=24.0, help="simulated hours, long runs")
    ap.add_argument("--one", nargs=2, metavar=("HOURS", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats: expected a whole number >= 1, got {args.repeats}")
    for flag in ("short_hours", "long_hours"):
        if not getattr(args, flag) > 0:
            ap.error(f"--{flag.replace('_', '-')}: expected hours > 0, got {getattr(args, flag)}")
    if args.one:
        print(json.dumps(one(float(args.one[0]), int(args.one[1]))))
        return 0
    result: dict[str, float] = {"load_average_before": os.getloadavg()[0]}
    print(f"load average before: {os.getloadavg()}")
    for label, hours in (("short", args.short_hours), ("seconds", args.long_hours)):
        serial, two = compare(hours, args.repeats)
        speedup = serial["wall_s"] / two["wall_s"]
        run_ratio = two["runs_cpu_s"] / serial["runs_cpu_s"]
        fixed = two["cpu_s"] - two["runs_cpu_s"]
        idle = serial["idle_wall_s"] / two["idle_wall_s"]
        print(
            f"{label:>8}: {RUNS} runs of {hours:g} h: serial {serial['wall_s']:.2f} s "
            f"(cpu {serial['cpu_s']:.2f}; {serial['walls']}), 2 workers {two['wall_s']:.2f} s "
            f"(cpu {two['cpu_s']:.2f}; {two['walls']}): speed-up {speedup:.2f}x\n"
            f"          cores obtained: serial {serial['cores']:.2f}, 2 workers "
            f"{two['cores']:.2f}; load average {serial['load']:.2f} / {two['load']:.2f}\n"
            f"          CPU of the runs: serial {serial['runs_cpu_s']:.2f} s, in workers "
            f"{two['runs_cpu_s']:.2f} s ({run_ratio:.3f}x); outside the runs: 2 workers "
            f"{fixed:.2f} s, serial {serial['cpu_s'] - serial['runs_cpu_s']:.2f} s\n"
            f"          from CPU seconds, with a core per process: serial "
            f"{serial['idle_wall_s']:.2f} s, 2 workers {two['idle_wall_s']:.2f} s: "
            f"{idle:.2f}x (a model, not the budget)"
        )
        result |= {
            f"{label}_serial_wall_s": serial["wall_s"],
            f"{label}_serial_cpu_s": serial["cpu_s"],
            f"{label}_workers2_wall_s": two["wall_s"],
            f"{label}_workers2_cpu_s": two["cpu_s"],
            f"{label}_run_cpu_ratio": run_ratio,
            f"{label}_workers2_fixed_cpu_s": fixed,
            f"{label}_serial_cores": serial["cores"],
            f"{label}_workers2_cores": two["cores"],
            f"speedup_{label}_cpu_model": idle,
            f"speedup_{label}": speedup,
            f"{label}_run_s": serial["wall_s"] / RUNS,
        }
    result["load_average_after"] = os.getloadavg()[0]
    print("[sweep]")
    ok = check("sweep", result)
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

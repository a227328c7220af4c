"""The nightly command: every benchmark, each in its own process; exit 1 if any is over budget.

Each benchmark's verdict line (on stderr) carries the host's speed before and after it
(:mod:`bench.host`), so a figure over budget in a slow spell of the shared host reads as such.

python -m bench                       # all benchmarks
python -m bench plane                 # some of them (see BENCHMARKS below)
python -m bench city_day --hours 2    # flags after the names go to each benchmark named
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.host import HostBudgetError, describe, fast_reference_s, reference_s, was_slow

BENCHMARKS = {
    "plane": ["bench.bench_plane"],
    "matchers": ["bench.bench_matchers"],
    "city": ["bench.bench_city"],
    "milan": ["bench.bench_milan"],
    "scale": ["bench.bench_scale"],
    "city_day": ["bench.bench_city_day"],
    "sweep": ["bench.bench_sweep"],
    "default_run": ["bench.bench_default_run"],
    "ridepy": ["bench.bench_ridepy", "--with-plane"],
}


def main(argv: list[str]) -> int:
    flags_at = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, flags = argv[:flags_at] or list(BENCHMARKS), argv[flags_at:]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    try:
        fast = fast_reference_s()  # read before any benchmark runs: a bad value stops nothing late
    except HostBudgetError as e:
        print(e, file=sys.stderr)
        return 2
    failed = []
    for name in names:
        # The verdicts go to stderr: each benchmark's own last stdout line is its JSON figures.
        print(f"=== {name}", file=sys.stderr, flush=True)
        before = reference_s()
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", *BENCHMARKS[name], *flags])
        elapsed = time.perf_counter() - t0
        after = reference_s()
        print(
            f"=== {name}: exit {code} after {elapsed:.0f} s; {describe(before, after, fast)}",
            file=sys.stderr,
            flush=True,
        )
        if code != 0:
            failed.append(name + (" (host slow)" if was_slow(before, after, fast) else ""))
    print("over budget or failed: " + (", ".join(failed) if failed else "none"), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The nightly command: every benchmark, each in its own process; exit 1 if any is over budget.

python -m bench            # all benchmarks
python -m bench plane      # some of them: plane, matchers, city, milan, scale
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = {
    "plane": ["bench.bench_plane"],
    "matchers": ["bench.bench_matchers"],
    "city": ["bench.bench_city"],
    "milan": ["bench.bench_milan"],
    "scale": ["bench.bench_scale"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"=== {name}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", *BENCHMARKS[name]])
        print(f"=== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    print("over budget or failed: " + (", ".join(failed) if failed else "none"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

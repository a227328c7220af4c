"""The city benchmark: build Milan's road network and travel-time table, then load it cached.

Milan (``milan_italy_small.osm.pbf``, ~24,000 drivable nodes) is built from the PBF into a fresh
temporary cache (the first-build time: parse, contract, all-pairs Dijkstra, write the 2.2 GB
table), then loaded again from that cache (the cached-load time). Prints both, the table size,
a random-gather rate and peak RSS, and checks the two times against bench/budgets.toml
[city_milan] (its request-rate and memory keys belong to the engine benchmark).

    python -m bench.bench_city [--osm PATH] [--workers N] [--keep]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import load_budget
from cities import load_city
from cities.spec import OsmCity

ROOT = Path(__file__).resolve().parents[1]
MILAN = ROOT.parent / "shared" / "data" / "milan-otp" / "milan_italy_small.osm.pbf"
SECTION = "city_milan"
MEASURED_KEYS = ("first_build_s_max", "cached_load_s_max")


def peak_rss_gb() -> tuple[float, float]:
    """Peak resident set of this process and of its (finished) children, in GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 2**20, kids / 2**20  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osm", type=Path, default=MILAN, help="OSM extract to build")
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache")
    args = parser.parse_args(argv)
    if not args.osm.is_file():
        print(f"bench_city: {args.osm} not found (the shared data folder is not here)")
        return 2

    spec = OsmCity(osm=str(args.osm.resolve()))
    cache = Path(tempfile.mkdtemp(prefix="ridesim-bench-city-"))
    try:
        t0 = time.perf_counter()
        built = load_city(spec, base_dir=ROOT, source="bench", cache_dir=cache)
        first_build = time.perf_counter() - t0
        assert not built.from_cache
        n = built.n_nodes
        del built  # drop the first mapping so the cached load starts clean

        t0 = time.perf_counter()
        space = load_city(spec, base_dir=ROOT, source="bench", cache_dir=cache)
        cached_load = time.perf_counter() - t0
        assert space.from_cache
        own_load, kids = peak_rss_gb()

        rng = np.random.default_rng(0)
        src, dst = rng.integers(0, n, size=(2, 1_000_000))
        t0 = time.perf_counter()
        tt = space.travel_time(src, dst)
        gather = time.perf_counter() - t0
        table_gb = space.table.nbytes / 1e9
        own, _ = peak_rss_gb()

        print(f"city: {args.osm.name}")
        print(f"  access nodes                 {n:>12,}")
        print(f"  road edges                   {space.edge_src.size:>12,}")
        print(f"  table                        {table_gb:>12.2f} GB float32 (memory-mapped)")
        print(f"  first build                  {first_build:>12.1f} s")
        print(f"  cached load                  {cached_load:>12.3f} s")
        print(
            f"  travel_time, 1M random pairs {gather:>12.3f} s (median trip {np.median(tt):.0f} s)"
        )
        print(
            f"  peak RSS after build + load  {own_load:>12.2f} GB (helper processes: {kids:.2f} GB)"
        )
        print(f"  peak RSS after the gathers   {own:>12.2f} GB (table pages touched are resident)")
    finally:
        if args.keep:
            print(f"cache kept in {cache}")
        else:
            shutil.rmtree(cache, ignore_errors=True)

    # Only the keys this benchmark measures: the section's other keys are the engine's.
    budget = load_budget(SECTION)
    measured = {"first_build_s": first_build, "cached_load_s": cached_load}
    print(f"[{SECTION}]")
    ok = True
    for key in MEASURED_KEYS:
        name, limit = key.removesuffix("_max"), budget[key]
        good = measured[name] <= limit
        ok &= good
        verdict = "ok" if good else "OVER BUDGET"
        print(f"  {name:<40} {measured[name]:>12.3f}  budget <= {limit:<10}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The matcher benchmark: wall time of one ``match()`` call per matcher and batch size.

Requests and idle drivers uniform in a 10 km square, straight-line travel at 8 m/s, max pickup
ETA 600 s, k = 20 candidates per request; batch sizes (requests x drivers) 100x500,
1,000x5,000 and 5,000x25,000. Prints the median of several calls per cell (fewer at the
largest size), plus the single-request immediate-greedy call the engine makes on every
arrival, and checks the assignment matcher against bench/budgets.toml [matchers].

    python -m bench.bench_matchers [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from bench.common import check, median_time
from matching.api import CandidateDrivers, DriverState, MatchRequest, OpenRequests
from matching.registry import make_matcher, matcher_params

SIDE_M = 10_000.0
SPEED_MPS = 8.0
MAX_PICKUP_ETA_S = 600.0
K = 20
SIZES = [(100, 500), (1_000, 5_000), (5_000, 25_000)]
MATCHERS = [
    ("immediate_greedy", {}),
    ("batched_greedy", {"k": K}),
    ("assignment", {"k": K}),  # the default backend, which the budget is about
    ("assignment", {"k": K, "backend": "scipy"}),
]


def uniform_batch(n_requests: int, n_drivers: int, seed: int) -> MatchRequest:
    """A batch on the plane: every point is its own node; travel time is distance / 8 m/s."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, SIDE_M, size=(2 * n_requests + n_drivers, 2))

    def travel_time(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        d = xy[src] - xy[dst]
        return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2) / SPEED_MPS

    t = 3600.0
    pick = np.arange(n_requests)
    drop = n_requests + pick
    drv = 2 * n_requests + np.arange(n_drivers)
    requests = OpenRequests(
        id=pick,
        pickup_node=pick,
        dropoff_node=drop,
        pickup_xy=xy[pick],
        dropoff_xy=xy[drop],
        requested_at=t - rng.uniform(0.0, 30.0, n_requests),
        quoted_price=np.full(n_requests, 12.0),
        patience_s=np.full(n_requests, 300.0),
    )
    drivers = CandidateDrivers(
        id=np.arange(n_drivers),
        node=drv,
        xy=xy[drv],
        state=np.full(n_drivers, DriverState.IDLE),
        free_at=np.full(n_drivers, t),
        earnings=np.zeros(n_drivers),
        online_s=np.zeros(n_drivers),
    )
    return MatchRequest(
        decision_time=t,
        batch_id=0,
        shard_id=0,
        requests=requests,
        drivers=drivers,
        max_pickup_eta_s=MAX_PICKUP_ETA_S,
        seed=seed,
        travel_time=travel_time,
        max_speed_mps=SPEED_MPS,
    )


def _label(name: str, params: dict) -> str:
    backend = params.get("backend")
    return f"{name}[{backend}]" if backend else name


def main(argv: list[str] | None = None) -> int:
    """Time every matcher at every size, print medians, check the budgets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="calls per cell (small sizes)")
    args = parser.parse_args(argv)

    measured: dict[str, float] = {}
    print(f"median ms per match() call; k={K}, max pickup ETA {MAX_PICKUP_ETA_S:.0f} s")
    header = f"{'matcher':<22}" + "".join(f"{f'{r}x{d}':>14}" for r, d in SIZES)
    print(header)
    # Medians, not means: other work on the machine only ever adds time.
    batches = {size: uniform_batch(*size, seed=i) for i, size in enumerate(SIZES)}
    for name, params in MATCHERS:
        matcher = make_matcher(name, params)
        row = f"{_label(name, matcher_params(matcher)):<22}"
        for (n_req, n_drv), request in batches.items():
            repeats = max(3, args.repeats // 3) if n_req >= 5_000 else args.repeats
            matcher.match(request)  # warm-up: imports, first-call allocations
            med, _ = median_time(lambda m=matcher, q=request: m.match(q), repeats)
            row += f"{med * 1e3:>14.2f}"
            if name == "assignment" and "backend" not in params:
                measured[f"assignment_{n_req}x{n_drv}_ms"] = med * 1e3
        print(row)

    single = uniform_batch(1, 1_000, seed=99)
    greedy = make_matcher("immediate_greedy", {})
    greedy.match(single)
    med, _ = median_time(lambda: greedy.match(single), 2_000)
    print(f"immediate_greedy, 1 request x 1,000 idle drivers: {med * 1e6:.1f} us median")
    print("[matchers]")
    ok = check("matchers", measured)
    # The last line: every figure as one JSON object, for machines.
    figures = {k: round(v, 3) for k, v in measured.items()}
    figures["immediate_greedy_1x1000_us"] = round(med * 1e6, 2)
    print(json.dumps({"benchmark": "matchers", **figures}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

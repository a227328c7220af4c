"""Real matcher batches, captured from the city-day run and replayed alone.

``capture`` runs ``bench/scenarios/milan_10x_day.toml`` (the city-day benchmark's scenario) for
``--hours`` from ``--start`` and writes every ``--every``-th assignment call with at least
``--min-requests`` requests as one ``.npz`` file: the snapshot's request and driver columns,
its decision time, seed, limits and the congestion factor of its travel times.

``replay`` rebuilds each captured request on the same cached city (travel times and zone
bounds as the engine passes them) and times ``candidate_pairs`` and ``Assignment.match`` on it
alone: CPU milliseconds per call (median of ``--repeats``), beside a digest of the candidate
pairs and one of the response, so two versions of the code can be compared batch by batch (the
same digests: the same answers). The last line printed is one JSON object with the totals.

    python -m bench.bench_batches capture DIR [--hours 0.5] [--start 08:00] [--every 6]
    python -m bench.bench_batches replay DIR [--repeats 3]

Not part of the nightly ``python -m bench`` set: it is a tool for work on the matcher path.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_city_day import DATA, MILAN, SCENARIO
from cities import load_city
from harness.run import run_scenario
from harness.scenario import Scenario, load_scenario
from matching.api import CandidateDrivers, EtaBounds, MatchRequest, OpenRequests
from matching.candidates import candidate_pairs
from matching.matchers import assignment as assignment_mod

REQUEST_COLUMNS = tuple(f.name for f in fields(OpenRequests))
DRIVER_COLUMNS = tuple(f.name for f in fields(CandidateDrivers))


def save_batch(path: Path, request: MatchRequest) -> None:
    """One snapshot as ``.npz``: its columns, scalars and the factor its travel times carry
    over the free-flow table (1 under free flow)."""
    factor = float(getattr(request.travel_time, "factor", 1.0))
    columns = {f"r_{c}": getattr(request.requests, c) for c in REQUEST_COLUMNS}
    columns.update({f"d_{c}": getattr(request.drivers, c) for c in DRIVER_COLUMNS})
    np.savez(
        path,
        decision_time=request.decision_time,
        batch_id=request.batch_id,
        shard_id=request.shard_id,
        seed=request.seed,
        max_pickup_eta_s=request.max_pickup_eta_s,
        max_speed_mps=request.max_speed_mps,
        factor=factor,
        **columns,
    )


def load_batch(
    path: Path,
    travel_time: Callable[[np.ndarray, np.ndarray], np.ndarray],
    bounds: EtaBounds | None,
) -> MatchRequest:
    """The snapshot saved in ``path``, on free-flow ``travel_time`` (with ``bounds`` on it),
    scaled by the saved factor exactly as the engine scales them."""
    with np.load(path) as z:
        requests = OpenRequests(**{c: z[f"r_{c}"] for c in REQUEST_COLUMNS})
        drivers = CandidateDrivers(**{c: z[f"d_{c}"] for c in DRIVER_COLUMNS})
        factor = float(z["factor"])
        decision_time = float(z["decision_time"])
        ids = {k: int(z[k]) if k in z.files else 0 for k in ("batch_id", "shard_id", "seed")}
        max_pickup_eta_s = float(z["max_pickup_eta_s"])
        max_speed_mps = float(z["max_speed_mps"])
    tt = travel_time
    if factor != 1.0:

        def tt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            scaled: np.ndarray = travel_time(a, b) * factor
            return scaled

    return MatchRequest(
        decision_time=decision_time,
        batch_id=ids["batch_id"],
        shard_id=ids["shard_id"],
        requests=requests,
        drivers=drivers,
        max_pickup_eta_s=max_pickup_eta_s,
        seed=ids["seed"],
        travel_time=tt,
        max_speed_mps=max_speed_mps,
        eta_bounds=None if bounds is None else bounds.scaled(factor),
    )


def _scenario(hours: float, start: str, data: Path) -> Scenario:
    overrides = {"city.osm": str((data / MILAN).resolve()), "time.duration_h": hours}
    return load_scenario(SCENARIO, overrides={**overrides, "time.start": start})


def capture(out: Path, hours: float, start: str, every: int, min_requests: int, data: Path) -> int:
    """Run the scenario and save every ``every``-th large enough assignment call; the count."""
    out.mkdir(parents=True, exist_ok=True)
    original = assignment_mod.Assignment.match
    calls = [0, 0]

    def match(self: assignment_mod.Assignment, request: MatchRequest) -> Any:
        calls[0] += 1
        if len(request.requests) >= min_requests and calls[0] % every == 0:
            save_batch(out / f"b{request.batch_id:06d}_s{request.shard_id}.npz", request)
            calls[1] += 1
        return original(self, request)

    assignment_mod.Assignment.match = match  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scenario = _scenario(hours, start, data)
            run_scenario(scenario, source=str(SCENARIO), base_dir=SCENARIO.parent, out=Path(tmp))
    finally:
        assignment_mod.Assignment.match = original  # type: ignore[method-assign]
    (out / "capture.json").write_text(
        json.dumps({"hours": hours, "start": start, "every": every, "batches": calls[1]}) + "\n"
    )
    return calls[1]


def digest(*arrays: np.ndarray) -> str:
    """Short sha256 of the arrays' bytes, in order."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _cpu_ms(fn: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        samples.append(time.process_time() - c0)
    return 1e3 * statistics.median(samples)


def replay(folder: Path, repeats: int, data: Path, k: int = 20) -> dict[str, Any]:
    """Time candidate generation and the assignment matcher on every batch in ``folder``."""
    files = sorted(folder.glob("b*.npz"))
    scenario = _scenario(1.0, "00:00", data)
    space = load_city(scenario.city, base_dir=SCENARIO.parent, source=str(SCENARIO))
    zone_bounds = getattr(space, "zone_bounds", None)
    bounds = EtaBounds(*zone_bounds()) if zone_bounds is not None else None
    matcher = assignment_mod.Assignment(k=k)
    total_c = total_m = 0.0
    rows: list[dict[str, Any]] = []
    digests: list[str] = []
    for path in files:
        request = load_batch(path, space.travel_time, bounds)
        pairs = candidate_pairs(request, k)
        response = matcher.match(request)
        c_ms = _cpu_ms(functools.partial(candidate_pairs, request, k), repeats)
        m_ms = _cpu_ms(functools.partial(matcher.match, request), repeats)
        total_c += c_ms
        total_m += m_ms
        row = {
            "batch": path.stem,
            "requests": len(request.requests),
            "drivers": len(request.drivers),
            "pairs": len(pairs),
            "candidates_ms": round(c_ms, 2),
            "match_ms": round(m_ms, 2),
            "pairs_digest": digest(pairs.request_row, pairs.driver_row, pairs.pickup_eta_s),
            "response_digest": digest(
                response.request_id, response.driver_id, response.pickup_eta_s
            ),
        }
        rows.append(row)
        digests.append(str(row["response_digest"]))
        print(
            f"{row['batch']:<16} {row['requests']:>6} x {row['drivers']:>6}  pairs "
            f"{row['pairs']:>7}  candidates {c_ms:8.2f} ms  match {m_ms:8.2f} ms  "
            f"{row['pairs_digest']} {row['response_digest']}"
        )
    every = hashlib.sha256(" ".join(digests).encode()).hexdigest()[:16]
    return {
        "benchmark": "batches",
        "batches": len(rows),
        "candidates_cpu_s": round(total_c / 1e3, 3),
        "match_cpu_s": round(total_m / 1e3, 3),
        "assignment_cpu_s": round((total_m - total_c) / 1e3, 3),
        "responses_digest": every,
    }


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="run the city-day scenario and save batches")
    cap.add_argument("out", type=Path)
    cap.add_argument("--hours", type=float, default=0.5)
    cap.add_argument("--start", default="08:00")
    cap.add_argument("--every", type=_positive_int, default=6)
    cap.add_argument("--min-requests", type=_positive_int, default=100)
    rep = sub.add_parser("replay", help="time the matcher on saved batches")
    rep.add_argument("folder", type=Path)
    rep.add_argument("--repeats", type=_positive_int, default=3)
    for p in (cap, rep):
        p.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    args = parser.parse_args(argv)
    if args.command == "capture" and not 0 < args.hours <= 24:
        parser.error(f"--hours: expected a number in (0, 24], got {args.hours}")
    if args.command == "replay" and not any(args.folder.glob("b*.npz")):
        parser.error(f"replay: no captured batches (b*.npz) in {args.folder}")
    if not (args.data / MILAN).is_file():
        reason = f"Milan extract not found at {args.data / MILAN}"
        print(f"skipped: {reason}")
        print(json.dumps({"benchmark": "batches", "skipped": reason}))
        return 0
    if args.command == "capture":
        n = capture(args.out, args.hours, args.start, args.every, args.min_requests, args.data)
        print(json.dumps({"benchmark": "batches", "captured": n, "folder": str(args.out)}))
        return 0
    print(json.dumps(replay(args.folder, args.repeats, args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

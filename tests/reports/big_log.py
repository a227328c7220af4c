"""A large synthetic event log (vectorised) and a peak-memory probe for the KPI code.

Not a test module: ``test_memory.py`` runs the probe in a subprocess on a small log, and the
full-size check is run by hand::

    .venv/bin/python tests/reports/big_log.py 8000000

which writes a log of about that many rows to a temporary directory, then measures the peak
resident memory of a fresh interpreter computing ``metrics.json`` from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.schemas import EVENTS_SCHEMA  # noqa: E402

ROWS_PER_RIDER = 6.6  # measured mean of the mix below, drivers' rows included


def big_events(n_rows: int, horizon_s: float = 86_400.0, seed: int = 0) -> pa.Table:
    """About ``n_rows`` events of a plausible day: quotes (15% declined), requests, offers with
    declines and timeouts, assigns, pickups, dropoffs with fares, cancellations of every reason,
    repositioning and shifts. Times are consistent per rider; drivers are drawn at random (the
    driver-side intervals are plausible in total, not a faithful schedule)."""
    rng = np.random.default_rng(seed)
    n = max(10, int(n_rows / ROWS_PER_RIDER))
    n_drv = max(5, n // 50)
    t0 = np.sort(rng.uniform(0, horizon_s * 0.97, n))
    rid = np.arange(n, dtype=np.int64)
    drv = rng.integers(n_drv, size=n)
    pick = rng.integers(10_000, size=n)
    drop = rng.integers(10_000, size=n)
    fare = rng.uniform(5, 40, n)
    u = rng.random(n)
    declined_quote = u < 0.15
    req = ~declined_quote
    no_driver = req & (u < 0.17)
    patience = req & (u >= 0.17) & (u < 0.22)
    served = req & (u >= 0.22)
    n_dec = np.where(served, rng.integers(0, 3, n), 0)  # declines before the accepted offer
    after_match = served & (rng.random(n) < 0.04)
    eta = rng.uniform(60, 600, n)
    actual = eta * rng.uniform(0.8, 1.4, n)
    ride = rng.uniform(300, 1800, n)

    parts: list[dict[str, np.ndarray]] = []

    def add(m, t, kind, rider=None, driver=None, node=None, dest=None, value=None, fare_=None,
            detail=None) -> None:  # fmt: skip
        k = int(m.sum())

        def col(x, dtype):
            if x is None:
                return np.full(k, -1 if dtype == np.int64 else np.nan, dtype=dtype)
            return np.broadcast_to(np.asarray(x), m.shape)[m].astype(dtype)

        parts.append(
            {
                "t": col(t, np.float64),
                "kind": np.full(k, kind, dtype=object),
                "rider": col(rider, np.int64),
                "driver": col(driver, np.int64),
                "node": col(node, np.int64),
                "dest_node": col(dest, np.int64),
                "value": col(value, np.float64),
                "fare": col(fare_, np.float64),
                "detail": np.full(k, detail, dtype=object)
                if detail is None or isinstance(detail, str)
                else np.asarray(detail, dtype=object)[m],
            }
        )

    every = np.ones(n, dtype=bool)
    add(every, t0, "quote", rid, None, pick, drop, eta, fare,
        np.where(declined_quote, "decline", "request"))  # fmt: skip
    add(req, t0, "request", rid, None, pick, drop, ride * 0.9, fare)
    add(no_driver, t0, "cancel", rid, None, pick, detail="no_driver")
    add(patience, t0 + rng.uniform(60, 300, n), "cancel", rid, None, pick, detail="patience")
    t_offer = t0 + 5.0
    for i in range(2):
        m = n_dec > i
        add(m, t_offer, "offer", rid, drv, pick, pick, eta, detail="1")
        add(m, t_offer + 8.0, "decline", rid, drv, pick, detail="declined" if i else "timeout")
        t_offer = np.where(m, t_offer + 10.0, t_offer)
    add(served, t_offer, "offer", rid, drv, pick, pick, eta, detail="2")
    ta = t_offer + 5.0
    add(served, ta, "assign", rid, drv, pick, pick, eta, detail="2")
    add(after_match, ta + 0.5 * actual, "cancel", rid, drv, pick, detail="after_match")
    done = served & ~after_match
    add(done, ta + actual, "pickup", rid, drv, pick, value=actual)
    add(done, ta + actual + ride, "dropoff", rid, drv, drop, value=ride, fare_=fare)
    d = np.arange(n_drv, dtype=np.int64)
    alld = np.ones(n_drv, dtype=bool)
    add(alld, rng.uniform(0, 3600, n_drv), "driver_online", None, d, d)
    add(alld, rng.uniform(horizon_s - 3600, horizon_s, n_drv), "driver_offline", None, d, d)
    n_rep = n // 10
    rep_d = rng.integers(n_drv, size=n_rep)
    add(np.ones(n_rep, dtype=bool), rng.uniform(0, horizon_s, n_rep), "reposition", None, rep_d,
        rep_d, rep_d + 1, rng.uniform(60, 600, n_rep))  # fmt: skip

    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(cols["t"], kind="stable")
    arrays = {"seq": pa.array(np.arange(order.size, dtype=np.int64))}
    for k in ("t", "kind", "rider", "driver", "node", "dest_node", "value", "fare", "detail"):
        v = cols[k][order]
        if v.dtype == np.int64:
            arrays[k] = pa.array(v, mask=v < 0)
        elif v.dtype == np.float64:
            arrays[k] = pa.array(v, mask=np.isnan(v) if k != "t" else None)
        else:
            arrays[k] = pa.array(v.tolist(), pa.string())
    return pa.table(arrays, schema=EVENTS_SCHEMA)


def write_big_run(run_dir: Path, n_rows: int, horizon_s: float = 86_400.0) -> Path:
    """A run directory (manifest + events) holding :func:`big_events`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(big_events(n_rows, horizon_s), run_dir / "events.parquet", compression="zstd")
    manifest = {
        "run_id": "big",
        "scenario": {"name": "big", "seed": 0, "time": {"start": "00:00", "duration_s": horizon_s}},
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec, so a child
# of a big parent would report the parent's peak.
HWM = "int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024.0"
PROBE = """
import sys, time
sys.path.insert(0, {root!r})
from reports.kpis import write_metrics
t0 = time.perf_counter()
write_metrics({run!r})
wall = time.perf_counter() - t0
print({hwm}, wall)
"""


def peak_rss_mb(run_dir: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of a fresh interpreter running write_metrics on ``run_dir``."""
    code = PROBE.format(root=str(ROOT), run=str(run_dir), hwm=HWM)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    mb, wall = out.stdout.split()[-2:]
    return float(mb), float(wall)


def baseline_rss_mb() -> float:
    """Peak RSS of a fresh interpreter that only imports the reports package."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import reports.kpis, reports.zones, "
        "reports.replay, reports.surge, reports.slo, reports.run; "
        f"print({HWM})"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


if __name__ == "__main__":
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 8_000_000
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run = write_big_run(Path(tmp) / "run", rows)
        n = pq.ParquetFile(run / "events.parquet").metadata.num_rows
        print(f"wrote {n:,} rows in {time.perf_counter() - t:.1f} s")
        mb, wall = peak_rss_mb(run)
        print(f"write_metrics: peak RSS {mb:,.0f} MB, {wall:.1f} s")
        print(f"(interpreter + imports alone: {baseline_rss_mb():,.0f} MB)")

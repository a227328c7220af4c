"""Replay fidelity: how closely simulated trips reproduce the recorded trips they replay.

A replayed run writes ``trips.parquet`` with one row per rider: ``rider`` (int64) and
``recorded_trip_s`` (float64, the trip's recorded duration; NaN when unknown). For every
completed ride with a known, positive recorded duration, the simulated in-vehicle seconds
(``dropoff.value``) are compared with it: the median ratio simulated / recorded (1 = the
simulated city drives as fast as the real one), Pearson and Spearman correlation (do long
trips stay long?), mean absolute error and bias. The ``replay`` section is absent when the run
directory has no ``trips.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from core.errors import InputError

REQUIRED = ("rider", "recorded_trip_s")


def replay_kpis(run_dir: Path, riders: pd.DataFrame) -> dict[str, Any] | None:
    """The ``replay`` section of a run directory, or None without ``trips.parquet``."""
    from reports.run import load_trips

    trips = load_trips(run_dir)
    if trips is None:
        return None
    missing = [c for c in REQUIRED if c not in trips.column_names]
    if missing:
        raise InputError(
            str(Path(run_dir) / "trips.parquet"), "", f"missing column(s) {', '.join(missing)}"
        )
    return replay_fidelity(trips, riders)


def pairs(trips: pa.Table, riders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(simulated, recorded) in-vehicle seconds of completed rides with a recorded duration."""
    rid = trips["rider"].to_numpy(zero_copy_only=False)
    rec = trips["recorded_trip_s"].to_numpy(zero_copy_only=False).astype(np.float64)
    ok_id = ~pd.isna(rid)
    rid, rec = rid[ok_id].astype(np.int64), rec[ok_id]
    rid, first = np.unique(rid, return_index=True)  # one recorded duration per rider
    rec = rec[first]
    keys = riders.index.to_numpy()
    if keys.size == 0 or rid.size == 0:
        return np.zeros(0), np.zeros(0)
    pos = np.minimum(np.searchsorted(keys, rid), keys.size - 1)
    found = keys[pos] == rid
    completed = (riders["outcome"] == "completed").to_numpy()
    sim = np.where(found & completed[pos], riders["trip_s"].to_numpy()[pos], np.nan)
    keep = np.isfinite(sim) & np.isfinite(rec) & (rec > 0)
    return sim[keep], rec[keep]


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float | None:  # noqa: ANN001
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(fn(a, b)[0])


def replay_fidelity(trips: pa.Table, riders: pd.DataFrame) -> dict[str, Any]:
    """Counts, ratio quantiles, correlations and errors of simulated vs recorded trip times."""
    rec_all = trips["recorded_trip_s"].to_numpy(zero_copy_only=False).astype(np.float64)
    sim, rec = pairs(trips, riders)
    ratio = sim / rec
    err = sim - rec
    has = sim.size > 0
    p10, p50, p90 = np.percentile(ratio, [10, 50, 90]) if has else (None, None, None)
    return {
        "trips_in_file": int(trips.num_rows),
        "with_recorded_time": int((np.isfinite(rec_all) & (rec_all > 0)).sum()),
        "compared": int(sim.size),
        "median_ratio": p50,
        "p10_ratio": p10,
        "p90_ratio": p90,
        "pearson": _corr(stats.pearsonr, sim, rec),
        "spearman": _corr(stats.spearmanr, sim, rec),
        "mean_simulated_s": float(sim.mean()) if has else None,
        "mean_recorded_s": float(rec.mean()) if has else None,
        "mae_s": float(np.abs(err).mean()) if has else None,
        "bias_s": float(err.mean()) if has else None,
    }

"""Replay fidelity: how closely simulated trips reproduce the recorded trips they replay.

A replayed run writes ``trips.parquet`` with one row per rider: ``rider`` (int64), its
``pickup_node`` and ``dropoff_node`` and ``recorded_trip_s`` (float64, the trip's recorded
duration; NaN when unknown). A trip is compared when it was completed in the simulation, has a
known recorded duration within ``[MIN_RECORDED_S, MAX_RECORDED_S]`` and its ends are on two
different nodes (on one node the simulated ride takes 0 s: nothing to compare). Every other
trip is counted under the reason it was excluded; trips dropped before the run (ends outside
the network's area, see the manifest's demand statistics) are counted too.

For the compared trips, with ratio = simulated / recorded in-vehicle seconds: the median
absolute % error ``median(|ratio - 1|)``, the bias (median ratio - 1, in %), quantiles of the
ratio, Spearman and Pearson correlations of log times (do long trips stay long?), and the
older figures kept for comparison (Pearson on seconds, mean absolute error, bias in seconds).
The ``replay`` section is absent when the run directory has no ``trips.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cities.travel import fit_figures
from core.errors import InputError
from reports.run import load_trips

REQUIRED = ("rider", "recorded_trip_s")
MIN_RECORDED_S = 60.0
"""Recorded rides shorter than this are not compared (meter slips, cancelled trips)."""
MAX_RECORDED_S = 4 * 3600.0
"""Recorded rides longer than this are not compared (meters left running)."""


def replay_kpis(run_dir: Path, riders: pd.DataFrame) -> dict[str, Any] | None:
    """The ``replay`` section of a run directory, or None without ``trips.parquet``."""
    trips = load_trips(run_dir)
    if trips is None:
        return None
    missing = [c for c in REQUIRED if c not in trips.column_names]
    if missing:
        raise InputError(
            str(Path(run_dir) / "trips.parquet"), "", f"missing column(s) {', '.join(missing)}"
        )
    manifest = Path(run_dir) / "manifest.json"
    demand = json.loads(manifest.read_text()).get("demand") if manifest.is_file() else None
    return replay_fidelity(trips, riders, demand)


def comparison(trips: pa.Table, riders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict]:
    """(simulated, recorded) in-vehicle seconds of the compared trips and the count of
    trips excluded for each reason (see the module doc)."""
    rid = trips["rider"].to_numpy(zero_copy_only=False)
    rec = trips["recorded_trip_s"].to_numpy(zero_copy_only=False).astype(np.float64)
    names = trips.column_names
    same = np.zeros(rid.shape[0], dtype=bool)
    if "pickup_node" in names and "dropoff_node" in names:
        same = trips["pickup_node"].to_numpy(zero_copy_only=False) == trips[
            "dropoff_node"
        ].to_numpy(zero_copy_only=False)
    ok_id = ~pd.isna(rid)
    rid, rec, same = rid[ok_id].astype(np.int64), rec[ok_id], same[ok_id]
    rid, first = np.unique(rid, return_index=True)  # one recorded duration per rider
    rec, same = rec[first], same[first]
    keys = riders.index.to_numpy()
    sim = np.full(rid.shape[0], np.nan)
    if keys.size and rid.size:
        pos = np.minimum(np.searchsorted(keys, rid), keys.size - 1)
        found = keys[pos] == rid
        completed = (riders["outcome"] == "completed").to_numpy()
        sim = np.where(found & completed[pos], riders["trip_s"].to_numpy()[pos], np.nan)
    known = np.isfinite(rec) & (rec > 0)
    reasons = {
        "no_recorded_time": ~known,
        "same_node": known & same,
        "recorded_under_min": known & ~same & (rec < MIN_RECORDED_S),
        "recorded_over_max": known & ~same & (rec > MAX_RECORDED_S),
    }
    left = known & ~same & (rec >= MIN_RECORDED_S) & (rec <= MAX_RECORDED_S)
    reasons["not_completed"] = left & ~np.isfinite(sim)
    keep = left & np.isfinite(sim) & (sim > 0)
    reasons["simulated_zero"] = left & np.isfinite(sim) & (sim <= 0)
    return sim[keep], rec[keep], {k: int(v.sum()) for k, v in reasons.items()}


def pairs(trips: pa.Table, riders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(simulated, recorded) in-vehicle seconds of the compared trips."""
    sim, rec, _ = comparison(trips, riders)
    return sim, rec


def _corr(name: str, a: np.ndarray, b: np.ndarray) -> float | None:
    """``scipy.stats.<name>(a, b)``'s statistic, None for fewer than 3 or constant values."""
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    # deferred: scipy.stats costs ~0.5 s to import; synthetic runs have nothing to correlate
    from scipy import stats

    return float(getattr(stats, name)(a, b)[0])


def replay_fidelity(
    trips: pa.Table, riders: pd.DataFrame, demand_stats: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The fidelity figures of simulated vs recorded trip times (see the module doc)."""
    rec_all = trips["recorded_trip_s"].to_numpy(zero_copy_only=False).astype(np.float64)
    with_recorded = int((np.isfinite(rec_all) & (rec_all > 0)).sum())
    if with_recorded == 0:
        # Nothing recorded to judge (synthetic demand): only the counts and empty figures
        # (nothing to compare, so the comparison is skipped).
        counts = {"trips_in_file": int(trips.num_rows), "with_recorded_time": 0, "compared": 0}
        return {k: counts.get(k) for k in _WITHOUT_RECORDS}
    sim, rec, excluded = comparison(trips, riders)
    stats = demand_stats or {}
    if "dropped_outside_area" in stats:
        excluded = {"outside_area_before_run": int(stats["dropped_outside_area"]), **excluded}
    figs = fit_figures(sim, rec)
    err = sim - rec
    has = sim.size > 0
    out = {
        "trips_in_file": int(trips.num_rows),
        "with_recorded_time": with_recorded,
        "compared": int(sim.size),
        "excluded": excluded,
        "recorded_s_range": [MIN_RECORDED_S, MAX_RECORDED_S],
        "median_abs_pct_error": figs["median_abs_pct_error"],
        "bias_pct": figs["bias_pct"],
        "median_ratio": figs["ratio_p50"],
        "p10_ratio": figs["ratio_p10"],
        "p25_ratio": figs.get("ratio_p25"),
        "p75_ratio": figs.get("ratio_p75"),
        "p90_ratio": figs["ratio_p90"],
        "spearman": _corr("spearmanr", sim, rec),
        "pearson_log": figs["pearson_log"],
        "pearson": _corr("pearsonr", sim, rec),
        "mean_simulated_s": float(sim.mean()) if has else None,
        "mean_recorded_s": float(rec.mean()) if has else None,
        "mae_s": float(np.abs(err).mean()) if has else None,
        "bias_s": float(err.mean()) if has else None,
    }
    return out


_WITHOUT_RECORDS = (
    "trips_in_file",
    "with_recorded_time",
    "compared",
    "median_ratio",
    "p10_ratio",
    "p90_ratio",
    "pearson",
    "spearman",
    "mean_simulated_s",
    "mean_recorded_s",
    "mae_s",
    "bias_s",
)
"""The keys of a section whose trips have no recorded time (synthetic demand)."""


def fidelity_rows(r: dict[str, Any] | None) -> list[list[str]]:
    """The report's rows for a ``replay`` section (empty without one)."""
    if not r:
        return []

    def num(v: float | None, fmt: str = "{:.3f}") -> str:
        return "—" if v is None else fmt.format(v)

    rows = [
        ["replayed trips in the file", f"{r.get('trips_in_file', 0):,}"],
        ["compared (completed, recorded time, two distinct nodes)", f"{r.get('compared', 0):,}"],
        ["median absolute error of ride time", num(r.get("median_abs_pct_error"), "{:.1f}%")],
        ["bias (median simulated / recorded - 1)", num(r.get("bias_pct"), "{:+.1f}%")],
        ["median simulated / recorded trip time", num(r.get("median_ratio"))],
        [
            "ratio quantiles 10% / 25% / 75% / 90%",
            " / ".join(num(r.get(k)) for k in ("p10_ratio", "p25_ratio", "p75_ratio", "p90_ratio")),
        ],
        ["rank correlation (Spearman)", num(r.get("spearman"))],
        ["correlation of log times (Pearson)", num(r.get("pearson_log"))],
    ]
    for reason, n in (r.get("excluded") or {}).items():
        rows.append([f"excluded: {reason.replace('_', ' ')}", f"{n:,}"])
    return rows

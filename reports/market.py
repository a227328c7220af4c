"""Funnel, market time series and driver-income fairness KPIs (sections of ``metrics.json``).

* ``funnel``: requests -> matched -> picked up -> completed, each stage's count and share of
  requests, and where riders were lost (cancellations by reason and by stage).
* ``market``: per time bin, requests / completed / cancelled counts and the time-averaged
  number of drivers online, idle, driving to a pickup and carrying a rider.
* ``fairness``: driver income per online hour (mean, Gini, p10/p50/p90, Lorenz curve at
  deciles). Income is the dropoff fare when the event log carries fares; until then it is the
  driver's in-vehicle (paid) seconds, the earnings proxy (``income_basis`` says which).
  Drivers online less than ``MIN_ONLINE_S`` are left out: a few minutes online give
  meaningless hourly rates.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from reports.kpis import Columns, Intervals

MIN_ONLINE_S = 600.0
BIN_CHOICES_S = (60, 300, 900, 1800, 3600, 7200, 14400)
MAX_BINS = 96


def bin_width(horizon_s: float) -> int:
    """The smallest round bin width that cuts the horizon into at most ``MAX_BINS`` bins."""
    for b in BIN_CHOICES_S:
        if horizon_s / b <= MAX_BINS:
            return b
    return int(math.ceil(horizon_s / MAX_BINS))


def market_kpis(
    c: Columns, riders: pd.DataFrame, drivers: pd.DataFrame, horizon_s: float
) -> dict[str, Any]:
    """The ``funnel``, ``market`` and ``fairness`` sections."""
    return {
        "funnel": funnel(riders),
        "market": timeseries(c, riders, horizon_s),
        "fairness": fairness(drivers, income_basis(c)),
    }


def funnel(riders: pd.DataFrame) -> dict[str, Any]:
    """Stage counts and shares, and cancellations by reason and by the stage they happened in."""
    n = len(riders)
    matched = np.isfinite(riders["assign_t"].to_numpy())
    picked = np.isfinite(riders["pickup_t"].to_numpy())
    completed = (riders["outcome"] == "completed").to_numpy()
    cancelled = (riders["outcome"] == "cancelled").to_numpy()
    stages = {
        "requested": n,
        "matched": int(matched.sum()),
        "picked_up": int(picked.sum()),
        "completed": int(completed.sum()),
    }
    reasons = riders.loc[cancelled, "cancel_reason"].value_counts()
    return {
        "stages": stages,
        "shares": {k: (v / n if n else None) for k, v in stages.items()},
        "cancelled_by_reason": {str(k): int(reasons[k]) for k in sorted(reasons.index)},
        "cancelled_by_stage": {
            "before_match": int((cancelled & ~matched).sum()),
            "before_pickup": int((cancelled & matched & ~picked).sum()),
            "after_pickup": int((cancelled & picked).sum()),
        },
    }


def occupancy(iv: Intervals, edges: np.ndarray) -> np.ndarray:
    """Time-averaged number of open intervals in each bin between consecutive ``edges``."""
    if iv.start.size == 0:
        return np.zeros(edges.size - 1)
    times = np.concatenate([iv.start, iv.end])
    delta = np.concatenate([np.ones(iv.start.size), -np.ones(iv.end.size)])
    order = np.argsort(times, kind="stable")
    times, delta = times[order], delta[order]
    count = np.cumsum(delta)
    # Integral of the step function at each change point; linear in between, so interp is exact.
    area = np.concatenate([[0.0], np.cumsum(count[:-1] * np.diff(times))])
    at_edges = np.interp(edges, times, area, left=0.0, right=area[-1])
    return np.diff(at_edges) / np.diff(edges)


def timeseries(c: Columns, riders: pd.DataFrame, horizon_s: float) -> dict[str, Any]:
    """Counts per bin and time-averaged driver states per bin over [0, horizon]."""
    from reports.kpis import online_intervals, trip_intervals

    b = bin_width(horizon_s) if horizon_s > 0 else 1
    n_bins = max(1, int(math.ceil(horizon_s / b)))
    edges = np.arange(n_bins + 1, dtype=np.float64) * b
    edges[-1] = max(horizon_s, edges[-2] + 1e-9) if n_bins else horizon_s

    def counts(t: np.ndarray) -> list[int]:
        t = t[np.isfinite(t)]
        return np.histogram(t, bins=edges)[0].astype(int).tolist()

    cancelled = (riders["outcome"] == "cancelled").to_numpy()
    online = occupancy(online_intervals(c, horizon_s), edges)
    to_pickup_iv, with_rider_iv = trip_intervals(c, horizon_s)
    to_pickup = occupancy(to_pickup_iv, edges)
    with_rider = occupancy(with_rider_iv, edges)
    return {
        "bin_s": b,
        "t_start_s": edges[:-1].tolist(),
        "requests": counts(riders["request_t"].to_numpy()),
        "completed": counts(riders["dropoff_t"].to_numpy()),
        "cancelled": counts(riders["cancel_t"].to_numpy()[cancelled]),
        "drivers_online": online.tolist(),
        "drivers_idle": np.maximum(online - to_pickup - with_rider, 0.0).tolist(),
        "drivers_to_pickup": to_pickup.tolist(),
        "drivers_with_rider": with_rider.tolist(),
    }


def income_basis(c: Columns) -> str:
    """``fare`` when the log has dropoff fares, else ``in_vehicle_s`` (the earnings proxy)."""
    from reports.kpis import DROPOFF

    if c.fare is not None and np.isfinite(c.fare[c.kind == DROPOFF]).any():
        return "fare"
    return "in_vehicle_s"


def income_per_online_hour(drivers: pd.DataFrame, basis: str) -> pd.Series:
    """Income per online hour for drivers online at least ``MIN_ONLINE_S`` (index: driver id)."""
    # The proxy is in paid minutes so the hourly rate reads "paid minutes per online hour".
    income = drivers["earnings"] if basis == "fare" else drivers["with_rider_s"] / 60.0
    keep = drivers["online_s"] >= MIN_ONLINE_S
    return (income[keep] / (drivers.loc[keep, "online_s"] / 3600.0)).astype(np.float64)


def gini(x: np.ndarray) -> float | None:
    """Gini coefficient of non-negative values (0 = equal, 1 = one has all); None if no total."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return None
    i = np.arange(1, n + 1)
    return float(2.0 * np.sum(i * x) / (n * total) - (n + 1.0) / n)


def lorenz(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve points (share of drivers, share of income), both from 0 to 1."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    total = x.sum()
    if x.size == 0 or total <= 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    pop = np.arange(x.size + 1) / x.size
    share = np.concatenate([[0.0], np.cumsum(x) / total])
    return pop, share


def fairness(drivers: pd.DataFrame, basis: str) -> dict[str, Any]:
    """Distribution and inequality of driver income per online hour."""
    rate = income_per_online_hour(drivers, basis).to_numpy()
    pop, share = lorenz(rate)
    deciles = np.linspace(0.0, 1.0, 11)
    has = rate.size > 0
    p10, p50, p90 = np.percentile(rate, [10, 50, 90]) if has else (None, None, None)
    return {
        "income_basis": basis,
        "income_label": (
            "fare per online hour"
            if basis == "fare"
            else "paid (in-vehicle) minutes per online hour, an earnings proxy until fares exist"
        ),
        "min_online_s": MIN_ONLINE_S,
        "drivers": int(rate.size),
        "mean": float(rate.mean()) if has else None,
        "p10": p10,
        "p50": p50,
        "p90": p90,
        "p90_p10_ratio": (p90 / p10) if has and p10 and p10 > 0 else None,
        "gini": gini(rate),
        "lorenz_deciles": np.interp(deciles, pop, share).tolist(),
    }

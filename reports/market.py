"""Funnel, offers, market time series, money and driver-income fairness KPIs (sections of
``metrics.json``).

* ``funnel``: arrived -> requested (the *conversion* of quotes into requests) -> offered ->
  matched -> picked up -> completed; each stage's count and share of requests and of arrived
  riders, and where riders were lost (cancellations by reason and by stage). Without ``quote``
  events every arrived rider requested; without ``offer`` events an assign counts as an offer
  accepted at once (``quotes_logged`` / ``offers_logged`` say which).
* ``offers``: offers sent to drivers, accepted (assigns), declined, timed out, withdrawn because
  the rider was gone; the *decline rate* = (declined + timed out) / offers, and offers per
  completed trip (how many times a trip was offered, on average, before it happened).
* ``market``: per time bin, quotes / requests / completed / cancelled / offers / refusals and
  the conversion of the bin's quotes, plus the time-averaged number of drivers online, idle,
  repositioning, driving to a pickup and carrying a rider.
* ``money``: what riders paid (dropoff fares), what drivers kept (fares x (1 - commission)),
  the platform's part, fares per trip, the paid fare against the quoted price, and quoted prices
  of requested vs declined quotes.
* ``fairness``: driver income per online hour (mean, Gini, p10/p50/p90, Lorenz curve at
  deciles). Income is the fare after commission when the event log carries fares; for logs
  without fares it is the driver's in-vehicle (paid) minutes, the earnings proxy
  (``income_basis`` says which). Drivers online less than ``MIN_ONLINE_S`` are left out: a few
  minutes online give meaningless hourly rates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core.ids import distinct, distinct_count
from reports.tables import (
    ASSIGN,
    CANCEL_REASONS,
    DECLINE,
    DECLINE_REASONS,
    DROPOFF,
    OFFER,
    QUOTE,
    Columns,
    DriverIntervals,
    Intervals,
    describe,
    driver_intervals,
    quote_table,
    reason_counts,
)

MIN_ONLINE_S = 600.0
BIN_CHOICES_S = (60, 300, 900, 1800, 3600, 7200, 14400)
MAX_BINS = 96


def bin_width(horizon_s: float) -> int:
    """The smallest round bin width that cuts the horizon into at most ``MAX_BINS`` bins."""
    for b in BIN_CHOICES_S:
        if horizon_s / b <= MAX_BINS:
            return b
    return int(math.ceil(horizon_s / MAX_BINS))


def bin_edges(horizon_s: float) -> np.ndarray:
    """Edges of the time bins over [0, horizon] (the last bin may be shorter)."""
    b = bin_width(horizon_s) if horizon_s > 0 else 1
    n_bins = max(1, int(math.ceil(horizon_s / b)))
    edges = np.arange(n_bins + 1, dtype=np.float64) * b
    edges[-1] = max(horizon_s, edges[-2] + 1e-9)
    return edges


def market_kpis(
    c: Columns,
    riders: pd.DataFrame,
    drivers: pd.DataFrame,
    horizon_s: float,
    commission: float,
    ivs: DriverIntervals | None = None,
) -> dict[str, Any]:
    """The ``funnel``, ``offers``, ``market``, ``money`` and ``fairness`` sections."""
    basis = income_basis(c)
    return {
        "funnel": funnel(c, riders),
        "offers": offers(c, riders),
        "market": timeseries(c, riders, horizon_s, ivs),
        "money": money(c, riders, drivers, horizon_s, commission),
        "fairness": fairness(drivers, basis),
    }


def _n_riders(c: Columns, kind: int) -> np.ndarray:
    return distinct(c.rider[(c.kind == kind) & (c.rider >= 0)])


def funnel(c: Columns, riders: pd.DataFrame) -> dict[str, Any]:
    """Stage counts and shares, conversion, and cancellations by reason and by stage."""
    n = len(riders)
    quoted = _n_riders(c, QUOTE)
    arrived = distinct_count(np.concatenate([quoted, riders.index.to_numpy()]))
    offered_ids = _n_riders(c, OFFER)
    matched = np.isfinite(riders["assign_t"].to_numpy())
    offered = np.isin(riders.index.to_numpy(), offered_ids) | matched
    picked = np.isfinite(riders["pickup_t"].to_numpy())
    completed = (riders["outcome"] == "completed").to_numpy()
    cancelled = (riders["outcome"] == "cancelled").to_numpy()
    # Only the cancelled riders' reasons become Python strings (a run has 10^5 riders).
    cancel_reasons = riders.loc[cancelled, "cancel_reason"]
    cancelled_rows = np.flatnonzero(cancelled)
    reasons = cancel_reasons.fillna("unknown").to_numpy(dtype=object)
    by_reason = reason_counts(cancel_reasons, CANCEL_REASONS)

    def cancelled_for(reason: str) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[cancelled_rows[reasons == reason]] = True
        return out

    stages = {
        "arrived": arrived,
        "requested": n,
        "offered": int(offered.sum()),
        "matched": int(matched.sum()),
        "picked_up": int(picked.sum()),
        "completed": int(completed.sum()),
    }
    return {
        "quotes_logged": bool(quoted.size),
        "offers_logged": bool(offered_ids.size),
        "stages": stages,
        "conversion": (n / arrived) if arrived else None,
        "shares": {k: (v / n if n else None) for k, v in stages.items() if k != "arrived"},
        "shares_of_arrived": {k: (v / arrived if arrived else None) for k, v in stages.items()},
        "cancelled_by_reason": by_reason,
        "cancelled_by_stage": stage_counts(cancelled, matched, picked),
        "cancelled_by_reason_and_stage": {
            reason: stage_counts(cancelled_for(reason), matched, picked) for reason in by_reason
        },
    }


def stage_counts(cancelled: np.ndarray, matched: np.ndarray, picked: np.ndarray) -> dict[str, int]:
    """How many of the ``cancelled`` riders cancelled before a match, after it but before the
    pickup, and after the pickup."""
    return {
        "before_match": int((cancelled & ~matched).sum()),
        "before_pickup": int((cancelled & matched & ~picked).sum()),
        "after_pickup": int((cancelled & picked).sum()),
    }


def offers(c: Columns, riders: pd.DataFrame) -> dict[str, Any]:
    """Offers to drivers and how they ended. Without ``offer`` events every assign is an offer
    accepted at once (``logged`` is false and nothing was declined)."""
    n_offer_rows = int((c.kind == OFFER).sum())
    logged = n_offer_rows > 0
    accepted = int((c.kind == ASSIGN).sum())
    n_offers = n_offer_rows if logged else accepted
    dec = c.kind == DECLINE
    counts = {r: int((dec & c.detail_is(r)).sum()) for r in DECLINE_REASONS}
    other = int(dec.sum()) - sum(counts.values())
    refused = counts["declined"] + counts["timeout"]
    completed = int((riders["outcome"] == "completed").sum())
    matched = int(np.isfinite(riders["assign_t"].to_numpy()).sum())
    refusals_per_rider = (
        riders["declines_declined"].to_numpy() + riders["declines_timeout"].to_numpy()
    )
    return {
        "logged": logged,
        "offers": n_offers,
        "accepted": accepted,
        **counts,
        "other_declines": other,
        "pending_at_end": max(n_offers - accepted - int(dec.sum()), 0) if logged else 0,
        "decline_rate": (refused / n_offers) if n_offers else None,
        "declined_share": (counts["declined"] / n_offers) if n_offers else None,
        "timeout_share": (counts["timeout"] / n_offers) if n_offers else None,
        "rider_gone_share": (counts["rider_gone"] / n_offers) if n_offers else None,
        "offers_per_completed": (n_offers / completed) if completed else None,
        "offers_per_match": (n_offers / matched) if matched else None,
        "riders_refused_at_least_once": int((refusals_per_rider > 0).sum()),
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


def timeseries(
    c: Columns, riders: pd.DataFrame, horizon_s: float, ivs: DriverIntervals | None = None
) -> dict[str, Any]:
    """Counts per bin and time-averaged driver states per bin over [0, horizon]."""
    ivs = ivs or driver_intervals(c, horizon_s)
    edges = bin_edges(horizon_s)

    def counts(t: np.ndarray) -> np.ndarray:
        t = t[np.isfinite(t)]
        return np.histogram(t, bins=edges)[0].astype(np.int64)

    cancelled = (riders["outcome"] == "cancelled").to_numpy()
    online = occupancy(ivs.online, edges)
    to_pickup = occupancy(ivs.to_pickup, edges)
    with_rider = occupancy(ivs.with_rider, edges)
    repositioning = occupancy(ivs.repositioning, edges)
    q = c.kind == QUOTE
    quotes = counts(c.t[q])
    quotes_req = counts(c.t[q & c.detail_is("request")])
    refusals = counts(c.t[(c.kind == DECLINE) & (c.detail_is("declined") | c.detail_is("timeout"))])
    with np.errstate(invalid="ignore", divide="ignore"):
        conversion = np.where(quotes > 0, quotes_req / np.maximum(quotes, 1), np.nan)
    idle = np.maximum(online - to_pickup - with_rider - repositioning, 0.0)
    return {
        "bin_s": int(round(edges[1] - edges[0])),
        "t_start_s": edges[:-1].tolist(),
        "quotes": quotes.tolist(),
        "conversion": conversion.tolist(),
        "requests": counts(riders["request_t"].to_numpy()).tolist(),
        "completed": counts(riders["dropoff_t"].to_numpy()).tolist(),
        "cancelled": counts(riders["cancel_t"].to_numpy()[cancelled]).tolist(),
        "offers": counts(c.t[c.kind == OFFER]).tolist(),
        "refusals": refusals.tolist(),
        "drivers_online": online.tolist(),
        "drivers_idle": idle.tolist(),
        "drivers_repositioning": repositioning.tolist(),
        "drivers_to_pickup": to_pickup.tolist(),
        "drivers_with_rider": with_rider.tolist(),
    }


def money(
    c: Columns, riders: pd.DataFrame, drivers: pd.DataFrame, horizon_s: float, commission: float
) -> dict[str, Any]:
    """Rider spend, driver income, the platform's part, and paid fares against quoted prices."""
    fares = c.fare[(c.kind == DROPOFF) & np.isfinite(c.fare)]
    spend = float(fares.sum())
    logged = fares.size > 0
    income = spend * (1.0 - commission)
    online_h = float(drivers["online_s"].sum()) / 3600.0
    hours = horizon_s / 3600.0
    paid = riders["fare"].to_numpy()
    quoted = riders["quoted_fare"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(quoted > 0, paid / quoted, np.nan)
    q = quote_table(c)
    price = q["price"].to_numpy()
    req = q["requested"].to_numpy()

    def mean(x: np.ndarray) -> float | None:
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else None

    return {
        "fares_logged": bool(logged),
        "commission": commission,
        "trips_paid": int(fares.size),
        "rider_spend": spend if logged else None,
        "driver_income": income if logged else None,
        "platform_revenue": spend - income if logged else None,
        "rider_spend_per_h": spend / hours if logged and hours else None,
        "driver_income_per_online_h": income / online_h if logged and online_h else None,
        "fare_per_trip": describe(fares),
        "quoted_price_of_requests": describe(quoted),
        "paid_over_quoted": describe(ratio),
        "mean_price_of_requested_quotes": mean(price[req]),
        "mean_price_of_declined_quotes": mean(price[~req]),
    }


def income_basis(c: Columns) -> str:
    """``fare`` when the log has dropoff fares, else ``in_vehicle_s`` (the earnings proxy)."""
    if np.isfinite(c.fare[c.kind == DROPOFF]).any():
        return "fare"
    return "in_vehicle_s"


def income_per_online_hour(drivers: pd.DataFrame, basis: str) -> pd.Series:
    """Income per online hour for drivers online at least ``MIN_ONLINE_S`` (index: driver id)."""
    # Fare basis: what the driver kept (fares x (1 - commission)). The proxy is in paid minutes
    # so the hourly rate reads "paid minutes per online hour".
    income = drivers["income"] if basis == "fare" else drivers["with_rider_s"] / 60.0
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
            "income (fares after commission) per online hour"
            if basis == "fare"
            else "paid (in-vehicle) minutes per online hour, an earnings proxy (no fares logged)"
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

"""Deterministic KPIs computed from the event log, written to ``metrics.json``.

The tables they are computed from are built in :mod:`reports.tables`. Every figure is rounded
to 6 significant digits, so the same event log always gives the same bytes. Kinds this module
does not know are ignored, and every KPI is defined (as ``null`` when it has no data) when a
kind is absent.

Definitions (all times in simulated seconds):

* a *rider* has a ``quote`` and/or a ``request``; a *request* is a rider id with a ``request``
  event; its request time is the first one. Without ``quote`` events (the engine skips them
  when riders always request) every rider requested: conversion is 1 by construction.
* *matched*: the rider got an ``assign``. *Time to match* = first assign - request; offers do
  not count (an offer is not a match: the driver may still decline). *Time to first offer* =
  first offer (or assign, when offers are not logged) - request.
* *pickup wait* = pickup - request; *in-vehicle time* = dropoff - pickup;
  *journey* = dropoff - request.
* *wait, all riders*: request until pickup, cancellation, or the horizon for riders still
  waiting (so riders who gave up count too).
* *ETA error* = actual assign -> pickup seconds (``pickup.value``) - the pickup ETA the matcher
  saw on the last assign before the pickup (``assign.value``): positive means the driver was
  late. *Quote error* (rider-facing) = actual wait request -> pickup - the ETA on the rider's
  quote (``quote.value``), for completed rides.
* a request ends *completed* (has a dropoff), else *cancelled* (has a cancel; reason from the
  last cancel, ``unknown`` when missing), else it is still *open* at the end of the log.
* a driver is *online* between ``driver_online`` and ``driver_offline`` (open intervals are
  closed at the horizon). *To pickup* runs from an assign to the rider's next pickup / cancel /
  assign; when the rider cancelled after the match (``after_match``) the driver still drives to
  the pickup node, so to pickup runs on after the cancel until the driver's next event, at most
  until assign + the assign's pickup ETA. *With rider* runs from pickup to dropoff.
  *Repositioning* runs from a ``reposition`` event for its ``value`` seconds, cut short by the
  driver's next event (an assign while repositioning starts after the leg, and is counted as
  to pickup from the assign). All intervals are clipped to [0, horizon]. *Idle* = online - to
  pickup - with rider - repositioning (a driver considering an offer is idle).
  *Utilisation* = (to pickup + with rider) / online; *deadhead share* = (to pickup +
  repositioning) / (to pickup + repositioning + with rider).
* *money*: riders pay the ``dropoff`` fare; drivers keep ``1 - commission`` of it (commission
  from the scenario's ``pricing`` table, 0.25 when absent); the platform keeps the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from reports import market, replay, slo, surge, zones
from reports.run import load_columns, load_manifest, load_surge, load_zoning
from reports.tables import (
    CANCEL_REASONS,
    DEFAULT_COMMISSION,
    FAULT,
    OFFLINE,
    ONLINE,
    Columns,
    _share,
    as_columns,
    commission_of,
    describe,
    driver_intervals,
    driver_table,
    dump_json,
    error_stats,
    horizon_of,
    pricing_of,
    reason_counts,
    rider_table,
    rnd,
    rnd_tree,
)
from reports.text import headline_cards

__all__ = ["compute_metrics", "headline", "metrics_and_riders", "rnd", "write_metrics"]

METRICS_VERSION = 2

# ---------------------------------------------------------------------------------------------
# The KPIs


def compute_metrics(
    events: pa.Table | Columns, horizon_s: float, commission: float = DEFAULT_COMMISSION
) -> dict[str, Any]:
    """All deterministic KPIs of one event log, as a JSON-ready dict with stable key order.

    ``horizon_s`` is the scenario duration: open driver intervals are closed there and rates
    per hour use it; ``commission`` is the platform's share of each fare. Sections:
    ``requests``, ``time_to_match_s``, ``time_to_first_offer_s``, ``pickup_wait_s``,
    ``in_vehicle_s``, ``journey_s``, ``wait_all_riders_s``, ``eta_error_s``,
    ``quote_error_s``, ``drivers``, ``throughput``, plus the funnel / offers / market / money /
    fairness sections of :mod:`reports.market`.
    """
    return metrics_and_riders(as_columns(events), horizon_s, commission)[0]


def metrics_and_riders(
    c: Columns, horizon_s: float, commission: float = DEFAULT_COMMISSION
) -> tuple[dict[str, Any], pd.DataFrame]:
    """:func:`compute_metrics` on columns, also returning the rider table it built."""
    horizon_s = float(horizon_s)
    riders = rider_table(c)
    ivs = driver_intervals(c, horizon_s)
    drivers = driver_table(c, horizon_s, commission, ivs)
    out: dict[str, Any] = {
        "metrics_version": METRICS_VERSION,
        "horizon_s": horizon_s,
        "events": c.n,
    }
    out.update(rider_kpis(riders, horizon_s))
    out["drivers"] = driver_kpis(drivers)
    hours = horizon_s / 3600.0
    n_completed = out["requests"]["completed"]
    online_h = out["drivers"]["online_h"]
    out["throughput"] = {
        "requests_per_h": _share(out["requests"]["count"], hours),
        "completed_per_h": _share(n_completed, hours),
        "completed_per_online_driver_h": _share(n_completed, online_h),
    }
    out.update(market.market_kpis(c, riders, drivers, horizon_s, commission, ivs))
    out["faults"] = fault_kpis(c, horizon_s)
    return rnd_tree(out), riders


def fault_kpis(c: Columns, horizon_s: float) -> dict[str, Any]:
    """Matcher outages (count, downtime, share of the run) and driver app crashes; an outage
    still open at the end is closed at ``horizon_s``.

    A run whose matcher service could not be reached (``service_down`` / ``service_up``
    events) also gets ``service_outages``, ``service_downtime_s`` and
    ``service_downtime_share``: their presence marks a run that is not a clean one (a clean
    run's metrics stay as they were)."""

    def detail_rows(kind: int, name: str) -> np.ndarray:
        code = c.detail_code(name)
        return np.flatnonzero((c.kind == kind) & (c.detail == code))

    def outages(prefix: str) -> tuple[int, float]:
        down = c.t[detail_rows(FAULT, f"{prefix}_down")]
        up = c.t[detail_rows(FAULT, f"{prefix}_up")]
        ends = np.concatenate([up, np.full(down.size - up.size, horizon_s)]) if down.size else up
        downtime = float(np.sum(ends[: down.size] - down)) if down.size else 0.0
        return int(down.size), downtime

    n_down, downtime = outages("matcher")
    out: dict[str, Any] = {
        "matcher_outages": n_down,
        "matcher_downtime_s": downtime,
        "matcher_downtime_share": _share(downtime, horizon_s),
        "driver_crashes": int(detail_rows(OFFLINE, "crash").size),
        "driver_reconnects": int(detail_rows(ONLINE, "reconnect").size),
    }
    n_service, service_s = outages("service")
    if n_service:
        out["service_outages"] = n_service
        out["service_downtime_s"] = service_s
        out["service_downtime_share"] = _share(service_s, horizon_s)
    return out


def rider_kpis(riders: pd.DataFrame, horizon_s: float) -> dict[str, Any]:
    """The request outcome counts and the per-rider time distributions."""
    n = len(riders)
    req = riders["request_t"].to_numpy()
    assign = riders["assign_t"].to_numpy()
    pickup = riders["pickup_t"].to_numpy()
    dropoff = riders["dropoff_t"].to_numpy()
    # Compared as a column: converting 10^5 strings to Python objects costs 20x more.
    outcome = riders["outcome"]
    completed = (outcome == "completed").to_numpy(dtype=bool)
    n_completed = int(completed.sum())
    cancelled = (outcome == "cancelled").to_numpy(dtype=bool)
    n_cancelled = int(cancelled.sum())
    open_ = (outcome == "open").to_numpy(dtype=bool)
    in_vehicle = np.isfinite(pickup)
    assigned = ~in_vehicle & np.isfinite(assign)
    open_state = {
        "unmatched": ~in_vehicle & ~assigned,
        "assigned": assigned,
        "in_vehicle": in_vehicle,
    }
    n_matched = int(np.isfinite(assign).sum())
    n_picked = int(np.isfinite(pickup).sum())
    requests = {
        "count": n,
        "matched": n_matched,
        "picked_up": n_picked,
        "completed": n_completed,
        "cancelled": n_cancelled,
        "open": int(open_.sum()),
        "match_rate": _share(n_matched, n),
        "completed_share": _share(n_completed, n),
        "cancelled_share": _share(n_cancelled, n),
        "open_share": _share(int(open_.sum()), n),
        "cancelled_by_reason": reason_counts(
            riders.loc[cancelled, "cancel_reason"], CANCEL_REASONS
        ),
        "open_by_state": {s: int((open_ & m).sum()) for s, m in open_state.items()},
    }
    # Riders who never got picked up waited until they cancelled or the horizon.
    cancel_t = riders["cancel_t"].to_numpy()
    wait_end = np.where(
        np.isfinite(pickup),
        pickup,
        np.where(np.isfinite(cancel_t), cancel_t, np.maximum(horizon_s, req)),
    )
    wait_all = wait_end - req
    # First offer, or the assign when offers are not logged (an implicit accepted offer).
    first_offer = np.fmin(riders["first_offer_t"].to_numpy(), assign)
    quote_err = np.where(completed, (pickup - req) - riders["quote_eta"].to_numpy(), np.nan)
    return {
        "requests": requests,
        "time_to_match_s": describe(assign - req),
        "time_to_first_offer_s": describe(first_offer - req),
        "pickup_wait_s": describe(pickup - req),
        "in_vehicle_s": describe(dropoff - pickup),
        "journey_s": describe(dropoff - req),
        "wait_all_riders_s": {**describe(wait_all), "total_h": float(wait_all.sum()) / 3600.0},
        "eta_error_s": error_stats(
            riders["actual_eta"].to_numpy() - riders["quoted_eta"].to_numpy()
        ),
        "quote_error_s": error_stats(quote_err),
    }


def driver_kpis(drivers: pd.DataFrame) -> dict[str, Any]:
    """Fleet time split: online, idle, repositioning, to pickup, with rider (hours, shares)."""
    online = float(drivers["online_s"].sum())
    tp = float(drivers["to_pickup_s"].sum())
    wr = float(drivers["with_rider_s"].sum())
    rp = float(drivers["repositioning_s"].sum())
    idle = float(drivers["idle_s"].sum())
    return {
        "count": int(len(drivers)),
        "online_h": online / 3600.0,
        "idle_h": idle / 3600.0,
        "repositioning_h": rp / 3600.0,
        "to_pickup_h": tp / 3600.0,
        "with_rider_h": wr / 3600.0,
        "utilisation": _share(tp + wr, online),
        "idle_share": _share(idle, online),
        "repositioning_share": _share(rp, online),
        "to_pickup_share": _share(tp, online),
        "with_rider_share": _share(wr, online),
        "deadhead_share": _share(tp + rp, tp + rp + wr),
    }


# ---------------------------------------------------------------------------------------------
# Run directory I/O


def write_metrics(run_dir: Path) -> dict[str, Any]:
    """Compute the KPIs of a run directory and write ``metrics.json``; returns the metrics.

    Reads ``events.parquet`` and ``manifest.json``; adds the per-zone section when
    ``nodes.parquet`` carries the run's zoning (its ``cell`` column), ``replay`` when
    ``trips.parquet`` is present, ``surge`` when ``surge.parquet`` is, and the SLO table
    (scenario ``slo`` or the defaults).
    """
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    c = load_columns(run_dir)
    horizon_s = horizon_of(manifest)
    metrics, riders = metrics_and_riders(c, horizon_s, commission_of(manifest))
    metrics["money"]["currency"] = pricing_of(manifest).get("currency")
    zoning = load_zoning(run_dir)
    if zoning is not None:
        metrics["zones"] = rnd_tree(zones.zone_kpis(riders, zoning))
    rep = replay.replay_kpis(run_dir, riders)
    if rep is not None:
        metrics["replay"] = rnd_tree(rep)
    table = load_surge(run_dir)
    if table is not None:
        sg = surge.surge_kpis(table, run_dir / "surge.parquet", c, riders, zoning, horizon_s)
        metrics["surge"] = rnd_tree(sg)
    del c, riders
    metrics["slo"] = rnd_tree(slo.evaluate(metrics, manifest["scenario"].get("slo")))
    dump_json(metrics, run_dir / "metrics.json")
    return metrics


def ensure_metrics(run_dir: Path) -> None:
    """Write ``metrics.json`` into a run directory that lacks it (an older or copied run)."""
    if not (Path(run_dir) / "metrics.json").is_file():
        write_metrics(run_dir)


def headline(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline KPIs as (label, formatted value) pairs, for a terminal summary."""
    return [(card.title, card.value) for card in headline_cards(metrics)]

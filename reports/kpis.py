"""Deterministic KPIs computed from the event log, written to ``metrics.json``.

Everything here is vectorised over the event columns (an event log can hold tens of millions
of rows), and every figure is rounded to 6 significant digits, so the same event log always
gives the same bytes. Kinds this module does not know are ignored, and every KPI is defined
(as ``null`` when it has no data) when a kind is absent.

Definitions (all times in simulated seconds):

* a *request* is a rider id with a ``request`` event; its request time is the first one.
* *matched*: the rider got an ``assign``; *time to match* = first assign - request.
* *pickup wait* = pickup - request; *in-vehicle time* = dropoff - pickup;
  *journey* = dropoff - request.
* *wait, all riders*: request until pickup, cancellation, or the horizon for riders still
  waiting (so riders who gave up count too).
* *ETA error* = actual assign -> pickup seconds (``pickup.value``) - the quoted pickup ETA of
  the last assign before the pickup (``assign.value``): positive means the driver was late.
* a request ends *completed* (has a dropoff), else *cancelled* (has a cancel; reason from the
  last cancel, ``unknown`` when missing), else it is still *open* at the end of the log.
* a driver is *online* between ``driver_online`` and ``driver_offline`` (open intervals are
  closed at the horizon); *to pickup* runs from an assign to the next pickup / cancel /
  reassignment of that rider; *with rider* from pickup to dropoff. All intervals are clipped
  to [0, horizon]. *Idle* = online - to pickup - with rider. *Utilisation* = (to pickup +
  with rider) / online; *deadhead share* = to pickup / (to pickup + with rider).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sim.events import Kind

METRICS_VERSION = 1
SIG_DIGITS = 6

# Position of each known kind in the integer code used below; unknown kinds get -1.
KINDS: tuple[str, ...] = tuple(k.value for k in Kind)
ONLINE, OFFLINE, REQUEST, ASSIGN, PICKUP, DROPOFF, CANCEL = (
    KINDS.index(k)
    for k in (
        Kind.DRIVER_ONLINE,
        Kind.DRIVER_OFFLINE,
        Kind.REQUEST,
        Kind.ASSIGN,
        Kind.PICKUP,
        Kind.DROPOFF,
        Kind.CANCEL,
    )
)


# ---------------------------------------------------------------------------------------------
# Rounding and summaries


def rnd(x: Any) -> Any:
    """Round a number to 6 significant digits for stable JSON; NaN/inf -> None; ints stay ints."""
    if x is None:
        return None
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    x = float(x)
    if not math.isfinite(x):
        return None
    if x == 0.0:
        return 0.0  # never "-0.0"
    return float(f"{x:.{SIG_DIGITS}g}")


def rnd_tree(obj: Any) -> Any:
    """Apply :func:`rnd` to every number in a nested dict/list."""
    if isinstance(obj, dict):
        return {str(k): rnd_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rnd_tree(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [rnd_tree(v) for v in obj.tolist()]
    if isinstance(obj, str) or obj is None:
        return obj
    return rnd(obj)


def describe(x: np.ndarray) -> dict[str, Any]:
    """count, mean, p50, p90, p95, p99 and max of the finite values of ``x`` (None if empty)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {k: (0 if k == "count" else None) for k in _DESCRIBE_KEYS}
    p50, p90, p95, p99 = np.percentile(x, [50, 90, 95, 99])
    return {
        "count": int(x.size),
        "mean": float(x.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(x.max()),
    }


_DESCRIBE_KEYS = ("count", "mean", "p50", "p90", "p95", "p99", "max")


def _share(part: float, whole: float) -> float | None:
    return float(part) / float(whole) if whole else None


# ---------------------------------------------------------------------------------------------
# Columns and per-rider / per-driver tables


@dataclass(frozen=True)
class Columns:
    """The event log as numpy arrays in seq order; missing ids are -1, missing values NaN."""

    t: np.ndarray
    kind: np.ndarray  # int8 index into KINDS, -1 for kinds this module does not know
    rider: np.ndarray
    driver: np.ndarray
    node: np.ndarray
    value: np.ndarray
    detail: pa.ChunkedArray  # kept in Arrow: only cancel rows ever need it
    fare: np.ndarray | None  # dropoff fares once the schema carries them


def columns(events: pa.Table) -> Columns:
    """Extract the event columns as numpy arrays, sorted by ``seq`` if they are not already."""
    if events.num_rows and "seq" in events.column_names:
        seq = events["seq"].to_numpy()
        if np.any(np.diff(seq) < 0):
            events = events.take(pa.array(np.argsort(seq, kind="stable")))

    def ids(name: str) -> np.ndarray:
        return pc.fill_null(events[name], -1).to_numpy().astype(np.int64, copy=False)

    def floats(name: str) -> np.ndarray:
        return pc.fill_null(events[name], np.nan).to_numpy().astype(np.float64, copy=False)

    # Dictionary-encode the kind strings once so no per-row Python runs over them.
    enc = pc.dictionary_encode(events["kind"]).combine_chunks()
    lut = np.array([KINDS.index(s) if s in KINDS else -1 for s in enc.dictionary.to_pylist()])
    codes = enc.indices.to_numpy(zero_copy_only=False)
    kind = lut[codes].astype(np.int8) if codes.size else np.zeros(0, dtype=np.int8)
    return Columns(
        t=floats("t"),
        kind=kind,
        rider=ids("rider"),
        driver=ids("driver"),
        node=ids("node"),
        value=floats("value"),
        detail=events["detail"],
        fare=floats("fare") if "fare" in events.column_names else None,
    )


def _first_per_rider(c: Columns, kind: int, riders: pd.Index, what: np.ndarray, last: bool = False):
    """``what`` at the first (or last) event of ``kind`` per rider, aligned to ``riders``."""
    m = (c.kind == kind) & (c.rider >= 0)
    s = pd.Series(what[m], index=c.rider[m])
    s = s[~s.index.duplicated(keep="last" if last else "first")]
    return s.reindex(riders).to_numpy(dtype=np.float64)


def rider_table(c: Columns) -> pd.DataFrame:
    """One row per requested rider (index: rider id, ascending) with the times of each stage."""
    m = (c.kind == REQUEST) & (c.rider >= 0)
    req = pd.Series(c.t[m], index=c.rider[m])
    req = req[~req.index.duplicated(keep="first")].sort_index()
    riders = req.index
    df = pd.DataFrame(index=riders)
    df["request_t"] = req.to_numpy(dtype=np.float64)
    df["node"] = _first_per_rider(c, REQUEST, riders, c.node.astype(np.float64))
    df["assign_t"] = _first_per_rider(c, ASSIGN, riders, c.t)
    df["quoted_eta"] = _first_per_rider(c, ASSIGN, riders, c.value, last=True)
    df["pickup_t"] = _first_per_rider(c, PICKUP, riders, c.t)
    df["actual_eta"] = _first_per_rider(c, PICKUP, riders, c.value)
    df["dropoff_t"] = _first_per_rider(c, DROPOFF, riders, c.t)
    df["cancel_t"] = _first_per_rider(c, CANCEL, riders, c.t)
    # Reason of the last cancel, for riders whose request did not complete.
    mc = (c.kind == CANCEL) & (c.rider >= 0)
    reasons = pc.fill_null(c.detail.filter(pa.array(mc)), "unknown").to_numpy(zero_copy_only=False)
    rs = pd.Series(reasons, index=c.rider[mc], dtype=object)
    rs = rs[~rs.index.duplicated(keep="last")]
    df["cancel_reason"] = rs.reindex(riders).to_numpy(dtype=object)
    completed = np.isfinite(df["dropoff_t"].to_numpy())
    cancelled = ~completed & np.isfinite(df["cancel_t"].to_numpy())
    df["outcome"] = np.where(completed, "completed", np.where(cancelled, "cancelled", "open"))
    return df


@dataclass(frozen=True)
class Intervals:
    """Driver time intervals (driver id, start, end), clipped to [0, horizon]."""

    driver: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def duration(self) -> np.ndarray:
        return self.end - self.start


def _clip(driver: np.ndarray, start: np.ndarray, end: np.ndarray, horizon_s: float) -> Intervals:
    s = np.clip(start, 0.0, horizon_s)
    e = np.clip(end, 0.0, horizon_s)
    keep = e > s
    return Intervals(driver[keep], s[keep], e[keep])


def online_intervals(c: Columns, horizon_s: float) -> Intervals:
    """Online intervals per driver; an online driver with no later offline stays to the horizon."""
    m = ((c.kind == ONLINE) | (c.kind == OFFLINE)) & (c.driver >= 0)
    d, t, k = c.driver[m], c.t[m], c.kind[m]
    order = np.argsort(d, kind="stable")  # stable: keeps the log order within each driver
    d, t, k = d[order], t[order], k[order]
    same_next = np.zeros(d.size, dtype=bool)
    same_next[:-1] = d[1:] == d[:-1]
    t_next = np.where(same_next, np.append(t[1:], horizon_s), horizon_s)
    # A repeated online (or offline) event just continues the state it is already in.
    on = k == ONLINE
    return _clip(d[on], t[on], t_next[on], horizon_s)


def trip_intervals(c: Columns, horizon_s: float) -> tuple[Intervals, Intervals]:
    """(to pickup, with rider) intervals per driver, from each rider's assign/pickup/dropoff/cancel
    sequence: each stage ends at the rider's next such event, or at the horizon."""
    m = ((c.kind == ASSIGN) | (c.kind == PICKUP) | (c.kind == DROPOFF) | (c.kind == CANCEL)) & (
        c.rider >= 0
    )
    r, t, k, d = c.rider[m], c.t[m], c.kind[m], c.driver[m]
    order = np.argsort(r, kind="stable")
    r, t, k, d = r[order], t[order], k[order], d[order]
    same_next = np.zeros(r.size, dtype=bool)
    same_next[:-1] = r[1:] == r[:-1]
    t_next = np.where(same_next, np.append(t[1:], horizon_s), horizon_s)
    a = (k == ASSIGN) & (d >= 0)
    p = (k == PICKUP) & (d >= 0)
    return _clip(d[a], t[a], t_next[a], horizon_s), _clip(d[p], t[p], t_next[p], horizon_s)


def driver_table(c: Columns, horizon_s: float) -> pd.DataFrame:
    """One row per driver seen online (index: driver id) with online / to pickup / with rider /
    idle seconds, completed trips and earnings."""
    on = online_intervals(c, horizon_s)
    tp, wr = trip_intervals(c, horizon_s)
    m_on = ((c.kind == ONLINE) | (c.kind == OFFLINE)) & (c.driver >= 0)
    drivers = np.unique(c.driver[m_on])
    n = drivers.size

    def per_driver(ids: np.ndarray, w: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(drivers, ids)
        ok = (pos < n) & (drivers[np.minimum(pos, max(n - 1, 0))] == ids) if n else pos < 0
        return np.bincount(pos[ok], weights=w[ok], minlength=n).astype(np.float64)

    df = pd.DataFrame(index=pd.Index(drivers, name="driver"))
    df["online_s"] = per_driver(on.driver, on.duration)
    df["to_pickup_s"] = per_driver(tp.driver, tp.duration)
    df["with_rider_s"] = per_driver(wr.driver, wr.duration)
    df["idle_s"] = np.maximum(df["online_s"] - df["to_pickup_s"] - df["with_rider_s"], 0.0)
    md = (c.kind == DROPOFF) & (c.driver >= 0)
    df["trips"] = per_driver(c.driver[md], np.ones(int(md.sum())))
    if c.fare is not None:
        df["earnings"] = per_driver(c.driver[md], np.nan_to_num(c.fare[md]))
    else:
        df["earnings"] = np.nan
    return df


# ---------------------------------------------------------------------------------------------
# The KPIs


def compute_metrics(events: pa.Table, horizon_s: float) -> dict[str, Any]:
    """All deterministic KPIs of one event log, as a JSON-ready dict with stable key order.

    ``horizon_s`` is the scenario duration: open driver intervals are closed there and rates
    per hour use it. Sections: ``requests``, ``time_to_match_s``, ``pickup_wait_s``,
    ``in_vehicle_s``, ``journey_s``, ``wait_all_riders_s``, ``eta_error_s``, ``drivers``,
    ``throughput``, plus the funnel / market / fairness sections of :mod:`reports.market`.
    """
    from reports import market  # local: market builds on this module's tables

    horizon_s = float(horizon_s)
    c = columns(events)
    riders = rider_table(c)
    drivers = driver_table(c, horizon_s)
    out: dict[str, Any] = {
        "metrics_version": METRICS_VERSION,
        "horizon_s": horizon_s,
        "events": int(events.num_rows),
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
    out.update(market.market_kpis(c, riders, drivers, horizon_s))
    return rnd_tree(out)


def rider_kpis(riders: pd.DataFrame, horizon_s: float) -> dict[str, Any]:
    """The request outcome counts and the per-rider time distributions."""
    n = len(riders)
    req = riders["request_t"].to_numpy()
    assign = riders["assign_t"].to_numpy()
    pickup = riders["pickup_t"].to_numpy()
    dropoff = riders["dropoff_t"].to_numpy()
    outcome = riders["outcome"].to_numpy()
    n_completed = int((outcome == "completed").sum())
    cancelled = outcome == "cancelled"
    n_cancelled = int(cancelled.sum())
    open_ = outcome == "open"
    by_reason = riders.loc[cancelled, "cancel_reason"].value_counts()
    open_state = np.where(
        np.isfinite(pickup), "in_vehicle", np.where(np.isfinite(assign), "assigned", "unmatched")
    )
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
        "cancelled_by_reason": {str(k): int(by_reason[k]) for k in sorted(by_reason.index)},
        "open_by_state": {
            s: int((open_ & (open_state == s)).sum())
            for s in ("unmatched", "assigned", "in_vehicle")
        },
    }
    # Riders who never got picked up waited until they cancelled or the horizon.
    wait_end = np.where(
        np.isfinite(pickup),
        pickup,
        np.where(
            np.isfinite(riders["cancel_t"].to_numpy()),
            riders["cancel_t"].to_numpy(),
            np.maximum(horizon_s, req),
        ),
    )
    wait_all = wait_end - req
    err = riders["actual_eta"].to_numpy() - riders["quoted_eta"].to_numpy()
    err = err[np.isfinite(err)]
    eta = {
        "count": int(err.size),
        "mae": float(np.abs(err).mean()) if err.size else None,
        "bias": float(err.mean()) if err.size else None,
        "p90_abs": float(np.percentile(np.abs(err), 90)) if err.size else None,
    }
    return {
        "requests": requests,
        "time_to_match_s": describe(assign - req),
        "pickup_wait_s": describe(pickup - req),
        "in_vehicle_s": describe(dropoff - pickup),
        "journey_s": describe(dropoff - req),
        "wait_all_riders_s": {**describe(wait_all), "total_h": float(wait_all.sum()) / 3600.0},
        "eta_error_s": eta,
    }


def driver_kpis(drivers: pd.DataFrame) -> dict[str, Any]:
    """Fleet time split: online, idle, to pickup, with rider (hours and shares)."""
    online = float(drivers["online_s"].sum())
    tp = float(drivers["to_pickup_s"].sum())
    wr = float(drivers["with_rider_s"].sum())
    idle = float(drivers["idle_s"].sum())
    return {
        "count": int(len(drivers)),
        "online_h": online / 3600.0,
        "idle_h": idle / 3600.0,
        "to_pickup_h": tp / 3600.0,
        "with_rider_h": wr / 3600.0,
        "utilisation": _share(tp + wr, online),
        "idle_share": _share(idle, online),
        "to_pickup_share": _share(tp, online),
        "with_rider_share": _share(wr, online),
        "deadhead_share": _share(tp, tp + wr),
    }


# ---------------------------------------------------------------------------------------------
# Run directory I/O


def horizon_of(manifest: dict[str, Any]) -> float:
    """The scenario duration in seconds from a run manifest: ``time.duration_s``, else
    ``time.duration_h`` (scenario files may give either). KeyError/ValueError when neither."""
    time = manifest["scenario"]["time"]
    if time.get("duration_s") is not None:
        return float(time["duration_s"])
    if time.get("duration_h") is not None:
        return float(time["duration_h"]) * 3600.0
    raise KeyError("duration_s")


def dump_json(obj: Any, path: Path) -> None:
    """Write JSON with sorted keys, indent 2 and a trailing newline (byte-stable)."""
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_metrics(run_dir: Path) -> dict[str, Any]:
    """Compute the KPIs of a run directory and write ``metrics.json``; returns the metrics.

    Reads ``events.parquet`` and ``manifest.json``; adds the per-zone section when
    ``nodes.parquet`` is present and the SLO table (scenario ``slo`` or the defaults).
    """
    from reports import slo, zones
    from reports.run import load_events, load_manifest, load_nodes

    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    events = load_events(run_dir)
    metrics = compute_metrics(events, horizon_of(manifest))
    nodes = load_nodes(run_dir, required=False)
    if nodes is not None:
        metrics["zones"] = rnd_tree(zones.zone_kpis(events, nodes))
    metrics["slo"] = rnd_tree(slo.evaluate(metrics, manifest["scenario"].get("slo")))
    dump_json(metrics, run_dir / "metrics.json")
    return metrics


def headline(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline KPIs as (label, formatted value) pairs, for a terminal summary."""
    from reports.html import headline as cards  # local: html imports this module's users

    return [(label, value) for label, value, _ in cards(metrics)]

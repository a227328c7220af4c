"""The event log as compact numpy columns, and the per-rider and per-driver tables every KPI
is computed from (definitions: :mod:`reports.kpis`).

Everything here is vectorised over the event columns (an event log can hold tens of millions
of rows): the Parquet file is streamed batch by batch into compact numpy columns (the Arrow
table is never held whole), and per-rider / per-driver tables come from sorts, not hashing.
Also here: rounding to 6 significant digits (so the same log always gives the same bytes) and
the few manifest fields KPIs depend on (horizon, pricing, commission).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.ids import distinct, positions, stable_order
from core.schemas import EVENTS_SCHEMA, EVENTS_SCHEMA_VERSION, Kind

SIG_DIGITS = 6
DEFAULT_COMMISSION = 0.25
BATCH_ROWS = 1 << 18
NO_CODE = -2
"""What :meth:`Columns.detail_code` gives a detail no row has (a null detail is -1)."""

# Position of each known kind in the integer code used below; unknown kinds get -1.
KINDS: tuple[str, ...] = tuple(k.value for k in Kind)
(
    ONLINE,
    OFFLINE,
    QUOTE,
    REQUEST,
    OFFER,
    DECLINE,
    ASSIGN,
    PICKUP,
    DROPOFF,
    CANCEL,
    REPOSITION,
    FAULT,
) = (
    KINDS.index(k)
    for k in (
        Kind.DRIVER_ONLINE,
        Kind.DRIVER_OFFLINE,
        Kind.QUOTE,
        Kind.REQUEST,
        Kind.OFFER,
        Kind.DECLINE,
        Kind.ASSIGN,
        Kind.PICKUP,
        Kind.DROPOFF,
        Kind.CANCEL,
        Kind.REPOSITION,
        Kind.FAULT,
    )
)
CANCEL_REASONS = ("patience", "no_driver", "after_match")
"""Cancel reasons the engine writes; always listed in metrics.json (0 when none)."""
DECLINE_REASONS = ("declined", "timeout", "rider_gone")


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


def error_stats(err: np.ndarray) -> dict[str, Any]:
    """count, mean absolute error, bias (mean) and p90 of the absolute error."""
    err = np.asarray(err, dtype=np.float64)
    err = err[np.isfinite(err)]
    if err.size == 0:
        return {"count": 0, "mae": None, "bias": None, "p90_abs": None}
    a = np.abs(err)
    return {
        "count": int(err.size),
        "mae": float(a.mean()),
        "bias": float(err.mean()),
        "p90_abs": float(np.percentile(a, 90)),
    }


def _share(part: float, whole: float) -> float | None:
    return float(part) / float(whole) if whole else None


# ---------------------------------------------------------------------------------------------
# Columns


@dataclass(frozen=True)
class Columns:
    """The event log as numpy arrays in seq order; missing ids are -1, missing values NaN.

    ``detail`` holds integer codes into ``detail_dictionary`` (an Arrow string array; -1 for
    null), so no per-row Python string ever exists: a plane run has about as many distinct
    details as requests (each assignment's batch id), and reports only look a few words up."""

    t: np.ndarray
    kind: np.ndarray  # int8 index into KINDS, -1 for kinds this module does not know
    rider: np.ndarray
    driver: np.ndarray
    node: np.ndarray
    value: np.ndarray
    fare: np.ndarray
    detail: np.ndarray
    detail_dictionary: pa.Array

    @property
    def n(self) -> int:
        return int(self.t.size)

    @cached_property
    def detail_names(self) -> tuple[str, ...]:
        """The distinct details, by code (in order of first appearance in the log)."""
        return tuple(self.detail_dictionary.to_pylist())

    @cached_property
    def driver_next_t(self) -> np.ndarray:
        """Per row: the time of the same driver's next event (+inf after the driver's last
        event, NaN for rows without a driver). Computed on first use."""
        drows = np.flatnonzero(self.driver >= 0)
        order = stable_order(self.driver[drows])  # log order within a driver
        sorted_rows = drows[order]
        del order
        out = np.full(self.n, np.nan)
        out[sorted_rows] = _next_in_group(self.driver[sorted_rows], self.t[sorted_rows], np.inf)
        return out

    @cached_property
    def _detail_codes(self) -> dict[str, int]:
        # Filled on demand: one scan of the dictionary finds every word of LOOKED_UP_DETAILS.
        return {}

    def detail_code(self, name: str) -> int:
        """The code of detail ``name``; :data:`NO_CODE` when no row has that name."""
        codes = self._detail_codes
        if name not in codes:
            words = [name, *(w for w in LOOKED_UP_DETAILS if w not in codes and w != name)]
            codes.update(zip(words, _codes_of(self.detail_dictionary, words), strict=True))
        return codes[name]

    def detail_is(self, name: str) -> np.ndarray:
        """Rows whose detail is ``name``."""
        code = self.detail_code(name)
        if code == NO_CODE:
            return np.zeros(self.n, dtype=bool)
        return self.detail == code

    def names(self, codes: np.ndarray, missing: str = "unknown") -> np.ndarray:
        """Detail strings for codes (object array; ``missing`` for -1)."""
        codes = np.asarray(codes)
        out = np.full(codes.shape, missing, dtype=object)
        has = codes >= 0
        if has.any():
            out[has] = self.detail_dictionary.take(codes[has]).to_numpy(zero_copy_only=False)
        return out


LOOKED_UP_DETAILS = (
    "request",
    *CANCEL_REASONS,
    *DECLINE_REASONS,
    "crash",
    "reconnect",
    "matcher_down",
    "matcher_up",
    "service_down",
    "service_up",
)
"""Details the KPIs look up: the first lookup finds all of them in one scan."""


def _codes_of(dictionary: pa.Array, words: list[str]) -> list[int]:
    """The position of each of ``words`` in ``dictionary`` (distinct strings), else NO_CODE."""
    at = np.flatnonzero(pc.is_in(dictionary, value_set=pa.array(words, pa.string())))
    found = dict(zip(dictionary.take(at).to_pylist(), at.tolist(), strict=True))
    return [found.get(w, NO_CODE) for w in words]


def _kind_codes(names: pa.Array) -> list[int]:
    return [KINDS.index(name) if name in KINDS else -1 for name in names.to_pylist()]


_READ = ("seq", "t", "kind", "rider", "driver", "node", "value", "fare", "detail")
_NUMERIC: tuple[tuple[str, Any, float], ...] = (
    ("seq", np.int64, -1),
    ("t", np.float64, np.nan),
    ("rider", np.int64, -1),
    ("driver", np.int64, -1),
    ("node", np.int64, -1),
    ("value", np.float64, np.nan),
    ("fare", np.float64, np.nan),
)


def dictionary_indices(enc: pa.DictionaryArray) -> np.ndarray:
    """The indices of a dictionary array as numpy, -1 for null."""
    idx = enc.indices
    if idx.null_count:
        idx = pc.fill_null(idx, -1)
    return idx.to_numpy(zero_copy_only=False)


class _Filler:
    """Fills preallocated numpy columns from record batches, one batch at a time.

    Detail codes are first per batch (positions in the batch's own dictionary); ``finish``
    renumbers them over the whole log, in order of first appearance, from the batches'
    dictionaries alone (Arrow strings, never Python ones)."""

    def __init__(self, n: int) -> None:
        self.cols = {name: np.empty(n, dtype=dtype) for name, dtype, _ in _NUMERIC}
        self.kind = np.empty(n, dtype=np.int8)
        self.detail = np.empty(n, dtype=np.int32)
        self.dictionaries: list[pa.Array] = []
        self.starts: list[int] = []
        self.i = 0

    def add(self, batch: pa.RecordBatch) -> None:
        k = batch.num_rows
        if k == 0:
            return
        s = slice(self.i, self.i + k)
        for name, _, fill in _NUMERIC:
            col = batch.column(name)
            if col.null_count:
                col = pc.fill_null(col, fill)
            self.cols[name][s] = col.to_numpy(zero_copy_only=False)
        kind = batch.column("kind")
        if not isinstance(kind, pa.DictionaryArray):
            kind = pc.dictionary_encode(kind)
        lut = np.array([*_kind_codes(kind.dictionary), -1], dtype=np.int8)
        self.kind[s] = lut[dictionary_indices(kind)]  # -1 (null) picks the trailing -1
        detail = pc.dictionary_encode(batch.column("detail"))
        self.detail[s] = dictionary_indices(detail)
        self.dictionaries.append(detail.dictionary)
        self.starts.append(self.i)
        self.i += k

    def _renumber_details(self) -> pa.Array:
        # Each batch's dictionary lists its words in order of first appearance in the batch, so
        # encoding the batches' dictionaries one after another numbers the words in order of
        # first appearance in the log.
        if not self.dictionaries:
            return pa.array([], pa.string())
        merged = pc.dictionary_encode(pa.concat_arrays(self.dictionaries))
        global_code = merged.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        at = 0
        for d, start, end in zip(
            self.dictionaries, self.starts, [*self.starts[1:], self.i], strict=True
        ):
            lut = np.append(global_code[at : at + len(d)], np.int32(-1))
            at += len(d)
            part = self.detail[start:end]
            part[...] = lut[part]  # -1 (null) picks the trailing -1
        self.dictionaries = []
        return merged.dictionary

    def finish(self) -> Columns:
        dictionary = self._renumber_details()
        seq = self.cols.pop("seq")
        arrays = {**self.cols, "kind": self.kind, "detail": self.detail}
        if seq.size and np.any(seq[1:] < seq[:-1]):
            order = stable_order(seq)
            arrays = {k: v[order] for k, v in arrays.items()}
        return Columns(**arrays, detail_dictionary=dictionary)


def columns(events: pa.Table) -> Columns:
    """The event columns of an in-memory event table as numpy arrays, in ``seq`` order."""
    missing = [c for c in _READ if c not in events.column_names]
    if missing:
        raise ValueError(f"event table lacks columns {missing}")
    f = _Filler(events.num_rows)
    for batch in events.select(list(_READ)).to_batches(max_chunksize=BATCH_ROWS):
        f.add(batch)
    return f.finish()


def read_columns(path: Path) -> Columns:
    """The event columns of ``events.parquet``, streamed batch by batch (the whole Arrow table is
    never in memory). Raises ValueError when the file is not a v2 event log."""
    pf = pq.ParquetFile(path)
    if not pf.schema_arrow.equals(EVENTS_SCHEMA, check_metadata=False):
        raise ValueError(
            f"{path}: not a ridesim event log (schema differs from v{EVENTS_SCHEMA_VERSION})"
        )
    # Kinds decoded straight to a dictionary: a handful of words, 4x cheaper than strings.
    pf = pq.ParquetFile(path, metadata=pf.metadata, read_dictionary=["kind"])
    f = _Filler(pf.metadata.num_rows)
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(_READ)):
        f.add(batch)
    return f.finish()


def as_columns(events: pa.Table | Columns) -> Columns:
    """Columns from either an event table or Columns already extracted."""
    return events if isinstance(events, Columns) else columns(events)


# ---------------------------------------------------------------------------------------------
# Per-rider table


class _RiderRows:
    """Rows of one kind aligned to the rider table: positions and the selected row indices."""

    def __init__(self, c: Columns, riders: np.ndarray, kind: int, extra: np.ndarray | None = None):
        m = (c.kind == kind) & (c.rider >= 0)
        if extra is not None:
            m &= extra
        rows = np.flatnonzero(m)
        pos, ok = positions(riders, c.rider[rows])
        self.rows, self.pos, self.n = rows[ok], pos[ok], riders.size
        self._ends: dict[bool, np.ndarray] = {}

    def _end(self, last: bool) -> np.ndarray:
        """Per rider: the index into ``rows`` of its first (``last``: last) row in log order,
        -1 for a rider with none (one pass, no sort)."""
        if last not in self._ends:
            k = self.pos.size
            if last:
                end = np.full(self.n, -1, dtype=np.int64)
                np.maximum.at(end, self.pos, np.arange(k))
            else:
                end = np.full(self.n, k, dtype=np.int64)
                np.minimum.at(end, self.pos, np.arange(k))
                end[end == k] = -1
            self._ends[last] = end
        return self._ends[last]

    def _pick(self, values: np.ndarray, last: bool, fill: Any) -> np.ndarray:
        out = np.full(self.n, fill, dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
        end = self._end(last)
        has = end >= 0
        out[has] = values[self.rows[end[has]]]
        return out

    def first(self, values: np.ndarray, fill: Any = np.nan) -> np.ndarray:
        """Per rider: ``values`` at its first row of this kind (``fill`` for none)."""
        return self._pick(values, False, fill)

    def last(self, values: np.ndarray, fill: Any = np.nan) -> np.ndarray:
        """Per rider: ``values`` at its last row of this kind (``fill`` for none)."""
        return self._pick(values, True, fill)

    def count(self) -> np.ndarray:
        return np.bincount(self.pos, minlength=self.n).astype(np.int64)


def rider_table(c: Columns) -> pd.DataFrame:
    """One row per requested rider (index: rider id, ascending) with the times of each stage,
    quoted and actual ETAs, offers and declines, fares and the outcome."""
    req_rows = np.flatnonzero((c.kind == REQUEST) & (c.rider >= 0))
    riders = distinct(c.rider[req_rows])
    req = _RiderRows(c, riders, REQUEST)
    # Columns are gathered first and the frame built once: setting them one by one re-checks
    # the index every time (half the table's cost).
    col: dict[str, np.ndarray] = {}
    col["request_t"] = req.first(c.t)
    col["node"] = req.first(c.node, fill=-1)
    col["quoted_fare"] = req.first(c.fare)
    q = _RiderRows(c, riders, QUOTE)
    col["quote_eta"] = q.first(c.value)
    off = _RiderRows(c, riders, OFFER)
    col["offers"] = off.count()
    col["first_offer_t"] = off.first(c.t)
    for reason in DECLINE_REASONS:
        col[f"declines_{reason}"] = _RiderRows(c, riders, DECLINE, c.detail_is(reason)).count()
    a = _RiderRows(c, riders, ASSIGN)
    col["assign_t"] = a.first(c.t)
    col["quoted_eta"] = a.last(c.value)
    col["assign_driver"] = a.last(c.driver, fill=-1)
    p = _RiderRows(c, riders, PICKUP)
    col["pickup_t"] = p.first(c.t)
    col["actual_eta"] = p.first(c.value)
    d = _RiderRows(c, riders, DROPOFF)
    col["dropoff_t"] = d.first(c.t)
    col["trip_s"] = d.first(c.value)
    col["fare"] = d.first(c.fare)
    x = _RiderRows(c, riders, CANCEL)
    col["cancel_t"] = x.first(c.t)
    # Reason of the last cancel (None without one, "unknown" when it has no detail).
    code = x.last(c.detail, fill=-2)
    words = pa.concat_arrays([c.detail_dictionary, pa.array(["unknown"], pa.string())])
    reason = np.where(code == -1, len(words) - 1, code)
    completed = np.isfinite(col["dropoff_t"])
    cancelled = ~completed & np.isfinite(col["cancel_t"])
    state = np.where(completed, 0, np.where(cancelled, 1, 2))
    frame = pd.DataFrame(col, index=pd.Index(riders, name="rider"))
    frame["cancel_reason"] = _strings(words, reason)
    frame["outcome"] = _strings(_OUTCOMES, state)
    return frame


_OUTCOMES = pa.array(["completed", "cancelled", "open"], pa.string())
_INFERRED_STR = pd.Series(np.array(["x"], dtype=object)).dtype
"""What pandas makes of a column of Python strings (``str`` on Arrow since pandas 3)."""


def _strings(words: pa.Array, codes: np.ndarray) -> Any:
    """The column ``words[codes]`` (None where a code is negative), as pandas would infer it from
    those Python strings; on Arrow-backed strings it is built in Arrow, 10x faster."""
    taken = words.take(pa.array(codes, mask=codes < 0))
    if isinstance(_INFERRED_STR, pd.StringDtype) and _INFERRED_STR.storage == "pyarrow":
        return pd.array(taken.cast(pa.large_string()), dtype=_INFERRED_STR)
    return taken.to_numpy(zero_copy_only=False)


def quote_table(c: Columns) -> pd.DataFrame:
    """One row per quoted rider (index: rider id): quote time, quoted ETA and price, and whether
    the rider requested (detail ``request``)."""
    rows = np.flatnonzero((c.kind == QUOTE) & (c.rider >= 0))
    riders, first = np.unique(c.rider[rows], return_index=True)
    rows = rows[first]
    return pd.DataFrame(
        {
            "t": c.t[rows],
            "eta": c.value[rows],
            "price": c.fare[rows],
            "node": c.node[rows],
            "requested": c.detail[rows] == c.detail_code("request"),
        },
        index=pd.Index(riders, name="rider"),
    )


# ---------------------------------------------------------------------------------------------
# Driver intervals


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


def _next_in_group(group: np.ndarray, t: np.ndarray, fill: float) -> np.ndarray:
    """For rows already sorted by group (log order within a group): the next row's time in
    the same group, ``fill`` for a group's last row."""
    same_next = np.zeros(group.size, dtype=bool)
    same_next[:-1] = group[1:] == group[:-1]
    return np.where(same_next, np.append(t[1:], fill), fill)


def next_driver_event_t(c: Columns, rows: np.ndarray) -> np.ndarray:
    """For event rows (indices) that carry a driver: the time of that driver's next event of
    any kind (+inf when there is none)."""
    return c.driver_next_t[np.asarray(rows, dtype=np.int64)]


def online_intervals(c: Columns, horizon_s: float) -> Intervals:
    """Online intervals per driver; an online driver with no later offline stays to the horizon."""
    m = ((c.kind == ONLINE) | (c.kind == OFFLINE)) & (c.driver >= 0)
    d, t, k = c.driver[m], c.t[m], c.kind[m]
    order = stable_order(d)  # stable: keeps the log order within each driver
    d, t, k = d[order], t[order], k[order]
    t_next = _next_in_group(d, t, horizon_s)
    # A repeated online (or offline) event just continues the state it is already in.
    on = k == ONLINE
    return _clip(d[on], t[on], t_next[on], horizon_s)


def trip_intervals(c: Columns, horizon_s: float) -> tuple[Intervals, Intervals]:
    """(to pickup, with rider) intervals per driver, from each rider's assign/pickup/dropoff/cancel
    sequence: each stage ends at the rider's next such event, or at the horizon. After an
    ``after_match`` cancel the driver keeps driving to the pickup node: until the driver's next
    event, at most assign + the assign's pickup ETA (never before the cancel)."""
    m = ((c.kind == ASSIGN) | (c.kind == PICKUP) | (c.kind == DROPOFF) | (c.kind == CANCEL)) & (
        c.rider >= 0
    )
    rows = np.flatnonzero(m)
    order = stable_order(c.rider[rows])
    rows = rows[order]
    r, t, k, d = c.rider[rows], c.t[rows], c.kind[rows], c.driver[rows]
    same_next = np.zeros(r.size, dtype=bool)
    same_next[:-1] = r[1:] == r[:-1]
    t_next = np.where(same_next, np.append(t[1:], horizon_s), horizon_s)
    a = (k == ASSIGN) & (d >= 0)
    # Assigns whose next rider event is an after_match cancel carrying the driver.
    am = np.zeros(r.size, dtype=bool)
    after_match = c.detail_code("after_match")
    if after_match != NO_CODE:
        nxt_row = np.append(rows[1:], 0)
        am = (
            a
            & same_next
            & (c.kind[nxt_row] == CANCEL)
            & (c.detail[nxt_row] == after_match)
            & (c.driver[nxt_row] == d)
        )
        if am.any():
            cancel_rows = nxt_row[am]
            bound = t[am] + np.nan_to_num(c.value[rows[am]], nan=0.0)
            end = np.minimum(bound, next_driver_event_t(c, cancel_rows))
            t_next = t_next.copy()
            t_next[am] = np.maximum(t_next[am], end)
    p = (k == PICKUP) & (d >= 0)
    return _clip(d[a], t[a], t_next[a], horizon_s), _clip(d[p], t[p], t_next[p], horizon_s)


def reposition_intervals(c: Columns, horizon_s: float) -> Intervals:
    """Repositioning drives: from the event for ``value`` seconds, cut at the driver's next
    event."""
    rows = np.flatnonzero((c.kind == REPOSITION) & (c.driver >= 0))
    start = c.t[rows]
    end = np.minimum(start + np.nan_to_num(c.value[rows], nan=0.0), next_driver_event_t(c, rows))
    return _clip(c.driver[rows], start, end, horizon_s)


@dataclass(frozen=True)
class DriverIntervals:
    """Every driver interval kind of one log, computed once and shared by the KPIs."""

    online: Intervals
    to_pickup: Intervals
    with_rider: Intervals
    repositioning: Intervals


def driver_intervals(c: Columns, horizon_s: float) -> DriverIntervals:
    """Online, to pickup, with rider and repositioning intervals of every driver."""
    tp, wr = trip_intervals(c, horizon_s)
    return DriverIntervals(
        online_intervals(c, horizon_s), tp, wr, reposition_intervals(c, horizon_s)
    )


def driver_table(
    c: Columns,
    horizon_s: float,
    commission: float = DEFAULT_COMMISSION,
    ivs: DriverIntervals | None = None,
) -> pd.DataFrame:
    """One row per driver seen online (index: driver id) with online / to pickup / with rider /
    repositioning / idle seconds, completed trips, fares collected and income (fares x
    (1 - commission))."""
    ivs = ivs or driver_intervals(c, horizon_s)
    on, tp, wr, rp = ivs.online, ivs.to_pickup, ivs.with_rider, ivs.repositioning
    m_on = ((c.kind == ONLINE) | (c.kind == OFFLINE)) & (c.driver >= 0)
    drivers = distinct(c.driver[m_on])
    n = drivers.size

    def per_driver(ids: np.ndarray, w: np.ndarray) -> np.ndarray:
        pos, ok = positions(drivers, ids)
        return np.bincount(pos[ok], weights=w[ok], minlength=n).astype(np.float64)

    col: dict[str, np.ndarray] = {}  # built once, as the rider table
    col["online_s"] = per_driver(on.driver, on.duration)
    col["to_pickup_s"] = per_driver(tp.driver, tp.duration)
    col["with_rider_s"] = per_driver(wr.driver, wr.duration)
    col["repositioning_s"] = per_driver(rp.driver, rp.duration)
    busy = col["to_pickup_s"] + col["with_rider_s"] + col["repositioning_s"]
    col["idle_s"] = np.maximum(col["online_s"] - busy, 0.0)
    md = (c.kind == DROPOFF) & (c.driver >= 0)
    col["trips"] = per_driver(c.driver[md], np.ones(int(md.sum())))
    col["fares"] = per_driver(c.driver[md], np.nan_to_num(c.fare[md]))
    col["income"] = col["fares"] * (1.0 - commission)
    return pd.DataFrame(col, index=pd.Index(drivers, name="driver"))


def reason_counts(reasons: pd.Series, known: tuple[str, ...]) -> dict[str, int]:
    """Counts per reason: every ``known`` reason (0 when absent) plus any other, sorted."""
    vc = reasons.value_counts()
    out = {k: int(vc.get(k, 0)) for k in known}
    out.update({str(k): int(vc[k]) for k in vc.index if k not in out})
    return {k: out[k] for k in sorted(out)}


def horizon_of(manifest: dict[str, Any]) -> float:
    """The scenario duration in seconds from a run manifest: ``time.duration_s``, else
    ``time.duration_h`` (scenario files may give either). KeyError/ValueError when neither."""
    time = manifest["scenario"]["time"]
    if time.get("duration_s") is not None:
        return float(time["duration_s"])
    if time.get("duration_h") is not None:
        return float(time["duration_h"]) * 3600.0
    raise KeyError("duration_s")


def pricing_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The scenario's ``pricing`` table (empty when absent)."""
    p = (manifest.get("scenario") or {}).get("pricing")
    return p if isinstance(p, dict) else {}


def commission_of(manifest: dict[str, Any]) -> float:
    """The platform's share of each fare (scenario ``pricing.commission``, default 0.25)."""
    v = pricing_of(manifest).get("commission")
    return float(v) if isinstance(v, int | float) and 0 <= v <= 1 else DEFAULT_COMMISSION


def dump_json(obj: Any, path: Path) -> None:
    """Write JSON with sorted keys, indent 2 and a trailing newline (byte-stable)."""
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")

"""Capacity planning: a fitted model of matcher cost, and how many shards, cores and how much
headroom a target load needs.

1. **Measure.** The scenario runs on a load x shard grid (ordinary cached sweep points; a load
   multiplies demand and, by default, the fleet). Every matcher call's size (open requests R,
   candidate drivers D) and wall time come from ``matcher_calls.parquet``.
2. **Fit the cost of a call** per matcher: two models; the power law is kept only when its
   leave-one-grid-point-out error is at least 10% below the linear model's:
   ``linear``: ms = c0 + c1 R + c2 D + c3 R D, non-negative coefficients (least squares on
   relative error), and ``power``: ms = c0 + exp(b0) R^a D^b (an overhead plus a power law,
   robust least squares on log ms, c0 >= 0, exponents in [0, 3]).
   Both grow with R and D, so every recommendation is monotone in load.
3. **Fit how call sizes grow with load**: per shard, the p99 and mean of R and D per call are
   proportional to the shard's request rate (requests per hour; lines through the origin).
   Shards are balanced by expected load; the worst shard's share (imbalance) is measured.
4. **Predict** the worst shard's matcher p99 per batch at a request rate:
   ``cost(R99(l), D99(l)) + tail`` with l = imbalance x city peak-hour rate / shards, and its mean
   busy share of a core ``cost(Rmean(l), Dmean(l)) / batch window``. The fit quality of both
   steps, and the held-out error of this prediction on every measured grid point, are reported.
5. **Plan** a target (trips per day over a table of cities): per city the fewest shards whose
   predicted p99 fits ``budget_fraction`` of the batch window and whose busy share is at most
   ``max_utilisation``; cores (one matcher pod per core) packing as many shards per core as
   latency and utilisation allow; the border cost (completed share and pickup wait against one
   shard, measured on the grid); and the headroom of today's load: how far it can grow on
   today's shards before the matcher SLO breaks.

Wall times are measurements of the machine that ran the grid (perf), never inputs to a run.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.optimize import least_squares, nnls

from core.errors import InputError
from harness.scenario import load_scenario
from harness.sweep import SweepPoint, markdown_table, run_sweep

MAX_SHARDS = 4096
"""The largest shard count a plan considers per city."""


# ---------------------------------------------------------------------------------------------
# The cost of one matcher call


@dataclass(frozen=True)
class CostModel:
    """Matcher wall ms per call as a function of open requests ``R`` and candidate drivers
    ``D``; ``quality`` holds the fit's figures (``r2_log``, ``median_rel_err``, ``p90_rel_err``,
    ``calls``)."""

    kind: str
    coef: tuple[float, ...]
    quality: dict[str, float] = field(default_factory=dict)

    def predict(self, r: Any, d: Any) -> np.ndarray:
        """Predicted wall ms of calls with ``r`` requests and ``d`` drivers (broadcast)."""
        r = np.maximum(np.asarray(r, dtype=np.float64), 1.0)
        d = np.maximum(np.asarray(d, dtype=np.float64), 1.0)
        if self.kind == "linear":
            c0, c1, c2, c3 = self.coef
            return c0 + c1 * r + c2 * d + c3 * r * d
        c0, b0, a, b = self.coef
        return c0 + np.exp(b0) * r**a * d**b

    def formula(self) -> str:
        """The fitted model in words (ms)."""
        if self.kind == "linear":
            c0, c1, c2, c3 = self.coef
            return f"{c0:.4g} + {c1:.4g}·R + {c2:.4g}·D + {c3:.4g}·R·D ms"
        c0, b0, a, b = self.coef
        return f"{c0:.4g} + {math.exp(b0):.4g} · R^{a:.3f} · D^{b:.3f} ms"


def _calls_xy(calls: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calls with at least one request (empty calls say nothing about the cost of matching)."""
    c = calls[calls.n_requests >= 1]
    r = c.n_requests.to_numpy(dtype=np.float64)
    d = np.maximum(c.n_drivers.to_numpy(dtype=np.float64), 1.0)
    y = np.maximum(c.wall_ms.to_numpy(dtype=np.float64), 1e-6)
    return r, d, y


def _fit_one(kind: str, r: np.ndarray, d: np.ndarray, y: np.ndarray) -> CostModel:
    if kind == "linear":
        x = np.column_stack([np.ones_like(r), r, d, r * d])
        # Rows divided by sqrt(y): between absolute error (only the largest calls count) and
        # relative error (the overhead-dominated small calls, far more numerous, swamp the
        # large ones a capacity plan extrapolates from).
        w = 1.0 / np.sqrt(y)
        coef, _ = nnls(x * w[:, None], y * w)
        model = CostModel("linear", tuple(float(c) for c in coef))
    else:
        model = CostModel("power", _fit_power(r, d, y))
    return model


def _fit_power(r: np.ndarray, d: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """(c0, b0, a, b) of ms = c0 + e^b0 R^a D^b: a fixed overhead plus a power law, fitted on
    log ms weighted by sqrt(ms) with a soft-L1 loss (a preempted call is an outlier, not a
    trend); c0 >= 0 and 0 <= a, b <= 3 keep it increasing and sane to extrapolate."""
    lr, ld, ly = np.log(r), np.log(d), np.log(y)
    w = np.sqrt(y)  # larger calls weigh more: they are what the plan extrapolates

    def residual(p: np.ndarray) -> np.ndarray:
        c0, b0, a, b = p
        return w * (np.log(c0 + np.exp(b0 + a * lr + b * ld)) - ly)

    start = np.array([0.5 * float(np.min(y)), -5.0, 1.0, 0.1])
    fit = least_squares(
        residual,
        start,
        bounds=([0.0, -50.0, 0.0, 0.0], [np.inf, 50.0, 3.0, 3.0]),
        loss="soft_l1",
        f_scale=0.3,
    )
    return tuple(float(v) for v in fit.x)


def size_bins(r: np.ndarray, d: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Calls grouped by size (half-octave bins of R and of D): the median R, D and ms of each
    bin. Fitting bins, not calls, weighs every size alike (small calls vastly outnumber the
    large ones that matter for capacity) and the median ignores preempted calls."""
    key = np.floor(2 * np.log2(r)).astype(np.int64) * 1000 + np.floor(2 * np.log2(d)).astype(
        np.int64
    )
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], len(k)]
    med = [(np.median(r[order][a:b]), np.median(d[order][a:b]), np.median(y[order][a:b]))
           for a, b in zip(starts, ends, strict=True)]  # fmt: skip
    arr = np.asarray(med, dtype=np.float64)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def fit_cost(calls: pd.DataFrame, kind: str) -> CostModel:
    """Fit one cost model (``linear`` or ``power``) to matcher calls (n_requests, n_drivers,
    wall_ms), on the medians of size bins; quality figures are per call."""
    r, d, y = _calls_xy(calls)
    if len(y) < 4:
        raise ValueError("too few matcher calls with requests to fit a cost model (need >= 4)")
    br, bd, by = size_bins(r, d, y)
    if len(by) < 4:  # too few distinct sizes to fit on bins: fit the calls themselves
        br, bd, by = r, d, y
    model = _fit_one(kind, br, bd, by)
    return CostModel(model.kind, model.coef, _quality(model, r, d, y))


def _quality(model: CostModel, r: np.ndarray, d: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = model.predict(r, d)
    rel = np.abs(pred - y) / y
    log_res = np.log(y) - np.log(pred)
    ss_tot = float(np.sum((np.log(y) - np.log(y).mean()) ** 2))
    return {
        "calls": float(len(y)),
        "r2_log": 1.0 - float(np.sum(log_res**2)) / ss_tot if ss_tot > 0 else 1.0,
        "median_rel_err": float(np.median(rel)),
        "p90_rel_err": float(np.percentile(rel, 90)),
    }


# ---------------------------------------------------------------------------------------------
# How call sizes grow with load, and the prediction per grid point


@dataclass(frozen=True)
class SizeModel:
    """Call sizes per shard as ``a + b·l`` of the shard's request rate l (per hour), with
    a, b >= 0: the slope is the load, the intercept the backlog a batch carries over."""

    r99: tuple[float, float]
    d99: tuple[float, float]
    rmean: tuple[float, float]
    dmean: tuple[float, float]
    imbalance: dict[int, float]
    """Worst shard's share of requests x shards, measured per shard count (1.0 for one)."""
    quality: dict[str, float] = field(default_factory=dict)

    def at(self, which: str, rate: float) -> float:
        """The size ``which`` (r99, d99, rmean, dmean) at a shard's request rate."""
        a, b = getattr(self, which)
        return a + b * rate

    def worst_imbalance(self, shards: int) -> float:
        """Measured imbalance at this shard count; between measured counts, interpolated in
        log(shards); beyond the largest measured, the largest count's (shards of a bigger city
        are not measured, so the worst measured spread is assumed)."""
        if shards <= 1:
            return 1.0
        known = sorted({1: 1.0, **self.imbalance}.items())
        xs = np.log([s for s, _ in known])
        ys = np.array([v for _, v in known])
        return float(np.interp(math.log(shards), xs, ys))


def shard_rows(grid: pd.DataFrame, calls_of: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """One row per run x shard: the shard's request rate and its call sizes and times."""
    rows = []
    for g in grid.itertuples(index=False):
        calls = calls_of(g.run_id)
        if len(calls) == 0:
            continue
        total_r = float(calls.n_requests.sum()) or 1.0
        for shard, c in calls.groupby("shard_id"):
            share = float(c.n_requests.sum()) / total_r
            rows.append(
                {
                    "run_id": g.run_id,
                    "load": g.load,
                    "shards": g.shards,
                    "shard": int(shard),
                    "share": share,
                    "rate_per_h": g.requests_per_h * share,
                    "r99": float(np.percentile(c.n_requests, 99)),
                    "d99": float(np.percentile(c.n_drivers, 99)),
                    "rmean": float(c.n_requests.mean()),
                    "dmean": float(c.n_drivers.mean()),
                    "p99_ms": float(np.percentile(c.wall_ms, 99)),
                    "mean_ms": float(c.wall_ms.mean()),
                }
            )
    return pd.DataFrame(rows)


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[tuple[float, float], float]:
    """Non-negative (a, b) of y = a + b x by least squares, and its R^2."""
    coef, _ = nnls(np.column_stack([np.ones_like(x), x]), y)
    a, b = float(coef[0]), float(coef[1])
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - a - b * x) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return (a, b), r2


def fit_sizes(shards: pd.DataFrame) -> SizeModel:
    """Fit call sizes against per-shard request rate; measure the worst shard's imbalance."""
    x = shards.rate_per_h.to_numpy(dtype=np.float64)
    fits = {c: _affine(x, shards[c].to_numpy(dtype=np.float64)) for c in
            ("r99", "d99", "rmean", "dmean")}  # fmt: skip
    imbalance: dict[int, float] = {}
    for (_, n), g in shards.groupby(["run_id", "shards"]):
        imbalance[int(n)] = max(imbalance.get(int(n), 1.0), float(g.share.max()) * int(n))
    return SizeModel(
        r99=fits["r99"][0],
        d99=fits["d99"][0],
        rmean=fits["rmean"][0],
        dmean=fits["dmean"][0],
        imbalance=imbalance,
        quality={f"{c}_r2": v[1] for c, v in fits.items()},
    )


@dataclass(frozen=True)
class Model:
    """The fitted capacity model of one matcher on one machine."""

    matcher: str
    window_s: float
    cost: CostModel
    sizes: SizeModel
    alternatives: dict[str, dict[str, float]]
    """Every cost model tried: its fit quality and its held-out error on the grid points."""
    holdout: pd.DataFrame
    """Per grid point: measured worst-shard p99 and mean ms and the prediction made without it."""
    tail: float = 0.0
    """Measured p99 per batch - cost at the p99 call size, ms (median over grid points, >= 0):
    the part of the tail that call size does not explain (preemption by other processes, GC),
    which adds time rather than scaling it."""
    mean_factor: float = 1.0
    """Measured mean ms per call / cost at the mean call size (median over grid points, >= 1):
    the cost is convex in size, so the cost of the mean call is below the mean cost."""

    def p99_ms(self, city_rate_per_h: float, shards: int) -> float:
        """Predicted matcher p99 per batch of the worst shard."""
        rate = self.sizes.worst_imbalance(shards) * city_rate_per_h / shards
        size_p99 = self.cost.predict(self.sizes.at("r99", rate), self.sizes.at("d99", rate))
        return float(self.tail + size_p99)

    def busy_share(self, city_rate_per_h: float, shards: int) -> float:
        """Predicted share of one core the worst shard's matcher keeps busy."""
        rate = self.sizes.worst_imbalance(shards) * city_rate_per_h / shards
        s = self.sizes
        mean_ms = self.mean_factor * float(
            self.cost.predict(s.at("rmean", rate), s.at("dmean", rate))
        )
        return mean_ms / (1000.0 * self.window_s)


def _predict_point(
    cost: CostModel, sizes: SizeModel, tail: float, mean_factor: float, rate: float
) -> tuple[float, float]:
    return (
        tail + float(cost.predict(sizes.at("r99", rate), sizes.at("d99", rate))),
        mean_factor * float(cost.predict(sizes.at("rmean", rate), sizes.at("dmean", rate))),
    )


def fit_mean_factor(cost: CostModel, sizes: SizeModel, worst: pd.DataFrame) -> float:
    """Median over grid points of measured mean ms / cost at the mean call size (>= 1)."""
    ratios = [
        float(w.mean_ms)
        / float(cost.predict(sizes.at("rmean", w.rate_per_h), sizes.at("dmean", w.rate_per_h)))
        for w in worst.itertuples()
    ]
    return max(1.0, float(np.median(ratios))) if ratios else 1.0


def fit_tail(cost: CostModel, sizes: SizeModel, worst: pd.DataFrame) -> float:
    """Median over grid points of measured worst-shard p99 - cost at the p99 call size (ms)."""
    gaps = [
        float(w.p99_ms)
        - float(cost.predict(sizes.at("r99", w.rate_per_h), sizes.at("d99", w.rate_per_h)))
        for w in worst.itertuples()
    ]
    return max(0.0, float(np.median(gaps))) if gaps else 0.0


def fit_model(
    matcher: str,
    window_s: float,
    grid: pd.DataFrame,
    calls_of: Callable[[str], pd.DataFrame],
) -> Model:
    """Fit both cost models and the size model; keep the cost model with the smaller
    leave-one-grid-point-out error of the predicted worst-shard p99."""
    per_shard = shard_rows(grid, calls_of)
    if per_shard.empty:
        raise ValueError("no matcher calls in the grid's runs")
    all_calls = pd.concat([calls_of(rid).assign(run_id=rid) for rid in grid.run_id])
    # The worst shard of each grid point: the one whose p99 is largest.
    worst = per_shard.loc[per_shard.groupby("run_id").p99_ms.idxmax()].set_index("run_id")
    alternatives: dict[str, dict[str, float]] = {}
    holdouts: dict[str, pd.DataFrame] = {}
    for kind in ("linear", "power"):
        rows = []
        for rid in worst.index:
            rest = all_calls[all_calls.run_id != rid]
            rest_shards = per_shard[per_shard.run_id != rid]
            if len(rest_shards) == 0 or len(rest) < 4:
                continue
            cost = fit_cost(rest, kind)
            sizes = fit_sizes(rest_shards)
            rest_worst = worst.drop(index=rid)
            tail = fit_tail(cost, sizes, rest_worst)
            factor = fit_mean_factor(cost, sizes, rest_worst)
            w = worst.loc[rid]
            p99, mean = _predict_point(cost, sizes, tail, factor, float(w.rate_per_h))
            rows.append(
                {
                    "run_id": rid,
                    "load": w.load,
                    "shards": int(w.shards),
                    "measured_p99_ms": float(w.p99_ms),
                    "predicted_p99_ms": p99,
                    "measured_mean_ms": float(w.mean_ms),
                    "predicted_mean_ms": mean,
                }
            )
        ho = pd.DataFrame(rows)
        if len(ho):
            ho["p99_rel_err"] = (
                ho.predicted_p99_ms - ho.measured_p99_ms
            ).abs() / ho.measured_p99_ms
            ho["mean_rel_err"] = (
                ho.predicted_mean_ms - ho.measured_mean_ms
            ).abs() / ho.measured_mean_ms
        full = fit_cost(all_calls, kind)
        alternatives[kind] = {
            **full.quality,
            "holdout_p99_median_rel_err": float(ho.p99_rel_err.median()) if len(ho) else math.nan,
            "holdout_p99_max_rel_err": float(ho.p99_rel_err.max()) if len(ho) else math.nan,
            "holdout_mean_median_rel_err": float(ho.mean_rel_err.median()) if len(ho) else math.nan,
            "holdout_p99_mean_rel_err": float(ho.p99_rel_err.mean()) if len(ho) else math.nan,
            "holdout_mean_mean_rel_err": float(ho.mean_rel_err.mean()) if len(ho) else math.nan,
        }
        holdouts[kind] = ho
    # The simpler linear model unless the power law predicts held-out points clearly better.
    clearly = _score(alternatives["power"]) < 0.9 * _score(alternatives["linear"])
    best = "power" if clearly else "linear"
    cost, sizes = fit_cost(all_calls, best), fit_sizes(per_shard)
    return Model(
        matcher=matcher,
        window_s=window_s,
        cost=cost,
        sizes=sizes,
        alternatives=alternatives,
        holdout=holdouts[best],
        tail=fit_tail(cost, sizes, worst),
        mean_factor=fit_mean_factor(cost, sizes, worst),
    )


def _score(q: dict[str, float]) -> float:
    """Held-out error of the predicted p99 and mean per batch: the mean over held-out points
    (so one badly extrapolated point counts), else the per-call fit."""
    v = q["holdout_p99_mean_rel_err"] + q["holdout_mean_mean_rel_err"]
    return v if math.isfinite(v) else q["median_rel_err"]


# ---------------------------------------------------------------------------------------------
# Targets: cities and the plan


@dataclass(frozen=True)
class City:
    """One row of the cities table."""

    name: str
    trip_share: float
    nodes: int
    region: str = ""
    shards_today: int | None = None


def read_cities(path: Path) -> list[City]:
    """The cities table: CSV with ``city``, ``trip_share``, ``nodes`` and optional ``region``,
    ``shards_today``. Shares are normalised if they sum to within 1% of 1, else an error."""
    source = str(path)
    if not path.is_file():
        raise InputError(source, "", "cities file not found")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(source, "", f"not a readable CSV file ({exc})") from None
    if not rows:
        raise InputError(source, "", "expected a header row and at least one city")
    missing = [c for c in ("city", "trip_share", "nodes") if c not in rows[0]]
    if missing:
        raise InputError(source, "header", f"missing column(s) {', '.join(missing)}")
    cities = []
    for i, row in enumerate(rows, start=2):
        name = (row.get("city") or "").strip()
        if not name:
            raise InputError(source, f"line {i}: city", "expected a city name")
        share = _number(row.get("trip_share"), source, f"line {i}: trip_share", float)
        if not share > 0:
            raise InputError(source, f"line {i}: trip_share", f"must be > 0, got {share:g}")
        nodes = _number(row.get("nodes"), source, f"line {i}: nodes", int)
        if nodes < 2:
            raise InputError(source, f"line {i}: nodes", f"must be >= 2, got {nodes}")
        shards_today = None
        if (row.get("shards_today") or "").strip():
            shards_today = _number(row["shards_today"], source, f"line {i}: shards_today", int)
            if not 1 <= shards_today <= MAX_SHARDS:
                raise InputError(
                    source,
                    f"line {i}: shards_today",
                    f"must be 1..{MAX_SHARDS}, got {shards_today}",
                )
        cities.append(City(name, share, nodes, (row.get("region") or "").strip(), shards_today))
    names = [c.name for c in cities]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputError(source, "city", f"city names must be unique; repeated: {', '.join(dupes)}")
    total = sum(c.trip_share for c in cities)
    if abs(total - 1.0) > 0.01:
        raise InputError(source, "trip_share", f"shares must sum to 1 (within 1%), got {total:.4g}")
    return [City(c.name, c.trip_share / total, c.nodes, c.region, c.shards_today) for c in cities]


def _number(text: Any, source: str, field: str, kind: type) -> Any:
    try:
        value = kind(str(text).strip())
    except (TypeError, ValueError):
        raise InputError(source, field, f"expected a number, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(source, field, f"expected a finite number, got {text!r}")
    return value


@dataclass(frozen=True)
class Target:
    """What the plan is for, and the SLO and headroom it must keep."""

    trips_per_day: float
    cities: list[City]
    today_trips_per_day: float
    budget_fraction: float = 0.3
    """Matcher p99 per batch must fit this share of the batch window."""
    max_utilisation: float = 0.6
    """A matcher core may be busy at most this share of the time (headroom)."""
    time_to_match_p99_s: float | None = None
    """Rider-facing SLO, checked on the measured grid (the market, not the matcher, sets it)."""


def shards_needed(model: Model, rate_per_h: float, target: Target) -> int | None:
    """Fewest shards whose worst shard fits the latency budget and the utilisation cap."""
    budget_ms = target.budget_fraction * model.window_s * 1000.0
    for s in range(1, MAX_SHARDS + 1):
        if (
            model.p99_ms(rate_per_h, s) <= budget_ms
            and model.busy_share(rate_per_h, s) <= target.max_utilisation
        ):
            return s
    return None


def cores_needed(model: Model, rate_per_h: float, shards: int, target: Target) -> int:
    """Matcher cores (pods) for a city: shards share a core while their batches, run one
    after another, still fit the budget and their summed busy share stays under the cap."""
    budget_ms = target.budget_fraction * model.window_s * 1000.0
    p99 = model.p99_ms(rate_per_h, shards)
    busy = model.busy_share(rate_per_h, shards)
    per_core = min(
        int(budget_ms // p99) if p99 > 0 else shards,
        int(target.max_utilisation // busy) if busy > 0 else shards,
    )
    return math.ceil(shards / max(per_core, 1))


def growth_headroom(model: Model, rate_per_h: float, shards: int, target: Target) -> float:
    """How many times today's rate the given shards carry before the matcher SLO breaks."""
    budget_ms = target.budget_fraction * model.window_s * 1000.0

    def ok(rate: float) -> bool:
        return (
            model.p99_ms(rate, shards) <= budget_ms
            and model.busy_share(rate, shards) <= target.max_utilisation
        )

    if not ok(rate_per_h):
        lo, hi = 0.0, 1.0
    else:
        lo, hi = 1.0, 2.0
        while ok(hi * rate_per_h) and hi < 1e9:
            lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid * rate_per_h) else (lo, mid)
    return lo


@dataclass(frozen=True)
class CapacityPlan:
    """The measured grid, the fitted model, one recommendation per load of the grid and (with
    a target) the plan per city and per region."""

    table: pd.DataFrame
    recommendations: pd.DataFrame
    model: Model | None = None
    cities: pd.DataFrame | None = None
    regions: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def plan_target(
    model: Model, target: Target, peak_share: float, grid: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per city and per region: shards, cores, border cost, headroom of today's load."""
    rows = []
    for c in target.cities:
        rate = target.trips_per_day * c.trip_share * peak_share
        today_rate = target.today_trips_per_day * c.trip_share * peak_share
        s = shards_needed(model, rate, target)
        s_today = c.shards_today or shards_needed(model, today_rate, target) or MAX_SHARDS
        border = border_cost(grid, s or MAX_SHARDS)
        rows.append(
            {
                "city": c.name,
                "region": c.region or c.name,
                "trips_per_day": target.trips_per_day * c.trip_share,
                "peak_requests_per_h": rate,
                "nodes": c.nodes,
                "table_gb": 4.0 * c.nodes**2 / 1e9,
                "shards": s if s is not None else f"> {MAX_SHARDS}",
                "cores": cores_needed(model, rate, s, target) if s is not None else math.nan,
                "p99_ms": model.p99_ms(rate, s) if s is not None else math.nan,
                "busy_share": model.busy_share(rate, s) if s is not None else math.nan,
                "completed_share_change": border["completed_share_change"],
                "pickup_wait_change_s": border["pickup_wait_change_s"],
                "border_measured_at": border["measured_at"],
                "shards_today": s_today,
                "headroom_today_x": growth_headroom(model, today_rate, s_today, target),
            }
        )
    cities = pd.DataFrame(rows)
    regions = (
        cities.groupby("region", sort=True)
        .agg(
            cities=("city", "count"),
            trips_per_day=("trips_per_day", "sum"),
            cores=("cores", "sum"),
        )
        .reset_index()
    )
    return cities, regions


def border_cost(grid: pd.DataFrame, shards: int) -> dict[str, Any]:
    """Completed share and mean pickup wait at ``shards`` (or the largest measured count below
    it) against one shard, at the grid's highest load: what the borders cost in service."""
    top = grid[grid.load == grid.load.max()].sort_values("shards")
    one = top[top.shards == 1]
    near = top[top.shards <= shards]
    if one.empty or near.empty:
        return {"completed_share_change": math.nan, "pickup_wait_change_s": math.nan,
                "measured_at": "not measured"}  # fmt: skip
    b, p = one.iloc[0], near.iloc[-1]
    return {
        "completed_share_change": float(p.completed_share - b.completed_share),
        "pickup_wait_change_s": float(p.pickup_wait_mean_s - b.pickup_wait_mean_s),
        "measured_at": f"{int(p.shards)} shards, load {p.load:g}",
    }


# ---------------------------------------------------------------------------------------------
# The grid and the whole plan


def peak_hour_share(spec: Any) -> float:
    """Share of a day's trips in its busiest hour (from the demand profile; 1/24 if none)."""
    profile = getattr(spec.demand, "profile", None)
    if not profile:
        return 1.0 / 24.0
    p = np.asarray(profile, dtype=np.float64)
    return float(p.max() / p.sum())


def plan_capacity(
    scenario: str,
    shard_counts: list[int],
    loads: list[float],
    out: Path,
    *,
    budget_fraction: float = 0.3,
    max_utilisation: float = 0.6,
    target: Target | None = None,
    scale_fleet: bool = True,
    workers: int = 1,
    scheduler: str | None = None,
    cache_dir: Path | None = None,
) -> CapacityPlan:
    """Run the load x shard grid, fit the model, recommend shards per grid load and, with a
    ``target``, plan every city; writes ``capacity.md``/``.html``, CSVs and figures to ``out``."""
    spec = load_scenario(scenario)
    window_s = spec.dispatch.batch_window_s
    if window_s <= 0:
        raise InputError(
            scenario,
            "dispatch.batch_window_s",
            "capacity planning needs a batched scenario (batch_window_s > 0)",
        )
    if not 0 < budget_fraction <= 1:
        raise InputError("--budget-fraction", str(budget_fraction), "expected a share in (0, 1]")
    if not 0 < max_utilisation <= 1:
        raise InputError("--max-utilisation", str(max_utilisation), "expected a share in (0, 1]")
    points = []
    for load in loads:
        for shards in shard_counts:
            over: dict[str, Any] = {"demand.multiplier": load, "dispatch.shards": shards}
            if scale_fleet:
                over["fleet.multiplier"] = load * spec.fleet.multiplier
            points.append(SweepPoint(scenario, over))
    sweep = run_sweep(points, out, workers=workers, scheduler=scheduler, cache_dir=cache_dir)
    horizon_h = spec.time.horizon_s / 3600.0
    cache: dict[str, pd.DataFrame] = {}

    def calls_of(run_id: str) -> pd.DataFrame:
        if run_id not in cache:
            cache[run_id] = pq.read_table(out / run_id / "matcher_calls.parquet").to_pandas()
        return cache[run_id]

    rows = []
    for point, row in zip(points, sweep.to_dict("records"), strict=True):
        calls = calls_of(row["run_id"])
        walls = calls.wall_ms.to_numpy(dtype=np.float64)
        p99 = calls.groupby("shard_id")["wall_ms"].quantile(0.99)
        rows.append(
            {
                "load": point.overrides["demand.multiplier"],
                "shards": point.overrides["dispatch.shards"],
                "requests_per_h": float(row["requests"] or 0) / horizon_h,
                "worst_shard_p99_ms": float(p99.max()) if len(p99) else np.nan,
                "worst_shard_max_ms": float(walls.max()) if len(walls) else np.nan,
                "mean_call_ms": float(walls.mean()) if len(walls) else np.nan,
                "max_requests_per_call": int(calls.n_requests.max()) if len(calls) else 0,
                "max_drivers_per_call": int(calls.n_drivers.max()) if len(calls) else 0,
                "completed_share": row["completed_share"],
                "pickup_wait_mean_s": row["pickup_wait_mean_s"],
                "time_to_match_p95_s": row["time_to_match_p95_s"],
                "run_id": row["run_id"],
            }
        )
    table = pd.DataFrame(rows)
    budget_ms = budget_fraction * window_s * 1000.0
    recommendations = _grid_recommendations(table, budget_ms)
    notes: list[str] = []
    model = None
    cities = regions = None
    try:
        model = fit_model(spec.dispatch.matcher, window_s, table, calls_of)
    except ValueError as exc:
        notes.append(f"no cost model: {exc}")
    if target is not None:
        if model is None:
            raise InputError(scenario, "", "the grid's runs gave no matcher calls to fit a model")
        target = Target(
            target.trips_per_day,
            target.cities,
            target.today_trips_per_day,
            budget_fraction,
            max_utilisation,
            target.time_to_match_p99_s,
        )
        cities, regions = plan_target(model, target, peak_hour_share(spec), table)
        if target.time_to_match_p99_s is not None:
            notes.append(_rider_slo_note(out, table, target.time_to_match_p99_s))
    plan = CapacityPlan(table, recommendations, model, cities, regions, notes)
    limits = Target(0.0, [], 0.0, budget_fraction, max_utilisation)
    write_plan(plan, spec.name, window_s, limits, target, out, peak_hour_share(spec))
    return plan


def _grid_recommendations(table: pd.DataFrame, budget_ms: float) -> pd.DataFrame:
    recs = []
    for load, g in table.groupby("load", sort=True):
        g = g.sort_values("shards")
        base = g.iloc[0]
        fits = g[g.worst_shard_p99_ms <= budget_ms]
        pick = fits.iloc[0] if len(fits) else g.iloc[-1]
        recs.append(
            {
                "load": load,
                "recommended_shards": int(pick.shards),
                "fits_budget": bool(len(fits)),
                "worst_shard_p99_ms": pick.worst_shard_p99_ms,
                "budget_ms": budget_ms,
                "completed_share_change": pick.completed_share - base.completed_share,
                "pickup_wait_change_s": pick.pickup_wait_mean_s - base.pickup_wait_mean_s,
            }
        )
    return pd.DataFrame(recs)


def _rider_slo_note(out: Path, table: pd.DataFrame, target_s: float) -> str:
    """The rider-facing time-to-match p99 on the measured grid against its SLO."""
    # deferred: reports.run reads metrics.json only for this optional check
    from reports.run import load_json

    worst = 0.0
    where = ""
    for g in table.itertuples(index=False):
        m = load_json(out / g.run_id / "metrics.json", "the run metrics")
        v = (m.get("time_to_match_s") or {}).get("p99")
        if v is not None and v > worst:
            worst, where = float(v), f"load {g.load:g}, {g.shards} shards"
    verdict = "meets" if worst <= target_s else "BREAKS"
    return (
        f"rider-facing time to match p99: worst on the measured grid {worst:.1f} s ({where}), "
        f"{verdict} the SLO <= {target_s:g} s (set by the market and the batch window; "
        "measured, not extrapolated)"
    )


def write_plan(
    plan: CapacityPlan,
    name: str,
    window_s: float,
    limits: Target,
    target: Target | None,
    out: Path,
    peak_share: float,
) -> None:
    """capacity.md, capacity.html, the CSVs and the two figures."""
    # deferred: matplotlib is only needed once the plan is written
    from harness.capacity_figures import write_figures

    out.mkdir(parents=True, exist_ok=True)
    plan.table.to_csv(out / "capacity.csv", index=False)
    plan.recommendations.to_csv(out / "capacity_recommendations.csv", index=False)
    if plan.cities is not None:
        plan.cities.to_csv(out / "capacity_cities.csv", index=False)
    if plan.model is not None:
        (out / "capacity_model.json").write_text(
            json.dumps(model_json(plan.model), indent=2, sort_keys=True) + "\n"
        )
    figures = write_figures(plan, target, out, limits, peak_share)
    md = plan_markdown(
        plan, name, window_s, limits.budget_fraction, limits.max_utilisation, target, figures
    )
    (out / "capacity.md").write_text(md)
    (out / "capacity.html").write_text(plan_html(md, figures, out))


def model_json(model: Model) -> dict[str, Any]:
    """The fitted model as plain data (``capacity_model.json``; :func:`model_from_json` reads
    it back)."""
    s = model.sizes
    return {
        "matcher": model.matcher,
        "window_s": model.window_s,
        "cost": {
            "kind": model.cost.kind,
            "coef": list(model.cost.coef),
            "quality": model.cost.quality,
        },  # fmt: skip
        "tail": model.tail,
        "mean_factor": model.mean_factor,
        "sizes": {
            "r99": list(s.r99),
            "d99": list(s.d99),
            "rmean": list(s.rmean),
            "dmean": list(s.dmean),
            "imbalance": {str(k): v for k, v in sorted(s.imbalance.items())},
            "quality": s.quality,
        },
        "alternatives": model.alternatives,
    }


def model_from_json(data: dict[str, Any]) -> Model:
    """A model written by :func:`model_json` (without its per-point held-out table)."""
    c, s = data["cost"], data["sizes"]
    sizes = SizeModel(
        tuple(s["r99"]),
        tuple(s["d99"]),
        tuple(s["rmean"]),
        tuple(s["dmean"]),
        {int(k): float(v) for k, v in s["imbalance"].items()},
        s["quality"],
    )
    cost = CostModel(c["kind"], tuple(c["coef"]), c["quality"])
    return Model(
        data["matcher"],
        data["window_s"],
        cost,
        sizes,
        data["alternatives"],
        pd.DataFrame(),
        float(data["tail"]),
        float(data.get("mean_factor", 1.0)),
    )


def plan_markdown(
    plan: CapacityPlan,
    name: str,
    window_s: float,
    budget_fraction: float,
    max_utilisation: float,
    target: Target | None,
    figures: list[Path],
) -> str:
    """The plan for people."""
    budget_ms = budget_fraction * window_s * 1000.0
    lines = [
        f"# Capacity plan: {name}",
        "",
        f"Batch window {window_s:g} s. Matcher SLO: worst shard's p99 per batch <= "
        f"{budget_fraction:.0%} of the window ({budget_ms:.0f} ms); headroom: a matcher core "
        f"busy <= {max_utilisation:.0%} of the time. Wall-clock figures of the machine that ran "
        "the grid.",
        "",
    ]
    m = plan.model
    if target is not None and plan.cities is not None and m is not None:
        c = plan.cities
        lines += [
            f"## Target: {target.trips_per_day:,.0f} trips/day over {len(target.cities)} cities",
            "",
            f"Today's load taken as {target.today_trips_per_day:,.0f} trips/day. Total: "
            f"**{_total_shards(c)} shards on {int(np.nansum(c.cores))} matcher cores** "
            f"({len(plan.regions) if plan.regions is not None else 0} regions).",
            "",
            markdown_table(c),
            "",
        ]
        if plan.regions is not None:
            lines += ["### Cores per region", "", markdown_table(plan.regions), ""]
        lines += [
            "`headroom_today_x`: how many times today's load the city's shards of today "
            "(`shards_today`) carry before the matcher SLO breaks. `table_gb`: the travel-time "
            "table (4 bytes x nodes^2) each of the city's matcher pods maps. Border cost: "
            "measured on the grid at its highest load (`border_measured_at`), not extrapolated.",
            "",
        ]
    for note in plan.notes:
        lines.append(f"- {note}")
    if m is not None:
        lines += [
            "",
            f"## The model ({m.matcher})",
            "",
            f"Cost of a call: **{m.cost.kind}**, {m.cost.formula()} "
            f"(R open requests, D candidate drivers per call; fitted on the medians of "
            f"half-octave size bins); p99 per batch = the cost at the p99 call size + "
            f"{m.tail:.3g} ms (the tail that size does not explain, measured); mean per call = "
            f"{m.mean_factor:.3g} x the cost at the mean call size (convexity, measured).",
            "",
            "| model | calls | R² (log ms) | median rel. error per call | p90 | held-out p99 "
            "median error | held-out p99 max error |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind, q in m.alternatives.items():
            lines.append(
                f"| {kind}{' (chosen)' if kind == m.cost.kind else ''} | {q['calls']:.0f} | "
                f"{q['r2_log']:.3f} | {q['median_rel_err']:.1%} | {q['p90_rel_err']:.1%} | "
                f"{q['holdout_p99_median_rel_err']:.1%} | {q['holdout_p99_max_rel_err']:.1%} |"
            )
        s = m.sizes
        lines += [
            "",
            "Call sizes per shard vs its requests per hour l: "
            + ", ".join(
                f"{label} = {getattr(s, k)[0]:.4g} + {getattr(s, k)[1]:.4g}·l"
                for k, label in (
                    ("r99", "R99"),
                    ("d99", "D99"),
                    ("rmean", "mean R"),
                    ("dmean", "mean D"),
                )
            )
            + " "
            f"(R² {', '.join(f'{k} {v:.3f}' for k, v in s.quality.items())}); worst-shard "
            f"imbalance {', '.join(f'{k}: {v:.2f}' for k, v in sorted(s.imbalance.items()))}.",
            "",
            "Held out, point by point (the model fitted without that grid point):",
            "",
            markdown_table(m.holdout),
        ]
    lines += ["", "## Measured grid: recommendation per load", "",
              markdown_table(plan.recommendations), "", "## All runs", "",
              markdown_table(plan.table)]  # fmt: skip
    for fig in figures:
        lines += ["", f"![{fig.stem}]({fig.name})"]
    return "\n".join(lines) + "\n"


def _total_shards(c: pd.DataFrame) -> str:
    vals = c.shards.tolist()
    if all(isinstance(v, int | np.integer) for v in vals):
        return f"{int(sum(vals))}"
    return "more than " + str(sum(int(v) for v in vals if isinstance(v, int | np.integer)))


def plan_html(md: str, figures: list[Path], out: Path) -> str:
    """A self-contained page: the Markdown as preformatted text plus the figures embedded."""
    imgs = "".join(
        f'<figure><img alt="{html.escape(f.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(f.read_bytes()).decode("ascii")}"><figcaption>'
        f"{html.escape(f.stem.replace('_', ' '))}</figcaption></figure>"
        for f in figures
    )
    body = html.escape("\n".join(ln for ln in md.splitlines() if not ln.startswith("![")))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>capacity plan</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}pre{white-space:pre-wrap}"
        "img{max-width:100%}</style></head><body><pre>" + body + "</pre>" + imgs
        + "</body></html>\n"
    )  # fmt: skip

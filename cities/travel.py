"""Travel-time model: free-flow times scaled by day type x clock hour (and trip length).

The model (see docs/travel_model.md for its assumptions) gives the expected time of a leg whose
free-flow time is ``ff`` seconds and which departs at local clock time ``c``::

    T = ff * F[day_type(c), hour(c)] * (clip(ff, lo, hi) / ref) ** e

* ``F`` is a (3, 24) table of factors: rows ``weekday`` (Monday-Friday), ``saturday`` and
  ``sunday`` (Sundays and the listed holidays); a single row (24 factors) is the same factor
  every day. Factors are at least 1: a vehicle never beats the free-flow time.
* ``e`` (``length_elasticity``, 0 = off) lets short legs be slower per free-flow second than
  long ones (the fixed cost of starting, stopping and turning, which free-flow speeds per road
  class miss); ``ff`` is clipped to the range ``[lo, hi]`` seen in the fit so that it never
  extrapolates.

:func:`fit_travel` fits ``F`` and ``e`` to recorded trips by a robust (Huber) regression on log
times, with ridge shrinkage of sparse cells towards the hour and day-type effects.
:class:`Congestion` is what the engine asks, vectorised over legs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from core.clock import DAY, HOUR

DAY_TYPES = ("weekday", "saturday", "sunday")
"""Rows of a day-type table; ``sunday`` also holds holidays."""
ELASTICITY_BOUND = 0.8
"""The fitted length elasticity is held within +-this (at -1 a leg would take the same time
whatever its length)."""
_EPOCH = dt.date(1970, 1, 1)
_HUBER_K = 1.345
"""Huber threshold in robust standard deviations (95% efficiency under normal errors)."""
_RIDGE_MAIN = 5.0
"""Pseudo-trips pulling each hour and day-type effect towards the overall level."""
_RIDGE_CELL = 30.0
"""Pseudo-trips pulling each day-type x hour cell towards its hour + day-type effects."""


def day_number(date: str | dt.date) -> int:
    """Days since 1970-01-01 of a ``YYYY-MM-DD`` date."""
    d = dt.date.fromisoformat(date) if isinstance(date, str) else date
    return (d - _EPOCH).days


def day_types(day: np.ndarray, holidays: Iterable[int] = ()) -> np.ndarray:
    """Row of :data:`DAY_TYPES` for each day number: 0 weekday, 1 Saturday, 2 Sunday/holiday."""
    day = np.asarray(day, dtype=np.int64)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    out = np.where(weekday < 5, 0, np.where(weekday == 5, 1, 2)).astype(np.int64)
    hol = np.fromiter(holidays, dtype=np.int64)
    if hol.size:
        out[np.isin(day, hol)] = 2
    return out


@dataclass(frozen=True, eq=False)
class Congestion:
    """The engine's congestion lookup: factors by (day type x) clock hour, plus the length term.

    Simulated time ``t`` is local clock ``start_s + t`` seconds after midnight of day number
    ``start_day`` (needed only for a day-type table)."""

    table: np.ndarray | tuple[float, ...] | None = None
    """(3, 24) rows of :data:`DAY_TYPES`, or 24 factors (or (1, 24)) the same every day;
    None: free flow."""
    start_s: float = 0.0
    start_day: int | None = None
    holidays: tuple[int, ...] = ()
    length_elasticity: float = 0.0
    length_range_s: tuple[float, float] = (1.0, 1.0)
    length_ref_s: float = 1.0
    flat: bool = field(init=False)
    """No congestion at all: every factor 1 and no length term (the engine skips the work)."""

    def __post_init__(self) -> None:
        raw = np.ones(24) if self.table is None else self.table
        table = np.asarray(raw, dtype=np.float64)
        table = table.reshape(1, -1) if table.ndim == 1 else table
        if table.ndim != 2 or table.shape[1] != 24 or table.shape[0] not in (1, 3):
            raise ValueError(f"congestion table must be 24, (1, 24) or (3, 24), got {table.shape}")
        if table.shape[0] == 3 and self.start_day is None:
            raise ValueError("a congestion table by day type needs the start date")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "start_s", float(self.start_s))
        flat = bool(np.all(table == 1.0)) and not self.by_length
        object.__setattr__(self, "flat", flat)

    @property
    def by_length(self) -> bool:
        """Whether the length term is on (then a leg's factor depends on its free-flow time)."""
        return self.length_elasticity != 0.0

    def factors(self, t: np.ndarray | float) -> np.ndarray:
        """Factor of the (day type and) clock hour at each simulated time of ``t``."""
        clock = self.start_s + np.asarray(t, dtype=np.float64)
        hour = (clock // HOUR).astype(np.int64) % 24
        table = self.table
        assert isinstance(table, np.ndarray)
        if table.shape[0] == 1:
            return table[0, hour]
        day = self.start_day + (clock // DAY).astype(np.int64)
        return table[day_types(day, self.holidays), hour]

    def factor(self, t: float) -> float:
        """Factor of the (day type and) clock hour at simulated time ``t``."""
        return float(self.factors(np.array([t]))[0])

    def apply(self, free_flow: np.ndarray | float, t: np.ndarray | float) -> np.ndarray:
        """Expected times of legs with free-flow seconds ``free_flow`` departing at ``t``."""
        ff = np.asarray(free_flow, dtype=np.float64)
        out = ff * self.factors(t)
        if self.by_length:
            lo, hi = self.length_range_s
            scale = (np.clip(ff, lo, hi) / self.length_ref_s) ** self.length_elasticity
            out = np.maximum(out * scale, ff)  # never faster than free flow
        return out


@dataclass(frozen=True, eq=False)
class TravelFit:
    """A fitted travel model (the content of a profile file's ``[travel]`` table)."""

    table: np.ndarray
    """(3, 24) factors by day type x hour (each >= 1)."""
    length_elasticity: float
    length_range_s: tuple[float, float]
    length_ref_s: float
    trips_per_cell: np.ndarray
    """(3, 24) fitted trips in each cell (a cell with few trips leans on its hour and day type)."""
    clamped_cells: int
    """Cells whose fitted factor was below 1 and is held at 1."""

    def congestion(
        self, start_s: float, start_day: int | None, holidays: tuple[int, ...] = ()
    ) -> Congestion:
        """The engine's lookup for this model."""
        return Congestion(
            self.table,
            start_s=start_s,
            start_day=start_day,
            holidays=holidays,
            length_elasticity=self.length_elasticity,
            length_range_s=self.length_range_s,
            length_ref_s=self.length_ref_s,
        )

    def predict(
        self, free_flow: np.ndarray, clock: np.ndarray, holidays: tuple[int, ...] = ()
    ) -> np.ndarray:
        """Expected times of legs departing at local clock ``clock`` (seconds since 1970)."""
        return self.congestion(0.0, 0, holidays).apply(free_flow, clock)


def cells_of(clock: np.ndarray, holidays: Iterable[int] = ()) -> np.ndarray:
    """Cell ``day_type * 24 + hour`` of local clock times (seconds since 1970-01-01)."""
    clock = np.asarray(clock, dtype=np.float64)
    hour = (clock // HOUR).astype(np.int64) % 24
    day = (clock // DAY).astype(np.int64)
    return day_types(day, holidays) * 24 + hour


def fit_travel(
    free_flow: np.ndarray,
    recorded: np.ndarray,
    clock: np.ndarray,
    *,
    holidays: tuple[int, ...] = (),
    length_term: bool = True,
) -> TravelFit:
    """Fit factors by day type x hour (and the length elasticity) to recorded trip times.

    ``free_flow`` and ``recorded`` are positive seconds, ``clock`` the local departure time in
    seconds since 1970. The fit minimises a Huber loss on ``log(recorded)`` (so a few trips
    recorded at 24 h, or at 5 s, do not steer it) with the model's log as the linear predictor
    ``a + hour[h] + day[d] + cell[d, h] + e * log(ff / ref)``; hour, day-type and cell effects are
    shrunk by ridge penalties worth :data:`_RIDGE_MAIN` and :data:`_RIDGE_CELL` trips."""
    ff = np.asarray(free_flow, dtype=np.float64)
    rec = np.asarray(recorded, dtype=np.float64)
    n = ff.shape[0]
    if n == 0:
        raise ValueError("no trips to fit")
    cell = cells_of(clock, holidays)
    lo, hi = (float(v) for v in np.percentile(ff, [1, 99]))
    hi = max(hi, lo)
    ref = float(np.exp(np.median(np.log(np.clip(ff, lo, hi)))))
    z = np.log(np.clip(ff, lo, hi) / ref)
    y = np.log(rec / ff)

    hour, dtype_ = cell % 24, cell // 24
    p = 1 + 24 + 3 + 72 + (1 if length_term else 0)
    cols = [np.zeros(n, dtype=np.int64), 1 + hour, 25 + dtype_, 28 + cell]
    penalty = np.zeros(p)
    penalty[1:28] = _RIDGE_MAIN
    penalty[28:100] = _RIDGE_CELL
    zz = z if length_term else None
    weights = np.ones(n)
    for _ in range(50):  # iteratively reweighted least squares for the Huber loss
        xtx, xty = _normal_equations(cols, zz, y, weights, p)
        beta = np.linalg.solve(xtx + np.diag(penalty), xty)
        resid = y - _predict(beta, cols, zz)
        scale = max(1.4826 * float(np.median(np.abs(resid - np.median(resid)))), 1e-6)
        new_w = np.minimum(1.0, _HUBER_K * scale / np.maximum(np.abs(resid), 1e-12))
        if np.max(np.abs(new_w - weights)) < 1e-6:
            break
        weights = new_w
    log_f = beta[0] + beta[1 + np.arange(72) % 24] + beta[25 + np.arange(72) // 24]
    log_f = log_f + beta[28 : 28 + 72]
    table = np.exp(log_f).reshape(3, 24)
    clamped = int((table < 1.0).sum())
    return TravelFit(
        table=np.maximum(table, 1.0),
        length_elasticity=float(np.clip(beta[100], -ELASTICITY_BOUND, ELASTICITY_BOUND))
        if length_term
        else 0.0,
        length_range_s=(lo, hi),
        length_ref_s=ref,
        trips_per_cell=np.bincount(cell, minlength=72).reshape(3, 24),
        clamped_cells=clamped,
    )


def _normal_equations(
    cols: list[np.ndarray], z: np.ndarray | None, y: np.ndarray, w: np.ndarray, p: int
) -> tuple[np.ndarray, np.ndarray]:
    """X'WX and X'Wy of the sparse one-hot design (plus the dense ``z`` column)."""
    xtx = np.zeros((p, p))
    xty = np.zeros(p)
    for i, a in enumerate(cols):
        xty += np.bincount(a, weights=w * y, minlength=p)
        for b in cols[i:]:
            block = np.bincount(a * p + b, weights=w, minlength=p * p).reshape(p, p)
            xtx += block if b is a else block + block.T
        if z is not None:
            xtx[p - 1, :] += np.bincount(a, weights=w * z, minlength=p)
    if z is not None:
        xtx[:, p - 1] = xtx[p - 1, :]
        xtx[p - 1, p - 1] = float((w * z * z).sum())
        xty[p - 1] = float((w * z * y).sum())
    return xtx, xty


def _predict(beta: np.ndarray, cols: list[np.ndarray], z: np.ndarray | None) -> np.ndarray:
    out = sum(beta[a] for a in cols)
    return out + beta[-1] * z if z is not None else out


def fit_figures(simulated: np.ndarray, recorded: np.ndarray) -> dict[str, float | int | None]:
    """How well ``simulated`` times match ``recorded`` ones: median absolute % error, bias
    (median signed % error), quantiles of the ratio, Spearman and Pearson on log times."""
    sim = np.asarray(simulated, dtype=np.float64)
    rec = np.asarray(recorded, dtype=np.float64)
    n = int(sim.shape[0])
    if n == 0:
        keys = ("median_abs_pct_error", "bias_pct", "ratio_p10", "ratio_p50", "ratio_p90")
        return {"trips": 0, **dict.fromkeys(keys), "spearman": None, "pearson_log": None}
    ratio = sim / rec
    p10, p25, p50, p75, p90 = (float(v) for v in np.percentile(ratio, [10, 25, 50, 75, 90]))
    varied = n >= 3 and np.ptp(sim) > 0 and np.ptp(rec) > 0
    if varied:
        # deferred: scipy.stats costs ~0.5 s to import; synthetic runs never compare trip times
        from scipy import stats
    return {
        "trips": n,
        "median_abs_pct_error": float(np.median(np.abs(ratio - 1.0)) * 100.0),
        "bias_pct": float((p50 - 1.0) * 100.0),
        "ratio_p10": p10,
        "ratio_p25": p25,
        "ratio_p50": p50,
        "ratio_p75": p75,
        "ratio_p90": p90,
        "spearman": float(stats.spearmanr(sim, rec)[0]) if varied else None,
        "pearson_log": float(stats.pearsonr(np.log(sim), np.log(rec))[0]) if varied else None,
    }

"""The surge contract, version 1: supply and demand per zone in, a price multiplier per zone out.

Every ``interval_s`` seconds the simulator counts supply and demand in each zone
(:mod:`cities.zones`) into a :class:`SupplyDemandSnapshot` and asks the scenario's
:class:`SurgePolicy` for the multipliers that hold until the next interval. The answer is the
columnar form of ``dict[cell, multiplier]``: a float64 array aligned with the snapshot's rows.

Rules every policy follows (checked by :mod:`matching.surge_checks`):

* ``__init__`` only stores (and validates) parameters; ``get_params()`` returns them
  JSON-serialisable, and ``type(p)(**p.get_params())`` behaves identically.
* ``floor`` and ``cap`` declare the range of every multiplier the policy returns
  (``0 < floor <= cap``, both finite).
* ``price`` never mutates the snapshot; the same snapshot gives the same array (any randomness
  comes from ``snapshot.seed``); the array has one finite value per row, within
  ``[floor, cap]``; empty snapshots and zones with no drivers or no demand work.
* A policy keeps no state between calls: what it needs from the past is in the snapshot
  (``previous_multiplier``), so a run can be replayed or sharded.

Built-in policies (:data:`SURGE_POLICIES`): ``none`` (a fixed price), ``ratio`` (demand over
idle supply, smoothed in space and time) and ``eta_target`` (a controller on pickup ETA). Any
class with ``price`` and ``get_params`` can be named by import path ``package.module:Class``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from core.errors import InputError
from core.zoning import Zones, check_csr
from matching.api import API_VERSION, frozen_array, unchecked_message
from matching.plugins import NonNegative, Number, Params, Plugin, Positive, Registry

_COUNTS = ("open_requests", "quotes", "unconverted_quotes", "idle_drivers", "en_route_drivers")
_FLOATS = ("recent_pickup_eta_s", "previous_multiplier")


@dataclass(frozen=True, eq=False)
class SupplyDemandSnapshot:
    """Supply and demand in each zone at ``time``, one row per cell, rows sorted by ``cell``.

    Counts are int64. ``open_requests``, ``idle_drivers`` and ``en_route_drivers`` (drivers
    heading to a pickup in the cell) are counted at ``time``; ``quotes`` (prices shown) and
    ``unconverted_quotes`` (shown but not requested) over the last ``interval_s`` seconds.
    ``recent_pickup_eta_s`` is the mean pickup ETA of assignments in the cell over the last
    interval (NaN when there was none). ``previous_multiplier`` is the multiplier in force now
    (1.0 at the start). Neighbours are compressed sparse rows as in
    :class:`cities.zones.Zones`: ``neighbour_idx[neighbour_ptr[r]:neighbour_ptr[r + 1]]``
    are the rows of cell ``r``'s neighbours in this snapshot.
    """

    time: float
    interval_s: float
    cell: np.ndarray
    open_requests: np.ndarray
    quotes: np.ndarray
    unconverted_quotes: np.ndarray
    idle_drivers: np.ndarray
    en_route_drivers: np.ndarray
    recent_pickup_eta_s: np.ndarray
    previous_multiplier: np.ndarray
    neighbour_ptr: np.ndarray
    neighbour_idx: np.ndarray
    seed: int = 0
    api_version: int = API_VERSION

    def __post_init__(self) -> None:
        kind = "SupplyDemandSnapshot"
        if not (
            math.isfinite(self.time) and math.isfinite(self.interval_s) and self.interval_s > 0
        ):
            raise ValueError(
                f"{kind}: time must be finite and interval_s > 0, got "
                f"{self.time}, {self.interval_s}"
            )
        cell = frozen_array(self.cell, object, f"{kind}.cell")
        if not all(isinstance(c, str) for c in cell.tolist()):
            raise ValueError(f"{kind}.cell: expected str cell ids")
        if cell.shape[0] > 1 and not bool(np.all(cell[1:] > cell[:-1])):
            raise ValueError(f"{kind}.cell: must be strictly increasing (sorted, unique)")
        object.__setattr__(self, "cell", cell)
        n = cell.shape[0]
        for name in _COUNTS + _FLOATS:
            dtype = np.float64 if name in _FLOATS else np.int64
            raw = getattr(self, name)
            if dtype is np.int64 and np.asarray(raw).dtype.kind == "f":
                raise ValueError(f"{kind}.{name}: expected integer counts")
            arr = frozen_array(raw, dtype, f"{kind}.{name}")
            if arr.shape[0] != n:
                raise ValueError(f"{kind}.{name}: has {arr.shape[0]} rows, expected {n}")
            if dtype is np.int64 and arr.size and arr.min() < 0:
                raise ValueError(f"{kind}.{name}: counts must be >= 0")
            object.__setattr__(self, name, arr)
        if bool(np.any(self.unconverted_quotes > self.quotes)):
            raise ValueError(f"{kind}.unconverted_quotes: more than quotes in some cell")
        eta = self.recent_pickup_eta_s
        if bool(np.any(eta[~np.isnan(eta)] < 0)) or bool(np.any(np.isinf(eta))):
            raise ValueError(f"{kind}.recent_pickup_eta_s: expected finite seconds >= 0 or NaN")
        m = self.previous_multiplier
        if not bool(np.all(np.isfinite(m) & (m > 0))):
            raise ValueError(f"{kind}.previous_multiplier: expected finite values > 0")
        ptr = frozen_array(self.neighbour_ptr, np.int64, f"{kind}.neighbour_ptr")
        idx = frozen_array(self.neighbour_idx, np.int64, f"{kind}.neighbour_idx")
        check_csr(ptr, idx, n, kind)
        object.__setattr__(self, "neighbour_ptr", ptr)
        object.__setattr__(self, "neighbour_idx", idx)

    def __len__(self) -> int:
        return int(self.cell.shape[0])

    @classmethod
    def unchecked(
        cls, *, time: float, interval_s: float, seed: int = 0, **columns: np.ndarray
    ) -> SupplyDemandSnapshot:
        """Build without validation from arrays of the right dtypes (object cell ids sorted,
        int64 counts, float64 ETAs and multipliers, int64 neighbour CSR).

        For trusted producers on the hot path (the simulator); the arrays become read-only.
        """
        extra = {
            "time": float(time),
            "interval_s": float(interval_s),
            "seed": int(seed),
            "api_version": API_VERSION,
        }
        return unchecked_message(cls, columns, extra)

    @classmethod
    def for_zones(
        cls,
        zones: Zones,
        *,
        time: float,
        interval_s: float,
        seed: int = 0,
        **columns: np.ndarray,
    ) -> SupplyDemandSnapshot:
        """A validated snapshot over every cell of ``zones`` (cells and neighbours from there).

        Count columns left out are zeros, ``recent_pickup_eta_s`` NaN and
        ``previous_multiplier`` 1.0.
        """
        n = len(zones)
        full: dict[str, Any] = {name: np.zeros(n, dtype=np.int64) for name in _COUNTS}
        full["recent_pickup_eta_s"] = np.full(n, np.nan)
        full["previous_multiplier"] = np.ones(n)
        unknown = set(columns) - set(full)
        if unknown:
            raise TypeError(f"for_zones: unknown columns {sorted(unknown)}")
        full.update(columns)
        return cls(
            time=time,
            interval_s=interval_s,
            cell=zones.cell,
            neighbour_ptr=zones.neighbour_ptr,
            neighbour_idx=zones.neighbour_idx,
            seed=seed,
            **full,
        )


@runtime_checkable
class SurgePolicy(Protocol):
    """Anything that prices a :class:`SupplyDemandSnapshot`.

    ``floor`` and ``cap`` bound every multiplier returned. The constructor stores parameters
    only; all work happens in :meth:`price`.
    """

    floor: float
    cap: float

    def price(self, snapshot: SupplyDemandSnapshot) -> np.ndarray:
        """The multiplier for each snapshot row (float64, ``len(snapshot)`` values)."""
        ...

    def get_params(self) -> dict[str, Any]: ...


# ---------------------------------------------------------------------------------------------
# Helpers for policies


class BoundedParams(Params):
    """Parameters of a policy with a declared range ``0 < floor <= cap``."""

    floor: Positive = 1.0
    cap: Positive = 3.0

    @field_validator("cap")
    @classmethod
    def _cap_over_floor(cls, cap: float, info: ValidationInfo) -> float:
        floor = info.data.get("floor")
        if floor is not None and not cap >= floor:
            raise ValueError(f"must be >= floor ({floor}), got {cap}")
        return cap


def check_bounds(floor: Any, cap: Any) -> tuple[float, float]:
    """``(floor, cap)`` as floats when they are finite numbers with ``0 < floor <= cap``;
    ``ValueError`` otherwise (a policy that does not derive from :class:`BoundedParams` is
    checked with this when it is built)."""
    for name, v in (("floor", floor), ("cap", cap)):
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise ValueError(f"{name}: expected a number, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"{name}: expected a finite number, got {v!r}")
    lo, hi = float(floor), float(cap)
    if not lo > 0:
        raise ValueError(f"floor: must be > 0, got {lo}")
    if not hi >= lo:
        raise ValueError(f"cap: must be >= floor ({lo}), got {hi}")
    return lo, hi


def round_to_step(m: np.ndarray, step: float) -> np.ndarray:
    """``m`` rounded half up to multiples of ``step`` (``step = 0``: unchanged).

    Values within 1e-9 steps below a half are taken as the half (floating-point noise in
    ``0.5 * 1.5 + 0.5 * 1.2`` must not decide whether 1.35 shows as 1.3 or 1.4). For a step
    whose inverse is an integer (0.1, 0.05, 0.25) the results are exactly the decimal values
    (``1.3``, not ``1.3000000000000003``).
    """
    m = np.asarray(m, dtype=np.float64)
    if step == 0:
        return m.copy()
    inv = 1.0 / step
    k = np.floor(m * inv + 0.5 + 1e-9)
    if abs(inv - round(inv)) < 1e-9:
        return k / round(inv)
    return k * step


def neighbour_mean(values: np.ndarray, ptr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each row's neighbours (the row's own value where it has none).

    Sums in neighbour-list order, so the result is reproducible bit for bit.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    deg = np.diff(ptr)
    owner = np.repeat(np.arange(n, dtype=np.int64), deg)
    sums = np.bincount(owner, weights=values[idx], minlength=n) if idx.size else np.zeros(n)
    out = values.copy()
    has = deg > 0
    out[has] = sums[has] / deg[has]
    return out


# ---------------------------------------------------------------------------------------------
# Built-in policies


class NoSurge(Plugin):
    """A fixed price: the multiplier is 1 everywhere, always."""

    name: ClassVar[str] = "none"
    floor: float = 1.0
    cap: float = 1.0

    def price(self, snapshot: SupplyDemandSnapshot) -> np.ndarray:
        """Ones, one per row."""
        return np.ones(len(snapshot), dtype=np.float64)


class RatioSurge(Plugin):
    """Price by the ratio of demand to idle supply, smoothed in space and time.

    For each cell ``i`` (``N(i)`` its neighbours in the snapshot)::

        demand_i = open_requests_i + quotes_i                (demand = "quotes", the default)
                 = open_requests_i + unconverted_quotes_i    (demand = "unserved")
        raw_i    = demand_i / max(idle_drivers_i, 1)
        ratio_i  = (1 - neighbour_weight) * raw_i + neighbour_weight * mean(raw_j for j in N(i))
                   (ratio_i = raw_i for a cell without neighbours)
        target_i = clip(1 + sensitivity * (ratio_i - threshold), floor, cap)
        m_i      = alpha * target_i + (1 - alpha) * previous_multiplier_i
        result_i = clip(round_to_step(m_i, step), floor, cap)

    Rounding is half up to ``step`` (0.1: apps show "1.3x"; 0 disables it); the last clip
    keeps a ``floor``/``cap`` that is not a multiple of ``step`` (and a previous multiplier
    outside the bounds) from escaping them. Defaults: a 1:1 ratio prices at 1x, each extra
    waiting rider per idle driver adds 0.5x, up to 3x; half of the move happens per interval.

    Why ``quotes`` by default: everyone who asked for a price in the interval measures demand
    whatever the price was, so raising the price cannot raise the measured demand. With
    ``unserved``, riders put off by a high price count as unconverted quotes and push the price
    higher still: a feedback loop that runs to the cap (seen in the wild-goose-chase sweep).
    """

    name: ClassVar[str] = "ratio"

    class Params(BoundedParams):
        threshold: Number = 1.0
        sensitivity: NonNegative = 0.5
        neighbour_weight: Annotated[Number, Field(ge=0, le=1)] = 0.3
        alpha: Annotated[Number, Field(gt=0, le=1)] = 0.5
        step: NonNegative = 0.1
        demand: Literal["quotes", "unserved"] = "quotes"

    floor: float
    cap: float
    threshold: float
    sensitivity: float
    neighbour_weight: float
    alpha: float
    step: float
    demand: str

    def price(self, snapshot: SupplyDemandSnapshot) -> np.ndarray:
        s = snapshot
        waiting = s.quotes if self.demand == "quotes" else s.unconverted_quotes
        demand = (s.open_requests + waiting).astype(np.float64)
        raw = demand / np.maximum(s.idle_drivers, 1)
        w = self.neighbour_weight
        ratio = (1.0 - w) * raw + w * neighbour_mean(raw, s.neighbour_ptr, s.neighbour_idx)
        target = np.clip(1.0 + self.sensitivity * (ratio - self.threshold), self.floor, self.cap)
        m = self.alpha * target + (1.0 - self.alpha) * s.previous_multiplier
        out: np.ndarray = np.clip(round_to_step(m, self.step), self.floor, self.cap)
        return out


class EtaTargetSurge(Plugin):
    """A controller holding pickup ETAs near ``target_eta_s`` by moving the price.

    For each cell ``i`` with ``p_i = previous_multiplier_i``::

        m_i = p_i + gain * (recent_pickup_eta_s_i / target_eta_s - 1)   where an ETA is known
        m_i = p_i moved toward 1 by at most decay                        where it is NaN
        result_i = clip(round_to_step(m_i, step), floor, cap)

    The price rises while pickups take longer than the target and falls while they are
    faster. With rounding to ``step`` the controller has a dead band: a change smaller than
    half a step (with the defaults, an ETA within 10% of the target) leaves the price as it
    is. Defaults: target 7 minutes, gain 0.5, decay 0.1 per interval, bounds [1, 3].
    """

    name: ClassVar[str] = "eta_target"

    class Params(BoundedParams):
        target_eta_s: Positive = 420.0
        gain: NonNegative = 0.5
        decay: NonNegative = 0.1
        step: NonNegative = 0.1

    floor: float
    cap: float
    target_eta_s: float
    gain: float
    decay: float
    step: float

    def price(self, snapshot: SupplyDemandSnapshot) -> np.ndarray:
        prev = snapshot.previous_multiplier
        eta = snapshot.recent_pickup_eta_s
        known = ~np.isnan(eta)
        # NaN ETAs give NaN here, replaced just below; errstate keeps that silent.
        with np.errstate(invalid="ignore"):
            push = prev + self.gain * (eta / self.target_eta_s - 1.0)
        gap = prev - 1.0
        relax = prev - np.sign(gap) * np.minimum(np.abs(gap), self.decay)
        m = np.where(known, push, relax)
        out: np.ndarray = np.clip(round_to_step(m, self.step), self.floor, self.cap)
        return out


SURGE_POLICIES = Registry(
    "surge policy",
    ("price", "get_params"),
    (NoSurge, RatioSurge, EtaTargetSurge),
    field="surge.policy",
    params_field="surge.params",
)
"""The registered policies by name (the built-ins, and any added with ``register``)."""


def make_surge_policy(
    name: str, params: Mapping[str, Any] | None = None, *, source: str = ""
) -> SurgePolicy:
    """The scenario's surge policy from its name (``surge.policy``: a key of
    :data:`SURGE_POLICIES` or an import path ``package.module:Class``) and parameters
    (``surge.params``); raises :class:`~core.errors.InputError` naming the field at fault."""
    policy = SURGE_POLICIES.make(name, params, source=source)
    try:
        check_bounds(getattr(policy, "floor", None), getattr(policy, "cap", None))
    except ValueError as e:
        raise InputError(
            source,
            "surge.policy",
            f"{name!r} must declare its bounds as numbers 0 < floor <= cap ({e})",
        ) from e
    checked: SurgePolicy = policy
    return checked


__all__ = [
    "API_VERSION",
    "BoundedParams",
    "SURGE_POLICIES",
    "EtaTargetSurge",
    "NoSurge",
    "RatioSurge",
    "SupplyDemandSnapshot",
    "SurgePolicy",
    "check_bounds",
    "make_surge_policy",
    "neighbour_mean",
    "round_to_step",
]

"""Supply models: how many drivers work, when they log on and off, and where they start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from cities.space import Space
from core.clock import DAY, ClockTime, clock_to_seconds
from core.frozen import Frozen, PositiveFloat


class Shift(Frozen):
    """A block of drivers who log on at ``start`` for ``hours``."""

    start: ClockTime
    hours: Annotated[float, Field(gt=0, le=24)]
    share: Annotated[float, Field(gt=0, le=1)]


class FleetSpec(Frozen):
    """The drivers: how many, when they work, where they start."""

    size: Annotated[int, Field(ge=0)]
    multiplier: PositiveFloat = 1.0
    shifts: tuple[Shift, ...] = ()
    """Empty (and ``fit_shifts_to_demand`` off): every driver is online all the time."""
    fit_shifts_to_demand: bool = False
    """Choose shift start hours so that drivers online follow the demand's hourly profile."""
    shift_hours: Annotated[float, Field(gt=0, le=24)] = 8.0
    """Length of each shift when they are fitted to demand."""
    start_positions: Literal["uniform", "demand"] = "uniform"

    @field_validator("shifts")
    @classmethod
    def _shares(cls, v: tuple[Shift, ...]) -> tuple[Shift, ...]:
        total = sum(s.share for s in v)
        if v and abs(total - 1.0) > 1e-6:
            raise ValueError(f"shift shares must add up to 1, got {total:g}")
        return v

    @model_validator(mode="after")
    def _one_shift_source(self) -> FleetSpec:
        if self.fit_shifts_to_demand and self.shifts:
            raise ValueError("give shifts or fit_shifts_to_demand = true, not both")
        return self

    @property
    def n_drivers(self) -> int:
        """Fleet size after the multiplier."""
        return int(round(self.size * self.multiplier))


@dataclass(frozen=True, eq=False)
class Fleet:
    """Drivers and their online intervals.

    Driver ``i`` starts at ``home_node[i]``. Interval ``j`` puts driver ``shift_driver[j]``
    online during ``[shift_on[j], shift_off[j])`` (simulated seconds); intervals are sorted by
    (on, driver) and a driver's intervals never overlap.
    """

    home_node: np.ndarray
    shift_driver: np.ndarray
    shift_on: np.ndarray
    shift_off: np.ndarray

    def __len__(self) -> int:
        return int(self.home_node.shape[0])


def _shift_counts(shares: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` drivers by ``shares`` with the largest-remainder rule (exact total)."""
    raw = shares * n
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.lexsort((np.arange(shares.size), -(raw - counts)))
        counts[order[:short]] += 1
    return counts


def shifts_for_profile(profile: np.ndarray, hours: float) -> tuple[Shift, ...]:
    """Shift blocks (one per start hour) whose drivers-online curve best matches ``profile``
    (24 hourly demand weights), by non-negative least squares over start-hour shares."""
    weights = np.asarray(profile, dtype=np.float64)
    weights = weights / weights.sum()
    # cover[t, s]: the share of clock hour t that a shift starting at hour s is on duty.
    cover = np.zeros((24, 24))
    for s in range(24):
        for k in range(int(np.ceil(hours))):
            cover[(s + k) % 24, s] += min(1.0, hours - k)
    # deferred: scipy.optimize costs ~0.15 s to import; only shift fleets need it
    from scipy.optimize import nnls

    share, _ = nnls(cover, weights)
    if share.sum() <= 0:
        share = np.full(24, 1.0 / 24)
    share = share / share.sum()
    return tuple(
        Shift(start=f"{s:02d}:00", hours=hours, share=float(share[s]))
        for s in range(24)
        if share[s] > 1e-9
    )


def shift_intervals(
    shift_start_s: float, hours: float, start_s: float, horizon_s: float
) -> list[tuple[float, float]]:
    """Daily occurrences of a shift that overlap [0, horizon), clipped to it."""
    length = hours * 3600.0
    first = (shift_start_s - start_s) % DAY - DAY  # an occurrence starting before t = 0
    out = []
    on = first
    while on < horizon_s:
        off = on + length
        if off > 0:
            out.append((max(on, 0.0), min(off, horizon_s)))
        on += DAY
    return out


def generate_fleet(
    rng: np.random.Generator,
    spec: FleetSpec,
    space: Space,
    demand_nodes: Callable[[np.random.Generator, int], np.ndarray],
    start_s: float,
    horizon_s: float,
    demand_profile: np.ndarray | None = None,
) -> Fleet:
    """Home nodes and online intervals for every driver of the fleet.

    ``demand_nodes(rng, n)`` draws ``n`` nodes where trips start (for ``start_positions =
    "demand"``)."""
    n = spec.n_drivers
    if spec.start_positions == "demand":
        home = demand_nodes(rng, n)
    else:
        home = space.locate(space.sample_points(rng, n))
    shifts = spec.shifts
    if spec.fit_shifts_to_demand:
        if demand_profile is None:
            raise ValueError("fit_shifts_to_demand needs the demand's hourly profile")
        shifts = shifts_for_profile(demand_profile, spec.shift_hours)
    if not shifts:
        drivers = np.arange(n, dtype=np.int64)
        on = np.zeros(n)
        off = np.full(n, horizon_s)
    else:
        counts = _shift_counts(np.array([s.share for s in shifts]), n)
        block = np.repeat(np.arange(len(shifts)), counts)
        block = block[rng.permutation(n)]  # which driver works which shift is random
        parts_d, parts_on, parts_off = [], [], []
        for b, shift in enumerate(shifts):
            members = np.flatnonzero(block == b)
            for lo, hi in shift_intervals(
                clock_to_seconds(shift.start), shift.hours, start_s, horizon_s
            ):
                parts_d.append(members)
                parts_on.append(np.full(members.size, lo))
                parts_off.append(np.full(members.size, hi))
        drivers = np.concatenate(parts_d) if parts_d else np.zeros(0, np.int64)
        on = np.concatenate(parts_on) if parts_on else np.zeros(0)
        off = np.concatenate(parts_off) if parts_off else np.zeros(0)
    order = np.lexsort((drivers, on))
    return Fleet(
        home_node=np.asarray(home, dtype=np.int64),
        shift_driver=drivers[order].astype(np.int64),
        shift_on=on[order],
        shift_off=off[order],
    )

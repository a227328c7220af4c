"""Idle-driver repositioning: where drivers go while they wait for work.

A policy is asked every ``drivers.reposition_every_s`` about the drivers who have been idle for
at least ``drivers.reposition_after_s`` and answers with a target node for some of them. Like a
matcher, its constructor only stores parameters and ``get_params()`` goes into the manifest;
the engine moves drivers along the travel-time table and they stay matchable on the way.

Built-ins: ``stay`` (never move), ``demand`` (head for where riders asked recently) and
``surge`` (the same, weighted towards higher surge multipliers). Any class with ``decide`` and
``get_params`` can be named by import path ``package.module:Class``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from cities.demand import choose_per_row
from matching.api import TravelTimeFn
from matching.plugins import NonNegative, Params, Plugin, Positive, PositiveInt, Registry

CHUNK_ELEMENTS = 1 << 20
"""Driver x point values a policy holds at once (8 MiB of float64): the bound on memory."""


@dataclass(frozen=True, eq=False)
class RepositionSnapshot:
    """What a repositioning policy sees: eligible idle drivers and recent demand."""

    time: float
    driver_id: np.ndarray
    driver_node: np.ndarray
    driver_xy: np.ndarray
    idle_since: np.ndarray
    recent_pickup_node: np.ndarray
    """Pickup nodes of requests (and declined quotes) in the last ``window_s``, oldest first."""
    recent_pickup_xy: np.ndarray
    travel_time: TravelTimeFn
    multiplier: Callable[[np.ndarray], np.ndarray]
    """Current surge multiplier at given nodes (all 1 without surge pricing)."""
    seed: int


@dataclass(frozen=True, eq=False)
class RepositionPlan:
    """Drivers to move (ids from the snapshot) and their target nodes."""

    driver_id: np.ndarray
    target_node: np.ndarray

    @classmethod
    def none(cls) -> RepositionPlan:
        """Move nobody."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


@runtime_checkable
class RepositionPolicy(Protocol):
    """Decides where idle drivers go."""

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan: ...

    def get_params(self) -> dict[str, Any]: ...


class Stay(Plugin):
    """Idle drivers wait where they are."""

    name: ClassVar[str] = "stay"

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan:
        """Nobody moves."""
        return RepositionPlan.none()


class TowardDemand(Plugin):
    """Each eligible driver heads for the pickup point of a recent request within
    ``max_drive_s``, drawn at random with weight ``multiplier ** surge_power`` (so busy places,
    and with ``surge_power > 0`` expensive ones, attract more drivers). Drivers already within
    ``min_move_s`` of the drawn point stay."""

    name: ClassVar[str] = "demand"

    class Params(Params):
        max_drive_s: Positive = 600.0
        min_move_s: NonNegative = 60.0
        surge_power: NonNegative = 0.0
        max_points: PositiveInt = 2000

    max_drive_s: float
    min_move_s: float
    surge_power: float
    max_points: int

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan:
        """One random reachable recent pickup point per eligible driver.

        Vectorised over drivers a block of rows at a time, so memory stays within
        :data:`CHUNK_ELEMENTS` driver x point values however many drivers are eligible at
        once; each driver's row is computed exactly as in one dense matrix.
        """
        points = snapshot.recent_pickup_node[-self.max_points :]
        n_drv = snapshot.driver_id.shape[0]
        if n_drv == 0 or points.size == 0:
            return RepositionPlan.none()
        rng = np.random.default_rng(snapshot.seed)
        u = np.asarray(rng.random(n_drv), dtype=np.float64)  # one uniform per driver, id order
        pull = None
        if self.surge_power > 0:
            pull = snapshot.multiplier(points)[None, :] ** self.surge_power
        go = np.zeros(n_drv, dtype=bool)
        pick = np.zeros(n_drv, dtype=np.int64)
        block = max(1, CHUNK_ELEMENTS // points.size)
        # Each distinct point's travel time once, read in node order (along a table row, not
        # hopping across it), then spread back to the points' own order: the same values.
        distinct, back = np.unique(points, return_inverse=True)
        for lo in range(0, n_drv, block):
            hi = min(n_drv, lo + block)
            tt = snapshot.travel_time(snapshot.driver_node[lo:hi, None], distinct[None, :])
            tt = tt[:, back]
            weight = np.where(tt <= self.max_drive_s, 1.0, 0.0)
            if pull is not None:
                weight = weight * pull
            total = weight.sum(axis=1)
            p = choose_per_row(u[lo:hi], weight)
            pick[lo:hi] = p
            go[lo:hi] = (total > 0) & (tt[np.arange(hi - lo), p] >= self.min_move_s)
        return RepositionPlan(
            np.asarray(snapshot.driver_id[go], dtype=np.int64),
            np.asarray(points[pick[go]], dtype=np.int64),
        )


class TowardSurge(TowardDemand):
    """:class:`TowardDemand` weighted by the square of the surge multiplier by default."""

    name: ClassVar[str] = "surge"

    class Params(TowardDemand.Params):
        surge_power: NonNegative = 2.0


REPOSITION_POLICIES = Registry(
    "reposition policy",
    ("decide", "get_params"),
    (Stay, TowardDemand, TowardSurge),
    field="drivers.reposition",
    params_field="drivers.reposition_params",
)
"""The registered repositioning policies by name."""

BUILTIN = REPOSITION_POLICIES
"""The same registry under its earlier name."""


def make_reposition(
    name: str, params: Mapping[str, Any] | None = None, *, source: str = ""
) -> RepositionPolicy | None:
    """The scenario's repositioning policy (``None`` for ``stay``: nothing to ask)."""
    policy = REPOSITION_POLICIES.make(name, params, source=source)
    return None if isinstance(policy, Stay) else policy

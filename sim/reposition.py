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
from matching.plugins import make_plugin


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


class Stay:
    """Idle drivers wait where they are."""

    name: ClassVar[str] = "stay"

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan:
        """Nobody moves."""
        return RepositionPlan.none()

    def get_params(self) -> dict[str, Any]:
        """No parameters."""
        return {}


class TowardDemand:
    """Each eligible driver heads for the pickup point of a recent request within
    ``max_drive_s``, drawn at random with weight ``multiplier ** surge_power`` (so busy places,
    and with ``surge_power > 0`` expensive ones, attract more drivers). Drivers already within
    ``min_move_s`` of the drawn point stay."""

    name: ClassVar[str] = "demand"

    def __init__(
        self,
        max_drive_s: float = 600.0,
        min_move_s: float = 60.0,
        surge_power: float = 0.0,
        max_points: int = 2000,
    ) -> None:
        if max_drive_s <= 0 or min_move_s < 0 or surge_power < 0 or max_points < 1:
            raise ValueError("max_drive_s > 0, min_move_s >= 0, surge_power >= 0, max_points >= 1")
        self.max_drive_s = float(max_drive_s)
        self.min_move_s = float(min_move_s)
        self.surge_power = float(surge_power)
        self.max_points = int(max_points)

    def get_params(self) -> dict[str, Any]:
        """Parameters as given."""
        return {
            "max_drive_s": self.max_drive_s,
            "min_move_s": self.min_move_s,
            "surge_power": self.surge_power,
            "max_points": self.max_points,
        }

    def decide(self, snapshot: RepositionSnapshot) -> RepositionPlan:
        """One random reachable recent pickup point per eligible driver."""
        points = snapshot.recent_pickup_node[-self.max_points :]
        n_drv = snapshot.driver_id.shape[0]
        if n_drv == 0 or points.size == 0:
            return RepositionPlan.none()
        rng = np.random.default_rng(snapshot.seed)
        tt = snapshot.travel_time(snapshot.driver_node[:, None], points[None, :])
        weight = np.where(tt <= self.max_drive_s, 1.0, 0.0)
        if self.surge_power > 0:
            weight = weight * snapshot.multiplier(points)[None, :] ** self.surge_power
        total = weight.sum(axis=1)
        pick = choose_per_row(rng.random(n_drv), weight)  # one uniform per driver, id order
        rows = np.arange(n_drv)
        go = (total > 0) & (tt[rows, pick] >= self.min_move_s)
        return RepositionPlan(snapshot.driver_id[go], points[pick[go]])


class TowardSurge(TowardDemand):
    """:class:`TowardDemand` weighted by the square of the surge multiplier by default."""

    name: ClassVar[str] = "surge"

    def __init__(
        self,
        max_drive_s: float = 600.0,
        min_move_s: float = 60.0,
        surge_power: float = 2.0,
        max_points: int = 2000,
    ) -> None:
        super().__init__(max_drive_s, min_move_s, surge_power, max_points)


BUILTIN: dict[str, type] = {cls.name: cls for cls in (Stay, TowardDemand, TowardSurge)}


def make_reposition(
    name: str, params: Mapping[str, Any] | None = None, *, source: str = ""
) -> RepositionPolicy | None:
    """The scenario's repositioning policy (``None`` for ``stay``: nothing to ask)."""
    policy = make_plugin(
        name,
        params,
        BUILTIN,
        kind="reposition policy",
        methods=("decide", "get_params"),
        source=source,
        field="drivers.reposition",
        params_field="drivers.reposition_params",
    )
    return None if isinstance(policy, Stay) else policy

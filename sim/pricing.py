"""Surge pricing during a run: the policy asked every interval, and the prices in force.

The engine hands the controller what it knows, as access-node arrays (:class:`MarketState`);
the controller counts it per zone, builds the :class:`~matching.surge.SupplyDemandSnapshot`,
asks the policy, checks its answer against the contract, keeps the multipliers riders and
drivers see, and records every interval for ``surge.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.zoning import Zones
from matching.surge import SupplyDemandSnapshot, SurgePolicy
from sim.scheduler import Scheduler
from sim.state import D_TO_PICKUP, R_QUOTE_DECLINED, Drivers, Requests


@dataclass(frozen=True)
class SurgePricing:
    """A surge policy, the zones it prices, and how often it is asked."""

    policy: SurgePolicy
    zones: Zones
    interval_s: float


@dataclass(frozen=True, eq=False)
class MarketState:
    """The market at a pricing time, as access nodes (one entry per request or driver)."""

    time: float
    open_pickups: np.ndarray
    """Pickup nodes of open requests."""
    quote_pickups: np.ndarray
    """Pickup nodes of every rider who asked for a price in the last interval."""
    declined_pickups: np.ndarray
    """Those of them who did not request."""
    free_driver_nodes: np.ndarray
    """Where drivers free for work are (or are heading while repositioning)."""
    en_route_pickups: np.ndarray
    """Pickup nodes drivers are driving to."""


@dataclass
class SurgeRecord:
    """Per pricing interval and cell: the snapshot the policy saw and the price it set."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **cols: np.ndarray) -> None:
        """Append one interval's columns."""
        for name, values in cols.items():
            self.columns.setdefault(name, []).append(np.asarray(values))

    def table(self) -> dict[str, np.ndarray]:
        """Every recorded column concatenated (empty dict before the first interval)."""
        return {name: np.concatenate(parts) for name, parts in self.columns.items()}


class SurgeController:
    """Holds the multipliers in force and moves them every ``interval_s``."""

    def __init__(self, pricing: SurgePricing, rng: np.random.Generator) -> None:
        self.pricing = pricing
        self.rng = rng
        self.record = SurgeRecord()
        self._node_cell = pricing.zones.node_cell
        self._mult = np.ones(len(pricing.zones))
        # Assignments of the recent past (time, pickup node, quoted ETA), oldest first.
        self._assigned_t: list[float] = []
        self._assigned_node: list[int] = []
        self._assigned_eta: list[float] = []
        self._assigned_from = 0

    @property
    def interval_s(self) -> float:
        """Seconds between two pricing decisions."""
        return self.pricing.interval_s

    def multiplier_at(self, nodes: np.ndarray) -> np.ndarray:
        """The multiplier in force at ``nodes``."""
        mult: np.ndarray = self._mult[self._node_cell[np.asarray(nodes, dtype=np.int64)]]
        return mult

    def note_assignment(self, t: float, pickup_node: int, quoted_eta_s: float) -> None:
        """Remember an assignment for the recent-pickup-ETA column of the next snapshot."""
        self._assigned_t.append(t)
        self._assigned_node.append(pickup_node)
        self._assigned_eta.append(quoted_eta_s)

    def step(self, state: MarketState) -> None:
        """Count supply and demand per cell, ask the policy, check and record its prices."""
        now, interval, zones = state.time, self.pricing.interval_s, self.pricing.zones
        n_cells = len(zones)
        cell_of = self._node_cell

        def per_cell(nodes: np.ndarray) -> np.ndarray:
            return np.bincount(cell_of[nodes], minlength=n_cells).astype(np.int64)

        while (
            self._assigned_from < len(self._assigned_t)
            and self._assigned_t[self._assigned_from] < now - interval
        ):
            self._assigned_from += 1
        a_nodes = np.asarray(self._assigned_node[self._assigned_from :], dtype=np.int64)
        a_eta = np.asarray(self._assigned_eta[self._assigned_from :], dtype=np.float64)
        n_eta = per_cell(a_nodes)
        sum_eta = np.bincount(cell_of[a_nodes], weights=a_eta, minlength=n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            recent_eta = np.where(n_eta > 0, sum_eta / np.maximum(n_eta, 1), np.nan)
        columns = {
            "open_requests": per_cell(state.open_pickups),
            "quotes": per_cell(state.quote_pickups),
            "unconverted_quotes": per_cell(state.declined_pickups),
            "idle_drivers": per_cell(state.free_driver_nodes),
            "en_route_drivers": per_cell(state.en_route_pickups),
            "recent_pickup_eta_s": recent_eta,
            "previous_multiplier": self._mult.copy(),
        }
        snapshot = SupplyDemandSnapshot.unchecked(
            time=now,
            interval_s=interval,
            seed=int(self.rng.integers(2**63)),
            cell=zones.cell,
            neighbour_ptr=zones.neighbour_ptr,
            neighbour_idx=zones.neighbour_idx,
            **columns,
        )
        policy = self.pricing.policy
        mult = np.asarray(policy.price(snapshot), dtype=np.float64)
        if (
            mult.shape != (n_cells,)
            or not np.all(np.isfinite(mult))
            or np.any((mult < policy.floor - 1e-9) | (mult > policy.cap + 1e-9))
        ):
            raise RuntimeError(
                f"surge policy {type(policy).__name__}: prices must be {n_cells} finite "
                f"multipliers within its declared [{policy.floor}, {policy.cap}]"
            )
        self._mult = mult
        columns.pop("previous_multiplier")
        self.record.add(t=np.full(n_cells, now), cell=zones.cell, multiplier=mult, **columns)


def market_state(now: float, window_s: float, requests: Requests, drivers: Drivers) -> MarketState:
    """What surge pricing reads: the market now and over the last ``window_s`` seconds."""
    pick = requests.pickup_node
    lo, hi = np.searchsorted(requests.t, [now - window_s, now], side="left")
    window = np.arange(lo, hi)
    declined = window[requests.status[window] == R_QUOTE_DECLINED]
    to_pickup = np.flatnonzero(drivers.status == D_TO_PICKUP)
    return MarketState(
        time=now,
        open_pickups=pick[requests.open_ids()],
        quote_pickups=pick[window],
        declined_pickups=pick[declined],
        free_driver_nodes=drivers.node[drivers.free],
        en_route_pickups=drivers.next_pickup_node(to_pickup),
    )


class PricingController:
    """Asks the surge controller for new prices every interval, from t = 0."""

    def __init__(
        self, surge: SurgeController, sched: Scheduler, requests: Requests, drivers: Drivers
    ) -> None:
        self.surge = surge
        self.sched = sched
        self.requests = requests
        self.drivers = drivers

    def start(self) -> None:
        """Price now, then every ``interval_s``."""
        self.sched.start(self._step)

    def _step(self) -> None:
        surge = self.surge
        surge.step(market_state(self.sched.now, surge.interval_s, self.requests, self.drivers))
        self.sched.after(surge.interval_s, self._step)

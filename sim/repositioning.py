"""The repositioning call site: every ``drivers.reposition_every_s``, ask the policy where
drivers idle for at least ``drivers.reposition_after_s`` should go, check its plan, and move
them (the policies themselves live in :mod:`sim.reposition`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.schemas import NONE, Kind
from sim.behaviour import DriverSpec, lognormal_factors
from sim.events import EventLog
from sim.movement import Travel
from sim.reposition import RepositionPolicy, RepositionSnapshot
from sim.scheduler import Scheduler
from sim.shifts import Shifts
from sim.state import D_IDLE, D_REPOSITIONING, Drivers, Requests

K_REPOSITION = str(Kind.REPOSITION)
RECENT_DEMAND_S = 1800.0
"""How far back the policy sees where riders asked for rides (seconds)."""
NAN = float("nan")


class RepositionController:
    """Asks a :class:`~sim.reposition.RepositionPolicy` and drives its plan."""

    def __init__(
        self,
        policy: RepositionPolicy,
        spec: DriverSpec,
        noise_cv: float,
        sched: Scheduler,
        requests: Requests,
        drivers: Drivers,
        shifts: Shifts,
        travel: Travel,
        node_xy: np.ndarray,
        n_nodes: int,
        multiplier: Callable[[np.ndarray], np.ndarray],
        driver_rng: np.random.Generator,
        travel_rng: np.random.Generator,
        log: EventLog,
    ) -> None:
        self.policy = policy
        self.spec = spec
        self.noise_cv = noise_cv
        self.sched = sched
        self.requests = requests
        self.drivers = drivers
        self.shifts = shifts
        self.travel = travel
        self.node_xy = node_xy
        self.n_nodes = n_nodes
        self.multiplier = multiplier
        self.driver_rng = driver_rng
        self.travel_rng = travel_rng
        self.log = log

    def start(self) -> None:
        """Ask the policy every ``reposition_every_s`` (the first time one interval in)."""
        self.sched.start(self._wait)

    def _wait(self) -> None:
        self.sched.after(self.spec.reposition_every_s, self._tick)

    def _tick(self) -> None:
        self.step(self.spec.reposition_after_s)
        self._wait()

    def step(self, after_s: float) -> None:
        """Ask about drivers idle for ``after_s`` or more and start their legs."""
        now = self.sched.now
        dv, xy = self.drivers, self.node_xy
        eligible = np.flatnonzero(
            dv.free & (dv.status == D_IDLE) & (now - dv.idle_since >= after_s)
        )
        if eligible.size == 0:
            return
        t = self.requests.t
        lo = int(np.searchsorted(t, now - RECENT_DEMAND_S, side="left"))
        hi = int(np.searchsorted(t, now, side="right"))
        recent = self.requests.pickup_node[lo:hi]
        nodes = dv.node[eligible]
        snapshot = RepositionSnapshot(
            time=now,
            driver_id=eligible,
            driver_node=nodes,
            driver_xy=xy[nodes],
            idle_since=dv.idle_since[eligible],
            recent_pickup_node=recent,
            recent_pickup_xy=xy[recent],
            travel_time=self.travel.expected(now),
            multiplier=self.multiplier,
            seed=int(self.driver_rng.integers(2**63)),
        )
        plan = self.policy.decide(snapshot)
        ids = np.asarray(plan.driver_id, dtype=np.int64)
        targets = np.asarray(plan.target_node, dtype=np.int64)
        ok = np.isin(ids, eligible) & (targets >= 0) & (targets < self.n_nodes)
        if not np.all(ok) or np.unique(ids).size != ids.size:
            raise RuntimeError(
                f"reposition policy {type(self.policy).__name__}: moved a driver that was "
                "not eligible, twice, or to a node that does not exist"
            )
        order = np.argsort(ids, kind="stable")
        free_flow = self.travel.free_flow(dv.node[ids[order]], targets[order])
        for d, target, ff in zip(
            ids[order].tolist(), targets[order].tolist(), free_flow.tolist(), strict=True
        ):
            if target == dv.node[d]:
                continue
            noise = float(lognormal_factors(self.travel_rng, self.noise_cv, 1)[0])
            drive = self.travel.actual(ff, now, noise)
            self.log.row((now, K_REPOSITION, NONE, d, int(dv.node[d]), target, drive, NAN, None))
            dv.reposition(d, target, now + drive)
            self.sched.after(drive, self.arrive, d, now + drive)

    def arrive(self, d: int, arrival: float) -> None:
        """A repositioning leg ends (unless a job or a newer leg replaced it)."""
        dv = self.drivers
        if dv.status[d] == D_REPOSITIONING and dv.free_at[d] == arrival:
            if dv.leaving[d]:
                self.shifts.offline(d)
            else:
                dv.arrive_idle(d, self.sched.now)

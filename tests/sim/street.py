"""A one-street city for engine tests: ``blocks + 1`` nodes 100 m apart at 36 km/h (10 s a
block), riders and drivers placed on blocks by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from cities import load_city
from cities.demand import Trips
from cities.space import Space
from cities.spec import CitySpec
from cities.supply import Fleet
from matching.api import Matcher
from matching.registry import make_matcher
from sim.behaviour import RiderDraws
from sim.engine import DispatchPolicy, MarketRules, Simulation
from sim.events import EventLog
from sim.faults import FaultPlan
from sim.seeding import spawn_streams


def street(tmp_path: Path, blocks: int = 8) -> tuple[Space, np.ndarray]:
    """The street and its node id at each block."""
    spec = TypeAdapter(CitySpec).validate_python(
        {"kind": "grid", "rows": 1, "cols": blocks, "block_m": 100, "speed_kmh": 36}
    )
    space = load_city(spec, base_dir=tmp_path, source="test", cache_dir=tmp_path)
    xmin, ymin, _, _ = space.bounds
    return space, space.locate(np.array([[xmin + 100.0 * c, ymin] for c in range(blocks + 1)]))


def build(
    tmp_path: Path,
    trips: list[tuple[float, int, int]],
    drivers_at: list[int],
    *,
    matcher: Matcher | None = None,
    policy: DispatchPolicy | None = None,
    rules: MarketRules | None = None,
    patience_s: float = 300.0,
    shifts: list[tuple[int, float, float]] | None = None,
    horizon: float = 400.0,
    faults: FaultPlan | None = None,
    reposition: object | None = None,
    draws: RiderDraws | None = None,
) -> tuple[Simulation, EventLog, np.ndarray]:
    """A simulation (not yet run) of ``trips`` = [(t, pickup block, dropoff block)] with
    drivers at ``drivers_at`` blocks, on shift all run long unless ``shifts`` =
    [(driver, on, off)] says otherwise."""
    space, node = street(tmp_path)
    t = np.array([x[0] for x in trips], dtype=float)
    n_drv = len(drivers_at)
    shifts = shifts or [(d, 0.0, horizon) for d in range(n_drv)]
    fleet = Fleet(
        home_node=node[drivers_at],
        shift_driver=np.array([s[0] for s in shifts], dtype=np.int64),
        shift_on=np.array([s[1] for s in shifts], dtype=float),
        shift_off=np.array([s[2] for s in shifts], dtype=float),
    )
    log = EventLog(None)
    sim = Simulation(
        space,
        Trips(
            t=t,
            pickup_node=node[[x[1] for x in trips]],
            dropoff_node=node[[x[2] for x in trips]],
        ),
        draws or RiderDraws.neutral(np.full(len(t), patience_s)),
        fleet,
        matcher or make_matcher("immediate_greedy", {}),
        policy or DispatchPolicy(batch_window_s=0, max_pickup_eta_s=600),
        spawn_streams(0),
        log,
        horizon_s=horizon,
        rules=rules,
        faults=faults,
        reposition=reposition,  # type: ignore[arg-type]
    )
    return sim, log, node


def events(log: EventLog) -> list[tuple[str, float, int | None, int | None, str | None]]:
    """(kind, t, rider, driver, detail) of every logged event."""
    df = log.table().to_pandas()
    return [
        (
            r.kind,
            round(r.t, 6),
            _i(r.rider),
            _i(r.driver),
            r.detail if r.detail == r.detail else None,
        )
        for r in df.itertuples()
    ]


def _i(v: float) -> int | None:
    return None if v != v else int(v)

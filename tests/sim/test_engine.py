"""The engine: wiring, start order, the run loop and its results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cities.supply import Fleet
from harness.run import run_scenario
from harness.scenario import load_scenario
from matching.api import MatchRequest
from sim.dispatcher import Dispatcher
from sim.engine import Simulation
from sim.seeding import spawn_streams
from tests.sim.street import build, events

ROOT = Path(__file__).resolve().parents[2]


def test_missing_random_streams_are_refused(tmp_path: Path) -> None:
    """A Simulation without every named stream it draws from raises, naming them."""
    sim, log, _ = build(tmp_path, [(0, 1, 3)], [0])
    rngs = spawn_streams(0)
    del rngs["travel"], rngs["matcher"]
    with pytest.raises(ValueError, match=r"\['matcher', 'travel'\]"):
        Simulation(
            sim.rides.travel.space,
            sim.trips,
            sim.market.riders,
            _fleet(sim),
            sim.dispatcher.matcher,
            sim.dispatcher.policy,
            rngs,
            log,
            horizon_s=10.0,
        )


def _fleet(sim: Simulation) -> Fleet:
    return Fleet(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1), np.ones(1))


def test_drivers_on_shift_at_t_serve_riders_arriving_at_t(tmp_path: Path) -> None:
    """Shifts start before arrivals: a driver logging on at t = 0 takes a rider of t = 0."""
    sim, log, _ = build(tmp_path, [(0, 1, 3)], [0])
    sim.run()
    assert [e[0] for e in events(log)][:3] == ["driver_online", "request", "assign"]


def test_progress_is_reported_per_slice_of_simulated_time(tmp_path: Path) -> None:
    """progress() is called once per slice with the slice's end time and running counts."""
    sim, log, _ = build(tmp_path, [(0, 1, 3), (150, 2, 4)], [0], horizon=400.0)
    seen: list[tuple[float, int, int]] = []
    sim.run(lambda t, n, e: seen.append((t, n, e)), steps=4)
    assert [s[0] for s in seen] == [100.0, 200.0, 300.0, 400.0]
    assert [s[1] for s in seen] == [1, 2, 2, 2]
    assert seen[-1][2] == len(log)


def test_request_counts_cover_every_arrived_request(tmp_path: Path) -> None:
    """request_counts sums to the arrivals, by final state."""
    sim, _, _ = build(tmp_path, [(0, 1, 3), (1, 2, 4), (2, 5, 6)], [0], patience_s=5.0)
    sim.run()
    counts = sim.request_counts()
    assert counts["completed"] == 1 and counts["cancelled"] == 2
    assert sum(counts.values()) == 3


def test_same_inputs_give_the_same_log(tmp_path: Path) -> None:
    """Two runs of one simulation setup log identical events."""
    a, log_a, _ = build(tmp_path, [(0, 1, 3), (3, 2, 7), (4, 6, 0)], [0, 8])
    b, log_b, _ = build(tmp_path, [(0, 1, 3), (3, 2, 7), (4, 6, 0)], [0, 8])
    a.run()
    b.run()
    assert log_a.table().equals(log_b.table())


@pytest.mark.parametrize(
    ("overrides", "given"),
    [
        ({}, True),
        (
            {
                "travel.length_elasticity": -0.2,
                "travel.length_range_s": [60.0, 1800.0],
                "travel.length_ref_s": 300.0,
            },
            False,
        ),
    ],
)
def test_default_run_passes_zone_bounds_unless_legs_scale_by_length(
    overrides: dict[str, object], given: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default-scenario run on its road network gives the matcher the city's zone bounds,
    scaled by the quoted congestion factor; a length-dependent travel model gives none."""
    seen: list[MatchRequest] = []
    original = Dispatcher.snapshot

    def snapshot(self: Dispatcher, *args: Any, **kwargs: Any) -> MatchRequest:
        seen.append(original(self, *args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(Dispatcher, "snapshot", snapshot)
    path = ROOT / "scenarios" / "default.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 0.1, **overrides})
    run_scenario(scenario, source=str(path), base_dir=path.parent, out=tmp_path)
    assert seen
    if not given:
        assert all(r.eta_bounds is None for r in seen)
        return
    factor = 1.45  # Campo Grande's usual traffic at 07:00 (cities/defs/campo_grande.toml)
    assert all(r.eta_bounds is not None and r.eta_bounds.scale == factor for r in seen)
    assert all(r.travel_time.factor == factor for r in seen)  # type: ignore[union-attr]

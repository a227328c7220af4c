"""The market: arrivals, patience, decisions that arrive too late."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.run import run_scenario
from harness.scenario import load_scenario
from sim import market as market_mod
from sim.dispatcher import DispatchPolicy
from sim.market import Market
from tests.sim.street import build, events


def test_rider_without_patience_cancels_at_once_when_unmatched(tmp_path: Path) -> None:
    """With zero patience and nobody in range, the request is cancelled as no_driver when it
    arrives."""
    policy = DispatchPolicy(batch_window_s=0, max_pickup_eta_s=15)
    sim, log, _ = build(tmp_path, [(3, 8, 7)], [0], policy=policy, patience_s=0.0)
    sim.run()
    assert [e for e in events(log) if e[2] == 0] == [
        ("request", 3.0, 0, None, None),
        ("cancel", 3.0, 0, None, "no_driver"),
    ]


def test_quote_eta_is_the_limit_when_nobody_is_free(tmp_path: Path) -> None:
    """With no free driver the quoted ETA is max_pickup_eta_s; otherwise the nearest one's."""
    sim, _, node = build(tmp_path, [], [4], shifts=[(0, 10.0, 100.0)], horizon=200.0)
    quotes: list[tuple[float, float]] = []
    sim.run(lambda t, n, e: quotes.append((t, sim.market.quote_eta(int(node[1])))), steps=4)
    assert quotes == [(50.0, 30.0), (100.0, 30.0), (150.0, 600.0), (200.0, 600.0)]


def test_decision_landing_after_the_rider_left_releases_the_driver(tmp_path: Path) -> None:
    """A decision delayed past the rider's patience frees its driver instead of a ride."""
    policy = DispatchPolicy(batch_window_s=0, max_pickup_eta_s=600, decision_delay_s=10.0)
    sim, log, _ = build(tmp_path, [(0, 1, 3)], [0], policy=policy, patience_s=5.0)
    sim.run()
    kinds = [e[0] for e in events(log)]
    assert "cancel" in kinds and "assign" not in kinds
    assert sim.drivers.free[0] and sim.drivers.n_free == 1


def test_zoned_quotes_equal_the_scan_over_every_free_driver(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a road network (zone bounds, hourly congestion, repositioning), every quote read from
    the zones near the pickup equals the minimum over every free driver, and the free drivers
    filed by zone are exactly the free drivers, by the zone of their node."""
    monkeypatch.setattr(market_mod, "ZONED_QUOTE_MIN_FREE", 1)
    original = Market._quote_by_zone
    seen: list[tuple[float, float, float]] = []

    def checked(self: Market, pickup: int, now: float, limit: float, factor: float) -> float:
        zoned = original(self, pickup, now, limit, factor)
        dv = self.drivers
        cand = dv.free.nonzero()[0]
        wait = np.maximum(dv.free_at[cand] - now, 0.0)
        scan = float(np.min(wait + self.travel.expected_to(now, pickup, dv.node[cand])))
        seen.append((zoned, min(scan, limit), factor))
        if len(seen) % 25 == 0:
            assert dv.zone_free is not None
            node_zone = self.dispatcher.eta_bounds.node_zone  # type: ignore[union-attr]
            filed = {d: z for z, members in enumerate(dv.zone_free) for d in members}
            assert filed == {d: int(node_zone[dv.node[d]]) for d in cand.tolist()}
        return zoned

    monkeypatch.setattr(Market, "_quote_by_zone", checked)
    path = Path(__file__).resolve().parents[2] / "scenarios" / "default.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 0.5})
    run_scenario(
        scenario, source=str(path), base_dir=path.parent, out=tmp_path / "runs", cache_dir=cache_dir
    )
    assert len(seen) > 100
    assert all(zoned == scan for zoned, scan, _ in seen)
    assert any(zoned < 600 for zoned, _, _ in seen) and {f for _, _, f in seen} != {1.0}

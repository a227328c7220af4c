"""The market: arrivals, patience, decisions that arrive too late."""

from __future__ import annotations

from pathlib import Path

from sim.dispatcher import DispatchPolicy
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

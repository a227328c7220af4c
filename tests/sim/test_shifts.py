"""Shifts: logging on and off, finishing a trip after the shift, release after a job."""

from __future__ import annotations

from pathlib import Path

from sim.state import D_OFFLINE
from tests.sim.street import build, events


def test_shift_ending_mid_trip_finishes_the_trip_first(tmp_path: Path) -> None:
    """A driver whose shift ends while carrying a rider logs off at the dropoff."""
    sim, log, _ = build(tmp_path, [(0, 0, 8)], [0], shifts=[(0, 0.0, 30.0)], horizon=200.0)
    sim.run()
    trace = [(e[0], e[1]) for e in events(log) if e[3] == 0]
    assert trace == [
        ("driver_online", 0.0),
        ("assign", 0.0),
        ("pickup", 0.0),
        ("dropoff", 80.0),
        ("driver_offline", 80.0),
    ]
    assert sim.drivers.status[0] == D_OFFLINE and sim.drivers.online_s[0] == 80.0


def test_back_to_back_shifts_keep_a_busy_driver_on(tmp_path: Path) -> None:
    """A driver mid-trip when one shift ends and the next begins keeps working after the
    dropoff instead of logging off."""
    sim, log, _ = build(
        tmp_path, [(0, 0, 8)], [0], shifts=[(0, 0.0, 50.0), (0, 50.0, 120.0)], horizon=200.0
    )
    sim.run()
    assert [(e[0], e[1]) for e in events(log) if e[3] == 0] == [
        ("driver_online", 0.0),
        ("assign", 0.0),
        ("pickup", 0.0),
        ("dropoff", 80.0),
        ("driver_offline", 120.0),
    ]


def test_idle_driver_logs_off_when_the_shift_ends(tmp_path: Path) -> None:
    """An idle driver is offline at the end of the shift and takes no later rider."""
    sim, log, _ = build(tmp_path, [(60, 0, 1)], [0], shifts=[(0, 0.0, 40.0)], patience_s=5.0)
    sim.run()
    kinds = [(e[0], e[1]) for e in events(log)]
    assert ("driver_offline", 40.0) in kinds and ("cancel", 65.0) in kinds

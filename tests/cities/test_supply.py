"""Supply: shift blocks, shifts fitted to the demand profile, start positions."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from cities import GridSpace
from cities.demand import DEFAULT_PROFILE
from cities.supply import FleetSpec, generate_fleet, shift_intervals, shifts_for_profile


def online_per_hour(fleet, horizon_s: float) -> np.ndarray:
    edges = np.arange(0.0, horizon_s + 1, 3600.0)
    mid = (edges[:-1] + edges[1:]) / 2
    on = fleet.shift_on[None, :] <= mid[:, None]
    off = fleet.shift_off[None, :] > mid[:, None]
    return (on & off).sum(axis=1)


def test_shift_that_started_before_t0_is_online_at_start() -> None:
    """A 06:00-14:00 shift seen from a 08:00 start is on from t=0 to 6 h, then again next day."""
    assert shift_intervals(6 * 3600, 8, 8 * 3600, 30 * 3600) == [
        (0.0, 6 * 3600.0),
        (22 * 3600.0, 30 * 3600.0),
    ]


def test_fitted_shifts_follow_the_demand_profile() -> None:
    """Drivers online per clock hour track the demand profile (correlation > 0.9)."""
    space = GridSpace(5, 5, 200.0, 10.0)
    spec = FleetSpec(size=2000, fit_shifts_to_demand=True, shift_hours=8)
    fleet = generate_fleet(
        np.random.default_rng(1),
        spec,
        space,
        lambda g, n: np.zeros(n, dtype=np.int64),
        0.0,
        24 * 3600.0,
        demand_profile=np.asarray(DEFAULT_PROFILE),
    )
    online = online_per_hour(fleet, 24 * 3600.0)
    assert np.corrcoef(online, DEFAULT_PROFILE)[0, 1] > 0.9
    shares = sum(s.share for s in shifts_for_profile(np.asarray(DEFAULT_PROFILE), 8))
    assert shares == pytest.approx(1.0)


def test_fitted_and_explicit_shifts_are_exclusive() -> None:
    """Giving both shift blocks and fit_shifts_to_demand is an error."""
    with pytest.raises(ValidationError, match="not both"):
        FleetSpec(
            size=3, fit_shifts_to_demand=True, shifts=[{"start": "06:00", "hours": 8, "share": 1}]
        )

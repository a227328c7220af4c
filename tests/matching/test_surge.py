"""Surge pricing: the snapshot, the built-in policies by hand, the registry, the suite's teeth."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from cities import GridSpace
from cities.zones import zones_for
from core.errors import InputError
from matching.api import API_VERSION
from matching.surge import (
    SURGE_POLICIES,
    EtaTargetSurge,
    NoSurge,
    RatioSurge,
    SupplyDemandSnapshot,
    SurgePolicy,
    make_surge_policy,
    neighbour_mean,
    round_to_step,
)
from matching.surge_checks import (
    all_surge_checks,
    check_surge_policy,
    parametrize_with_surge_checks,
    random_snapshot,
)

SPECS: list[Any] = sorted(SURGE_POLICIES) + [
    ("ratio", {"step": 0.0}),
    ("ratio", {"demand": "unserved"}),
    ("ratio", {"floor": 0.8, "cap": 2.05, "alpha": 1.0, "neighbour_weight": 1.0}),
    ("eta_target", {"floor": 1.05, "cap": 2.5, "step": 0.25, "gain": 2.0}),
]


@parametrize_with_surge_checks(SPECS)
def test_surge_conformance(policy_factory, check):
    """Each registered policy (and notable parameter sets) passes each conformance check."""
    check(policy_factory)


def test_registry_holds_the_builtins():
    """The surge registry holds exactly the built-in policies, each a SurgePolicy."""
    assert SURGE_POLICIES == {"none": NoSurge, "ratio": RatioSurge, "eta_target": EtaTargetSurge}
    for cls in SURGE_POLICIES.values():
        assert isinstance(cls(), SurgePolicy)


# ---------------------------------------------------------------------------------------------
# A 3-cell snapshot by hand: cells a - b - c in a line (a and c are b's neighbours).


def line_snapshot(**overrides: Any) -> SupplyDemandSnapshot:
    cols: dict[str, Any] = dict(
        time=600.0,
        interval_s=60.0,
        cell=np.array(["a", "b", "c"], dtype=object),
        open_requests=[4, 1, 0],
        quotes=[5, 2, 1],
        unconverted_quotes=[2, 1, 0],
        idle_drivers=[2, 0, 3],
        en_route_drivers=[1, 0, 0],
        recent_pickup_eta_s=[672.0, 252.0, np.nan],
        previous_multiplier=[1.0, 2.0, 1.6],
        neighbour_ptr=[0, 1, 3, 4],
        neighbour_idx=[1, 0, 2, 1],
        seed=3,
    )
    cols.update(overrides)
    return SupplyDemandSnapshot(**cols)


def test_ratio_by_hand_without_smoothing():
    """raw = (open + unconverted) / max(idle, 1) = [3, 2, 0]; m = 1 + 0.5 (raw - 1), >= 1."""
    m = RatioSurge(neighbour_weight=0.0, alpha=1.0, step=0.0, demand="unserved").price(
        line_snapshot()
    )
    assert m.tolist() == [2.0, 1.5, 1.0]


def test_ratio_by_hand_with_defaults():
    """Neighbour means [2, 1.5, 2]; ratio = 0.7 raw + 0.3 mean = [2.7, 1.85, 0.6];
    target = [1.85, 1.425, 1 (floor)]; m = (target + previous) / 2 = [1.425, 1.7125, 1.3];
    shown to one decimal: [1.4, 1.7, 1.3]."""
    s = line_snapshot()
    assert neighbour_mean([3.0, 2.0, 0.0], s.neighbour_ptr, s.neighbour_idx).tolist() == [
        2.0,
        1.5,
        2.0,
    ]
    m = RatioSurge(demand="unserved").price(s)
    assert m.tolist() == [1.4, 1.7, 1.3]  # exact decimals, not 1.4000000000000001
    unrounded = RatioSurge(step=0.0, demand="unserved").price(s)
    np.testing.assert_allclose(unrounded, [1.425, 1.7125, 1.3], rtol=0, atol=1e-12)


def test_ratio_caps_floors_and_isolated_cells():
    """A flood of demand hits the cap; a floor off the 0.1 grid is still respected; a cell
    without neighbours is smoothed with itself only."""
    s = line_snapshot(
        open_requests=[100, 0, 0],
        quotes=[0, 0, 0],
        unconverted_quotes=[0, 0, 0],
        idle_drivers=[0, 5, 5],
        previous_multiplier=[3.0, 1.0, 1.0],
        neighbour_ptr=[0, 0, 0, 0],
        neighbour_idx=[],
    )
    assert RatioSurge(demand="unserved").price(s).tolist() == [3.0, 1.0, 1.0]
    assert RatioSurge(floor=1.05, cap=2.55, demand="unserved").price(s).tolist() == [
        2.55,
        1.05,
        1.05,
    ]


def test_eta_target_by_hand():
    """a: 1.0 + 0.5 (672/420 - 1) = 1.3; b: 2.0 + 0.5 (252/420 - 1) = 1.8;
    c (no ETA): 1.6 decays by 0.1 to 1.5."""
    s = line_snapshot()
    assert EtaTargetSurge().price(s).tolist() == [1.3, 1.8, 1.5]
    # The dead band: 5% over target moves the price by 0.025, which rounds away.
    s = line_snapshot(
        recent_pickup_eta_s=[441.0, 0.0, np.nan], previous_multiplier=[1.0, 1.0, 1.05]
    )
    assert EtaTargetSurge().price(s).tolist() == [1.0, 1.0, 1.0]  # c decays to 1, not past
    # Below 1 decays upwards; the floor holds; gain and target as given.
    s = line_snapshot(recent_pickup_eta_s=[840.0, 0.0, np.nan], previous_multiplier=[2.5, 1.0, 0.7])
    policy = EtaTargetSurge(target_eta_s=600.0, gain=1.0, floor=0.5, cap=2.8)
    assert policy.price(s).tolist() == [2.8, 0.5, 0.8]


def test_none_is_one_everywhere():
    """The 'none' policy prices every cell at 1 and is bounded to [1, 1]."""
    assert NoSurge().price(line_snapshot()).tolist() == [1.0, 1.0, 1.0]
    assert (NoSurge.floor, NoSurge.cap) == (1.0, 1.0)


def test_round_to_step_is_half_up_and_exact():
    """Multipliers round half up to the step, exactly (no float drift); step 0 keeps them."""
    m = np.array([1.35, 1.25, 1.349, 2.05, 0.95, 0.5 * 1.5 + 0.5 * 1.2, 2.999])
    assert round_to_step(m, 0.1).tolist() == [1.4, 1.3, 1.3, 2.1, 1.0, 1.4, 3.0]
    assert round_to_step(np.array([1.13, 1.12]), 0.25).tolist() == [1.25, 1.0]
    assert round_to_step(m, 0.0).tolist() == m.tolist()


# ---------------------------------------------------------------------------------------------
# The snapshot


def test_snapshot_is_frozen_and_versioned():
    """A supply/demand snapshot carries the API version and cannot be changed."""
    s = line_snapshot()
    assert s.api_version == API_VERSION and len(s) == 3
    assert s.cell.dtype == object and s.open_requests.dtype == np.int64
    for name in ("open_requests", "recent_pickup_eta_s", "neighbour_idx", "cell"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(s, name)[0] = 0
    with pytest.raises(AttributeError):
        s.time = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"open_requests": [1, 2]}, "open_requests: has 2 rows, expected 3"),
        ({"idle_drivers": [1.5, 0.0, 0.0]}, "idle_drivers: expected integer counts"),
        ({"quotes": [-1, 0, 0]}, "quotes: counts must be >= 0"),
        ({"unconverted_quotes": [9, 0, 0]}, "unconverted_quotes: more than quotes"),
        ({"cell": np.array(["b", "a", "c"], dtype=object)}, "strictly increasing"),
        ({"cell": np.array([1, 2, 3], dtype=object)}, "expected str cell ids"),
        ({"neighbour_ptr": [0, 1, 3]}, "neighbour_ptr: has 3 entries, expected 4"),
        ({"neighbour_ptr": [0, 1, 3, 3]}, "end at len"),
        ({"neighbour_idx": [1, 0, 5, 1]}, r"neighbour_idx: rows must be in \[0, 3\)"),
        ({"recent_pickup_eta_s": [np.inf, 1.0, 1.0]}, "recent_pickup_eta_s"),
        ({"previous_multiplier": [0.0, 1.0, 1.0]}, "previous_multiplier"),
        ({"interval_s": 0.0}, "interval_s > 0"),
    ],
)
def test_snapshot_validation(overrides, message):
    """A malformed snapshot is refused with a message naming the column."""
    with pytest.raises(ValueError, match=message):
        line_snapshot(**overrides)


def test_unchecked_snapshot_matches_validated():
    """The unchecked constructor builds the same snapshot as the validated one."""
    s = line_snapshot()
    cols = {
        c: np.array(getattr(s, c))
        for c in (
            "cell",
            "open_requests",
            "quotes",
            "unconverted_quotes",
            "idle_drivers",
            "en_route_drivers",
            "recent_pickup_eta_s",
            "previous_multiplier",
            "neighbour_ptr",
            "neighbour_idx",
        )
    }
    fast = SupplyDemandSnapshot.unchecked(time=600.0, interval_s=60.0, seed=3, **cols)
    assert fast.api_version == API_VERSION and fast.seed == 3 and len(fast) == 3
    assert not fast.open_requests.flags.writeable
    for name in SURGE_POLICIES:
        p = make_surge_policy(name)
        assert p.price(fast).tolist() == p.price(s).tolist()


def test_snapshot_for_zones():
    """A snapshot built over zones has one row per cell, aligned with the zones."""
    zones = zones_for(GridSpace(4, 4, 250.0, 10.0), cell_m=500.0)
    nodes = np.array([0, 0, 1, 24])
    s = SupplyDemandSnapshot.for_zones(
        zones, time=0.0, interval_s=30.0, open_requests=zones.count(nodes)
    )
    assert len(s) == len(zones) == 4
    assert s.cell.tolist() == zones.cell.tolist()
    assert s.open_requests.tolist() == [3, 0, 0, 1]
    assert s.idle_drivers.tolist() == [0, 0, 0, 0]
    assert np.isnan(s.recent_pickup_eta_s).all() and (s.previous_multiplier == 1.0).all()
    assert np.array_equal(s.neighbour_idx, zones.neighbour_idx)
    with pytest.raises(TypeError, match="unknown columns"):
        SupplyDemandSnapshot.for_zones(zones, time=0.0, interval_s=30.0, riders=np.zeros(4))


# ---------------------------------------------------------------------------------------------
# Registry


def test_unknown_policy_lists_known_ones():
    """An unknown policy name is an InputError listing the known ones."""
    with pytest.raises(InputError) as err:
        make_surge_policy("dynamic", source="s.toml")
    msg = str(err.value)
    assert msg.startswith("s.toml: surge.policy: unknown surge policy 'dynamic'")
    assert "eta_target, none, ratio" in msg and "package.module:Class" in msg


@pytest.mark.parametrize(
    ("name", "params", "field", "message"),
    [
        ("ratio", {"sensitivity": -1}, "surge.params.sensitivity", "greater than or equal to 0"),
        ("ratio", {"floor": 2.0, "cap": 1.5}, "surge.params.cap", r"must be >= floor \(2.0\)"),
        ("ratio", {"floor": 0}, "surge.params.floor", "greater than 0, got 0"),
        ("ratio", {"alpha": 0}, "surge.params.alpha", "greater than 0"),
        ("ratio", {"alpha": 1.5}, "surge.params.alpha", "less than or equal to 1"),
        ("ratio", {"cap": "3"}, "surge.params.cap", "expected a number"),
        ("ratio", {"cap": True}, "surge.params.cap", "expected a number"),
        ("ratio", {"cap": float("inf")}, "surge.params.cap", "finite"),
        ("ratio", {"speed": 1}, "surge.params.speed", "'ratio': unknown parameter"),
        ("ratio", {"demand": "vibes"}, "surge.params.demand", "'quotes' or 'unserved'"),
        ("eta_target", {"target_eta_s": 0}, "surge.params.target_eta_s", "greater than 0"),
        ("none", {"cap": 2}, "surge.params.cap", "bad parameters for surge policy 'none'"),
        ("ratio", [1, 2], "surge.params", "expected a table of parameters"),
        (3, {}, "surge.policy", "expected a surge policy name"),
        ("test_surge:NotAPolicy", {}, "surge.policy", "is not a surge policy class"),
        ("test_surge:Missing", {}, "surge.policy", "has no attribute 'Missing'"),
        ("no_such_module_xyz:P", {}, "surge.policy", "cannot import module"),
        ("test_surge:NoBounds", {}, "surge.policy", "must declare its bounds"),
    ],
)
def test_registry_errors(name, params, field, message):
    """Bad policy names or parameters are InputErrors naming the file and field."""
    with pytest.raises(InputError, match=message) as err:
        make_surge_policy(name, params, source="s.toml")
    assert err.value.field == field and err.value.source == "s.toml"


class HalfOff:
    """A researcher's policy living outside ridesim: a flat discount in quiet cells."""

    def __init__(self, discount: float = 0.5) -> None:
        self.discount = float(discount)
        self.floor = 1.0 - self.discount
        self.cap = 1.0

    def get_params(self) -> dict[str, Any]:
        return {"discount": self.discount}

    def price(self, snapshot: SupplyDemandSnapshot) -> np.ndarray:
        quiet = snapshot.open_requests == 0
        return np.where(quiet, self.floor, 1.0)


class NotAPolicy:
    def get_params(self) -> dict[str, Any]:
        return {}


class NoBounds(HalfOff):
    def __init__(self) -> None:
        super().__init__()
        del self.cap


def test_plugin_by_import_path():
    """A policy named by import path is built with its params and passes the suite."""
    p = make_surge_policy("test_surge:HalfOff", {"discount": 0.25})
    assert isinstance(p, HalfOff) and (p.floor, p.cap) == (0.75, 1.0)
    assert p.price(line_snapshot(open_requests=[0, 2, 0])).tolist() == [0.75, 1.0, 0.75]
    check_surge_policy(lambda: make_surge_policy("test_surge:HalfOff", {"discount": 0.25}))


# ---------------------------------------------------------------------------------------------
# The suite's teeth: broken policies, each caught by the check that names its fault.


class _Base:
    floor: ClassVar[float] = 1.0
    cap: ClassVar[float] = 3.0

    def get_params(self) -> dict[str, Any]:
        return {}

    def price(self, snapshot: SupplyDemandSnapshot) -> np.ndarray:
        return np.ones(len(snapshot))


class _AboveCap(_Base):
    def price(self, snapshot):
        return np.full(len(snapshot), 3.5)


class _Unclipped(_Base):
    def price(self, snapshot):  # no clip: previous multipliers up to 4 leak out
        return snapshot.previous_multiplier.copy()


class _NaNWithoutDrivers(_Base):
    def price(self, snapshot):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 + snapshot.open_requests / snapshot.idle_drivers * 0.0


class _Random(_Base):
    def price(self, snapshot):
        return 1.0 + np.random.default_rng().integers(0, 2, len(snapshot)).astype(float)


class _Mutating(_Base):
    def price(self, snapshot):
        arr = snapshot.previous_multiplier
        arr.flags.writeable = True
        arr[:] = 1.0
        return np.ones(len(snapshot))


class _WrongLength(_Base):
    def price(self, snapshot):
        return np.ones(len(snapshot) + 1)


class _IntDtype(_Base):
    def price(self, snapshot):
        return np.ones(len(snapshot), dtype=np.int64)


class _List(_Base):
    def price(self, snapshot):
        return [1.0] * len(snapshot)


class _FailsOnEmpty(_Base):
    def price(self, snapshot):
        top = snapshot.open_requests.max()  # ValueError on zero cells
        return np.ones(len(snapshot)) * min(1.0 + 0.0 * top, 3.0)


class _BadParams(_Base):
    def get_params(self):
        return {"shape": np.zeros(2)}


class _ForgetsParams:
    floor = 1.0

    def __init__(self, cap: float = 3.0) -> None:
        self.cap = cap

    def get_params(self):
        return {}

    def price(self, snapshot):
        return np.full(len(snapshot), float(self.cap))


class _InvertedBounds(_Base):
    floor = 2.0
    cap = 1.0

    def price(self, snapshot):
        return np.full(len(snapshot), 1.5)


@pytest.mark.parametrize(
    ("factory", "check_name"),
    [
        (_AboveCap, "check_prices_valid"),
        (_Unclipped, "check_prices_valid"),
        (_NaNWithoutDrivers, "check_prices_valid|check_no_drivers"),
        (_Random, "check_init_stores_params|check_deterministic"),
        (_Mutating, "check_does_not_mutate_snapshot"),
        (_WrongLength, "check_init_stores_params|check_prices_valid"),
        (_IntDtype, "check_init_stores_params|check_prices_valid"),
        (_List, "check_prices_valid"),
        (_FailsOnEmpty, "check_empty_snapshot"),
        (_BadParams, "check_get_params_json"),
        (lambda: _ForgetsParams(cap=2.0), "check_init_stores_params"),
        (_InvertedBounds, "check_declared_bounds"),
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", "factory"),
)
def test_suite_catches_broken_policies(factory, check_name):
    """The surge conformance suite fails each deliberately broken policy on its check."""
    with pytest.raises(AssertionError, match=f"^({check_name}) failed"):
        check_surge_policy(factory)


def test_a_crash_is_reported_with_its_check():
    """A policy that raises (not asserts) is reported naming the check and the exception."""
    with pytest.raises(AssertionError, match="check_empty_snapshot failed .*ValueError"):
        check_surge_policy(_FailsOnEmpty)
    assert [n for n, _ in all_surge_checks(_Base)][0] == "check_get_params_json"


def test_random_snapshot_shapes():
    """Random snapshots have symmetric neighbour lists, isolated cells and NaN ETAs."""
    s = random_snapshot(5, 150)
    assert len(s) == 150 and s.neighbour_ptr[-1] == s.neighbour_idx.size
    deg = np.diff(s.neighbour_ptr)
    assert deg.max() <= 8 and (deg == 0).any()
    owner = np.repeat(np.arange(len(s)), deg)
    pairs = set(zip(owner.tolist(), s.neighbour_idx.tolist(), strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    assert np.isnan(s.recent_pickup_eta_s).any() and (s.previous_multiplier == 1.0).any()
    empty = random_snapshot(1, 0)
    assert len(empty) == 0 and empty.neighbour_ptr.tolist() == [0]


def test_ratio_default_counts_every_quote_as_demand() -> None:
    """Default ratio demand = open requests + all quotes, so a price that turns riders away
    does not raise the measured demand (hand-checked on one isolated cell)."""
    zones = zones_for(GridSpace(1, 1, 100.0, 10.0), cell_m=1000.0)
    assert len(zones) == 1
    s = SupplyDemandSnapshot.for_zones(
        zones,
        time=0.0,
        interval_s=60.0,
        open_requests=np.array([1]),
        quotes=np.array([4]),
        unconverted_quotes=np.array([3]),
        idle_drivers=np.array([1]),
    )
    # raw = (1 + 4) / 1 = 5 -> target = 1 + 0.5 * (5 - 1) = 3 (cap) -> half-way from 1: 2.0
    assert RatioSurge().price(s).tolist() == [2.0]
    # unserved: (1 + 3) / 1 = 4 -> 1 + 0.5 * 3 = 2.5 -> half-way from 1: 1.75 -> 1.8
    assert RatioSurge(demand="unserved").price(s).tolist() == [1.8]

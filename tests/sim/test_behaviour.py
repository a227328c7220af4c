"""Rider and driver behaviour, fares, congestion and repositioning on a tiny street.

The street: 9 nodes 100 m apart driven at 36 km/h (10 s a block), as in the golden traces.
Each test pins the random draws it depends on, so outcomes are decided by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter

from cities import load_city
from cities.demand import Trips
from cities.spec import CitySpec
from cities.supply import Fleet
from matching.registry import make_matcher
from sim.behaviour import (
    CancelAfterMatch,
    DriverSpec,
    PricingSpec,
    RiderDraws,
    RiderSpec,
    TravelSpec,
    sigmoid,
)
from sim.engine import DispatchPolicy, MarketRules, Simulation
from sim.events import EventLog
from sim.invariants import check_event_log
from sim.reposition import TowardDemand, make_reposition
from sim.seeding import spawn_streams

NEUTRAL = MarketRules.neutral()


def street(tmp_path: Path, blocks: int = 8):
    spec = TypeAdapter(CitySpec).validate_python(
        {"kind": "grid", "rows": 1, "cols": blocks, "block_m": 100, "speed_kmh": 36}
    )
    space = load_city(spec, base_dir=tmp_path, source="test", cache_dir=tmp_path)
    xmin, ymin, _, _ = space.bounds
    return space, space.locate(np.array([[xmin + 100.0 * c, ymin] for c in range(blocks + 1)]))


def simulate(
    tmp_path,
    trips_spec,
    drivers_at,
    *,
    rules=NEUTRAL,
    draws=None,
    window=0.0,
    horizon=400.0,
    reposition=None,
    seed=0,
):
    """Run the street; trips_spec = [(t, pickup block, dropoff block)], drivers_at = blocks."""
    space, node = street(tmp_path)
    t = np.array([x[0] for x in trips_spec], dtype=float)
    trips = Trips(
        t=t,
        pickup_node=node[[x[1] for x in trips_spec]],
        dropoff_node=node[[x[2] for x in trips_spec]],
    )
    n_drv = len(drivers_at)
    fleet = Fleet(
        home_node=node[drivers_at],
        shift_driver=np.arange(n_drv),
        shift_on=np.zeros(n_drv),
        shift_off=np.full(n_drv, horizon),
    )
    draws = draws or RiderDraws.neutral(np.full(len(t), 300.0))
    log = EventLog(None)
    rngs = spawn_streams(seed)
    sim = Simulation(
        space,
        trips,
        draws,
        fleet,
        make_matcher("immediate_greedy" if window == 0 else "batched_greedy", {}),
        DispatchPolicy(batch_window_s=window, max_pickup_eta_s=600),
        rngs,
        log,
        horizon_s=horizon,
        rules=rules,
        reposition=reposition,
    )
    sim.run()
    events = log.table()
    assert check_event_log(events, space.travel_time) == []
    return events.to_pandas(), sim, node


def draws_with(n, **columns):
    base = RiderDraws.neutral(np.full(n, 300.0))
    values = {f: getattr(base, f) for f in base.__dataclass_fields__}
    values.update({k: np.asarray(v, dtype=float) for k, v in columns.items()})
    return RiderDraws(**values)


def rules(**parts):
    return MarketRules(
        riders=parts.get("riders", NEUTRAL.riders),
        drivers=parts.get("drivers", NEUTRAL.drivers),
        pricing=parts.get("pricing", NEUTRAL.pricing),
        travel=parts.get("travel", NEUTRAL.travel),
    )


def test_request_probability_matches_the_documented_logit() -> None:
    """Default rider choice: 95% at no surge and 0 min, 82% at 10 min, 73% at 2x surge."""
    r = RiderSpec()
    assert r.request_probability(1.0, 0.0) == pytest.approx(sigmoid(3.0))
    assert r.request_probability(1.0, 600.0) == pytest.approx(sigmoid(1.5))
    assert r.request_probability(2.0, 0.0) == pytest.approx(sigmoid(1.0))
    assert RiderSpec(choice="always").request_probability(5.0, 6000.0) == 1.0


def test_rider_who_declines_the_quote_never_requests(tmp_path: Path) -> None:
    """With the logit choice, a rider whose draw exceeds P(request) only leaves a quote."""
    quoted = rules(riders=RiderSpec(choice="logit", cancel_after_match={"base": 0, "per_min": 0}))
    events, _, _ = simulate(
        tmp_path,
        [(0, 1, 3), (5, 1, 3)],
        [0],
        rules=quoted,
        draws=draws_with(2, u_choice=[0.999, 0.0]),
    )
    quotes = events[events.kind == "quote"]
    assert list(quotes.detail) == ["decline", "request"]
    assert quotes.value.iloc[0] == pytest.approx(10.0)  # the driver is one block away
    assert list(events[events.kind == "request"].rider) == [1]


def test_cancel_after_match_frees_driver_at_pickup(tmp_path: Path) -> None:
    """A rider drawn to cancel after the match does so part-way; the driver is free at the
    pickup node when they would have arrived, and takes the next rider from there."""
    cam = RiderSpec(
        choice="always", cancel_after_match=CancelAfterMatch(base=0.5, per_min=0, cap=1)
    )
    events, _, node = simulate(
        tmp_path,
        [(0, 4, 6), (100, 8, 5)],
        [0],
        rules=rules(riders=cam),
        draws=draws_with(2, u_cancel=[0.0, 1.0], cancel_fraction=[0.25, 0.0]),
    )
    cancel = events[events.kind == "cancel"].iloc[0]
    assert cancel.detail == "after_match" and cancel.driver == 0
    assert cancel.t == pytest.approx(10.0)  # a quarter of the 40 s drive
    second = events[(events.kind == "assign") & (events.rider == 1)].iloc[0]
    assert second.node == node[4] and second.value == pytest.approx(40.0)


def test_driver_decline_pauses_driver_and_reoffers(tmp_path: Path) -> None:
    """A driver who declines pauses; the request goes to the other driver."""
    picky = DriverSpec(accept="logit", asc=-50.0, response_s=(5.0, 5.0), decline_pause_s=60)
    events, _, _ = simulate(tmp_path, [(0, 2, 4)], [1, 8], rules=rules(drivers=picky))
    kinds = list(events[events.rider == 0].kind)
    assert kinds[:4] == ["request", "offer", "decline", "offer"]
    offers = events[events.kind == "offer"]
    assert list(offers.driver[:2]) == [0, 1] and offers.t.iloc[1] == pytest.approx(5.0)
    # Both decline every time: driver 0 is offered again only after its 60 s pause.
    again = offers[offers.driver == 0].t
    assert again.iloc[1] - again.iloc[0] >= 5.0 + 60.0
    assert events[events.kind == "decline"].detail.iloc[0] == "declined"


def test_unanswered_offer_times_out(tmp_path: Path) -> None:
    """A driver who never answers times out after offer_timeout_s."""
    silent = DriverSpec(accept="logit", no_response=1.0, offer_timeout_s=15, response_s=(1, 2))
    events, _, _ = simulate(tmp_path, [(0, 2, 4)], [1], rules=rules(drivers=silent), horizon=40)
    decline = events[events.kind == "decline"].iloc[0]
    assert decline.detail == "timeout" and decline.t == pytest.approx(15.0)


def test_accept_probability_falls_with_pickup_eta() -> None:
    """Default acceptance: 95% at the door, 82% at 8 minutes, higher under surge."""
    d = DriverSpec()
    assert d.accept_probability(1.0, 0.0) == pytest.approx(sigmoid(3.0))
    assert d.accept_probability(1.0, 480.0) == pytest.approx(sigmoid(1.4))
    assert d.accept_probability(2.0, 480.0) > d.accept_probability(1.0, 480.0)


def test_fare_and_driver_earnings(tmp_path: Path) -> None:
    """The dropoff carries the fare of the schedule; the driver keeps 1 - commission."""
    pricing = PricingSpec(
        base=2.0, per_km=1.0, per_min=0.5, min_fare=0.0, commission=0.2, detour=1.5
    )
    events, sim, _ = simulate(tmp_path, [(0, 0, 8)], [0], rules=rules(pricing=pricing))
    fare = 2.0 + 1.0 * 0.8 * 1.5 + 0.5 * 80 / 60  # 800 m straight line, 80 s
    dropoff = events[events.kind == "dropoff"].iloc[0]
    assert dropoff.fare == pytest.approx(fare)
    assert sim.drivers.earnings[0] == pytest.approx(0.8 * fare)
    assert pricing.fare(0.0, 0.0, 2.0) == pytest.approx(4.0)  # base times the multiplier
    assert PricingSpec().fare(0.0, 0.0, 1.0) == PricingSpec().min_fare


def test_congestion_slows_travel_and_quotes(tmp_path: Path) -> None:
    """A congestion factor of 2 doubles both the matcher's ETA and the actual drive."""
    jam = TravelSpec(congestion=(2.0,) * 24)
    events, _, _ = simulate(tmp_path, [(0, 3, 4)], [0], rules=rules(travel=jam))
    assign = events[events.kind == "assign"].iloc[0]
    pickup = events[events.kind == "pickup"].iloc[0]
    assert assign.value == pytest.approx(60.0) and pickup.value == pytest.approx(60.0)
    assert events[events.kind == "dropoff"].value.iloc[0] == pytest.approx(20.0)


def test_actual_travel_noise_never_beats_free_flow(tmp_path: Path) -> None:
    """Noisy actual travel differs from the quote but is never faster than free flow."""
    noisy = draws_with(3, pickup_noise=[0.5, 1.5, 1.2], trip_noise=[0.7, 1.3, 1.0])
    events, _, _ = simulate(tmp_path, [(0, 2, 4), (1, 5, 7), (2, 6, 8)], [0, 3, 4], draws=noisy)
    quoted = events[events.kind == "assign"].set_index("rider").value
    actual = events[events.kind == "pickup"].set_index("rider").value
    assert actual[0] == pytest.approx(quoted[0])  # 0.5 is clamped to free flow
    assert actual[1] == pytest.approx(1.5 * quoted[1])
    trips = events[events.kind == "dropoff"].set_index("rider").value
    assert trips[0] == pytest.approx(20.0) and trips[1] == pytest.approx(26.0)


def test_quote_noise_is_drawn_per_rider() -> None:
    """Quote noise factors have mean 1 and the requested coefficient of variation."""
    draws = RiderDraws.draw(
        np.random.default_rng(1),
        np.random.default_rng(2),
        RiderSpec(),
        TravelSpec(quote_noise_cv=0.2),
        200_000,
    )
    assert draws.quote_noise.mean() == pytest.approx(1.0, abs=0.005)
    assert draws.quote_noise.std() == pytest.approx(0.2, abs=0.005)
    assert np.all(draws.pickup_noise == 1.0)


def test_idle_driver_repositions_toward_recent_demand(tmp_path: Path) -> None:
    """An idle driver heads for where riders asked recently, and is matched on the way."""
    policy = TowardDemand(max_drive_s=600, min_move_s=30)
    drivers = rules(
        drivers=DriverSpec(
            accept="always", reposition="demand", reposition_after_s=0, reposition_every_s=20
        )
    )
    # Rider 0 asks at block 8 (served by driver 1 standing there), then driver 0 at block 0 moves.
    events, _, node = simulate(
        tmp_path, [(1, 8, 7), (25, 7, 8)], [0, 8], rules=drivers, reposition=policy, horizon=200
    )
    move = events[events.kind == "reposition"]
    assert len(move) >= 1 and move.driver.iloc[0] == 0 and move.dest_node.iloc[0] == node[8]
    assign = events[(events.kind == "assign") & (events.rider == 1)].iloc[0]
    if assign.driver == 0:  # matched mid-drive: the ETA includes the rest of the drive
        assert assign.value >= 10.0


def test_reposition_registry_and_errors() -> None:
    """Policies by name; `stay` means no policy; unknown names and bad params are input errors."""
    from core.errors import InputError

    assert make_reposition("stay") is None
    assert isinstance(make_reposition("demand", {"max_drive_s": 300}), TowardDemand)
    with pytest.raises(InputError, match="unknown reposition policy 'teleport'"):
        make_reposition("teleport", source="s.toml")
    with pytest.raises(InputError, match="drivers.reposition_params"):
        make_reposition("demand", {"max_drive_s": -1}, source="s.toml")


def test_one_value_probabilities_are_the_vectorised_bits() -> None:
    """request_probability_one, accept_probability_one and CancelAfterMatch.probability_one
    return exactly the floats the vectorised versions give for the same scalar inputs."""
    rng = np.random.default_rng(11)
    riders = RiderSpec(asc=2.3, surge_coef=1.7, eta_coef_per_min=0.21)
    drivers = DriverSpec(asc=2.9, pickup_coef_per_min=0.33, surge_coef=0.8)
    cancel = CancelAfterMatch(base=0.03, per_min=0.015, cap=0.4)
    mult = rng.uniform(1.0, 3.0, 400).tolist() + [1.0] * 10
    eta = rng.uniform(0.0, 1800.0, 400).tolist() + [
        0.0,
        1e-9,
        600.0,
        1e4,
        3.5,
        60.0,
        1.0,
        2.0,
        5.0,
        7.0,
    ]
    for m, e in zip(mult, eta, strict=True):
        assert riders.request_probability_one(m, e) == float(riders.request_probability(m, e))
        assert drivers.accept_probability_one(m, e) == float(drivers.accept_probability(m, e))
        assert cancel.probability_one(e) == float(cancel.probability(e))
    assert cancel.probability_one(1e4) == 0.4
    assert np.isnan(cancel.probability_one(float("nan")))
    always = RiderSpec(choice="always"), DriverSpec(accept="always")
    assert always[0].request_probability_one(2.0, 300.0) == 1.0
    assert always[1].accept_probability_one(2.0, 300.0) == 1.0

"""Request and driver state: named transitions keep the columns consistent."""

from __future__ import annotations

import numpy as np
import pytest

from cities.demand import Trips
from cities.supply import Fleet
from matching.api import DriverState
from sim.state import (
    CONTRACT_STATE,
    D_IDLE,
    D_OFFLINE,
    D_REPOSITIONING,
    R_CANCELLED,
    R_OPEN,
    Drivers,
    DriverStatus,
    Requests,
    StopKind,
)


def _drivers(n: int = 3) -> Drivers:
    return Drivers(
        Fleet(
            home_node=np.arange(n),
            shift_driver=np.arange(n),
            shift_on=np.zeros(n),
            shift_off=np.full(n, 100.0),
        )
    )


def _requests(n: int = 3) -> Requests:
    trips = Trips(
        t=np.arange(n, dtype=float),
        pickup_node=np.arange(n),
        dropoff_node=np.zeros(n, dtype=np.int64),
    )
    xy = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    return Requests(trips, xy, np.full(n, 60.0))


def test_free_count_follows_every_transition() -> None:
    """n_free equals the number of free drivers after any sequence of transitions."""
    dv = _drivers(4)
    dv.go_online(0, 0.0)
    dv.go_online(1, 0.0)
    dv.make_free(1)  # twice: still one driver
    assert dv.n_free == 2 == dv.free.sum()
    dv.offered(0)
    dv.reserve(np.array([1]))
    assert dv.n_free == 0 == dv.free.sum()
    dv.go_online(2, 1.0)
    dv.go_online(3, 1.0)
    dv.make_busy_all(np.array([2, 3]))
    dv.make_free(3)
    dv.pause(3, 5.0)
    assert dv.n_free == 0 == dv.free.sum()


def test_a_plan_is_pickup_then_dropoff_and_stops_move_the_driver() -> None:
    """Taking a rider plans their pickup then their dropoff; each reached stop puts the
    driver at its node and ends the leg there."""
    dv = _drivers()
    dv.go_online(0, 0.0)
    dv.head_for_pickup(0, r=7, pickup=2, dropoff=1, arrive=20.0)
    assert [(s.kind, s.rider, s.node) for s in dv.plan[0]] == [
        (StopKind.PICKUP, 7, 2),
        (StopKind.DROPOFF, 7, 1),
    ]
    assert not dv.free[0] and dv.free_at[0] == 20.0
    assert list(dv.next_pickup_node(np.array([0]))) == [2]
    first = dv.reach_stop(0, 20.0)
    assert first.kind == StopKind.PICKUP and dv.node[0] == 2 and dv.free_at[0] == 20.0
    assert dv.reach_stop(0, 30.0).kind == StopKind.DROPOFF and dv.node[0] == 1
    assert dv.plan[0] == []


def test_online_seconds_accumulate_over_shifts() -> None:
    """Logging off adds the shift's seconds online; the driver is then offline and not free."""
    dv = _drivers(1)
    dv.go_online(0, 10.0)
    dv.go_offline(0, 40.0)
    dv.go_online(0, 100.0)
    dv.go_offline(0, 110.0)
    assert dv.online_s[0] == 40.0 and np.isnan(dv.online_since[0])
    assert dv.status[0] == D_OFFLINE and not dv.free[0]


def test_standing_driver_is_idle_or_still_driving() -> None:
    """A released driver still on a leg is repositioning (leg end kept); else idle here now."""
    dv = _drivers(2)
    dv.free_at[:] = [50.0, 5.0]
    dv.stand(0, 10.0, moving=True)
    dv.stand(1, 10.0, moving=False)
    assert list(dv.status) == [D_REPOSITIONING, D_IDLE]
    assert list(dv.free_at) == [50.0, 10.0] and list(dv.idle_since) == [10.0, 10.0]


def test_open_requests_keep_reopening_order_and_leave_on_cancel() -> None:
    """open_ids lists requests in the order they (re)opened; a cancel removes one."""
    rq = _requests()
    for i in (2, 0, 1):
        rq.reopen(i)
    rq.cancel(0)
    assert list(rq.open_ids()) == [2, 1]
    assert rq.status[0] == R_CANCELLED and rq.status[1] == R_OPEN


def test_fixed_columns_and_price_view_are_read_only() -> None:
    """A matcher handed slices of the request columns cannot write through them."""
    rq = _requests()
    rq.priced(1, 2.0, 9.5)
    assert rq.price[1] == 9.5 and rq.multiplier[1] == 2.0
    for col in (rq.id, rq.t, rq.pickup_node, rq.pickup_xy, rq.price, rq.patience_s):
        with pytest.raises(ValueError):
            col[:1][0] = 0


def test_contract_state_names_repositioning_drivers() -> None:
    """A repositioning driver is REPOSITIONING to the matcher; an idle one IDLE."""
    assert CONTRACT_STATE[DriverStatus.REPOSITIONING] == DriverState.REPOSITIONING
    assert CONTRACT_STATE[DriverStatus.IDLE] == DriverState.IDLE


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (_requests, ["status", "multiplier", "_price", "assign_t", "pickup_t"]),
        (
            _drivers,
            ["status", "node", "free_at", "idle_since", "earnings", "leaving", "free"],
        ),
    ],
)
def test_scalar_views_share_their_columns_memory(make, names) -> None:  # type: ignore[no-untyped-def]
    """``x_one`` reads and writes column ``x`` itself, one Python scalar at a time (the
    transitions write through it, the dispatcher reads the columns as arrays)."""
    state = make()
    for name in names:
        column, one = getattr(state, name), getattr(state, f"{name}_one")
        assert one.format == column.dtype.char or (one.format, column.dtype.char) == ("l", "q")
        value = True if column.dtype == bool else 7
        one[1] = value
        assert column[1] == value and one[1] == value and type(one[1]) is type(column.item(1))
        column[2] = value
        assert one[2] == value


def test_transitions_through_scalar_views_show_in_the_arrays() -> None:
    """The named transitions write through the scalar views, and the columns the dispatcher
    reads as arrays show every change (free drivers, times, positions)."""
    rq, dv = _requests(), _drivers()
    rq.priced(1, 1.5, 12.0)
    rq.reopen(1)
    rq.assign(1, 4.0)
    rq.board(1, 9.0)
    assert (rq.status[1], rq.multiplier[1], rq.price[1]) == (4, 1.5, 12.0)
    assert (rq.assign_t[1], rq.pickup_t[1]) == (4.0, 9.0)
    dv.go_online(2, 0.0)
    assert dv.free.nonzero()[0].tolist() == [2] and dv.n_free == 1
    dv.head_for_pickup(2, 1, 5, 0, 30.0)
    assert not dv.free.any() and dv.n_free == 0 and dv.free_at[2] == 30.0
    stop = dv.reach_stop(2, 30.0)
    assert dv.node[2] == stop.node == 5

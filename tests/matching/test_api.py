"""The contract's producer fast paths: lazy messages make each column once, when first read."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from matching.api import (
    CandidateDrivers,
    LazyCandidateDrivers,
    MatchResponse,
    lazy_message,
    set_writeable,
)


def _lazy(calls: list[str]) -> LazyCandidateDrivers:
    def fill(name: str, base: float) -> np.ndarray:
        calls.append(name)
        dtype = np.uint8 if name == "state" else np.float64
        shape = (2, 2) if name == "xy" else (2,)
        return np.full(shape, base + len(calls), dtype=dtype)

    ids, nodes, free_at = np.array([3, 7]), np.array([10, 11]), np.array([0.0, 5.0])
    return lazy_message(
        LazyCandidateDrivers, {"id": ids, "node": nodes, "free_at": free_at}, (fill, (100.0,))
    )


def test_lazy_columns_are_made_once_on_first_read_and_read_only() -> None:
    """A column not given is made by fill on its first read only, kept, and read-only like
    the given ones; len() and the given columns need no fill."""
    calls: list[str] = []
    drivers = _lazy(calls)
    assert len(drivers) == 2 and drivers.node.tolist() == [10, 11] and calls == []
    first = drivers.earnings
    assert drivers.earnings is first and calls == ["earnings"]
    assert first.tolist() == [101.0, 101.0]
    assert not first.flags.writeable and not drivers.id.flags.writeable
    assert isinstance(drivers, CandidateDrivers)


def test_settle_makes_the_rest_and_forgets_the_fill() -> None:
    """settle() makes every column not made yet, once, and drops the fill; unknown names
    still raise AttributeError."""
    calls: list[str] = []
    drivers = _lazy(calls)
    drivers.state  # noqa: B018 - read one column first
    drivers.settle()
    assert sorted(calls) == ["earnings", "online_s", "state", "xy"]
    assert "_fill" not in drivers.__dict__
    drivers.settle()
    assert len(calls) == 4
    with pytest.raises(AttributeError, match="no attribute 'speed'"):
        drivers.speed  # noqa: B018 - not a column


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickling_and_copying_give_the_plain_message(how: str) -> None:
    """A lazy message pickles and deep-copies as a plain CandidateDrivers with every column."""
    calls: list[str] = []
    drivers = _lazy(calls)
    other = pickle.loads(pickle.dumps(drivers)) if how == "pickle" else copy.deepcopy(drivers)
    assert type(other) is CandidateDrivers
    for name in ("id", "node", "xy", "state", "free_at", "earnings", "online_s"):
        assert np.array_equal(getattr(other, name), getattr(drivers, name))
    assert len(calls) == 4


def test_unchecked_response_freezes_its_columns_unless_the_producer_has() -> None:
    """MatchResponse.unchecked makes writeable columns read-only; with read_only=True it reads
    no flag and keeps the producer's arrays as they are (the producer froze them)."""
    cols = {
        "request_id": np.array([4]),
        "driver_id": np.array([9]),
        "pickup_eta_s": np.array([12.5]),
        "unmatched_id": np.zeros(0, dtype=np.int64),
        "unmatched_reason": np.zeros(0, dtype=np.int8),
    }
    frozen = MatchResponse.unchecked(**cols)
    assert all(not getattr(frozen, name).flags.writeable for name in cols)
    given = {name: arr.copy() for name, arr in cols.items()}
    for arr in given.values():
        arr.setflags(write=False)
    kept = MatchResponse.unchecked(read_only=True, **given)
    assert all(getattr(kept, name) is given[name] for name in cols)
    assert kept.diagnostics == {} and kept.n_assigned == 1


def test_set_writeable_is_setflags_by_position() -> None:
    """set_writeable(arr, False) marks the array read-only, as setflags(write=False) does."""
    arr = np.arange(3.0)
    set_writeable(arr, False)
    assert not arr.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 1.0
    set_writeable(arr, True)
    assert arr.flags.writeable

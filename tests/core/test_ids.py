"""Distinct ids: exactly numpy.unique's answers, by a flag table or by numpy.unique itself."""

from __future__ import annotations

import numpy as np
import pytest

from core.ids import distinct, distinct_count, distinct_inverse, positions, stable_order


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(12)
    return [
        np.zeros(0, dtype=np.int64),
        np.array([7], dtype=np.int64),
        rng.integers(0, 50, size=1000),  # many repeats, narrow range: flag table
        rng.permutation(100_000)[:60_000],  # distinct, dense
        rng.integers(0, 10**12, size=300),  # wide range: numpy.unique
        rng.integers(-5, 20, size=200),  # negative values: numpy.unique
        rng.integers(0, 300, size=(20, 30)),  # 2-d input is flattened
        rng.integers(0, 1000, size=500).astype(np.int32),
        rng.integers(0, 1000, size=500).astype(np.uint16),
    ]


@pytest.mark.parametrize("ids", _cases(), ids=lambda a: f"{a.dtype}{a.shape}")
def test_distinct_ids_are_numpys_unique(ids: np.ndarray) -> None:
    """Values, dtype, counts and inverse positions equal numpy.unique's for every kind of
    input, whichever way they are computed."""
    want = np.unique(ids)
    got = distinct(ids)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert distinct_count(ids) == want.size
    values, inverse = distinct_inverse(ids)
    want_values, want_inverse = np.unique(ids, return_inverse=True)
    assert np.array_equal(values, want_values) and values.dtype == want_values.dtype
    assert inverse.dtype == np.int64 and np.array_equal(inverse, want_inverse.ravel())
    assert np.array_equal(values[inverse], np.ravel(ids))


@pytest.mark.parametrize("dense", [True, False])
def test_positions_find_each_id_present_and_flag_the_others(dense: bool) -> None:
    """Dense ids (a lookup table) and sparse ones (a binary search) give the same answer."""
    rng = np.random.default_rng(3)
    space = 500 if dense else 10**9
    keys = np.unique(rng.integers(0, space, 300))
    ids = np.concatenate([rng.choice(keys, 400), rng.integers(-3, space + 5, 200)])
    pos, ok = positions(keys, ids)
    where = {int(k): i for i, k in enumerate(keys)}
    assert ok.tolist() == [int(i) in where for i in ids]
    assert pos[ok].tolist() == [where[int(i)] for i in ids[ok]]
    empty_pos, empty_ok = positions(keys[:0], ids)
    assert not empty_ok.any() and empty_pos.shape == ids.shape


@pytest.mark.parametrize(
    "ids",
    [
        np.zeros(0, dtype=np.int64),
        np.array([3, 1, 3, 0, 1, 3]),
        np.random.default_rng(1).integers(0, 1000, 5000),  # one 16-bit pass
        np.random.default_rng(2).integers(0, 300_000, 5000),  # two passes
        np.random.default_rng(3).integers(0, 70_000, 5000).astype(np.uint32),
        np.random.default_rng(4).integers(0, 2**16, 5000) * 2**16 + 7,  # only the high half varies
        np.random.default_rng(5).integers(-5, 5, 1000),  # negative: numpy's own sort
        np.random.default_rng(6).integers(0, 2**40, 1000),  # beyond 32 bits
        np.random.default_rng(7).random(100),  # floats
        np.array([2**32 - 1, 0, 2**32 - 1, 65_536, 65_535]),
    ],
    ids=lambda a: f"{a.dtype}-{a.size}",
)
def test_stable_order_is_numpys_stable_argsort(ids: np.ndarray) -> None:
    """The same permutation as a stable argsort: ties keep their order."""
    assert np.array_equal(stable_order(ids), np.argsort(ids, kind="stable"))

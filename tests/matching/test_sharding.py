"""Geo-partitioned shards: balanced, contiguous by construction, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from matching.sharding import partition_nodes


def test_shards_balance_weight_and_split_space() -> None:
    """Four shards of uniform points each hold a quarter of the weight, in separate quadrants."""
    rng = np.random.default_rng(0)
    xy = rng.random((4000, 2)) * [2000.0, 1000.0]
    shard = partition_nodes(xy, 4)
    counts = np.bincount(shard, minlength=4)
    assert counts.sum() == 4000 and counts.min() >= 990 and counts.max() <= 1010
    # The first cut is across the longer (x) side: shards 0-1 lie left of shards 2-3.
    assert xy[shard <= 1, 0].max() <= xy[shard >= 2, 0].min()


def test_weights_move_the_cut() -> None:
    """Heavier nodes on the left pull the cut left: shards balance weight, not node count."""
    xy = np.column_stack([np.arange(100.0), np.zeros(100)])
    w = np.where(np.arange(100) < 20, 10.0, 1.0)
    shard = partition_nodes(xy, 2, w)
    assert w[shard == 0].sum() == pytest.approx(w[shard == 1].sum(), rel=0.1)
    assert (shard == 0).sum() < 50


def test_partition_is_deterministic_and_handles_odd_counts() -> None:
    """Same input, same shards; three shards and one shard work; bad counts are refused."""
    xy = np.random.default_rng(1).random((301, 2))
    a, b = partition_nodes(xy, 3), partition_nodes(xy, 3)
    assert np.array_equal(a, b) and set(a.tolist()) == {0, 1, 2}
    assert not partition_nodes(xy, 1).any()
    with pytest.raises(ValueError):
        partition_nodes(xy, 0)

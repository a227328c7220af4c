"""Candidate generation: exact k nearest by pickup ETA, on every path, and the wire form."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.spatial
from scipy.sparse import coo_array
from scipy.sparse.csgraph import shortest_path

import matching.candidates as cand
from cities import load_city
from cities.spec import NamedCity
from matching.api import CandidatePairs, EtaBounds
from matching.candidates import candidate_pairs, to_wire
from matching.checks import dense_etas, random_instance
from matching.matchers import Assignment


def _reference(request, k: int) -> list[tuple[int, int, float]]:
    """Per request, sort every in-range driver by (eta, row) and keep k: the definition."""
    eta = dense_etas(request)
    out = []
    for r in range(eta.shape[0]):
        row = sorted((float(e), d) for d, e in enumerate(eta[r]) if e <= request.max_pickup_eta_s)
        out += [(r, d, e) for e, d in row[:k]]
    return out


def _as_list(pairs: CandidatePairs) -> list[tuple[int, int, float]]:
    return list(
        zip(
            pairs.request_row.tolist(),
            pairs.driver_row.tolist(),
            pairs.pickup_eta_s.tolist(),
            strict=True,
        )
    )


CASES = [
    (seed, kind, n_req, n_drv)
    for seed, kind, n_req, n_drv in [
        (1, "plane", 40, 90),
        (2, "grid", 30, 60),
        (3, "graph", 25, 70),
        (4, "plane", 7, 300),
        (5, "grid", 60, 9),
        (6, "plane", 120, 150),
    ]
]


@pytest.mark.parametrize(("seed", "kind", "n_req", "n_drv"), CASES)
@pytest.mark.parametrize("k", [1, 3, 10, 1000])
def test_dense_path_matches_definition(seed, kind, n_req, n_drv, k):
    """The dense path returns each request's k nearest in-range drivers, ties by driver id."""
    request = random_instance(seed, n_req, n_drv, kind, max_pickup_eta_s=200.0)
    assert _as_list(candidate_pairs(request, k)) == _reference(request, k)


@pytest.mark.parametrize(("seed", "kind", "n_req", "n_drv"), CASES)
@pytest.mark.parametrize("k", [1, 3, 10, 1000])
def test_kdtree_path_equals_dense_path(monkeypatch, seed, kind, n_req, n_drv, k):
    """The KD-tree path gives exactly the dense result, for k covering everything or not."""
    request = random_instance(seed, n_req, n_drv, kind, max_pickup_eta_s=200.0)
    dense = _as_list(candidate_pairs(request, k))
    monkeypatch.setattr(cand, "DENSE_LIMIT", 0)
    assert _as_list(candidate_pairs(request, k)) == dense


@pytest.mark.parametrize("k", [2, 50])
def test_no_speed_bound_path_equals_dense_path(monkeypatch, k):
    """Without max_speed_mps, large batches are evaluated densely in blocks, same result."""
    request = replace(random_instance(7, 50, 80, "plane"), max_speed_mps=float("inf"))
    dense = _as_list(candidate_pairs(request, k))
    monkeypatch.setattr(cand, "DENSE_LIMIT", 200)
    assert _as_list(candidate_pairs(request, k)) == dense


def test_kdtree_reprobes_when_road_order_differs_from_distance(monkeypatch):
    """Rows the first KD probe cannot settle are re-probed wider and still come out exact."""
    # Road ETAs, busy drivers and many drivers per node defeat the straight-line bound.
    request = random_instance(8, 30, 400, "graph", max_pickup_eta_s=300.0)
    probes = []
    tree_cls = scipy.spatial.cKDTree

    class CountingTree(tree_cls):
        def query(self, x, k, **kw):
            probes.append(k)
            return super().query(x, k=k, **kw)

    monkeypatch.setattr(scipy.spatial, "cKDTree", CountingTree)  # imported when searched
    monkeypatch.setattr(cand, "DENSE_LIMIT", 0)
    assert _as_list(candidate_pairs(request, 4)) == _reference(request, 4)
    assert len(probes) > 1


@pytest.mark.parametrize(("n_req", "n_drv"), [(0, 0), (0, 5), (5, 0)])
def test_empty_sides(n_req, n_drv):
    """No requests or no drivers: no pairs."""
    assert len(candidate_pairs(random_instance(9, n_req, n_drv), 3)) == 0


def test_sorted_and_in_range():
    """Pairs are sorted by (request_row, eta, driver id) and within max pickup ETA."""
    request = random_instance(10, 80, 80, "grid", max_pickup_eta_s=120.0)
    p = candidate_pairs(request, 5)
    key = np.lexsort((request.drivers.id[p.driver_row], p.pickup_eta_s, p.request_row))
    assert np.array_equal(key, np.arange(len(p)))
    assert (p.pickup_eta_s <= request.max_pickup_eta_s).all()
    assert np.bincount(p.request_row, minlength=80).max() <= 5


@pytest.mark.parametrize("k", [1, 4, 1000])
def test_wire_candidates_used_and_trimmed(k):
    """A wire request's own candidates are used, trimmed to k: same as from the oracle."""
    request = random_instance(11, 20, 30, "plane")
    wire = to_wire(request)
    assert wire.travel_time is None
    assert _as_list(candidate_pairs(wire, k)) == _as_list(candidate_pairs(request, k))


def test_wire_duplicates_dropped():
    """A pair the wire sender repeated is kept once, with its smallest ETA."""
    request = random_instance(12, 3, 4, "plane", max_pickup_eta_s=1e4)
    pairs = CandidatePairs(
        request_row=[0, 0, 1], driver_row=[2, 2, 3], pickup_eta_s=[9.0, 7.0, 5.0]
    )
    wire = replace(request, travel_time=None, candidates=pairs)
    assert _as_list(candidate_pairs(wire, 5)) == [(0, 2, 7.0), (1, 3, 5.0)]


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k_rejected(k):
    """k must be a positive integer."""
    with pytest.raises(ValueError, match="k must be"):
        candidate_pairs(random_instance(13, 2, 2), k)


def _table_instance(seed: int, n_req: int, n_drv: int, *, factor: float, cell_m: float):
    """A random road graph with integer edge times (many ties) and some one-way, unreachable
    pairs; its table, zone bounds from that table, and a request that carries them."""
    rng = np.random.default_rng(seed)
    n_nodes = 80
    xy = rng.uniform(0.0, 3000.0, size=(n_nodes, 2))
    dist = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=-1))
    near = (dist < 600.0) & ~np.eye(n_nodes, dtype=bool) & (rng.random((n_nodes, n_nodes)) < 0.8)
    src, dst = np.nonzero(near)
    w = np.ceil(dist[src, dst] / 10.0 * rng.uniform(1.0, 2.0, size=src.size))
    table = shortest_path(coo_array((w, (src, dst)), shape=(n_nodes, n_nodes)).tocsr())
    table = table.astype(np.float32)
    ij = np.floor(xy / cell_m).astype(np.int64)
    _, node_zone = np.unique(ij[:, 0] * 1000 + ij[:, 1], return_inverse=True)
    into = np.stack([table[node_zone == z].min(axis=0) for z in range(node_zone.max() + 1)], axis=1)

    def travel_time(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(table[a, b], dtype=np.float64) * factor

    base = random_instance(seed, n_req, n_drv, "plane", max_pickup_eta_s=250.0)
    pick = rng.integers(0, n_nodes, n_req)
    drv = rng.integers(0, n_nodes, n_drv)
    requests = replace(base.requests, pickup_node=pick, pickup_xy=xy[pick])
    drivers = replace(base.drivers, node=drv, xy=xy[drv])
    return replace(
        base,
        requests=requests,
        drivers=drivers,
        travel_time=travel_time,
        max_speed_mps=float("inf"),
        eta_bounds=EtaBounds(node_zone, into, scale=factor),
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2, 5, 20, 1000])
@pytest.mark.parametrize(("factor", "cell_m"), [(1.0, 400.0), (1.37, 900.0), (2.0, 5000.0)])
@pytest.mark.parametrize("partial_zones", [1, 3, 48])
def test_zone_path_matches_definition(monkeypatch, seed, k, factor, cell_m, partial_zones):
    """With zone bounds the search is exact: each request's k nearest, ties by driver id,
    however few zones it orders before falling back to ordering them all."""
    request = _table_instance(seed, 35, 120, factor=factor, cell_m=cell_m)
    monkeypatch.setattr(cand, "DENSE_LIMIT", 0)
    monkeypatch.setattr(cand, "ZONE_BLOCK", 7)  # several request blocks
    monkeypatch.setattr(cand, "STATIC_ZONES", partial_zones)
    assert _as_list(candidate_pairs(request, k)) == _reference(request, k)


def test_zone_path_evaluates_few_drivers(monkeypatch):
    """The zone search asks for far fewer ETAs than the dense matrix has (it scales with k)."""
    request = _table_instance(11, 30, 2000, factor=1.0, cell_m=300.0)
    asked = []
    inner = request.travel_time

    def counting(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        asked.append(np.broadcast(a, b).size)
        return inner(a, b)

    request = replace(request, travel_time=counting)
    monkeypatch.setattr(cand, "DENSE_LIMIT", 0)
    pairs = candidate_pairs(request, 3)
    assert _as_list(pairs) == _reference(replace(request, travel_time=inner), 3)
    assert sum(asked) < 30 * 2000 / 4


def test_assignment_identical_with_zone_bounds(monkeypatch):
    """The assignment matcher's answer is the same with and without zone bounds."""
    monkeypatch.setattr(cand, "DENSE_LIMIT", 0)
    for seed in range(4):
        request = _table_instance(seed, 60, 90, factor=1.2, cell_m=500.0)
        with_b = Assignment(k=4).match(request)
        without = Assignment(k=4).match(replace(request, eta_bounds=None, max_speed_mps=1e9))
        for name in ("request_id", "driver_id", "pickup_eta_s", "unmatched_id"):
            assert np.array_equal(getattr(with_b, name), getattr(without, name))


def test_eta_bounds_validated_and_not_sent():
    """EtaBounds rejects bad shapes, zones and scales; the wire form drops the bounds."""
    with pytest.raises(ValueError, match="into_node_s"):
        EtaBounds(np.zeros(3, dtype=np.int64), np.zeros((2, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="node_zone"):
        EtaBounds(np.array([0, 1, 2]), np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="scale"):
        EtaBounds(np.zeros(3, dtype=np.int64), np.zeros((3, 1)), scale=0.0)
    b = EtaBounds(np.zeros(3, dtype=np.int64), np.zeros((3, 1), dtype=np.float32))
    assert b.scaled(1.5).scale == 1.5 and b.scaled(1.5).into_node_s is b.into_node_s
    request = _table_instance(1, 4, 5, factor=1.0, cell_m=500.0)
    assert to_wire(request).eta_bounds is None


@pytest.mark.parametrize("seed", range(5))
def test_packed_order_equals_lexsort(seed):
    """The packed-key sort orders pairs exactly as the three-key lexsort, ties included."""
    rng = np.random.default_rng(seed)
    n = 500
    r = rng.integers(0, 30, n)
    d = rng.integers(0, 40, n)
    eta = rng.choice([0.0, -0.0, 1.5, 2.25, 7.0, 1e9], n) + rng.integers(0, 3, n)
    assert np.array_equal(cand._order(r, eta, d), np.lexsort((d, eta, r)))
    big = np.full(n, 2**40)  # too wide to pack: falls back to lexsort
    assert np.array_equal(cand._order(big + r, eta, d), np.lexsort((d, eta, big + r)))


@pytest.mark.parametrize("factor", [1.0, 1.45])
def test_zone_path_on_a_real_table(cache_dir: Path, factor: float):
    """On the shipped Campo Grande network (float32 table, one-way streets, a congestion
    factor) the zone search returns exactly the KD-tree path's candidates."""
    space = load_city(
        NamedCity(name="campo_grande"), base_dir=Path("."), source="t", cache_dir=cache_dir
    )
    rng = np.random.default_rng(7)
    n_req, n_drv = 400, 3000
    pick = rng.integers(0, space.n_nodes, n_req)
    nodes = rng.integers(0, space.n_nodes, n_drv)
    xy = space.node_xy
    base = random_instance(3, n_req, n_drv, "plane", max_pickup_eta_s=600.0)
    tt = space.travel_time

    def travel_time(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return tt(a, b) * factor

    request = replace(
        base,
        requests=replace(base.requests, pickup_node=pick, pickup_xy=xy[pick]),
        drivers=replace(base.drivers, node=nodes, xy=xy[nodes]),
        travel_time=travel_time,
        max_speed_mps=space.max_speed_mps * factor,
    )
    bounds = EtaBounds(*space.zone_bounds(1000.0)).scaled(factor)
    for k in (1, 20):
        kd = candidate_pairs(request, k)
        zoned = candidate_pairs(replace(request, eta_bounds=bounds), k)
        assert _as_list(zoned) == _as_list(kd)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 4, 30])
@pytest.mark.parametrize("static_zones", [2, 128])
def test_zone_path_exact_with_waits(monkeypatch, seed, k, static_zones):
    """Drivers still busy for a while (tied waits, waits past max pickup ETA, never free)
    are bucketed by wait within their zone and the search stays exact."""
    request = _table_instance(seed, 40, 300, factor=1.3, cell_m=700.0)
    rng = np.random.default_rng(seed)
    t = request.decision_time
    wait = rng.choice([0.0, 0.0, 15.0, 15.0, 60.0, 249.5, 400.0], size=300)
    wait = wait + rng.choice([0.0, 0.25], size=300) * (rng.random(300) < 0.3)
    free_at = t + wait
    free_at[:5] = np.inf
    free_at[5:10] = t - 50.0  # free already: no wait
    drivers = replace(request.drivers, free_at=free_at)
    request = replace(request, drivers=drivers)
    monkeypatch.setattr(cand, "DENSE_LIMIT", 0)
    monkeypatch.setattr(cand, "STATIC_ZONES", static_zones)
    assert _as_list(candidate_pairs(request, k)) == _reference(request, k)


@pytest.mark.parametrize("seed", range(5))
def test_kth_within_matches_sorting(seed):
    """The per-position k-th ETA under a cap equals sorting each position's ETAs, for
    positions with many, exactly k, fewer than k and no pairs."""
    rng = np.random.default_rng(seed)
    n_rows, k = 12, 5
    sizes = rng.choice([0, 3, 5, 6, 40, 300], size=n_rows)
    w = np.repeat(np.arange(n_rows), sizes)
    eta = rng.choice([1.0, 2.0, 2.5, 7.0, 9.0, np.inf, np.nan], size=w.size)
    eta = np.where(rng.random(w.size) < 0.5, eta, rng.uniform(0.0, 10.0, w.size))
    shuffle = rng.permutation(w.size)
    w, eta = w[shuffle], eta[shuffle]
    cap = rng.choice([3.0, 8.0, 100.0], size=n_rows)
    got = cand._kth_within(w, eta, n_rows, k, cap)
    for r in range(n_rows):
        mine = np.sort(eta[(w == r) & (eta <= cap[r])])
        assert got[r] == (mine[k - 1] if mine.size >= k else cap[r])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("wide", [False, True])
def test_first_k_equals_sorting(seed, wide):
    """The row-grid selection returns what the global sort returns (ties by driver), also
    when one row is so wide that it falls back to the global sort."""
    rng = np.random.default_rng(seed)
    n_rows, k = 50, 4
    sizes = rng.integers(0, 9, n_rows)
    if wide:
        sizes[7] = 200_000
    w = np.repeat(np.arange(n_rows), sizes)
    d = np.concatenate([rng.permutation(300_000)[:s] for s in sizes])
    eta = rng.choice([1.0, 2.0, 2.5, 3.0], size=w.size)
    shuffle = rng.permutation(w.size)
    w, d, eta = w[shuffle], d[shuffle], eta[shuffle]
    rows = np.arange(n_rows) * 3 + 1
    got = cand._first_k(rows, w, d, eta, k)
    want = cand._top_k(rows[w], d, eta, np.inf, k)
    assert _as_list(got) == _as_list(want)

"""Grid and plane spaces: closed-form travel times, lookups, growth, no geography."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from cities import GridSpace, PlaneSpace, Space, load_city
from cities.spec import GridCity, PlaneCity


def test_grid_closed_form() -> None:
    """3 x 2 blocks of 100 m at 36 km/h: node layout and Manhattan times by hand."""
    g = GridSpace(rows=2, cols=3, block_m=100.0, speed_mps=10.0)
    assert g.n_nodes == 12
    assert g.node_xy[5].tolist() == [100.0, 100.0]  # row 1, col 1
    assert g.bounds == (0.0, 0.0, 300.0, 200.0)
    # node 0 = (0, 0), node 11 = (300, 200): 5 blocks = 500 m at 10 m/s.
    assert g.travel_time(np.array([0, 11, 5]), np.array([11, 0, 5])).tolist() == [50.0, 50.0, 0.0]
    assert g.travel_time(np.array([[0], [3]]), np.array([0, 3])).tolist() == [[0, 30], [30, 0]]
    assert g.max_speed_mps == 10.0
    # 3 rows x 3 horizontal blocks + 4 columns x 2 vertical blocks, each one block long.
    seg = g.road_segments()
    assert seg.shape == (17, 2, 2)
    assert np.allclose(np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1), 100.0)


def test_grid_locate_and_sample() -> None:
    """Points snap to the nearest intersection (outside points to the edge); samples are nodes."""
    g = GridSpace(rows=2, cols=3, block_m=100.0, speed_mps=10.0)
    pts = np.array([[149.0, 51.0], [-50.0, 500.0], [300.0, 0.0]])
    assert g.locate(pts).tolist() == [5, 8, 3]
    s = g.sample_points(np.random.default_rng(0), 50)
    assert np.array_equal(g.node_xy[g.locate(s)], s)


def test_plane_closed_form() -> None:
    """A 3-4-5 triangle at 2 m/s: 2.5 s; locate appends nodes in order."""
    p = PlaneSpace(side_m=10.0, speed_mps=2.0)
    ids = p.locate(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert ids.tolist() == [0, 1] and p.n_nodes == 2
    assert p.locate(np.array([[3.0, 0.0]])).tolist() == [2]
    assert p.travel_time(np.array([0, 1, 2]), np.array([1, 0, 1])).tolist() == [2.5, 2.5, 2.0]
    assert p.bounds == (0.0, 0.0, 10.0, 10.0)
    pts = p.sample_points(np.random.default_rng(0), 1000)
    assert pts.min() >= 0 and pts.max() <= 10


def test_plane_grows_fast_and_keeps_snapshots() -> None:
    """200,000+ points in one call and many small calls stay fast; old views stay valid."""
    p = PlaneSpace()
    first = p.locate(np.array([[0.5, 0.5]]))
    snapshot = p.node_xy
    rng = np.random.default_rng(3)
    t0 = time.perf_counter()
    ids = p.locate(rng.uniform(size=(250_000, 2)))
    for _ in range(2000):
        p.locate(rng.uniform(size=(5, 2)))
    assert time.perf_counter() - t0 < 1.0
    assert ids[0] == 1 and p.n_nodes == 1 + 250_000 + 10_000
    assert snapshot.shape == (1, 2) and snapshot[0].tolist() == [0.5, 0.5]
    assert p.travel_time(first, ids[:1]) > 0


def test_no_geography() -> None:
    """Synthetic spaces have no lon/lat: to_lonlat is None, to_xy raises ValueError."""
    for space in (GridSpace(2, 2, 100.0, 10.0), PlaneSpace()):
        assert isinstance(space, Space)
        assert space.to_lonlat(np.zeros((1, 2))) is None
        with pytest.raises(ValueError):
            space.to_xy(np.array([0.0]), np.array([0.0]))


def test_load_city_synthetic(tmp_path: Path) -> None:
    """load_city builds grid and plane from their tables; hashes follow the parameters."""
    grid = load_city(
        GridCity(kind="grid", rows=20, cols=20, block_m=200, speed_kmh=36),
        base_dir=tmp_path,
        source="s.toml",
    )
    assert isinstance(grid, GridSpace) and grid.n_nodes == 441 and grid.speed_mps == 10.0
    plane = load_city(PlaneCity(kind="plane"), base_dir=tmp_path, source="s.toml")
    assert isinstance(plane, PlaneSpace) and plane.n_nodes == 0
    other = load_city(PlaneCity(kind="plane", speed_mps=2), base_dir=tmp_path, source="s.toml")
    assert other.content_hash != plane.content_hash
    assert PlaneSpace().content_hash == plane.content_hash


@pytest.mark.parametrize(
    "space", [GridSpace(7, 5, 130.0, 9.0), PlaneSpace(900.0, 7.5), PlaneSpace(1.0, 1.0)]
)
def test_one_pair_travel_time_is_the_vectorised_float(space: GridSpace | PlaneSpace) -> None:
    """travel_time_one(src, dst) returns exactly the float travel_time gives for that pair."""
    rng = np.random.default_rng(4)
    if isinstance(space, PlaneSpace):
        space.locate(space.sample_points(rng, 300))
    src = rng.integers(0, space.n_nodes, size=500)
    dst = rng.integers(0, space.n_nodes, size=500)
    vectorised = space.travel_time(src, dst)
    one = [space.travel_time_one(s, d) for s, d in zip(src.tolist(), dst.tolist(), strict=True)]
    assert all(type(x) is float for x in one)
    assert np.array_equal(np.array(one), vectorised)
    assert len(set(one)) > 10


@pytest.mark.parametrize("speed", [1.0, 7.5])
def test_plane_travel_time_is_hypot_of_coordinate_differences(speed: float) -> None:
    """Each travel time is np.hypot(dx, dy) / speed on the stored coordinates, bit for bit,
    whatever the index arrays' shapes (one pickup against many drivers, pairs, a grid), and
    after the storage has grown."""
    p = PlaneSpace(side_m=1000.0, speed_mps=speed)
    rng = np.random.default_rng(8)
    p.locate(p.sample_points(rng, 700))
    p.locate(p.sample_points(rng, 3000))  # the buffer grows past its first size
    xy = p.node_xy

    def expected(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        d = xy[src] - xy[dst]
        dist: np.ndarray = np.hypot(d[..., 0], d[..., 1])
        return dist / speed

    src = rng.integers(0, p.n_nodes, size=400)
    dst = rng.integers(0, p.n_nodes, size=400)
    one = dst[:1]
    cases = [(src, dst), (src, one), (one, src), (one, one), (src[:, None], dst[None, :50])]
    for a, b in [*cases, (src[:3], src[:3]), (src[:, None], one)]:
        got = p.travel_time(a, b)
        assert got.shape == np.broadcast_shapes(a.shape, b.shape)
        assert np.array_equal(got, expected(a, b))
    assert p.travel_time(np.array([5]), np.array([5])).tolist() == [0.0]
    # An empty message's id columns are float zeros: no ids, no times.
    assert p.travel_time(np.zeros(0), np.zeros(0)).shape == (0,)

"""Zones: squares on synthetic spaces, H3 cells on geographic ones; the same invariants for both."""

from __future__ import annotations

import time
from pathlib import Path

import h3
import numpy as np
import pytest
from pydantic import TypeAdapter
from shapely import Point, Polygon

from cities import GridSpace, PlaneSpace, load_city
from cities.spec import CitySpec
from cities.zones import square_bounds, zones_for
from core.zoning import Zones


def assert_zones_valid(zones: Zones, n_nodes: int) -> None:
    """Ids sorted and unique, every node in a cell, every cell non-empty, neighbours a
    symmetric, sorted, self-free CSR."""
    n = len(zones)
    assert zones.cell.dtype == object and all(isinstance(c, str) for c in zones.cell)
    assert zones.cell.tolist() == sorted(set(zones.cell.tolist()))
    assert zones.n_nodes == n_nodes and zones.node_cell.dtype == np.int64
    assert np.array_equal(np.unique(zones.node_cell), np.arange(n))  # no empty cell
    ptr, idx = zones.neighbour_ptr, zones.neighbour_idx
    assert ptr.dtype == np.int64 and idx.dtype == np.int64
    assert ptr[0] == 0 and ptr[-1] == idx.size and (np.diff(ptr) >= 0).all()
    pairs = set()
    for r in range(n):
        nb = zones.neighbours(r)
        assert (np.diff(nb) > 0).all() and r not in nb
        pairs.update((r, int(j)) for j in nb)
    assert all((b, a) in pairs for a, b in pairs), "neighbours not symmetric"
    for name in ("cell", "node_cell", "neighbour_ptr", "neighbour_idx"):
        assert not getattr(zones, name).flags.writeable


def assert_squares_contain_nodes(zones: Zones, xy: np.ndarray, bounds) -> None:
    for node in range(xy.shape[0]):
        x0, y0, x1, y1 = square_bounds(zones, int(zones.node_cell[node]), bounds)
        x, y = xy[node]
        assert x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9, (node, x, y)


def assert_squares_neighbours_exact(zones: Zones) -> None:
    """Two existing squares are neighbours exactly when they touch (edge or corner)."""
    ij = np.array([[int(p) for p in c[1:].split("_")] for c in zones.cell]).reshape(-1, 2)
    for r in range(len(zones)):
        touch = np.flatnonzero(np.abs(ij - ij[r]).max(axis=1) == 1)
        assert zones.neighbours(r).tolist() == touch.tolist()


def test_grid_space_squares():
    """A grid space is cut into squares from its lower-left corner, with 8-neighbours."""
    space = GridSpace(4, 6, 250.0, 10.0)  # 1500 m x 1000 m: 3 x 2 squares of 500 m
    zones = zones_for(space, cell_m=500.0)
    assert zones.scheme == "grid" and zones.cell_m == 500.0 and zones.resolution is None
    assert zones.cell.tolist() == ["g0_0", "g0_1", "g1_0", "g1_1", "g2_0", "g2_1"]
    assert_zones_valid(zones, space.n_nodes)
    assert_squares_contain_nodes(zones, space.node_xy, space.bounds)
    assert_squares_neighbours_exact(zones)
    assert zones.cell[zones.neighbours(0)].tolist() == ["g0_1", "g1_0", "g1_1"]
    # Nodes on the far edges belong to the last squares, not to squares of their own.
    corner = space.n_nodes - 1
    assert zones.cell[zones.node_cell[corner]] == "g2_1"
    assert len(zones_for(GridSpace(2, 2, 500.0, 10.0), cell_m=1000.0)) == 1


def test_grid_space_squares_not_dividing_the_extent():
    """Squares that do not divide the extent still hold every node once."""
    space = GridSpace(7, 5, 130.0, 8.0)  # 650 m x 910 m in 300 m squares: 3 x 4
    zones = zones_for(space, cell_m=300.0)
    assert len(zones) == 12
    assert_zones_valid(zones, space.n_nodes)
    assert_squares_contain_nodes(zones, space.node_xy, space.bounds)
    assert_squares_neighbours_exact(zones)
    assert zones.count(np.arange(space.n_nodes)).sum() == space.n_nodes


def test_plane_with_holes_and_isolated_cells():
    """On a plane only occupied squares exist; an isolated one has no neighbours."""
    space = PlaneSpace(side_m=5000.0, speed_mps=10.0)
    rng = np.random.default_rng(4)
    cluster = rng.uniform(0.0, 1800.0, size=(300, 2))
    lonely = np.array([[4900.0, 4900.0], [4900.0, 10.0], [5000.0, 5000.0]])
    space.locate(np.concatenate([cluster, lonely]))
    zones = zones_for(space, cell_m=500.0)
    assert_zones_valid(zones, space.n_nodes)
    assert_squares_contain_nodes(zones, space.node_xy, space.bounds)
    assert_squares_neighbours_exact(zones)
    assert zones.cell[zones.rows_of(np.array([300, 301, 302]))].tolist() == ["g9_9", "g9_0", "g9_9"]
    assert zones.neighbours(int(zones.node_cell[301])).size == 0
    # Determinism: the same nodes give the same zones.
    again = zones_for(space, cell_m=500.0)
    for name in ("cell", "node_cell", "neighbour_ptr", "neighbour_idx"):
        assert np.array_equal(getattr(zones, name), getattr(again, name))
    # A node located afterwards is not silently given a cell.
    space.locate(np.array([[10.0, 10.0]]))
    with pytest.raises(IndexError, match="build the zones after every node exists"):
        zones.rows_of(np.array([space.n_nodes - 1]))
    assert zones_for(space, cell_m=500.0).n_nodes == space.n_nodes


@pytest.mark.parametrize("side_m, cell_m", [(1.0, 1000.0), (5000.0, 700.0), (3000.0, 150.0)])
def test_square_ids_are_those_of_each_node_sorted_as_strings(side_m: float, cell_m: float):
    """Each node's cell is the square ``g{ix}_{iy}`` it lies in, and the cells are sorted as
    strings ("g10_0" before "g2_0"), however many nodes share a square."""
    plane = PlaneSpace(side_m=side_m)
    plane.locate(np.random.default_rng(4).uniform(0.0, side_m, size=(3000, 2)))
    z = zones_for(plane, cell_m=cell_m)
    ix, iy = np.floor(np.asarray(plane.node_xy) / cell_m).astype(int).T
    names = [f"g{a}_{b}" for a, b in zip(ix.tolist(), iy.tolist(), strict=True)]
    assert list(z.cell) == sorted(set(names))
    assert [z.cell[c] for c in z.node_cell] == names
    assert z.node_cell.dtype == np.int64


def test_empty_plane():
    """A plane with no nodes has no zones."""
    zones = zones_for(PlaneSpace(100.0, 1.0))
    assert len(zones) == 0 and zones.neighbour_ptr.tolist() == [0]
    assert zones.count(np.zeros(0, dtype=np.int64)).tolist() == []


def test_bad_parameters():
    """A bad cell size or H3 resolution is refused naming the parameter."""
    space = GridSpace(2, 2, 100.0, 10.0)
    for bad in (0.0, -5.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="cell_m"):
            zones_for(space, cell_m=bad)
    for bad in (-1, 16, 8.0, True):
        with pytest.raises(ValueError, match="h3_resolution"):
            zones_for(space, h3_resolution=bad)


def test_zones_validation():
    """The Zones type refuses unsorted cells, out-of-range rows and broken neighbour lists."""
    good = dict(
        cell=np.array(["a", "b"], dtype=object),
        node_cell=[0, 1, 1],
        neighbour_ptr=[0, 1, 2],
        neighbour_idx=[1, 0],
        scheme="grid",
        cell_m=1.0,
    )
    Zones(**good)
    for change, message in (
        ({"cell": np.array(["b", "a"], dtype=object)}, "strictly increasing"),
        ({"node_cell": [0, 2]}, r"node_cell: rows must be in \[0, 2\)"),
        ({"neighbour_ptr": [0, 2]}, "expected 3"),
        ({"neighbour_idx": [1, 3]}, "neighbour_idx"),
        ({"scheme": "s2"}, "scheme"),
    ):
        with pytest.raises(ValueError, match=message):
            Zones(**{**good, **change})


class FakeCity:
    """A geographic space without travel times: random nodes around a (lon, lat) centre."""

    def __init__(
        self, n: int, seed: int, lon0: float = 9.19, lat0: float = 45.46, half_m: float = 8000.0
    ) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.node_xy = np.random.default_rng(seed).uniform(-half_m, half_m, size=(n, 2))
        self.n_nodes = n
        self.bounds = (-half_m, -half_m, half_m, half_m)

    def to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        r = 6_371_008.8
        lon = self.lon0 + np.degrees(xy[..., 0] / (r * np.cos(np.radians(self.lat0))))
        lat = self.lat0 + np.degrees(xy[..., 1] / r)
        return np.stack([lon, lat], axis=-1)


def assert_h3_zones_valid(zones: Zones, space, resolution: int) -> None:
    assert zones.scheme == "h3" and zones.resolution == resolution and zones.cell_m is None
    assert_zones_valid(zones, space.n_nodes)
    cells = set(zones.cell.tolist())
    assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == resolution for c in cells)
    # Neighbours: exactly the ring-1 cells that exist.
    for r, c in enumerate(zones.cell.tolist()):
        ring = sorted((set(h3.grid_disk(c, 1)) - {c}) & cells)
        assert zones.cell[zones.neighbours(r)].tolist() == ring
    # Every node lies inside (or on the boundary of) its cell's hexagon.
    lonlat = space.to_lonlat(space.node_xy)
    polygons = {c: Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells}
    for node in range(space.n_nodes):
        poly = polygons[zones.cell[zones.node_cell[node]]]
        assert poly.distance(Point(*lonlat[node])) < 1e-9, node


def test_h3_on_a_geographic_space():
    """A geographic space gets valid H3 cells; a coarser resolution gives fewer."""
    space = FakeCity(3000, seed=1)
    zones = zones_for(space, h3_resolution=8)
    assert_h3_zones_valid(zones, space, 8)
    coarse = zones_for(space, h3_resolution=6)
    assert len(coarse) < len(zones)
    assert_h3_zones_valid(coarse, space, 6)


def test_h3_speed_for_a_large_city():
    """24,000 nodes take well under a second (the budget is 1 s; measured ~0.1 s)."""
    space = FakeCity(24_000, seed=2, half_m=12_000.0)
    start = time.perf_counter()
    zones = zones_for(space)
    elapsed = time.perf_counter() - start
    assert zones.n_nodes == 24_000 and len(zones) > 100
    assert elapsed < 1.0, f"zones_for took {elapsed:.2f} s for 24k nodes"


@pytest.mark.slow
def test_h3_on_campo_grande(cache_dir: Path):
    """Campo Grande's zones agree with H3 on the city's own lon/lat."""
    spec = TypeAdapter(CitySpec).validate_python({"name": "campo_grande"})
    space = load_city(spec, base_dir=Path("."), source="test", cache_dir=cache_dir)
    zones = zones_for(space)
    assert_h3_zones_valid(zones, space, 8)
    assert 100 < len(zones) < 400  # ~190 hexagons of ~0.74 km2 over the city
    # The cells agree with H3 on the city's own lon/lat (not just the planar round trip).
    direct = [h3.latlng_to_cell(lat, lon, 8) for lon, lat in space.node_lonlat[::50].tolist()]
    assert zones.cell[zones.node_cell[::50]].tolist() == direct

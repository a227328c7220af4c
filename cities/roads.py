"""Drivable road graphs from OpenStreetMap extracts, offline.

One reader (pyosmium) handles every format: OSM XML (``.osm``, ``.osm.bz2``, ``.osm.gz``) and
PBF. The steps, all vectorised after the way scan:

1. keep drivable ways (the rules of osmnx's ``network_type="drive"``: public roads from
   motorway to residential, links, living streets and unclassified roads; no service roads,
   no private or motor-vehicle-forbidden ways, no areas), honour one-way rules, and cut ways
   clipped at the extract border into their in-file runs;
2. give every segment a haversine length and a free-flow speed (``maxspeed`` tag, else a
   per-class default);
3. contract chains of degree-2 nodes (osmnx-style simplification: intersections and dead
   ends stay), keeping the full geometry for map drawing;
4. keep the largest strongly connected component, so every trip has a route;
5. project lon/lat to local planar metres (equirectangular about the centroid).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
from osmium.filter import EntityFilter, KeyFilter
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), for haversine lengths and the local projection."""

DEFAULT_SPEEDS_KMH: dict[str, float] = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 60.0,
    "primary_link": 45.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 35.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "road": 30.0,
    "service": 15.0,
}
"""Free-flow speed of each drivable road class when a way has no usable ``maxspeed`` tag.
The keys are also the road classes kept (a whitelist: a mistyped or exotic ``highway`` value
is not a road a car can use). ``service`` roads are kept only on request (osmnx's
``drive_service``), never parking aisles, driveways, alleys or emergency access."""

ROAD_CLASSES: tuple[str, ...] = tuple(DEFAULT_SPEEDS_KMH)

_EXCLUDED_SERVICE = frozenset(
    {"alley", "driveway", "emergency_access", "parking", "parking_aisle", "private"}
)
_NO_ACCESS = frozenset({"private", "no"})
_ALLOW_MOTOR = frozenset({"yes", "permissive", "designated", "destination"})
_ONEWAY_FWD = frozenset({"yes", "true", "1"})
_ONEWAY_BWD = frozenset({"-1", "reverse"})
_TWO_WAY = frozenset({"no", "false", "0"})
_SPEED_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|knots|km/h|kmh|kph)?\s*$")
_MPH_KMH = 1.609344
_KNOT_KMH = 1.852


class OsmReadError(Exception):
    """The file could not be read as OSM data (the loader turns this into an InputError)."""


class NoRoadsError(Exception):
    """The file holds no drivable roads (the loader turns this into an InputError)."""


def parse_maxspeed(value: str | None, default_kmh: float) -> float:
    """Speed in km/h from an OSM ``maxspeed`` value, else ``default_kmh``.

    Numbers in km/h, ``mph`` or ``knots``; a list (``"50;30"``) gives its lowest value, the
    safe reading of a limit that varies along the way. Zone codes (``IT:urban``), ``none``,
    ``signals``, ``walk`` and implausible numbers fall back to the class default: they say
    nothing a free-flow model can use.
    """
    if not value:
        return default_kmh
    speeds = []
    for part in value.split(";"):
        m = _SPEED_NUMBER.match(part)
        if m is None:
            continue
        kmh = float(m.group(1))
        if m.group(2) == "mph":
            kmh *= _MPH_KMH
        elif m.group(2) == "knots":
            kmh *= _KNOT_KMH
        if 5.0 <= kmh <= 200.0:
            speeds.append(kmh)
    return min(speeds) if speeds else default_kmh


def _direction(tags: osmium.osm.TagList, highway: str) -> int | None:
    """+1 forward only, -1 backward only, 0 both ways, None for ways cars cannot use."""
    oneway = tags.get("oneway")
    if oneway is not None:
        oneway = oneway.strip().lower()
        if oneway in _ONEWAY_FWD:
            return 1
        if oneway in _ONEWAY_BWD:
            return -1
        if oneway in _TWO_WAY:
            return 0
        if oneway in ("reversible", "alternating"):
            # Direction changes with the time of day: no static table can use it safely.
            return None
    # Implied one-way roads (OSM conventions): roundabouts and motorways.
    if tags.get("junction") in ("roundabout", "circular") or highway == "motorway":
        return 1
    return 0


def _drivable(tags: osmium.osm.TagList, service: bool) -> str | None:
    """The road class of a way cars may drive on, else None."""
    highway = tags.get("highway")
    if highway not in DEFAULT_SPEEDS_KMH or (highway == "service" and not service):
        return None
    if tags.get("area") == "yes":
        return None
    motor = tags.get("motorcar", tags.get("motor_vehicle"))
    if motor == "no":
        return None
    if tags.get("access") in _NO_ACCESS and motor not in _ALLOW_MOTOR:
        return None
    if tags.get("service") in _EXCLUDED_SERVICE:
        return None
    return highway


@dataclass(frozen=True)
class RawWays:
    """Node runs of the drivable ways: ``ref``/``lon``/``lat`` per node, ``run`` per node
    (which run it belongs to), and per run its speed (km/h) and direction (+1/-1/0)."""

    ref: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    run: np.ndarray
    speed_kmh: np.ndarray
    direction: np.ndarray
    n_ways: int
    n_clipped: int


def read_ways(
    path: Path, speeds_kmh: dict[str, float] | None = None, *, service_roads: bool = False
) -> RawWays:
    """Scan the drivable ways of an OSM file. Raises :class:`OsmReadError` when unreadable.

    ``service_roads`` adds ``highway=service`` (osmnx ``drive_service``); by default they are
    left out like osmnx ``drive``: they multiply nodes (and the n^2 table) for little routing.
    """
    defaults = {**DEFAULT_SPEEDS_KMH, **(speeds_kmh or {})}
    refs: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    run_len: list[int] = []
    run_speed: list[float] = []
    run_dir: list[int] = []
    n_ways = n_clipped = 0
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations()
        # Only ways reach Python: nodes feed the location index inside libosmium.
        .with_filter(EntityFilter(osmium.osm.WAY))
        .with_filter(KeyFilter("highway"))
    )
    try:
        for way in processor:
            tags = way.tags
            highway = _drivable(tags, service_roads)
            if highway is None:
                continue
            direction = _direction(tags, highway)
            if direction is None:
                continue
            speed = parse_maxspeed(tags.get("maxspeed"), defaults[highway])
            n_ways += 1
            clipped = False
            length = 0
            for node in way.nodes:
                loc = node.location
                if not loc.valid():
                    # A node outside the extract: close the current run; keep in-file runs.
                    clipped = True
                    if length:
                        _close_run(
                            length, refs, lons, lats, run_len, run_speed, run_dir, speed, direction
                        )
                        length = 0
                    continue
                refs.append(node.ref)
                lons.append(loc.lon)
                lats.append(loc.lat)
                length += 1
            if length:
                _close_run(length, refs, lons, lats, run_len, run_speed, run_dir, speed, direction)
            n_clipped += clipped
    except RuntimeError as exc:  # libosmium reports parse errors as RuntimeError
        raise OsmReadError(_short(str(exc))) from None
    run_len_arr = np.asarray(run_len, dtype=np.int64)
    return RawWays(
        ref=np.asarray(refs, dtype=np.int64),
        lon=np.asarray(lons, dtype=np.float64),
        lat=np.asarray(lats, dtype=np.float64),
        run=np.repeat(np.arange(run_len_arr.size, dtype=np.int64), run_len_arr),
        speed_kmh=np.asarray(run_speed, dtype=np.float64),
        direction=np.asarray(run_dir, dtype=np.int8),
        n_ways=n_ways,
        n_clipped=n_clipped,
    )


def _close_run(
    length: int,
    refs: list[int],
    lons: list[float],
    lats: list[float],
    run_len: list[int],
    run_speed: list[float],
    run_dir: list[int],
    speed: float,
    direction: int,
) -> None:
    if length < 2:
        # A single in-file node is no road segment.
        del refs[-length:], lons[-length:], lats[-length:]
        return
    run_len.append(length)
    run_speed.append(speed)
    run_dir.append(direction)


def _short(msg: str, limit: int = 160) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


@dataclass(frozen=True)
class RoadGraph:
    """The contracted, strongly connected drive graph.

    Access nodes ``0..n-1`` (sorted by OSM id, so ids are stable across runs), directed edges
    ``src -> dst`` with free-flow ``time_s`` and ``length_m``, and ``segments``: the kept road
    geometry as (m, 2, 2) lon/lat pairs for map drawing.
    """

    osm_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    time_s: np.ndarray
    length_m: np.ndarray
    speed_mps_max: float
    segments_lonlat: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.osm_id.size)

    def csr(self) -> csr_matrix:
        """Travel-time adjacency matrix (seconds) for scipy.sparse.csgraph."""
        n = self.n_nodes
        return csr_matrix((self.time_s, (self.src, self.dst)), shape=(n, n))


def build_graph(raw: RawWays) -> RoadGraph:
    """Segments -> contracted graph -> largest strongly connected component.

    Raises :class:`NoRoadsError` when nothing drivable remains.
    """
    if raw.ref.size < 2:
        raise NoRoadsError("no drivable ways")
    ids, node = np.unique(raw.ref, return_inverse=True)
    lon = np.empty(ids.size)
    lat = np.empty(ids.size)
    lon[node] = raw.lon
    lat[node] = raw.lat

    # Consecutive nodes of one run form a segment.
    same = raw.run[1:] == raw.run[:-1]
    a, b = node[:-1][same], node[1:][same]
    seg_run = raw.run[:-1][same]
    speed_mps = raw.speed_kmh[seg_run] / 3.6
    direction = raw.direction[seg_run]
    length = haversine_m(lon[a], lat[a], lon[b], lat[b])
    fwd, bwd = direction >= 0, direction <= 0
    u = np.concatenate([a[fwd], b[bwd]])
    v = np.concatenate([b[fwd], a[bwd]])
    ln = np.concatenate([length[fwd], length[bwd]])
    sp = np.concatenate([speed_mps[fwd], speed_mps[bwd]])
    keep = u != v  # repeated refs in a way make zero-length self-loops
    u, v, ln, sp = u[keep], v[keep], ln[keep], sp[keep]
    u, v, ln, t = _dedupe_min(u, v, ln, ln / sp)
    if u.size == 0:
        raise NoRoadsError("no drivable road segments")

    n = ids.size
    cu, cv, ct, cl, seg_keep = _contract(n, u, v, t, ln)

    # Largest strongly connected component of the contracted graph.
    if cu.size == 0:
        raise NoRoadsError("no drivable road segments")
    adj = csr_matrix((np.ones(cu.size), (cu, cv)), shape=(n, n))
    _, labels = connected_components(adj, directed=True, connection="strong")
    endpoints = np.zeros(n, dtype=bool)
    endpoints[cu] = True
    endpoints[cv] = True
    counts = np.bincount(labels[endpoints], minlength=labels.max() + 1)
    giant = labels == int(np.argmax(counts))
    in_graph = giant & endpoints
    if in_graph.sum() < 2:
        raise NoRoadsError("no two road nodes connected both ways")
    e_keep = in_graph[cu] & in_graph[cv]
    new_id = np.cumsum(in_graph) - 1
    src, dst = new_id[cu[e_keep]], new_id[cv[e_keep]]

    # Geometry: every original segment whose contracted edge survived, one line per road.
    su, sv = u[seg_keep[0]], v[seg_keep[0]]
    alive = e_keep[seg_keep[1]]
    su, sv = su[alive], sv[alive]
    # The fastest road actually driven (a contracted edge only knows its average speed).
    # Zero-length segments (distinct nodes at one position) take no time and have no speed.
    kept_seg = seg_keep[0][alive]
    kept_seg = kept_seg[t[kept_seg] > 0]
    speed_max = float(np.max(ln[kept_seg] / t[kept_seg]))
    lo, hi = np.minimum(su, sv), np.maximum(su, sv)
    pairs = np.unique(lo * n + hi)
    lo, hi = pairs // n, pairs % n
    segments = np.stack(
        [np.stack([lon[lo], lat[lo]], axis=1), np.stack([lon[hi], lat[hi]], axis=1)], axis=1
    )
    time_s = ct[e_keep]
    length_m = cl[e_keep]
    return RoadGraph(
        osm_id=ids[in_graph],
        lon=lon[in_graph],
        lat=lat[in_graph],
        src=src,
        dst=dst,
        time_s=time_s,
        length_m=length_m,
        speed_mps_max=speed_max,
        segments_lonlat=segments,
    )


def _dedupe_min(
    u: np.ndarray, v: np.ndarray, length: np.ndarray, time_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One edge per (u, v): the fastest (two ways sharing a stretch, or parallel chains)."""
    order = np.lexsort((time_s, v, u))
    u, v, length, time_s = u[order], v[order], length[order], time_s[order]
    first = np.ones(u.size, dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return u[first], v[first], length[first], time_s[first]


def _contract(
    n: int, u: np.ndarray, v: np.ndarray, t: np.ndarray, ln: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Merge chains through degree-2 nodes into single edges (osmnx's endpoint rules).

    A node stays when it has no in- or no out-edge, or when it does not have exactly two
    neighbours with 2 (one-way through) or 4 (two-way through) incident edges. Chains are
    followed by pointer doubling, so the work is O(E log L) array operations for chains of
    length L, not a Python walk.

    Returns contracted (src, dst, time, length) and, for the geometry, the pair
    (original edge ids, contracted edge id of each).
    """
    m = u.size
    indeg = np.bincount(v, minlength=n)
    outdeg = np.bincount(u, minlength=n)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    und = np.unique(lo * n + hi)
    nbrs = np.bincount(und // n, minlength=n) + np.bincount(und % n, minlength=n)
    deg = indeg + outdeg
    through = (indeg > 0) & (outdeg > 0) & (nbrs == 2) & ((deg == 2) | (deg == 4))
    stay = ~through

    # Edges are sorted by (u, v): out-edges of node x are rows start[x]:start[x+1].
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(outdeg, out=start[1:])
    # next edge after e = (a, x) when x is a through node: the out-edge of x not going back to a.
    nxt = np.full(m, -1, dtype=np.int64)
    mid = ~stay[v]
    e = np.flatnonzero(mid)
    x = v[e]
    first = start[x]
    second = np.minimum(first + 1, start[x + 1] - 1)
    nxt[e] = np.where(v[first] != u[e], first, second)

    # Pointer doubling: total time/length to the chain's end and the end edge.
    acc_t, acc_l = t.copy(), ln.copy()
    last = np.arange(m, dtype=np.int64)
    jump = nxt.copy()
    for _ in range(int(math.ceil(math.log2(max(m, 2)))) + 1):
        live = np.flatnonzero(jump >= 0)
        if live.size == 0:
            break
        j = jump[live]
        acc_t[live] += acc_t[j]
        acc_l[live] += acc_l[j]
        last[live] = last[j]
        jump[live] = jump[j]
    # Chains that never reach a staying node are isolated loops of through nodes: dropped
    # (they cannot belong to the largest strongly connected component).
    heads = np.flatnonzero(stay[u] & (jump < 0))
    cu, cv = u[heads], v[last[heads]]
    ct, cl = acc_t[heads], acc_l[heads]

    # Contracted edge of each original edge, by following nxt from each head (doubling again,
    # now propagating the head id forwards along the chain).
    owner = np.full(m, -1, dtype=np.int64)
    owner[heads] = np.arange(heads.size)
    frontier = heads
    while frontier.size:
        step = nxt[frontier]
        ok = step >= 0
        owner[step[ok]] = owner[frontier[ok]]
        frontier = step[ok]
    # A chain back to where it started never shortens a route.
    keep = cu != cv
    remap = np.full(heads.size, -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    cu, cv, ct, cl, twin = _dedupe_keep_index(cu[keep], cv[keep], ct[keep], cl[keep])
    # Original edges -> contracted edge; a slower parallel chain keeps its geometry (it is
    # a road) under the id of its faster twin.
    seg_ids = np.flatnonzero(owner >= 0)
    seg_owner = remap[owner[seg_ids]]
    ok = seg_owner >= 0
    return cu, cv, ct, cl, (seg_ids[ok], twin[seg_owner[ok]])


def _dedupe_keep_index(
    u: np.ndarray, v: np.ndarray, t: np.ndarray, ln: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`_dedupe_min`, also returning for each input edge the id of its kept twin."""
    order = np.lexsort((t, v, u))
    us, vs = u[order], v[order]
    first = np.ones(u.size, dtype=bool)
    first[1:] = (us[1:] != us[:-1]) | (vs[1:] != vs[:-1])
    group = np.cumsum(first) - 1
    twin = np.empty(u.size, dtype=np.int64)
    twin[order] = group
    sel = order[first]
    return u[sel], v[sel], t[sel], ln[sel], twin


def load_road_graph(
    path: Path, speeds_kmh: dict[str, float] | None = None, *, service_roads: bool = False
) -> RoadGraph:
    """Read an OSM file and build its strongly connected, contracted drive graph."""
    return build_graph(read_ways(path, speeds_kmh, service_roads=service_roads))

"""A real road network as a :class:`~cities.space.Space`: access nodes and a travel-time table.

Building a city (parse OSM, contract, all-pairs Dijkstra) is done once per input file and
parameters; the result is cached on disk under a content hash, and later loads memory-map the
table (``np.load(mmap_mode="r")``), so a cached Milan opens in well under a second and only the
table pages the simulation touches are ever read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cities.roads import DEFAULT_SPEEDS_KMH, EARTH_RADIUS_M, RoadGraph, load_road_graph
from cities.tables import RowProgress, build_table

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

FORMAT_VERSION = 1
"""Bump when the parsing rules, contraction or cache layout change: old caches are ignored."""


def default_cache_dir() -> Path:
    """``$RIDESIM_CACHE`` if set, else ``~/.cache/ridesim``."""
    env = os.environ.get("RIDESIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ridesim"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(source_sha256: str, speeds_kmh: dict[str, float], service_roads: bool) -> str:
    """Hash of everything a city's graph and table depend on."""
    material = {
        "format": FORMAT_VERSION,
        "source_sha256": source_sha256,
        # The defaults are part of the key so that changing one invalidates old tables.
        "speeds_kmh": {**DEFAULT_SPEEDS_KMH, **speeds_kmh},
        "service_roads": service_roads,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass(eq=False)  # identity equality: comparing 2 GB tables element-wise is never meant
class GraphSpace:
    """Access nodes of a road network and the free-flow travel times between them.

    Node ``i`` is the ``i``-th node of the strongly connected drive graph in OSM id order.
    ``table[i, j]`` is the fastest free-flow drive from ``i`` to ``j`` in seconds.
    """

    name: str
    node_lonlat: np.ndarray
    """(n, 2) float64 lon/lat of the access nodes."""
    osm_id: np.ndarray
    """(n,) int64 OpenStreetMap node ids."""
    table: np.ndarray
    """(n, n) float32 seconds, usually a read-only memory map."""
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_time_s: np.ndarray
    edge_length_m: np.ndarray
    segments_lonlat: np.ndarray
    """(m, 2, 2) lon/lat of the road geometry kept (for maps)."""
    road_speed_mps: float
    """The fastest road's free-flow speed."""
    content_hash: str
    source_sha256: str
    source_path: Path
    from_cache: bool = False
    """True when the graph and table were read from the cache, not computed."""
    origin: tuple[float, float] = field(init=False)
    _xy: np.ndarray = field(init=False, repr=False)
    _tree: cKDTree | None = field(default=None, init=False, repr=False)
    _zone_bounds: dict[float, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )
    _into: np.ndarray | None = field(default=None, init=False, repr=False)
    _rows: np.ndarray = field(init=False, repr=False)
    """The table as a plain ndarray over the same memory (no copy): numpy's memmap subclass
    wraps every index in Python (4-10x the cost of a small gather, ~13,000 per default run)."""

    def __post_init__(self) -> None:
        lon, lat = self.node_lonlat[:, 0], self.node_lonlat[:, 1]
        self.origin = (float(lon.mean()), float(lat.mean()))
        self._xy = self.to_xy(lon, lat)
        self._rows = np.asarray(self.table)
        self._xy.flags.writeable = False

    # -- Space protocol ------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return int(self.osm_id.size)

    @property
    def node_xy(self) -> np.ndarray:
        return self._xy

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        lo, hi = self._xy.min(axis=0), self._xy.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @property
    def max_speed_mps(self) -> float:
        # The planar projection stretches east-west distances away from the origin's latitude
        # by cos(lat0)/cos(lat); scale the bound so that straight-line planar distance over it
        # never exceeds a real travel time.
        lat0 = np.radians(self.origin[1])
        stretch = np.max(np.cos(lat0) / np.cos(np.radians(self.node_lonlat[:, 1])))
        return self.road_speed_mps * max(1.0, float(stretch)) * (1 + 1e-4)

    def travel_time(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Free-flow seconds from ``src`` to ``dst`` (broadcast node id arrays): a table gather."""
        src = np.asarray(src, dtype=np.intp)
        dst = np.asarray(dst, dtype=np.intp)
        return np.asarray(self._rows[src, dst], dtype=np.float64)

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """The nearest access node of each (m, 2) planar point."""
        if self._tree is None:
            # deferred: scipy.spatial costs ~0.2 s to import; runs that never locate a point skip it
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self._xy)
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return self._tree.query(xy)[1].astype(np.int64)

    def sample_points(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Planar positions of ``n`` access nodes drawn uniformly (with replacement)."""
        return self._xy[rng.integers(0, self.n_nodes, size=n)]

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Local planar metres (equirectangular about the nodes' centroid)."""
        lon0, lat0 = self.origin
        x = (
            np.radians(np.asarray(lon, dtype=np.float64) - lon0)
            * EARTH_RADIUS_M
            * np.cos(np.radians(lat0))
        )
        y = np.radians(np.asarray(lat, dtype=np.float64) - lat0) * EARTH_RADIUS_M
        return np.stack([x, y], axis=-1)

    def to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        """Lon/lat of (m, 2) planar points (the inverse of :meth:`to_xy`)."""
        xy = np.asarray(xy, dtype=np.float64)
        lon0, lat0 = self.origin
        lon = lon0 + np.degrees(xy[..., 0] / (EARTH_RADIUS_M * np.cos(np.radians(lat0))))
        lat = lat0 + np.degrees(xy[..., 1] / EARTH_RADIUS_M)
        return np.stack([lon, lat], axis=-1)

    # -- for candidate search ----------------------------------------------------------
    def table_into(self) -> np.ndarray:
        """The table transposed, ``into[v, u] = table[u, v]``: every travel time *into* node
        ``v`` is one contiguous row, so "many drivers to one pickup" reads one row instead
        of one value per table row. Built once per cached city (written beside the table as
        ``table_into.npy`` and memory-mapped, a block of rows at a time), else in memory."""
        if self._into is None:
            filename = getattr(self.table, "filename", None)
            if filename is None:
                self._into = np.ascontiguousarray(self.table.T)
            else:
                path = Path(filename).with_name("table_into.npy")
                if not path.is_file():
                    _write_transposed(self.table, path)
                self._into = np.asarray(np.load(path, mmap_mode="r"))  # as _rows
        return self._into

    def travel_time_into(self, dst: int, src: np.ndarray) -> np.ndarray:
        """Free-flow seconds from each node of ``src`` to the one node ``dst``: the same
        values as ``travel_time(src, dst)``, read from one row of :meth:`table_into`."""
        row = self.table_into()[int(dst)]
        return np.asarray(row[np.asarray(src, dtype=np.intp)], dtype=np.float64)

    def zone_bounds(self, cell_m: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
        """Square zones of ``cell_m`` metres over the nodes, and lower bounds on travel time
        into every node from each zone: ``(node_zone, into_node_s)`` with ``node_zone`` (n,)
        int64 and ``into_node_s[v, z] = min(table[u, v] for u in zone z)`` (n, n_zones)
        float32, so one destination's bounds are one contiguous row.

        Reads the whole table once (a few seconds on Milan; a tenth of a second of every run
        on Campo Grande), then kept for this space's life, and for a cached city written
        beside its table (``zone_bounds.<cell_m>m.npz``) for later loads to read instead.
        The bounds are exact minima of the table's own float32 values, so a travel time
        computed as ``table[u, v] * factor`` is never below ``into_node_s[v, z] * factor``.
        """
        if not (np.isfinite(cell_m) and cell_m > 0):
            raise ValueError(f"zone_bounds: cell_m must be a finite number > 0, got {cell_m}")
        key = float(cell_m)
        filename = getattr(self.table, "filename", None)
        path = None if filename is None else Path(filename).with_name(f"zone_bounds.{key!r}m.npz")
        if key not in self._zone_bounds and path is not None:
            saved = _read_zone_bounds(path, self.n_nodes)
            if saved is not None:
                self._zone_bounds[key] = saved
        if key not in self._zone_bounds:
            xy = self._xy
            ij = np.floor((xy - xy.min(axis=0)) / key).astype(np.int64)
            _, node_zone = np.unique(
                ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1], return_inverse=True
            )
            node_zone = node_zone.astype(np.int64).ravel()
            n_zones = int(node_zone.max()) + 1 if node_zone.size else 0
            into = np.empty((self.n_nodes, n_zones), dtype=np.float32)
            members = np.argsort(node_zone, kind="stable")
            ptr = np.searchsorted(node_zone[members], np.arange(n_zones + 1))
            for z in range(n_zones):
                # Rows of one zone, in node order: a few contiguous reads of the table each.
                rows = members[ptr[z] : ptr[z + 1]]
                into[:, z] = self._rows[rows].min(axis=0)
            node_zone.flags.writeable = False
            into.flags.writeable = False
            self._zone_bounds[key] = (node_zone, into)
            if path is not None:
                _write_zone_bounds(path, node_zone, into)
        return self._zone_bounds[key]

    # -- for maps ------------------------------------------------------------------------
    def road_segments(self) -> np.ndarray:
        """(m, 2, 2) planar endpoints of the road segments kept, for drawing."""
        seg = self.segments_lonlat
        return self.to_xy(seg[..., 0], seg[..., 1])


def _read_zone_bounds(path: Path, n_nodes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Zone bounds saved by :func:`_write_zone_bounds`, or None when absent or unusable."""
    try:
        with np.load(path) as z:
            node_zone, into = z["node_zone"], z["into_node_s"]
    except (OSError, KeyError, ValueError):
        return None
    if node_zone.shape != (n_nodes,) or into.ndim != 2 or into.shape[0] != n_nodes:
        return None
    node_zone.flags.writeable = False
    into.flags.writeable = False
    return node_zone, into


def _write_zone_bounds(path: Path, node_zone: np.ndarray, into: np.ndarray) -> None:
    """Save zone bounds beside the table, under a temporary name renamed once complete; a
    cache that cannot be written (read-only, full) only means they are computed again."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp.npz")
    try:
        with tmp.open("wb") as f:
            np.savez(f, node_zone=node_zone, into_node_s=into)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _write_transposed(table: np.ndarray, path: Path, block: int = 2048) -> None:
    """``table.T`` to the ``.npy`` file ``path``, written under a temporary name and renamed
    (another process may be building the same file: the last complete one wins)."""
    n = table.shape[0]
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp.npy")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=table.dtype, shape=(n, n))
        for lo in range(0, n, block):
            # A block of source rows, read contiguously, lands as a block of columns.
            out[:, lo : lo + block] = np.asarray(table[lo : lo + block]).T
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_graph_space(
    path: Path,
    *,
    name: str,
    speeds_kmh: dict[str, float] | None = None,
    service_roads: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: RowProgress | None = None,
) -> GraphSpace:
    """The road-network space of an OSM file, from the cache when possible.

    ``progress(rows_done, rows_total)`` follows the travel-time table's build; a cached load
    builds nothing and never calls it.

    Raises :class:`cities.roads.OsmReadError` / :class:`cities.roads.NoRoadsError` for bad
    input and ``OSError`` when the cache cannot be written.
    """
    speeds = dict(speeds_kmh or {})
    sha = file_sha256(path)
    key = cache_key(sha, speeds, service_roads)
    folder = (cache_dir or default_cache_dir()) / "cities" / key
    graph_file, table_file = folder / "graph.npz", folder / "table.npy"

    cached = _read_cache(graph_file, table_file)
    if cached is not None:
        graph, table = cached
        _touch(folder)
        return _space(name, graph, table, key, sha, path, from_cache=True)

    graph = load_road_graph(path, speeds, service_roads=service_roads)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    n = graph.n_nodes
    need = table_bytes(n)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise OSError(
            errno.ENOSPC,
            f"the travel-time table of {n:,} nodes needs {need / 1e9:.2f} GB (4 x nodes^2 "
            f"bytes) but {folder} has {free / 1e9:.2f} GB free",
        )
    tmp = f".{os.getpid()}.{uuid.uuid4().hex}.tmp"
    table_tmp = folder / f"table{tmp}.npy"
    try:
        build_table(graph.csr(), table_tmp, workers=workers, progress=progress)
        os.replace(table_tmp, table_file)
    finally:
        table_tmp.unlink(missing_ok=True)
    _write_entry(
        folder, name=name, path=path, sha=sha, speeds=speeds, service_roads=service_roads, n_nodes=n
    )
    # graph.npz is written last: its presence marks a complete cache entry.
    _write_npz(graph_file, folder / f"graph{tmp}.npz", graph)
    table = np.load(table_file, mmap_mode="r")
    return _space(name, graph, table, key, sha, path, from_cache=False)


ENTRY_FILE = "entry.json"
"""What a cache entry is (city, source file, speeds, nodes), for ``ridesim cache list``."""

_TMP_PID = re.compile(r"\.(\d+)\.[0-9a-f]{32}\.tmp")


def table_bytes(n_nodes: int) -> int:
    """Bytes of a travel-time table: 4 x nodes^2 (float32) plus the .npy header."""
    return 4 * n_nodes * n_nodes + 128


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries (``table.<pid>.<uuid>.tmp.npy`` and its ``.graph.npz``,
    ``graph.<pid>.<uuid>.tmp.npz``) of builds whose process is gone; returns what was removed.
    A live build's files are kept (its pid still runs)."""
    removed = []
    for p in sorted(folder.glob("*.tmp*")):
        m = _TMP_PID.search(p.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _touch(folder: Path) -> None:
    """Mark an entry as used now (the cache's size cap removes the least recently used)."""
    try:
        os.utime(folder)
    except OSError:
        pass  # a read-only cache is still usable


def _write_entry(folder: Path, **info: object) -> None:
    text = json.dumps(
        {k: str(v) if isinstance(v, Path) else v for k, v in info.items()},
        indent=2,
        sort_keys=True,
    )
    (folder / ENTRY_FILE).write_text(text + "\n")


def _space(
    name: str, g: RoadGraph, table: np.ndarray, key: str, sha: str, path: Path, *, from_cache: bool
) -> GraphSpace:
    return GraphSpace(
        name=name,
        node_lonlat=np.stack([g.lon, g.lat], axis=1),
        osm_id=g.osm_id,
        table=table,
        edge_src=g.src,
        edge_dst=g.dst,
        edge_time_s=g.time_s,
        edge_length_m=g.length_m,
        segments_lonlat=g.segments_lonlat,
        road_speed_mps=g.speed_mps_max,
        content_hash=key,
        source_sha256=sha,
        source_path=path.resolve(),
        from_cache=from_cache,
    )


_GRAPH_ARRAYS = ("osm_id", "lon", "lat", "src", "dst", "time_s", "length_m", "segments_lonlat")


def _write_npz(final: Path, tmp: Path, g: RoadGraph) -> None:
    arrays = {k: getattr(g, k) for k in _GRAPH_ARRAYS}
    try:
        with tmp.open("wb") as f:
            np.savez(f, speed_mps_max=np.float64(g.speed_mps_max), **arrays)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _read_cache(graph_file: Path, table_file: Path) -> tuple[RoadGraph, np.ndarray] | None:
    """A complete, consistent cache entry, or None (missing or damaged: rebuild)."""
    if not (graph_file.is_file() and table_file.is_file()):
        return None
    try:
        with np.load(graph_file) as z:
            graph = RoadGraph(
                speed_mps_max=float(z["speed_mps_max"]), **{k: z[k] for k in _GRAPH_ARRAYS}
            )
        table = np.load(table_file, mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None
    n = graph.n_nodes
    if table.shape != (n, n) or table.dtype != np.float32:
        return None
    return graph, table

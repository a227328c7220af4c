"""Zones: the cells surge pricing (and supply/demand accounting) works on.

A :class:`Zones` partitions a space's access nodes into cells:

* geographic spaces (``space.to_lonlat`` returns coordinates): H3 cells at one resolution
  (resolution 8 by default: hexagons of about 0.74 km2, edge about 0.53 km);
* synthetic spaces (grid, plane): axis-aligned squares of side ``cell_m`` laid over
  ``space.bounds`` from its lower-left corner, named ``"g{ix}_{iy}"`` (column, row), with the
  8-neighbourhood (squares sharing an edge or a corner) as neighbours.

Only cells holding at least one node exist. Rows follow the sorted cell ids, so the same space
and parameters always give the same rows, and every per-cell array (a
:class:`~matching.surge.SupplyDemandSnapshot`'s columns, multipliers) is aligned with
``Zones.cell``.

Zones are a snapshot of the nodes that exist when :func:`zones_for` is called. A plane adds a
node for every point it locates, so build the zones after everything is located (demand drawn,
fleet placed), which is when the simulator builds them; asking for a node added later raises
``IndexError`` (:meth:`Zones.rows_of`) rather than answering wrongly.
"""

from __future__ import annotations

import math

import h3
import numpy as np

from cities.space import Space
from core.ids import distinct_inverse
from core.zoning import Zones


def zones_for(space: Space, *, h3_resolution: int = 8, cell_m: float = 1000.0) -> Zones:
    """The zones of ``space``'s access nodes as they exist now.

    Geographic spaces get H3 cells at ``h3_resolution`` (0-15); synthetic spaces get squares
    of side ``cell_m`` metres (the other parameter is ignored). See the module docstring.
    """
    if (
        isinstance(h3_resolution, bool)
        or not isinstance(h3_resolution, int | np.integer)
        or not (0 <= h3_resolution <= 15)
    ):
        raise ValueError(f"h3_resolution: expected an integer in 0..15, got {h3_resolution!r}")
    if isinstance(cell_m, bool) or not (
        isinstance(cell_m, int | float) and math.isfinite(cell_m) and cell_m > 0
    ):
        raise ValueError(f"cell_m: expected a positive number of metres, got {cell_m!r}")
    xy = np.asarray(space.node_xy, dtype=np.float64).reshape(-1, 2)
    lonlat = space.to_lonlat(xy)
    if lonlat is not None:
        return _h3_zones(np.asarray(lonlat, dtype=np.float64), int(h3_resolution))
    return _grid_zones(xy, space.bounds, float(cell_m))


def _from_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique cell ids (object array of str) and each node's row."""
    if ids.size == 0:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    cell, node_cell = np.unique(ids, return_inverse=True)
    return cell.astype(object), node_cell.astype(np.int64).ravel()


def _csr(lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.fromiter((a.size for a in lists), dtype=np.int64, count=len(lists))
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    idx = np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, dtype=np.int64)
    return ptr, idx


def _h3_zones(lonlat: np.ndarray, resolution: int) -> Zones:
    to_cell = h3.latlng_to_cell
    lon, lat = lonlat[:, 0].tolist(), lonlat[:, 1].tolist()
    ids = np.array(
        [to_cell(la, lo, resolution) for lo, la in zip(lon, lat, strict=True)], dtype=str
    )
    cell, node_cell = _from_ids(ids)
    # Cell ids of one resolution are fixed-length hex strings: string order is numeric order,
    # and searchsorted over them finds each neighbour's row (or that it does not exist).
    keys = cell.astype(str)
    lists = []
    for c in cell.tolist():
        ring = np.array(sorted(set(h3.grid_disk(c, 1)) - {c}), dtype=str)
        pos = np.searchsorted(keys, ring)
        pos = np.minimum(pos, max(len(keys) - 1, 0))
        lists.append(np.sort(pos[keys[pos] == ring]))
    ptr, idx = _csr(lists)
    return Zones(cell, node_cell, ptr, idx, scheme="h3", resolution=resolution)


def _grid_zones(xy: np.ndarray, bounds: tuple[float, float, float, float], cell_m: float) -> Zones:
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    ix = _square_index(xy[:, 0], xmin, xmax, cell_m)
    iy = _square_index(xy[:, 1], ymin, ymax, cell_m)
    cell, node_cell = _grid_ids(ix, iy)
    # Each cell's (ix, iy), from any one of its nodes.
    first = np.full(len(cell), -1, dtype=np.int64)
    first[node_cell[::-1]] = np.arange(node_cell.size - 1, -1, -1)
    cx, cy = ix[first], iy[first]
    # Look neighbours up by a packed integer key of (ix, iy).
    ox, oy = (int(cx.min()) - 1, int(cy.min()) - 1) if len(cell) else (0, 0)
    height = (int(cy.max()) - oy + 2) if len(cell) else 1
    key = (cx - ox) * height + (cy - oy)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    lists = []
    offsets = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]
    off = np.array(offsets, dtype=np.int64)
    for r in range(len(cell)):
        want = (cx[r] + off[:, 0] - ox) * height + (cy[r] + off[:, 1] - oy)
        pos = np.minimum(np.searchsorted(sorted_key, want), len(sorted_key) - 1)
        hit = sorted_key[pos] == want
        lists.append(np.sort(order[pos[hit]]))
    ptr, idx = _csr(lists)
    return Zones(cell, node_cell, ptr, idx, scheme="grid", cell_m=cell_m)


def _grid_ids(ix: np.ndarray, iy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_from_ids` of the ids ``g{ix}_{iy}``, each written once per distinct square
    rather than once per node (a plane run adds two nodes per request)."""
    if ix.size == 0:
        return _from_ids(np.zeros(0, dtype=str))
    lo_x, lo_y = int(ix.min()), int(iy.min())
    height = int(iy.max()) - lo_y + 1
    squares, node_square = distinct_inverse((ix - lo_x) * height + (iy - lo_y))
    names = np.array(
        [f"g{a + lo_x}_{b + lo_y}" for a, b in zip(*np.divmod(squares, height), strict=True)],
        dtype=str,
    )
    # np.unique on the per-node strings sorts them as strings: the same order here.
    order = np.argsort(names, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return names[order].astype(object), rank[node_square].astype(np.int64)


def _square_index(v: np.ndarray, lo: float, hi: float, cell_m: float) -> np.ndarray:
    """Square index along one axis: ``floor((v - lo) / cell_m)``, except that a point on the
    far edge of the bounds belongs to the last square inside them (not a square of its own)."""
    i = np.floor((v - lo) / cell_m).astype(np.int64)
    last = max(math.ceil((hi - lo) / cell_m), 1) - 1
    edge = (i == last + 1) & (v <= hi)
    i[edge] = last
    return i


def square_bounds(
    zones: Zones, row: int, bounds: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a ``grid`` scheme cell, for the ``bounds`` it was laid over."""
    if zones.scheme != "grid" or zones.cell_m is None:
        raise ValueError("square_bounds: only for zones of the grid scheme")
    ix, iy = (int(p) for p in str(zones.cell[row])[1:].split("_"))
    x0, y0 = bounds[0] + ix * zones.cell_m, bounds[1] + iy * zones.cell_m
    return x0, y0, x0 + zones.cell_m, y0 + zones.cell_m

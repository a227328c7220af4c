"""Zones as a data type: the cells that surge pricing, supply/demand accounting and reports
work on (how they are computed for a space: :mod:`cities.zones`).

A :class:`Zones` partitions a space's access nodes into cells, one row per cell sorted by cell
id, so every per-cell array (a :class:`~matching.surge.SupplyDemandSnapshot`'s columns,
multipliers) is aligned with ``Zones.cell``. A run computes its zoning once and writes each
node's cell to ``nodes.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMES = ("h3", "grid")


def _frozen(values: Any, dtype: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype).view()
    if arr.ndim != 1:
        raise ValueError(f"Zones.{name}: expected a 1-d array, got shape {arr.shape}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Zones:
    """Cells over a space's access nodes, one row per cell, sorted by cell id.

    ``node_cell[i]`` is the row of node ``i``'s cell. ``neighbour_idx[neighbour_ptr[r]:
    neighbour_ptr[r + 1]]`` are the rows of cell ``r``'s ring-1 neighbours that exist, sorted
    (compressed sparse rows; never ``r`` itself; symmetric). ``resolution`` is the H3
    resolution (``None`` for squares), ``cell_m`` the square side in metres (``None`` for H3).
    """

    cell: np.ndarray
    node_cell: np.ndarray
    neighbour_ptr: np.ndarray
    neighbour_idx: np.ndarray
    scheme: str
    resolution: int | None = None
    cell_m: float | None = None

    def __post_init__(self) -> None:
        cell = _frozen(self.cell, object, "cell")
        node_cell = _frozen(self.node_cell, np.int64, "node_cell")
        ptr = _frozen(self.neighbour_ptr, np.int64, "neighbour_ptr")
        idx = _frozen(self.neighbour_idx, np.int64, "neighbour_idx")
        n = cell.shape[0]
        if self.scheme not in SCHEMES:
            raise ValueError(f"Zones.scheme: expected one of {SCHEMES}, got {self.scheme!r}")
        if not all(isinstance(c, str) for c in cell.tolist()):
            raise ValueError("Zones.cell: expected str cell ids")
        if n > 1 and not bool(np.all(cell[1:] > cell[:-1])):
            raise ValueError("Zones.cell: must be strictly increasing (sorted, unique)")
        if node_cell.size and (node_cell.min() < 0 or node_cell.max() >= n):
            raise ValueError(f"Zones.node_cell: rows must be in [0, {n})")
        check_csr(ptr, idx, n, "Zones")
        for name, arr in (
            ("cell", cell),
            ("node_cell", node_cell),
            ("neighbour_ptr", ptr),
            ("neighbour_idx", idx),
        ):
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_nodes(self) -> int:
        """How many access nodes the zones cover (all that existed when they were built)."""
        return int(self.node_cell.shape[0])

    def rows_of(self, nodes: np.ndarray) -> np.ndarray:
        """Cell rows of access ``nodes`` (int64, same shape); ``IndexError`` for a node the
        zones do not cover (one a plane added after :func:`zones_for`)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        if nodes.size and (nodes.min() < 0 or nodes.max() >= self.n_nodes):
            raise IndexError(
                f"node ids must be in [0, {self.n_nodes}): build the zones after every node "
                "exists (on a plane, after demand and fleet are located)"
            )
        cells: np.ndarray = self.node_cell[nodes]
        return cells

    def count(self, nodes: np.ndarray) -> np.ndarray:
        """How many of ``nodes`` (repeats count) fall in each cell: int64, one per row."""
        return np.bincount(self.rows_of(np.ravel(nodes)), minlength=len(self)).astype(np.int64)

    def neighbours(self, row: int) -> np.ndarray:
        """Rows of cell ``row``'s existing ring-1 neighbours, sorted."""
        return self.neighbour_idx[self.neighbour_ptr[row] : self.neighbour_ptr[row + 1]]


def check_csr(ptr: np.ndarray, idx: np.ndarray, n: int, kind: str) -> None:
    """Raise ``ValueError`` unless ``ptr``/``idx`` are compressed sparse rows over ``n`` rows
    (``kind`` names the owner in the message)."""
    if ptr.shape[0] != n + 1:
        raise ValueError(f"{kind}.neighbour_ptr: has {ptr.shape[0]} entries, expected {n + 1}")
    if ptr[0] != 0 or ptr[-1] != idx.shape[0] or bool(np.any(np.diff(ptr) < 0)):
        raise ValueError(
            f"{kind}.neighbour_ptr: must start at 0, never decrease and end at "
            f"len(neighbour_idx) = {idx.shape[0]}"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"{kind}.neighbour_idx: rows must be in [0, {n})")

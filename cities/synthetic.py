"""Synthetic spaces with closed-form travel times: a Manhattan grid and a Euclidean plane.

Neither has geography: :meth:`to_lonlat` returns ``None`` and :meth:`to_xy` raises
``ValueError``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np


def _params_hash(kind: str, **params: float) -> str:
    material = json.dumps({"kind": kind, **params}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


class GridSpace:
    """A two-way Manhattan grid of ``rows`` x ``cols`` blocks of ``block_m`` metres.

    Intersections are the nodes: node ``r * (cols + 1) + c`` sits at
    ``(c * block_m, r * block_m)``. Travel time is the Manhattan distance over ``speed_mps``.
    """

    def __init__(self, rows: int, cols: int, block_m: float, speed_mps: float) -> None:
        if rows < 1 or cols < 1 or not block_m > 0 or not speed_mps > 0:
            raise ValueError("a grid needs rows, cols >= 1 and positive block_m and speed")
        self.name = "grid"
        self.rows, self.cols = int(rows), int(cols)
        self.block_m, self.speed_mps = float(block_m), float(speed_mps)
        r, c = np.divmod(np.arange((self.rows + 1) * (self.cols + 1)), self.cols + 1)
        self._xy = np.stack([c * self.block_m, r * self.block_m], axis=1).astype(np.float64)
        self._xy.flags.writeable = False
        self._hash = _params_hash(
            "grid", rows=self.rows, cols=self.cols, block_m=self.block_m, speed_mps=self.speed_mps
        )

    @property
    def n_nodes(self) -> int:
        return self._xy.shape[0]

    @property
    def node_xy(self) -> np.ndarray:
        return self._xy

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return 0.0, 0.0, self.cols * self.block_m, self.rows * self.block_m

    @property
    def max_speed_mps(self) -> float:
        return self.speed_mps

    @property
    def content_hash(self) -> str:
        return self._hash

    def travel_time(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Manhattan blocks between the nodes times the block's driving time."""
        sr, sc = np.divmod(np.asarray(src, dtype=np.int64), self.cols + 1)
        dr, dc = np.divmod(np.asarray(dst, dtype=np.int64), self.cols + 1)
        blocks = np.abs(sr - dr) + np.abs(sc - dc)
        return blocks * (self.block_m / self.speed_mps)

    def travel_time_one(self, src: int, dst: int) -> float:
        """:meth:`travel_time` of one pair of node ids, on Python numbers (the same float)."""
        sr, sc = divmod(src, self.cols + 1)
        dr, dc = divmod(dst, self.cols + 1)
        return float(abs(sr - dr) + abs(sc - dc)) * (self.block_m / self.speed_mps)

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """The nearest intersection (points outside the grid snap to its edge)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        c = np.clip(np.rint(xy[:, 0] / self.block_m), 0, self.cols).astype(np.int64)
        r = np.clip(np.rint(xy[:, 1] / self.block_m), 0, self.rows).astype(np.int64)
        return r * (self.cols + 1) + c

    def sample_points(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Positions of ``n`` intersections drawn uniformly (with replacement)."""
        return self._xy[rng.integers(0, self.n_nodes, size=n)]

    def road_segments(self) -> np.ndarray:
        """(m, 2, 2) endpoints of every block's street, for drawing."""
        ids = np.arange(self.n_nodes).reshape(self.rows + 1, self.cols + 1)
        a = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
        b = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
        return np.stack([self._xy[a], self._xy[b]], axis=1)

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        raise ValueError("a grid has no geography: lon/lat cannot be placed on it")

    def to_lonlat(self, xy: np.ndarray) -> None:
        return None


class PlaneSpace:
    """A Euclidean square ``[0, side_m]^2``: straight-line travel at ``speed_mps``.

    The plane is continuous: :meth:`locate` makes every point a node of its own (appended, ids
    in call order), and travel times are computed from coordinates on the fly. Storage grows
    geometrically, so adding m points costs amortised O(m) however they are batched.
    """

    def __init__(self, side_m: float = 1.0, speed_mps: float = 1.0) -> None:
        if not side_m > 0 or not speed_mps > 0:
            raise ValueError("a plane needs positive side_m and speed_mps")
        self.name = "plane"
        self.side_m, self.speed_mps = float(side_m), float(speed_mps)
        self._buf = np.empty((1024, 2), dtype=np.float64)
        self._points = self._buf.view(np.complex128).reshape(-1)
        """``_buf`` with each (x, y) row seen as one complex number x + iy."""
        self._n = 0
        self._hash = _params_hash("plane", side_m=self.side_m, speed_mps=self.speed_mps)

    @property
    def n_nodes(self) -> int:
        return self._n

    @property
    def node_xy(self) -> np.ndarray:
        """The points located so far (a read-only view; later locates do not change it)."""
        view = self._buf[: self._n]
        view.flags.writeable = False
        return view

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return 0.0, 0.0, self.side_m, self.side_m

    @property
    def max_speed_mps(self) -> float:
        return self.speed_mps

    @property
    def content_hash(self) -> str:
        return self._hash

    def travel_time(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Euclidean distance between the nodes over the speed."""
        # Complex subtraction is the two coordinate subtractions (the same floats), on one
        # contiguous element per point: a pickup broadcast against many drivers costs a third of
        # the (n, 2) - (1, 2) broadcast. The distance stays np.hypot's (np.abs of complex
        # arrays rounds otherwise).
        points = self._points
        try:
            # Integer ids as they come (int64 is intp here): no conversion per call.
            a, b = points.take(src), points.take(dst)
        except TypeError:
            # Ids in float arrays (an empty message's columns are float zeros).
            a = points.take(np.asarray(src, dtype=np.intp))
            b = points.take(np.asarray(dst, dtype=np.intp))
        if b.shape == (1,) and a.ndim == 1:
            # Many sources to one destination (a pickup): a 0-d operand takes numpy's scalar
            # path, a (1,) one its general broadcasting loop (twice the cost on ~100 drivers).
            b = b.reshape(())
        d = a - b
        dist: np.ndarray = np.hypot(d.real, d.imag)
        # Dividing by a speed of exactly 1 changes no bit (x / 1.0 == x in IEEE arithmetic).
        return dist if self.speed_mps == 1.0 else dist / self.speed_mps

    def travel_time_one(self, src: int, dst: int) -> float:
        """:meth:`travel_time` of one pair of node ids: the same float, on Python scalars.

        ``abs`` of a Python complex is C's ``hypot`` of its parts, the function ``np.hypot``
        applies to each element, and complex subtraction is the two coordinate subtractions.
        """
        points = self._points
        return abs(points.item(src) - points.item(dst)) / self.speed_mps

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """Append each point as a new node; returns their ids."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        m = xy.shape[0]
        need = self._n + m
        if need > self._buf.shape[0]:
            grown = np.empty((max(need, 2 * self._buf.shape[0]), 2), dtype=np.float64)
            grown[: self._n] = self._buf[: self._n]
            # Views handed out earlier keep the old buffer: they stay valid snapshots.
            self._buf = grown
            self._points = grown.view(np.complex128).reshape(-1)
        self._buf[self._n : need] = xy
        ids = np.arange(self._n, need, dtype=np.int64)
        self._n = need
        return ids

    def sample_points(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` points uniform over the square."""
        return rng.uniform(0.0, self.side_m, size=(n, 2))

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        raise ValueError("a plane has no geography: lon/lat cannot be placed on it")

    def to_lonlat(self, xy: np.ndarray) -> None:
        return None

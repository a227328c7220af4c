"""The space vehicles move in: access nodes, planar coordinates and travel times.

Every city (a real road network, a grid, a Euclidean plane) is a :class:`Space`. The simulator
only ever asks a space three things, all vectorised over numpy arrays:

* where things are: ``node_xy`` (planar metres, x east / y north) for every access node;
* which node a point belongs to: :meth:`Space.locate`;
* how long the fastest drive takes: :meth:`Space.travel_time` (seconds, free-flow).

Travel times are never computed by a shortest-path search in the simulation loop: road
networks answer from a precomputed table, synthetic spaces from a closed form.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Space(Protocol):
    """Access nodes and the travel times between them."""

    name: str
    """A short identifier (city name, ``grid``, ``plane``)."""

    @property
    def n_nodes(self) -> int:
        """How many access nodes exist now (a plane adds nodes as points are located)."""
        ...

    @property
    def node_xy(self) -> np.ndarray:
        """(n_nodes, 2) float64 planar coordinates in metres."""
        ...

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the area in metres."""
        ...

    @property
    def max_speed_mps(self) -> float:
        """No vehicle covers straight-line distance faster than this (for pruning)."""
        ...

    @property
    def content_hash(self) -> str:
        """Hash of everything the travel times depend on (input file and parameters)."""
        ...

    def travel_time(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Free-flow seconds from node ``src`` to node ``dst`` (elementwise, broadcast)."""
        ...

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """Access node ids for (m, 2) planar points: the nearest node on a road network; on a
        plane, each point becomes a node of its own."""
        ...

    def sample_points(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) points spread uniformly over where trips can start (the city's road nodes, or
        the plane's square)."""
        ...

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Planar metres for geographic coordinates (raises ``ValueError`` for synthetic spaces
        that have no geography)."""
        ...

    def to_lonlat(self, xy: np.ndarray) -> np.ndarray | None:
        """(m, 2) lon/lat for planar points, or ``None`` for synthetic spaces."""
        ...

"""Cities: road networks from OpenStreetMap, travel-time tables, synthetic spaces.

``load_city`` turns a scenario's ``[city]`` table into a :class:`~cities.space.Space`;
``check_city`` validates one without building its travel-time table.
"""

from cities.graph_space import GraphSpace
from cities.load import check_city, load_city
from cities.space import Space
from cities.spec import CitySpec
from cities.synthetic import GridSpace, PlaneSpace

__all__ = [
    "CitySpec",
    "GraphSpace",
    "GridSpace",
    "PlaneSpace",
    "Space",
    "check_city",
    "load_city",
]

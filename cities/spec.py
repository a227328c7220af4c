"""The ``[city]`` table of a scenario file: which space the simulation runs in.

Four forms, told apart by their keys (``kind`` may be left out when ``name`` or ``osm`` says it):

```toml
[city]                      # a city shipped with ridesim (cities/defs/<name>.toml)
name = "campo_grande"

[city]                      # any OpenStreetMap extract (.osm, .osm.gz, .osm.bz2, .osm.pbf)
osm = "data/my_town.osm.pbf"            # relative to the scenario file's folder, or absolute
speeds_kmh = { residential = 25 }       # optional: class speeds where ways have no maxspeed tag
service_roads = false                   # optional: also drive on highway=service roads

[city]                      # a two-way Manhattan grid of rows x cols blocks
kind = "grid"
rows = 20
cols = 20
block_m = 200
speed_kmh = 30

[city]                      # a Euclidean square, straight-line travel at constant speed
kind = "plane"
side_m = 1.0
speed_mps = 1.0
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, field_validator

from cities.roads import ROAD_CLASSES
from core.errors import InputError
from core.frozen import Frozen, PositiveFloat

DEFS_DIR = Path(__file__).with_name("defs")
"""Named city definitions: one ``<name>.toml`` each."""
DATA_DIR = Path(__file__).with_name("data")
"""OSM extracts shipped with ridesim (see ``ATTRIBUTION.md`` there)."""

RoadClass = Literal[ROAD_CLASSES]  # type: ignore[valid-type]
Speed = Annotated[float, Field(gt=0, le=300, allow_inf_nan=False)]
SpeedOverrides = dict[RoadClass, Speed]  # type: ignore[valid-type]


def known_cities() -> list[str]:
    """Names of the shipped city definitions, sorted."""
    return sorted(p.stem for p in DEFS_DIR.glob("*.toml"))


class NamedCity(Frozen):
    """A city shipped with ridesim, by name (``cities/defs/<name>.toml``)."""

    kind: Literal["named"] = "named"
    name: str

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        names = known_cities()
        if v not in names:
            raise ValueError(f"unknown city {v!r}; known cities: {', '.join(names) or 'none'}")
        return v


class OsmCity(Frozen):
    """Any OpenStreetMap extract on disk."""

    kind: Literal["osm"] = "osm"
    osm: Annotated[str, Field(min_length=1)]
    """Path to the extract, relative to the scenario file's folder or absolute."""
    speeds_kmh: SpeedOverrides = Field(default_factory=dict)
    """Free-flow speed per road class where a way carries no usable ``maxspeed`` tag."""
    service_roads: bool = False
    """Also drive on ``highway=service`` (never parking aisles, driveways or alleys)."""


class GridCity(Frozen):
    """A two-way Manhattan grid: ``rows`` x ``cols`` blocks of ``block_m`` metres, so
    ``(rows + 1) * (cols + 1)`` intersections; travel time is the Manhattan distance over
    ``speed_kmh``."""

    kind: Literal["grid"]
    rows: Annotated[int, Field(ge=1, le=2000)]
    cols: Annotated[int, Field(ge=1, le=2000)]
    block_m: PositiveFloat = 200.0
    speed_kmh: Speed = 30.0


class PlaneCity(Frozen):
    """A Euclidean square of side ``side_m``: straight-line travel at ``speed_mps``."""

    kind: Literal["plane"]
    side_m: PositiveFloat = 1.0
    speed_mps: PositiveFloat = 1.0


def _city_kind(value: Any) -> str | None:
    """Which form a ``[city]`` table takes: ``kind`` if given, else inferred from its keys."""
    if isinstance(value, BaseModel):
        kind = getattr(value, "kind", None)
    elif isinstance(value, dict):
        kind = value.get("kind")
        if kind is None:
            kind = "named" if "name" in value else "osm" if "osm" in value else None
    else:
        return None
    return _TAGS.get(kind) if isinstance(kind, str) else None


# Tags are class names so that scenario error paths (which drop capitalised union members)
# read ``city.rows``, not ``city.grid.rows``.
_TAGS = {"named": "NamedCity", "osm": "OsmCity", "grid": "GridCity", "plane": "PlaneCity"}

CitySpec = Annotated[
    Annotated[NamedCity, Tag("NamedCity")]
    | Annotated[OsmCity, Tag("OsmCity")]
    | Annotated[GridCity, Tag("GridCity")]
    | Annotated[PlaneCity, Tag("PlaneCity")],
    Discriminator(
        _city_kind,
        custom_error_type="city_kind",
        custom_error_message=(
            'give name = "<city>" or osm = "<file>", or set kind = "grid" or "plane"'
        ),
    ),
]
"""The ``[city]`` table: a named city, an OSM file, a grid or a plane."""


class CityDef(Frozen):
    """A named city definition (``cities/defs/<name>.toml``)."""

    display_name: Annotated[str, Field(min_length=1)]
    osm: Annotated[str, Field(min_length=1)]
    """File name of the extract in ``cities/data/`` (or a path relative to this file)."""
    attribution: Annotated[str, Field(min_length=1)]
    source: str = ""
    """Where the extract comes from (URL, repository and commit)."""
    speeds_kmh: SpeedOverrides = Field(default_factory=dict)
    service_roads: bool = False
    congestion: tuple[Annotated[float, Field(ge=1.0)], ...] | None = None
    """Travel-time factor per clock hour 00..23 (>= 1), the city's usual traffic; a
    scenario's ``[travel] congestion`` overrides it."""

    @field_validator("congestion")
    @classmethod
    def _hours(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and len(v) != 24:
            raise ValueError(f"must have 24 hourly factors, got {len(v)}")
        return v


def read_city_def(name: str) -> tuple[CityDef, Path]:
    """The definition of a shipped city and its file. Raises :class:`InputError`."""
    path = DEFS_DIR / f"{name}.toml"
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
        return CityDef.model_validate(data), path
    except FileNotFoundError:
        raise InputError(str(path), "", "city definition not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), "", f"not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(str(path), field, err["msg"]) from None

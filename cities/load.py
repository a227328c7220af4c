"""Turn a validated ``[city]`` table into a :class:`~cities.space.Space`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cities.graph_space import load_graph_space
from cities.roads import NoRoadsError, OsmReadError, load_road_graph
from cities.space import Space
from cities.spec import (
    DATA_DIR,
    CitySpec,
    GridCity,
    NamedCity,
    OsmCity,
    PlaneCity,
    known_cities,
    read_city_def,
)
from cities.synthetic import GridSpace, PlaneSpace
from cities.tables import RowProgress
from core.errors import InputError

_OSM_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2", ".osm.pbf", ".pbf", ".xml")


def load_city(
    spec: CitySpec,
    *,
    base_dir: Path,
    source: str,
    cache_dir: Path | None = None,
    progress: RowProgress | None = None,
) -> Space:
    """The space a scenario's ``[city]`` table describes.

    ``base_dir`` resolves relative ``osm`` paths (the scenario file's folder); ``source`` names
    the scenario file in error messages; ``cache_dir`` holds built road networks (default:
    ``$RIDESIM_CACHE`` or ``~/.cache/ridesim``); ``progress(rows_done, rows_total)`` follows
    a road network's travel-time table while it is built (never called when it is cached, or
    for a grid or plane). Raises :class:`InputError` for bad input.
    """
    if isinstance(spec, GridCity):
        return GridSpace(spec.rows, spec.cols, spec.block_m, spec.speed_kmh / 3.6)
    if isinstance(spec, PlaneCity):
        return PlaneSpace(spec.side_m, spec.speed_mps)
    ref = _osm_ref(spec, base_dir, source)
    with _osm_errors(ref):
        return load_graph_space(
            ref.path,
            name=ref.name,
            speeds_kmh=ref.speeds,
            service_roads=ref.service_roads,
            cache_dir=cache_dir,
            progress=progress,
        )


def check_city(spec: CitySpec, *, base_dir: Path, source: str) -> None:
    """Check a ``[city]`` table without building travel times: the extract exists, reads as
    OSM data and holds a connected drivable network (about a second for Milan).
    Raises :class:`InputError` like :func:`load_city`."""
    if isinstance(spec, GridCity | PlaneCity):
        return
    ref = _osm_ref(spec, base_dir, source)
    with _osm_errors(ref):
        load_road_graph(ref.path, ref.speeds, service_roads=ref.service_roads)


@dataclass(frozen=True)
class _OsmRef:
    """Where a road network comes from and how errors about it are reported."""

    path: Path
    name: str
    speeds: dict[str, float]
    service_roads: bool
    source: str
    field: str


def _osm_ref(spec: CitySpec, base_dir: Path, source: str) -> _OsmRef:
    if isinstance(spec, NamedCity):
        if spec.name not in known_cities():
            names = ", ".join(known_cities())
            raise InputError(
                source, "city.name", f"unknown city {spec.name!r}; known cities: {names}"
            )
        city, def_path = read_city_def(spec.name)
        osm = Path(city.osm)
        path = osm if osm.is_absolute() else DATA_DIR / osm
        return _OsmRef(path, spec.name, city.speeds_kmh, city.service_roads, str(def_path), "osm")
    if isinstance(spec, OsmCity):
        osm = Path(spec.osm).expanduser()
        path = (osm if osm.is_absolute() else Path(base_dir) / osm).resolve()
        return _OsmRef(path, _stem(path), spec.speeds_kmh, spec.service_roads, source, "city.osm")
    raise InputError(source, "city", f"not a city table: {spec!r}")


@contextmanager
def _osm_errors(ref: _OsmRef) -> Iterator[None]:
    """Turn every way reading or building a city can fail into one clear InputError."""
    path, source, field = ref.path, ref.source, ref.field
    if not path.exists():
        raise InputError(source, field, f"file not found: {path}")
    if not path.is_file():
        raise InputError(source, field, f"not a file: {path}")
    try:
        yield
    except NoRoadsError:
        raise InputError(source, field, f"no drivable roads in {path}") from None
    except OsmReadError as exc:
        reason = str(exc)
        if "detect file format" in reason:
            reason = f"unknown file type (expected one of {', '.join(_OSM_SUFFIXES)})"
        raise InputError(
            source, field, f"cannot read {path} as OSM data (corrupt or not OSM XML/PBF): {reason}"
        ) from None
    except PermissionError as exc:
        if exc.filename is not None and Path(exc.filename).resolve() == path.resolve():
            raise InputError(
                source,
                field,
                f"cannot read {path}: {exc.strerror} (expected a file this user may read)",
            ) from None
        raise InputError(
            source,
            field,
            f"cannot write the city cache at {exc.filename}: {exc.strerror} (set RIDESIM_CACHE "
            "or --cache to a folder this user may write)",
        ) from None
    except OSError as exc:
        # The extract itself was readable (it was hashed first): this is the cache.
        raise InputError(
            source,
            field,
            f"cannot build the city cache for {path}: {exc.strerror or exc} "
            "(set RIDESIM_CACHE to a writable folder with space for the travel-time table)",
        ) from None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(_OSM_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem

"""The [city] table: its four forms, kind inference, and strict keys."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from cities.spec import (
    CitySpec,
    GridCity,
    NamedCity,
    OsmCity,
    PlaneCity,
    known_cities,
    read_city_def,
)

CITY = TypeAdapter(CitySpec)


def _errors(data: dict) -> list[dict]:
    with pytest.raises(ValidationError) as err:
        CITY.validate_python(data)
    return err.value.errors()


def test_forms_and_inference() -> None:
    """name / osm infer their kind; grid and plane are chosen by kind."""
    assert isinstance(CITY.validate_python({"name": "campo_grande"}), NamedCity)
    osm = CITY.validate_python({"osm": "m.osm.pbf", "speeds_kmh": {"residential": 25}})
    assert isinstance(osm, OsmCity) and osm.speeds_kmh == {"residential": 25.0}
    grid = CITY.validate_python({"kind": "grid", "rows": 3, "cols": 4, "block_m": 100})
    assert isinstance(grid, GridCity) and (grid.rows, grid.cols, grid.speed_kmh) == (3, 4, 30.0)
    plane = CITY.validate_python({"kind": "plane", "side_m": 1, "speed_mps": 1})
    assert isinstance(plane, PlaneCity) and plane.side_m == 1.0


def test_spec_is_frozen_and_round_trips() -> None:
    """Specs are frozen and survive a dump/validate round trip (for the run manifest)."""
    spec = CITY.validate_python({"osm": "a.osm", "service_roads": True})
    with pytest.raises(ValidationError):
        spec.osm = "b.osm"
    assert CITY.validate_python(spec.model_dump()) == spec
    assert CITY.validate_python(CITY.validate_python({"kind": "plane"}).model_dump()) == PlaneCity(
        kind="plane"
    )


def test_usable_as_a_field() -> None:
    """CitySpec works as a pydantic field with errors under that field's path."""

    class Holder(BaseModel):
        city: CitySpec

    assert isinstance(Holder.model_validate({"city": {"name": "campo_grande"}}).city, NamedCity)
    with pytest.raises(ValidationError) as err:
        Holder.model_validate({"city": {"kind": "grid", "rows": 0, "cols": 2}})
    assert err.value.errors()[0]["loc"] == ("city", "GridCity", "rows")


@pytest.mark.parametrize(
    ("data", "loc", "kind"),
    [
        ({"osm": "a.osm", "speed": 3}, ("OsmCity", "speed"), "extra_forbidden"),
        (
            {"kind": "grid", "rows": 2, "cols": 2, "osm": "x"},
            ("GridCity", "osm"),
            "extra_forbidden",
        ),
        ({"name": "campo_grande", "osm": "x"}, ("NamedCity", "osm"), "extra_forbidden"),
        (
            {"osm": "a.osm", "speeds_kmh": {"highway": 3}},
            ("OsmCity", "speeds_kmh", "highway", "[key]"),
            "literal_error",
        ),
        (
            {"osm": "a.osm", "speeds_kmh": {"residential": -3}},
            ("OsmCity", "speeds_kmh", "residential"),
            "greater_than",
        ),
        ({"kind": "plane", "speed_mps": 0}, ("PlaneCity", "speed_mps"), "greater_than"),
        ({"kind": "hex"}, (), "city_kind"),
        ({}, (), "city_kind"),
        ({"osm": ""}, ("OsmCity", "osm"), "string_too_short"),
    ],
)
def test_bad_tables(data: dict, loc: tuple, kind: str) -> None:
    """Unknown keys, bad values and an unknown kind are errors at the right path."""
    (err,) = _errors(data)
    assert err["loc"] == loc and err["type"] == kind


def test_unknown_kind_says_what_is_expected() -> None:
    """A table with no recognisable form explains the four forms."""
    (err,) = _errors({"kind": "hex"})
    assert 'name = "<city>"' in err["msg"] and '"grid"' in err["msg"]


def test_shipped_definitions_are_valid() -> None:
    """Every cities/defs/*.toml validates and its extract ships in cities/data."""
    names = known_cities()
    assert "campo_grande" in names
    for name in names:
        city, path = read_city_def(name)
        assert (path.parent.parent / "data" / city.osm).is_file()
        assert "OpenStreetMap" in city.attribution
        with path.open("rb") as f:
            assert tomllib.load(f)["osm"] == city.osm

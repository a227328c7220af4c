"""Input files read with one clear error naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from core.files import read_toml


def test_read_toml_parses_a_file(tmp_path: Path) -> None:
    """A valid TOML file comes back as its tables."""
    path = tmp_path / "a.toml"
    path.write_text('name = "x"\n[city]\nkind = "grid"\n')
    assert read_toml(path, "scenario") == {"name": "x", "city": {"kind": "grid"}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "suite file not found"), (b"name = ", "not valid TOML"), (b"\xff\xfe", "UTF-8")],
)
def test_read_toml_names_the_file_and_the_problem(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    """Missing, malformed or non-UTF-8 files are one InputError naming the file."""
    path = tmp_path / "s.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as err:
        read_toml(path, "suite")
    assert str(err.value).startswith(str(path))

"""Reading the project's input files with errors a user can act on."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from core.errors import InputError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML file at ``path``; an :class:`InputError` naming it when it is missing
    (``"<what> file not found"``), unreadable (no permission), not TOML, or not UTF-8 text."""
    source = str(path)
    try:
        if not path.is_file():
            raise InputError(source, "", f"{what} file not found")
        with path.open("rb") as f:
            return tomllib.load(f)
    except PermissionError as exc:  # the file, or a folder on its path, is not ours to read
        raise InputError(source, "", f"cannot read the {what} file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(source, "", "not valid TOML: the file is not UTF-8 text") from None

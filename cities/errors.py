"""The one error type for bad user input (scenario files, city files, trip files, CLI flags)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input, reported as ``<source>: <field>: <what was expected>``.

    ``source`` names the file (or ``--flag``), ``field`` the dotted path inside it (may be
    empty), ``expected`` what a valid value looks like and what was found. The CLI prints
    the message and exits with status 2; nothing deep inside may leak a traceback instead.
    """

    def __init__(self, source: str, field: str, expected: str) -> None:
        self.source = str(source)
        self.field = field
        self.expected = expected
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {expected}")

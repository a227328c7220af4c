"""The one error type for bad user input (scenario files, city files, trip files, CLI flags)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class InputError(Exception):
    """Bad input, reported as ``<source>: <field>: <what was expected>``.

    ``source`` names the file (or ``--flag``), ``field`` the dotted path inside it (may be
    empty), ``expected`` what a valid value looks like and what was found. The CLI prints
    the message and exits with status 2; nothing deep inside may leak a traceback instead.
    Several problems found at once are kept in ``problems`` (one line each in the message).
    """

    def __init__(self, source: str, field: str, expected: str) -> None:
        self.source = str(source)
        self.field = field
        self.expected = expected
        self.problems: list[tuple[str, str]] = [(field, expected)]
        super().__init__(self._line(field, expected))

    def _line(self, field: str, expected: str) -> str:
        return f"{self.source}: {field}: {expected}" if field else f"{self.source}: {expected}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its state, not as ``cls(*args)`` (``args`` holds the message, not the
        # constructor's three fields): a sweep's worker process sends the error back whole.
        return (_restore, (type(self), self.args, self.__dict__))

    @classmethod
    def many(cls, source: str, problems: Sequence[tuple[str, str]]) -> InputError:
        """One error reporting every (field, expected) problem found in ``source``."""
        if not problems:
            raise ValueError("InputError.many: no problems given")
        err = cls(source, *problems[0])
        err.problems = list(problems)
        err.args = ("\n".join(err._line(f, e) for f, e in problems),)
        return err


class PluginFailure(InputError, RuntimeError):
    """A plug-in (matcher, policy, remote service) failed in the middle of a run: reported like
    bad input (one line naming the scenario, the plug-in's field and what happened), and still
    a ``RuntimeError`` for code that catches those."""


def _restore(cls: type[InputError], args: tuple[Any, ...], state: dict[str, Any]) -> InputError:
    """An unpickled :class:`InputError` (or subclass) with its message and fields."""
    err = Exception.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err

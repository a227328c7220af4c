"""Command-line argument types shared by every entry point (the CLI, the matcher server's
module): one converter that parses, checks a bound, and words both failures as one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def bounded_arg(
    name: str,
    parse: Callable[[str], Any],
    ok: Callable[[Any], bool],
    expected: str,
    out_of_range: str | None = None,
) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text, then require ``ok``; either failure is one line
    ``expected <expected>, got '<text>'`` (``out_of_range`` words the second when it differs)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {out_of_range or expected}, got {text!r}")
        return value

    convert.__name__ = name  # argparse (and the CLI's list types) name the type by it
    return convert

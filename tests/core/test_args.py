"""The shared command-line argument type."""

from __future__ import annotations

import argparse

import pytest

from core.args import bounded_arg

POSITIVE = bounded_arg("positive", float, lambda v: v > 0, "a number", "a number > 0")


def test_bounded_arg_parses_and_checks_the_bound() -> None:
    """A value that parses and is in range comes back parsed; the type carries its name."""
    assert POSITIVE("2.5") == 2.5
    assert POSITIVE.__name__ == "positive"


@pytest.mark.parametrize(
    ("text", "message"),
    [("abc", "expected a number, got 'abc'"), ("-1", "expected a number > 0, got '-1'")],
)
def test_bounded_arg_words_each_failure_as_one_line(text: str, message: str) -> None:
    """Text that does not parse and a value out of range each give their own one-line message."""
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}$"):
        POSITIVE(text)


def test_bounded_arg_uses_expected_for_both_when_no_range_wording() -> None:
    """Without ``out_of_range`` the out-of-range message repeats ``expected``."""
    whole = bounded_arg("whole", int, lambda v: v >= 1, "a whole number >= 1")
    with pytest.raises(argparse.ArgumentTypeError, match="^expected a whole number >= 1, got '0'$"):
        whole("0")

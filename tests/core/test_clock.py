"""Clock times in scenario files and the time units every package shares."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.clock import DAY, HOUR, ClockTime, clock_to_seconds, hour_of_day
from core.frozen import Frozen


class _Record(Frozen):
    start: ClockTime


def test_clock_to_seconds() -> None:
    """'HH:MM' maps to seconds after midnight; hours wrap at 24."""
    assert clock_to_seconds("07:30") == 7 * HOUR + 30 * 60
    assert hour_of_day(DAY + 3 * HOUR + 5) == 3


@pytest.mark.parametrize("bad", ["24:00", "7:30", "07:60", "noon"])
def test_a_bad_clock_is_refused_with_what_was_expected(bad: str) -> None:
    """A record field typed ClockTime refuses anything but HH:MM, saying what it expected."""
    with pytest.raises(ValidationError, match="expected a clock time 'HH:MM'"):
        _Record(start=bad)
    assert _Record(start="23:59").start == "23:59"

"""Simulated time: unit constants and clock-of-day values in scenario files."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def clock_to_seconds(value: str) -> float:
    """``"HH:MM"`` -> seconds after midnight."""
    m = _CLOCK.match(value)
    if not m:
        raise ValueError(f"expected a clock time 'HH:MM' (00:00 to 23:59), got {value!r}")
    return float(int(m.group(1)) * HOUR + int(m.group(2)) * MINUTE)


def _check_clock(value: str) -> str:
    clock_to_seconds(value)
    return value


ClockTime = Annotated[str, AfterValidator(_check_clock)]
"""A clock time of day ``"HH:MM"`` in a validated configuration record."""


def hour_of_day(clock_s: float) -> int:
    """Clock hour (0-23) of a time given in seconds after some midnight."""
    return int(clock_s // HOUR) % 24

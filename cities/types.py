"""Building blocks shared by the validated configuration types of every package."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Frozen(BaseModel):
    """A frozen configuration record whose unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def clock_to_seconds(value: str) -> float:
    """``"HH:MM"`` -> seconds after midnight."""
    m = _CLOCK.match(value)
    if not m:
        raise ValueError(f"expected a clock time 'HH:MM' (00:00 to 23:59), got {value!r}")
    return float(int(m.group(1)) * 3600 + int(m.group(2)) * 60)

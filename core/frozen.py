"""Building blocks of every validated configuration record (scenario tables, plug-in params)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Frozen(BaseModel):
    """A frozen configuration record whose unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

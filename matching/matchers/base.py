"""The base class of the built-in matchers: declared parameters and the protocol's defaults."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from matching.api import MatchRequest, MatchResponse
from matching.plugins import Plugin


class MatcherBase(Plugin):
    """A :class:`~matching.api.Matcher` with parameters declared in ``Params`` (see
    :class:`~matching.plugins.Plugin`), not optimal, minimising total pickup ETA if it were.

    Subclasses implement :meth:`match`; an optimal one sets ``optimal = True`` and, when it
    minimises something other than total pickup ETA, overrides :meth:`pair_costs`.
    """

    optimal: ClassVar[bool] = False

    def match(self, request: MatchRequest) -> MatchResponse:
        """The decision for one snapshot (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__}.match")

    def pair_costs(
        self,
        request: MatchRequest,
        request_row: np.ndarray,
        driver_row: np.ndarray,
        pickup_eta_s: np.ndarray,
    ) -> np.ndarray:
        """What an optimal matcher minimises per pair: here the pickup ETA itself."""
        return np.asarray(pickup_eta_s, dtype=np.float64)

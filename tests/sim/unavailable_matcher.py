"""A matcher whose "service" cannot be reached for part of the run (tests/sim/test_faults.py,
tests/harness/test_check_service.py): the engine's failure policy without a network."""

from __future__ import annotations

from typing import Any, ClassVar

from matching.api import MatcherUnavailable, MatchRequest, MatchResponse
from matching.matchers.batched_greedy import BatchedGreedy


class DownBetween:
    """Batched greedy, except that every decision in ``[down_from_s, down_until_s)`` of
    simulated time raises :class:`MatcherUnavailable` (a service that is down then)."""

    optimal: ClassVar[bool] = False

    def __init__(self, down_from_s: float = 0.0, down_until_s: float = 0.0, k: int = 20) -> None:
        self.down_from_s = down_from_s
        self.down_until_s = down_until_s
        self.k = k

    def get_params(self) -> dict[str, Any]:
        return {"down_from_s": self.down_from_s, "down_until_s": self.down_until_s, "k": self.k}

    def match(self, request: MatchRequest) -> MatchResponse:
        if self.down_from_s <= request.decision_time < self.down_until_s:
            raise MatcherUnavailable(f"down at t = {request.decision_time}")
        return BatchedGreedy(self.k).match(request)

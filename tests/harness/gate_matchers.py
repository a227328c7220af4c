"""Deliberately bad matchers that the nightly gate must catch (tests/harness/test_check.py)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from matching.api import MatchRequest, MatchResponse, UnmatchedReason
from matching.matchers.batched_greedy import BatchedGreedy


class SkipEveryOtherBatch:
    """Batched greedy on even batches; on odd ones it defers every request (a worse market)."""

    optimal: ClassVar[bool] = False

    def __init__(self, k: int = 20) -> None:
        self.k = k

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k}

    def match(self, request: MatchRequest) -> MatchResponse:
        if request.batch_id % 2 == 1:
            ids = request.requests.id
            z = np.zeros(0)
            return MatchResponse(z, z, z, ids, np.full(len(ids), UnmatchedReason.DEFERRED))
        return BatchedGreedy(self.k).match(request)


class SlowMatcher:
    """Batched greedy that also waits ``delay_ms`` of wall time per call: the same decisions
    (wall time never steers a run), a slower matcher."""

    optimal: ClassVar[bool] = False

    def __init__(self, k: int = 20, delay_ms: float = 15.0) -> None:
        self.k = k
        self.delay_ms = delay_ms

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "delay_ms": self.delay_ms}

    def match(self, request: MatchRequest) -> MatchResponse:
        time.sleep(self.delay_ms / 1000.0)
        return BatchedGreedy(self.k).match(request)

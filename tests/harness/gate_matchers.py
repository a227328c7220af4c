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


class KnownCost:
    """Batched greedy that takes ``base_ms + per_request_ms·R + per_driver_ms·D`` of wall time
    per call (R open requests, D candidate drivers): a matcher whose cost model is known, for
    the capacity plan's tests (tests/harness/test_capacity.py)."""

    optimal: ClassVar[bool] = False

    def __init__(
        self,
        k: int = 20,
        base_ms: float = 1.0,
        per_request_ms: float = 0.3,
        per_driver_ms: float = 0.01,
    ) -> None:
        self.k = k
        self.base_ms = base_ms
        self.per_request_ms = per_request_ms
        self.per_driver_ms = per_driver_ms

    def get_params(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "base_ms": self.base_ms,
            "per_request_ms": self.per_request_ms,
            "per_driver_ms": self.per_driver_ms,
        }

    def cost_ms(self, r: float, d: float) -> float:
        """The wall time this matcher takes for a call of that size."""
        return self.base_ms + self.per_request_ms * r + self.per_driver_ms * d

    def match(self, request: MatchRequest) -> MatchResponse:
        t0 = time.perf_counter()
        response = BatchedGreedy(self.k).match(request)
        wait = self.cost_ms(len(request.requests), len(request.drivers)) / 1000.0
        # Busy-wait the rest (sleep overshoots by a scheduler tick on a loaded machine).
        while time.perf_counter() - t0 < wait:
            pass
        return response

"""The conformance suite over every registered matcher, and the suite's own teeth."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from matching.api import MatchRequest, MatchResponse, UnmatchedReason
from matching.checks import (
    all_checks,
    check_assignments_valid,
    check_declares_protocol,
    check_deterministic,
    check_every_request_explained,
    check_init_stores_params,
    check_matcher,
    check_optimal_vs_brute_force,
    parametrize_with_checks,
)
from matching.matchers import BatchedGreedy, MatcherBase
from matching.registry import available

SPECS: list[Any] = available() + [
    ("assignment", {"backend": "scipy"}),
    ("assignment", {"wait_weight": 0.5}),
    ("assignment", {"backend": "scipy", "wait_weight": 2.0}),
    ("assignment", {"fairness_weight_s": 120.0}),
    ("assignment", {"backend": "scipy", "fairness_weight_s": 120.0}),
    ("batched_greedy", {"k": 2}),
]


@parametrize_with_checks(SPECS)
def test_conformance(matcher_factory, check):
    """Each registered matcher (and notable parameter sets) passes each conformance check."""
    check(matcher_factory)


def test_builtins_are_registered():
    """The three built-in matchers are available by name."""
    assert {"immediate_greedy", "batched_greedy", "assignment"} <= set(available())


def test_optimal_check_only_for_optimal_matchers():
    """The brute-force check is included exactly when the matcher claims optimality."""
    names = [n for n, _ in all_checks(BatchedGreedy)]
    assert "check_optimal_vs_brute_force" not in names
    names = [n for n, _ in all_checks(lambda: _PretendOptimal())]
    assert "check_optimal_vs_brute_force" in names


# Broken matchers: the suite must catch each of them, naming the check.


class _Base(MatcherBase):
    optimal: ClassVar[bool] = False

    def __init__(self) -> None:
        pass

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        return BatchedGreedy().match(request)


class _PretendOptimal(_Base):
    optimal: ClassVar[bool] = True  # but greedy is not optimal


class _DoubleBooker(_Base):
    def match(self, request: MatchRequest) -> MatchResponse:
        r = BatchedGreedy().match(request)
        if r.n_assigned < 1 or len(request.requests) - r.n_assigned < 1:
            return r
        # Give the first assigned driver to an unmatched request as well.
        extra = r.unmatched_id[0]
        return MatchResponse(
            np.r_[r.request_id, extra],
            np.r_[r.driver_id, r.driver_id[0]],
            np.r_[r.pickup_eta_s, r.pickup_eta_s[0]],
            r.unmatched_id[1:],
            r.unmatched_reason[1:],
        )


class _Forgetful(_Base):
    def match(self, request: MatchRequest) -> MatchResponse:
        r = BatchedGreedy().match(request)
        return MatchResponse(
            r.request_id, r.driver_id, r.pickup_eta_s, r.unmatched_id[:0], r.unmatched_reason[:0]
        )


class _Liar(_Base):
    def match(self, request: MatchRequest) -> MatchResponse:
        r = BatchedGreedy().match(request)
        reason = np.full(r.unmatched_id.size, UnmatchedReason.NO_DRIVER_IN_RANGE)
        return MatchResponse(r.request_id, r.driver_id, r.pickup_eta_s, r.unmatched_id, reason)


class _Stateful(_Base):
    def __init__(self) -> None:
        self.calls = 0

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        self.calls += 1
        if self.calls % 2 == 0 and len(request.requests):
            return MatchResponse(
                np.zeros(0),
                np.zeros(0),
                np.zeros(0),
                request.requests.id,
                np.full(len(request.requests), UnmatchedReason.DEFERRED),
            )
        return BatchedGreedy().match(request)


class _HiddenParam(_Base):
    def __init__(self, k: int = 20) -> None:
        self.k = k

    def get_params(self) -> dict[str, Any]:
        return {}  # forgets k

    def match(self, request: MatchRequest) -> MatchResponse:
        return BatchedGreedy(k=self.k).match(request)


class _Undeclared:
    """Runs, but declares neither optimal nor pair_costs."""

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        return BatchedGreedy().match(request)


@pytest.mark.parametrize(
    ("factory", "check", "needle"),
    [
        (_PretendOptimal, check_optimal_vs_brute_force, "brute force"),
        (_DoubleBooker, check_assignments_valid, "twice"),
        (_Forgetful, check_every_request_explained, "neither assigned nor explained"),
        (_Liar, check_every_request_explained, "NO_DRIVER_IN_RANGE"),
        (_Stateful, check_deterministic, "differs"),
        (lambda: _HiddenParam(k=1), check_init_stores_params, "differs"),
        (_Undeclared, check_declares_protocol, "does not declare pair_costs, optimal"),
    ],
)
def test_suite_catches_broken_matchers(factory, check, needle):
    """Each deliberately broken matcher fails the check aimed at its defect."""
    with pytest.raises(AssertionError, match=needle):
        check(factory)


def test_check_matcher_names_the_failed_check():
    """check_matcher's AssertionError starts with the failing check's name."""
    with pytest.raises(AssertionError, match=r"^check_assignments_valid failed"):
        check_matcher(_DoubleBooker)

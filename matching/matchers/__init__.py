"""The built-in matchers (registered by name in :mod:`matching.registry`)."""

from matching.matchers.assignment import Assignment
from matching.matchers.base import MatcherBase
from matching.matchers.batched_greedy import BatchedGreedy
from matching.matchers.immediate_greedy import ImmediateGreedy

__all__ = ["Assignment", "BatchedGreedy", "ImmediateGreedy", "MatcherBase"]

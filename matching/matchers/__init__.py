"""The built-in matchers; importing this package registers them."""

from matching.matchers.assignment import Assignment
from matching.matchers.batched_greedy import BatchedGreedy
from matching.matchers.immediate_greedy import ImmediateGreedy

__all__ = ["Assignment", "BatchedGreedy", "ImmediateGreedy"]

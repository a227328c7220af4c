"""Scheduling: one heap of plain calls in SimPy's total order, without SimPy's machinery.

Every engine part asks for "call ``fn(*args)`` in ``delay`` seconds" through one
:class:`Scheduler`. No part of the engine needs a process (a generator that waits on events):
each is a chain of callbacks that schedules its next step where a process would
``yield env.timeout(...)``. So the scheduler keeps SimPy's order exactly (entries ordered by
(time, priority, insertion sequence), a call started now before any ordinary call due now,
``run(until)`` stopping before what is due at ``until``) on its own heap of tuples: no event
object, no callbacks list, no ``Environment.step`` per entry. ``tests/sim/test_scheduler.py``
checks the order against SimPy processes and timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from itertools import count
from typing import Any

URGENT = 0
"""Priority of a started call (SimPy's ``URGENT``: a process's first step)."""
NORMAL = 1
"""Priority of an ordinary call (SimPy's ``NORMAL``: a timeout)."""

Entry = tuple[float, int, int, Callable[..., None], tuple[Any, ...]]
"""``(time, priority, sequence, fn, args)``: the sequence is unique, so ``fn`` is never compared."""


class Scheduler:
    """Simulated time and the calls due later.

    ``now`` is the current simulated time in seconds (the int 0 before the first call, as in
    SimPy); a plain attribute, read on every event.
    """

    def __init__(self) -> None:
        self.now: float = 0
        self._heap: list[Entry] = []
        self._seq = count()

    def after(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` ``delay`` seconds from now (after everything already due then)."""
        heappush(self._heap, (self.now + delay, NORMAL, next(self._seq), fn, args))

    def start(self, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` now, before any ordinary call due now: where a SimPy process
        started with :meth:`simpy.Environment.process` takes its first step."""
        heappush(self._heap, (self.now + 0, URGENT, next(self._seq), fn, args))

    def run(self, until: float) -> None:
        """Make every call due before ``until`` (calls due at ``until`` stay queued), then set
        the clock to ``until``.

        SimPy stops at an urgent event it schedules at ``until``: ordinary calls due then come
        after it, and so do started calls queued after this point. The same key, compared with
        each entry's (time, priority, sequence), draws the same line.
        """
        at = until if isinstance(until, int) else float(until)
        if at <= self.now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = (at, URGENT, next(self._seq))
        heap = self._heap
        while heap and heap[0] < stop:
            self.now, _, _, fn, args = heappop(heap)
            fn(*args)
        self.now = at

    def __len__(self) -> int:
        """How many calls are queued."""
        return len(self._heap)

"""Scheduling on SimPy's event queue without a process or a ``Timeout`` per event.

Every engine part asks for "call ``fn(*args)`` in ``delay`` seconds" through one
:class:`Scheduler`. Entries go on the environment's own heap with :meth:`simpy.Environment.
schedule`, so they share SimPy's total order (time, priority, insertion sequence) with
everything else on it, exactly as the ``Timeout`` of a SimPy process would: a chain of callbacks
that schedules its next step where a process would ``yield env.timeout(...)`` produces the same
order, at a fraction of the cost (no generator, no ``Timeout`` validation, no closure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT


class _Call:
    """A queue entry SimPy can step: what :meth:`simpy.Environment.step` reads of an event is
    its ``callbacks`` (iterated once) and its ``_ok`` flag (always true: a call cannot fail as
    an event). Every call shares one callbacks tuple, so an entry allocates nothing else."""

    __slots__ = ("callbacks", "_ok", "fn", "args")

    def __init__(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.callbacks: tuple[Callable[[_Call], None], ...] | None = _CALLBACKS
        self._ok = True
        self.fn = fn
        self.args = args


def _fire(call: _Call) -> None:
    call.fn(*call.args)


_CALLBACKS = (_fire,)


class Scheduler:
    """Simulated time and the calls due later, on one SimPy environment."""

    def __init__(self, env: simpy.Environment | None = None) -> None:
        self.env = env or simpy.Environment()
        self._schedule = self.env.schedule

    @property
    def now(self) -> float:
        """The current simulated time (seconds; the int 0 before the first step, as in SimPy)."""
        now: float = self.env.now
        return now

    def after(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` ``delay`` seconds from now (after everything already due then)."""
        self._schedule(_Call(fn, args), NORMAL, delay)  # type: ignore[arg-type]

    def start(self, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` now, before any ordinary call due now: where a SimPy process
        started with :meth:`simpy.Environment.process` takes its first step."""
        self._schedule(_Call(fn, args), URGENT, 0)  # type: ignore[arg-type]

    def run(self, until: float) -> None:
        """Step through every call due before ``until`` (calls due at ``until`` stay queued)."""
        self.env.run(until=until)

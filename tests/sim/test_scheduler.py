"""The scheduler: plain calls on SimPy's queue, in SimPy's total order."""

from __future__ import annotations

import simpy

from sim.scheduler import Scheduler


def test_calls_run_by_time_then_insertion() -> None:
    """Calls due at the same time run in the order they were scheduled."""
    s = Scheduler()
    seen: list[tuple[float, str]] = []
    s.after(2.0, lambda tag: seen.append((s.now, tag)), "b")
    s.after(1.0, lambda tag: seen.append((s.now, tag)), "a")
    s.after(2.0, lambda tag: seen.append((s.now, tag)), "c")
    s.run(until=10.0)
    assert seen == [(1.0, "a"), (2.0, "b"), (2.0, "c")]


def test_start_runs_before_ordinary_calls_due_now() -> None:
    """A started call runs before a plain call already due at the same time."""
    s = Scheduler()
    seen: list[str] = []
    s.after(0.0, seen.append, "plain")
    s.start(seen.append, "started")
    s.run(until=1.0)
    assert seen == ["started", "plain"]


def test_calls_interleave_with_processes_as_timeouts_would() -> None:
    """A call chain and a SimPy process sharing the environment interleave exactly as two
    processes would (same time, priority and sequence order)."""

    def trace(as_calls: bool) -> list[tuple[float, str]]:
        env = simpy.Environment()
        s = Scheduler(env)
        seen: list[tuple[float, str]] = []

        def proc(tag: str):  # noqa: ANN202 - SimPy process
            for _ in range(3):
                yield env.timeout(1.0)
                seen.append((env.now, tag))

        def chain(k: int) -> None:
            if k:
                seen.append((s.now, "x"))
            if k < 3:
                s.after(1.0, chain, k + 1)

        env.process(proc("p"))
        if as_calls:
            s.start(chain, 0)
        else:
            env.process(proc("x"))
        s.run(until=10.0)
        return seen

    assert trace(True) == trace(False)


def test_calls_due_at_the_run_limit_wait_for_the_next_run() -> None:
    """run(until) stops before calls due exactly at ``until``; the next run makes them."""
    s = Scheduler()
    seen: list[float] = []
    s.after(5.0, lambda: seen.append(s.now))
    s.run(until=5.0)
    assert seen == []
    s.run(until=6.0)
    assert seen == [5.0]

"""The scheduler: plain calls on one heap, in SimPy's total order."""

from __future__ import annotations

import numpy as np
import pytest
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


Plan = dict[str, list[float]]


def _random_plan(seed: int) -> tuple[Plan, dict[tuple[str, int], str]]:
    # Chains of delays from a few values (ties, zero delays, steps due exactly at the slice
    # boundaries of run(until)), some steps starting another chain at the time they run.
    rng = np.random.default_rng(seed)
    plan = {
        f"c{k}": rng.choice([0.0, 0.25, 0.5, 1.0, 2.0], size=rng.integers(1, 8)).tolist()
        for k in range(8)
    }
    spawn = {}
    for k in range(4):
        parent = f"c{rng.integers(0, 4)}"
        spawn[(parent, int(rng.integers(0, len(plan[parent]) + 1)))] = f"c{4 + k}"
    return plan, spawn


def _trace_calls(plan: Plan, spawn: dict[tuple[str, int], str], ends: list[float]) -> list:
    s = Scheduler()
    seen: list[tuple[float, str, int]] = []

    def step(tag: str, j: int) -> None:
        seen.append((s.now, tag, j))
        if (tag, j) in spawn:
            s.start(step, spawn[(tag, j)], 0)
        if j < len(plan[tag]):
            s.after(plan[tag][j], step, tag, j + 1)

    for tag in ("c0", "c1", "c2", "c3"):
        s.start(step, tag, 0)
    for end in ends:
        s.run(until=end)
        seen.append((s.now, "until", 0))
    return seen


def _trace_simpy(plan: Plan, spawn: dict[tuple[str, int], str], ends: list[float]) -> list:
    env = simpy.Environment()
    seen: list[tuple[float, str, int]] = []

    def proc(tag: str):  # noqa: ANN202 - a SimPy process
        for j, delay in enumerate(plan[tag]):
            seen.append((env.now, tag, j))
            if (tag, j) in spawn:
                env.process(proc(spawn[(tag, j)]))
            yield env.timeout(delay)
        j = len(plan[tag])
        seen.append((env.now, tag, j))
        if (tag, j) in spawn:
            env.process(proc(spawn[(tag, j)]))

    for tag in ("c0", "c1", "c2", "c3"):
        env.process(proc(tag))
    for end in ends:
        env.run(until=end)
        seen.append((env.now, "until", 0))
    return seen


@pytest.mark.parametrize("seed", range(20))
def test_order_is_simpys_for_processes_and_timeouts(seed: int) -> None:
    """Call chains (with ties, zero delays, chains started mid-run and run() in slices ending
    exactly where calls are due) run in the order SimPy runs the same processes and timeouts."""
    plan, spawn = _random_plan(seed)
    ends = [0.5, 1.0, 2.0, 3.5, 20.0]
    calls = _trace_calls(plan, spawn, ends)
    assert calls == _trace_simpy(plan, spawn, ends)
    assert len(calls) > 20


def test_calls_due_at_the_run_limit_wait_for_the_next_run() -> None:
    """run(until) stops before calls due exactly at ``until``; the next run makes them."""
    s = Scheduler()
    seen: list[float] = []
    s.after(5.0, lambda: seen.append(s.now))
    s.run(until=5.0)
    assert seen == [] and s.now == 5.0 and len(s) == 1
    s.run(until=6.0)
    assert seen == [5.0]


def test_run_refuses_a_limit_not_after_now() -> None:
    """run(until) with ``until`` at or before the clock is an error, as in SimPy."""
    s = Scheduler()
    s.run(until=2.0)
    with pytest.raises(ValueError, match="greater than the current simulation time"):
        s.run(until=2.0)

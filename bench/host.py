"""The host's speed beside a benchmark: how fast this shared machine is running right now.

The benchmarks run on a shared 2-core VM whose speed moves by half within minutes, while the
load average inside the guest stays near 1 and its steal time at 0 (measured: neither tells a
slow spell from a fast one; the cause is outside the guest). :func:`reference_s` times a fixed
pure-Python loop (an add, a multiply, a modulo and a dict store, 600,000 times) in CPU seconds;
``python -m bench`` runs it before and after each benchmark and prints it beside the verdict,
against ``[host] reference_fast_s`` in bench/budgets.toml, the loop's time when this machine's
host is fast. A figure over its budget while the loop ran much slower than that is a slow host
as much as slow code: the exit status stays 1, and the line says so (see docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
import time
import tomllib

from bench import common

LOOPS = 600_000
SLOW_FACTOR = 1.25
"""The loop this much slower than on a fast host (or more) is a slow spell of the host."""


def _loop() -> int:
    s = 0
    d: dict[int, int] = {}
    for i in range(LOOPS):
        s += i * i % 7
        d[i & 1023] = s
    return s


def reference_s(samples: int = 5) -> float:
    """Median CPU seconds of the reference loop over ``samples`` runs (about 0.06 s each)."""
    times = []
    for _ in range(samples):
        c0 = time.process_time()
        _loop()
        times.append(time.process_time() - c0)
    return statistics.median(times)


class HostBudgetError(ValueError):
    """``[host] reference_fast_s`` in the budgets file is missing or not a positive number."""


def fast_reference_s() -> float:
    """The loop's CPU seconds when this machine's host is fast (bench/budgets.toml [host])."""
    where = f"{common.BUDGETS}: [host] reference_fast_s"
    try:
        value = common.load_budget("host")["reference_fast_s"]
    except KeyError:
        raise HostBudgetError(f"{where}: missing; expected a positive number of seconds") from None
    except tomllib.TOMLDecodeError as e:
        raise HostBudgetError(f"{common.BUDGETS}: not valid TOML ({e})") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise HostBudgetError(f"{where}: expected a positive number of seconds, got {value!r}")
    return float(value)


def slowdown(before: float, after: float, fast: float) -> float:
    """The slower probe's time over ``fast`` (:func:`fast_reference_s`), to two decimals (as
    printed)."""
    return round(max(before, after) / fast, 2)


def was_slow(before: float, after: float, fast: float) -> bool:
    """Whether either probe took :data:`SLOW_FACTOR` times ``fast`` or longer."""
    return slowdown(before, after, fast) >= SLOW_FACTOR


def describe(before: float, after: float, fast: float) -> str:
    """One line on the host's speed around a benchmark: the loop's times, the slower one's
    ratio to ``fast``, and whether that was a slow spell."""
    line = (
        f"host reference loop {before:.3f} s before, {after:.3f} s after "
        f"({slowdown(before, after, fast):.2f}x a fast host's {fast:.3f} s)"
    )
    return line + (": the host was slow" if was_slow(before, after, fast) else "")

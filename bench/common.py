"""Shared helpers for benchmarks: budgets, medians, the verdict line."""

from __future__ import annotations

import statistics
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUDGETS = Path(__file__).with_name("budgets.toml")


def load_budget(section: str) -> dict[str, float]:
    """The budget figures of one benchmark."""
    with BUDGETS.open("rb") as f:
        return dict(tomllib.load(f)[section])


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median wall seconds of ``fn()`` over ``repeats`` calls, and all samples."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), samples


def check(section: str, measured: dict[str, float]) -> bool:
    """Print each measured figure against its budget; True when all are within budget."""
    budget = load_budget(section)
    ok = True
    for key, limit in budget.items():
        name = key.removesuffix("_min").removesuffix("_max")
        if name not in measured:
            print(f"  {name:<40} not measured")
            ok = False
            continue
        value = measured[name]
        good = value >= limit if key.endswith("_min") else value <= limit
        sign = ">=" if key.endswith("_min") else "<="
        print(
            f"  {name:<40} {value:>12.3f}  budget {sign} {limit:<10}  "
            f"{'ok' if good else 'OVER BUDGET'}"
        )
        ok &= good
    return ok


def finish(section: str, measured: dict[str, float]) -> None:
    """Check and exit with status 1 when over budget."""
    print(f"[{section}]")
    if not check(section, measured):
        sys.exit(1)

"""What a scenario will need before it runs: riders, drivers, events, memory and disk.

Values that validate one by one can still exhaust a machine together (a billion requests per
hour, a fleet of two billion, a matcher that fails every nanosecond). :func:`estimate` turns a
scenario into order-of-magnitude figures from its own numbers (no city is loaded), and
:func:`check_fits` refuses, naming the field that drives the largest need, a scenario whose
figures exceed the memory or disk this machine has. The per-item byte costs are measured
upper bounds of this code (see tests/harness/test_estimate.py), not promises.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cities.fitted import FittedDemandSpec
from cities.replay import ReplayDemandSpec
from core.errors import InputError
from harness.scenario import Scenario

BYTES_PER_RIDER = 400
"""Memory per ride request: demand arrays, rider draws, engine state, metrics columns."""
BYTES_PER_DRIVER = 600
"""Memory per driver: fleet arrays, engine state, candidate index."""
BYTES_PER_EVENT_MEMORY = 120
"""Memory per event when metrics read the whole log back (pandas columns)."""
BYTES_PER_EVENT_DISK = 110
"""Disk per event at the log's peak: the Arrow stream (~90 B) and the Parquet it becomes."""
BYTES_PER_HOUR = 200
"""Memory per simulated hour: hourly demand segments, profiles and schedules."""
BYTES_PER_OUTAGE = 64
"""Memory per planned fault (matcher outage or driver crash)."""
EVENTS_PER_RIDER = 9
"""Quote, request, offer/assign, pickup, dropoff, cancels and repositions: an upper bound."""
TRIP_FILE_BYTES_PER_ROW = 40
"""The smallest plausible CSV row of a trip record (time, two coordinates)."""
BASE_MEMORY = 400 * 1024**2
"""The interpreter and the libraries a run imports."""


@dataclass(frozen=True)
class Estimate:
    """Order-of-magnitude needs of one run. ``drivers_by`` etc. name the scenario field that
    drives each figure, so a refusal can say what to change."""

    riders: float
    drivers: float
    events: float
    outages: float
    hours: float
    memory_bytes: float
    disk_bytes: float
    table_bytes: float | None = None
    """The travel-time table of a road network (``4 * nodes**2``), when the node count is known."""

    def lines(self) -> list[str]:
        """Human-readable figures, one per line."""
        out = [
            f"riders   ~{_count(self.riders)}",
            f"drivers  ~{_count(self.drivers)}",
            f"events   ~{_count(self.events)}",
            f"memory   ~{_bytes(self.memory_bytes)}",
            f"disk     ~{_bytes(self.disk_bytes)} (event log)",
        ]
        if self.table_bytes is not None:
            out.append(f"table    {_bytes(self.table_bytes)} (travel-time cache)")
        return out


def estimate(scenario: Scenario, *, base_dir: Path | None = None) -> Estimate:
    """The scenario's expected riders, drivers, events, memory and disk (no city loaded)."""
    hours = scenario.time.horizon_s / 3600.0
    demand = scenario.demand
    if isinstance(demand, ReplayDemandSpec | FittedDemandSpec):
        riders = _trip_file_rows(demand, base_dir) * demand.multiplier
    else:
        rate = demand.requests_per_h * demand.multiplier
        riders = rate * _profile_hours(demand.profile, scenario.time.start_s, hours)
    fleet = scenario.fleet
    drivers = float(fleet.size) * fleet.multiplier
    shifts_per_driver = max(1.0, math.ceil(hours / 24.0))
    faults = scenario.faults
    outages = crashes = 0.0
    if faults is not None:
        if faults.matcher_mtbf_h is not None:
            outages = hours / (faults.matcher_mtbf_h + faults.matcher_mttr_min / 60.0)
        outages += len(faults.matcher_outages) * max(1.0, hours / 24.0)
        crashes = faults.driver_crash_per_h * hours * drivers
    events = riders * EVENTS_PER_RIDER + drivers * 2 * shifts_per_driver + 2 * outages + 2 * crashes
    memory = (
        BASE_MEMORY
        + riders * BYTES_PER_RIDER
        + drivers * BYTES_PER_DRIVER
        + events * BYTES_PER_EVENT_MEMORY
        + hours * BYTES_PER_HOUR
        + (outages + crashes) * BYTES_PER_OUTAGE
    )
    return Estimate(
        riders=riders,
        drivers=drivers,
        events=events,
        outages=outages + crashes,
        hours=hours,
        memory_bytes=memory,
        disk_bytes=events * BYTES_PER_EVENT_DISK,
    )


def _profile_hours(profile: tuple[float, ...], start_s: float, hours: float) -> float:
    """Sum of the profile (normalised to mean 1, as the arrivals are) over the simulated
    hours: whole days count 24, the rest hour by hour from the start clock hour."""
    mean = sum(profile) / len(profile)
    w = [p / mean for p in profile]
    days, rest = divmod(hours, 24.0)
    total = days * 24.0
    clock = (start_s / 3600.0 + days * 24.0) % 24.0
    while rest > 1e-12:
        step = min(rest, math.floor(clock) + 1.0 - clock)
        total += w[int(clock) % 24] * step
        clock, rest = (clock + step) % 24.0, rest - step
    return total


def _trip_file_rows(demand: ReplayDemandSpec | FittedDemandSpec, base_dir: Path | None) -> float:
    """An upper bound on the records of the trip file(s): their size over the smallest row."""
    raw = Path(demand.path)
    full = raw if raw.is_absolute() or base_dir is None else Path(base_dir) / raw
    files = list(full.parent.glob(full.name)) if any(c in demand.path for c in "*?[") else [full]
    size = sum(p.stat().st_size for p in files if p.is_file())
    return size / TRIP_FILE_BYTES_PER_ROW


def driving_field(scenario: Scenario, est: Estimate) -> tuple[str, str]:
    """The scenario field behind the largest term of the estimate, and that term in words."""
    demand, faults = scenario.demand, scenario.faults
    time_field = "time.duration_h" if scenario.time.duration_h is not None else "time.duration_s"
    terms: list[tuple[float, str, str]] = [
        (
            est.riders * (BYTES_PER_RIDER + EVENTS_PER_RIDER * BYTES_PER_EVENT_MEMORY),
            "demand.path"
            if isinstance(demand, ReplayDemandSpec | FittedDemandSpec)
            else "demand.requests_per_h",
            f"~{_count(est.riders)} ride requests",
        ),
        (
            est.drivers * (BYTES_PER_DRIVER + 2 * BYTES_PER_EVENT_MEMORY),
            "fleet.size",
            f"~{_count(est.drivers)} drivers",
        ),
        (est.hours * BYTES_PER_HOUR, time_field, f"{_count(est.hours)} simulated hours"),
    ]
    if faults is not None:
        if faults.matcher_mtbf_h is not None:
            n = est.hours / (faults.matcher_mtbf_h + faults.matcher_mttr_min / 60.0)
            terms.append(
                (
                    n * (BYTES_PER_OUTAGE + 2 * BYTES_PER_EVENT_MEMORY),
                    "faults.matcher_mtbf_h",
                    f"~{_count(n)} matcher outages",
                )
            )
        n = faults.driver_crash_per_h * est.hours * est.drivers
        terms.append(
            (
                n * (BYTES_PER_OUTAGE + 2 * BYTES_PER_EVENT_MEMORY),
                "faults.driver_crash_per_h",
                f"~{_count(n)} driver crashes",
            )
        )
    if not isinstance(demand, ReplayDemandSpec | FittedDemandSpec):
        # Riders are rate x hours: name the factor that is out of proportion (a day against
        # a 10x city's ~100,000 requests an hour; the multiplier against the base rate).
        field = "demand.requests_per_h"
        if demand.multiplier > demand.requests_per_h:
            field = "demand.multiplier"
        if est.hours / 24.0 > demand.requests_per_h * demand.multiplier / 100_000:
            field = time_field
        terms[0] = (terms[0][0], field, terms[0][2])
    _, field, what = max(terms, key=lambda t: t[0])
    return field, what


def available_memory() -> int:
    """Bytes of memory a new allocation can get now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_disk(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = Path(path).resolve()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_fits(scenario: Scenario, est: Estimate, *, source: str, out: Path | None = None) -> None:
    """Refuse (:class:`InputError` on the driving field) a run whose estimated memory exceeds
    what is available, or whose event log would not fit on the disk under ``out``."""
    memory = available_memory()
    if est.memory_bytes > memory:
        field, what = driving_field(scenario, est)
        raise InputError(
            source,
            field,
            f"this run needs about {_bytes(est.memory_bytes)} of memory ({what}, "
            f"~{_count(est.events)} events) but {_bytes(memory)} is available; "
            "expected a scenario that fits this machine",
        )
    if out is not None:
        disk = free_disk(out)
        if est.disk_bytes > disk:
            field, what = driving_field(scenario, est)
            raise InputError(
                source,
                field,
                f"the event log needs about {_bytes(est.disk_bytes)} of disk ({what}, "
                f"~{_count(est.events)} events) but {out} has {_bytes(disk)} free; "
                "expected a scenario that fits this disk",
            )


def _count(x: float) -> str:
    return f"{x:,.0f}" if x < 1e7 else f"{x:.2g}"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.3g} TB"

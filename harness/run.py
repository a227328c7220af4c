"""From a validated scenario to a finished run directory.

``runs/<run-id>/`` holds ``manifest.json`` (what produced the run), ``events.parquet`` (the
event log), ``metrics.json`` (deterministic KPIs), ``perf.json`` (wall-clock figures, never
fed back into the run), ``matcher_calls.parquet`` (wall time and size of every matcher call),
``nodes.parquet`` and ``roads.parquet`` (the city, so reports can draw maps without
reloading it) and ``trips.parquet`` (the drawn demand, with recorded durations of replayed
real trips). The run id hashes the canonical scenario, the city's input data and the code,
so the same inputs always map to the same directory.

While a run is in progress it lives in ``runs/<run-id>.partial/``; only a complete run is
renamed to ``runs/<run-id>/``. A crash leaves the partial directory with a readable event
log prefix (``events.arrows``), never something that looks like a result.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cities import load_city
from cities.demand import Trips, spatial_mix, synthetic_trips
from cities.fitted import FittedDemandSpec, fit_demand, fitted_trips
from cities.graph_space import file_sha256
from cities.replay import (
    ReplayDemandSpec,
    replay_trips,
    resolve_trip_files,
)
from cities.space import Space
from cities.spec import DEFS_DIR, NamedCity, OsmCity, read_city_def
from cities.supply import Fleet, generate_fleet
from cities.tables import RowProgress
from cities.zones import zones_for
from core.clock import HOUR
from core.errors import InputError, PluginFailure
from core.ids import distinct_count
from core.schemas import (
    MATCHER_CALLS_SCHEMA,
    NODES_SCHEMA,
    ROADS_SCHEMA,
    SURGE_SCHEMA,
    TRIPS_SCHEMA,
)
from core.zoning import Zones
from harness.calibrate import resolve_travel, with_start_date
from harness.estimate import Estimate, check_fits, estimate
from harness.scenario import Scenario, load_scenario
from matching.api import Matcher, MatcherUnavailable
from matching.checks import assert_valid_response, random_instance
from matching.plugins import plugin_params
from matching.registry import make_matcher, matcher_params
from matching.sharding import partition_nodes
from matching.surge import make_surge_policy
from reports.kpis import write_metrics
from reports.zones import zoning_metadata
from sim.behaviour import RiderDraws, TravelSpec
from sim.dispatcher import MatcherCalls, MatcherContractError
from sim.engine import DispatchPolicy, MarketRules, Simulation
from sim.events import CHUNK_ROWS, EventLog
from sim.faults import FaultPlan, plan_faults
from sim.pricing import SurgePricing
from sim.reposition import RepositionPolicy, make_reposition
from sim.seeding import STREAMS, seed_entropy, spawn_streams

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("core", "cities", "matching", "sim", "reports", "harness")
VERSIONED = ("numpy", "scipy", "simpy", "pyarrow", "pydantic", "ortools", "osmium", "h3")

Progress = Callable[[float, int, int], None]


def code_hash() -> str:
    """Hash of the source of every package that shapes a run's results."""
    h = hashlib.sha256()
    for d in CODE_DIRS:
        for path in sorted((ROOT / d).rglob("*.py")):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(_source_digest(path))
    return h.hexdigest()


_SOURCE_DIGESTS: dict[Path, tuple[tuple[int, int, int], bytes]] = {}


def _source_digest(path: Path) -> bytes:
    # A file's digest is read again only when its size, inode or modification time changed
    # (an edit between two runs in one process), so a run in a long-lived process reads
    # ~100 stat records instead of every source file. File times tick in coarse steps, so a
    # file modified in the last seconds is always read (two edits in one tick look alike).
    st = path.stat()
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    known = _SOURCE_DIGESTS.get(path)
    if known is not None and known[0] == key:
        return known[1]
    digest = hashlib.sha256(path.read_bytes()).digest()
    if time.time_ns() - st.st_mtime_ns > _SETTLED_NS:
        _SOURCE_DIGESTS[path] = (key, digest)
    return digest


_SETTLED_NS = 2_000_000_000
"""How long ago a source file must have changed for its digest to be kept."""


def run_id_for(scenario: Scenario, market: Market, code: str | None = None) -> str:
    """Content address of a run: canonical scenario, every file it read (city extract and
    definition, trip files, plug-in modules outside ridesim), the values resolved from them
    (e.g. a city's congestion) and the code."""
    inputs = {role: f["sha256"] for role, f in sorted(market.inputs.items())}
    payload = json.dumps(
        {
            "scenario": scenario.canonical(),
            "city": market.space.content_hash,
            "inputs": inputs,
            "resolved": market.resolved,
            "code": code or code_hash(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """:func:`load_scenario`, with unreadable and absurdly nested files as input errors."""
    try:
        return load_scenario(path, overrides=overrides)
    except PermissionError as exc:
        raise InputError(str(path), "", f"cannot read the scenario file: {exc.strerror}") from None
    except RecursionError:
        raise InputError(
            str(path), "", "not valid TOML: arrays or tables nested too deeply"
        ) from None


def validate_scenario(
    scenario: Scenario, *, source: str, base_dir: Path, cache_dir: Path | None = None
) -> Estimate:
    """Check everything a run would do before simulating, without simulating: the resources it
    needs fit this machine, every plug-in builds, answers a smoke call and has JSON
    parameters, and the market is set up exactly as a run sets it up (city, trip files with
    their coordinates checked against the city, fleet, faults). Returns the resource estimate.
    Raises :class:`InputError`."""
    estimate = check_resources(scenario, source=source, base_dir=base_dir)
    market, _ = build_market(scenario, source=source, base_dir=base_dir, cache_dir=cache_dir)
    if hasattr(market.space, "table"):  # a road network: its travel-time table is on disk
        estimate = replace(estimate, table_bytes=float(market.space.table.nbytes))
    del market
    gc.collect()
    return estimate


def check_resources(
    scenario: Scenario, *, source: str, base_dir: Path, out: Path | None = None
) -> Estimate:
    """Estimate what the scenario needs and refuse, naming the field at fault, what this
    machine (memory; with ``out``, the disk there) cannot hold."""
    est = estimate(scenario, base_dir=base_dir)
    check_fits(scenario, est, source=source, out=out)
    return est


@contextmanager
def plugin_folder(folder: Path) -> Iterator[None]:
    """Make the scenario's own folder importable while its plug-ins are resolved, so that
    ``matcher = "my_matcher:MyMatcher"`` finds ``my_matcher.py`` beside the scenario without
    ``PYTHONPATH``. The folder goes last on ``sys.path`` (it never shadows an installed
    package) and is removed again; modules imported from it stay imported."""
    entry = str(Path(folder).resolve())
    added = entry not in sys.path
    if added:
        sys.path.append(entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _plugins(scenario: Scenario, source: str) -> tuple[Matcher, Any, Any]:
    """The scenario's matcher, repositioning and surge policies, built and checked: a
    constructor that raises, ``get_params()`` that is not JSON, or a matcher whose answer to
    a tiny request breaks the contract is an input error on the plug-in's field."""
    d, drv, surge = scenario.dispatch, scenario.drivers, scenario.surge

    def build(field: str, make: Callable[[], Any]) -> Any:
        try:
            obj = make()
        except InputError:
            raise
        except Exception as exc:  # any failure of a user's constructor is their input error
            raise InputError(source, field, f"constructor raised {_describe(exc)}") from None
        if obj is not None:
            try:
                plugin_params(obj)
            except MatcherUnavailable as exc:  # a matcher service must answer at the start
                raise InputError(
                    source, field, f"the matcher service does not answer: {_describe(exc)}"
                ) from None
            except Exception as exc:
                raise InputError(
                    source, field, f"get_params() must return a JSON object: {_describe(exc)}"
                ) from None
        return obj

    matcher = build("dispatch.matcher", lambda: make_matcher(d.matcher, d.params, source=source))
    # The smoke call goes to a second instance: a matcher may keep state between calls.
    _smoke_matcher(build("dispatch.matcher", lambda: make_matcher(d.matcher, d.params)), source)
    reposition = build(
        "drivers.reposition",
        lambda: make_reposition(drv.reposition, drv.reposition_params, source=source),
    )
    policy = None
    if surge is not None:
        policy = build(
            "surge.policy", lambda: make_surge_policy(surge.policy, surge.params, source=source)
        )
    return matcher, reposition, policy


def _smoke_matcher(matcher: Matcher, source: str) -> None:
    """One tiny request (4 riders, 5 drivers on a plane): the response must keep the contract."""
    request = random_instance(0, 4, 5, "plane", max_pickup_eta_s=1e9)
    try:
        response = matcher.match(request)
    except Exception as exc:
        raise InputError(
            source, "dispatch.matcher", f"match() raised {_describe(exc)} on a 4 x 5 smoke request"
        ) from None
    try:
        assert_valid_response(request, response)
    except AssertionError as exc:
        raise InputError(
            source, "dispatch.matcher", f"match() broke the contract on a smoke request: {exc}"
        ) from None
    except Exception as exc:
        raise InputError(
            source, "dispatch.matcher", f"match() returned an unusable response: {_describe(exc)}"
        ) from None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


@dataclass(frozen=True)
class Market:
    """Everything a simulation needs, drawn from the scenario's seed."""

    space: Space
    trips: Trips
    riders: RiderDraws
    fleet: Fleet
    matcher: Matcher
    streams: dict[str, np.random.Generator]
    travel: TravelSpec
    """The scenario's [travel] table with the congestion profile resolved."""
    reposition: RepositionPolicy | None
    surge: SurgePricing | None
    zones: Zones
    """The run's zoning, computed once from the scenario (written to nodes.parquet)."""
    faults: FaultPlan | None
    demand_stats: dict[str, int | float]
    inputs: dict[str, dict[str, str]]
    """Input files the run read beyond the scenario: {role: {"path", "sha256"}}."""
    resolved: dict[str, Any]
    """Values the run took from outside the scenario (a named city's definition, the travel
    table with its congestion filled in), as JSON data: part of the run id and manifest."""


def drawn_demand_stats(trips: Trips, space: Space, horizon_s: float) -> dict[str, int | float]:
    """What the drawn demand looks like, for the manifest: how many requests, their mean and
    peak hourly rate, the straight-line trip length and how many places they start from."""
    n = len(trips)
    stats: dict[str, int | float] = {"requests": n}
    if n == 0:
        return stats
    per_hour = np.bincount((trips.t // HOUR).astype(np.int64))
    xy = np.asarray(space.node_xy)
    length = np.hypot(*(xy[trips.pickup_node] - xy[trips.dropoff_node]).T)
    stats.update(
        requests_per_h_mean=round(n / (horizon_s / HOUR), 3),
        requests_peak_hour=int(per_hour.max()),
        trip_straight_line_m_median=round(float(np.median(length)), 1),
        distinct_pickup_nodes=distinct_count(trips.pickup_node),
    )
    return stats


def build_market(
    scenario: Scenario,
    *,
    source: str,
    base_dir: Path,
    cache_dir: Path | None = None,
    keep_city: bool = False,
    city_progress: RowProgress | None = None,
) -> tuple[Market, float]:
    """Load the city and draw demand and supply. Returns the market and the city load time.

    With ``keep_city``, a road network loaded by an earlier run of this process is reused
    (see :func:`_kept_city`). ``city_progress(rows_done, rows_total)`` follows the city's
    travel-time table while it is built (not called when it is cached)."""
    with plugin_folder(base_dir):
        matcher, reposition, surge_policy = _plugins(scenario, source)
    t0 = time.perf_counter()
    if keep_city:
        space = _kept_city(
            scenario, base_dir=base_dir, source=source, cache_dir=cache_dir, progress=city_progress
        )
    else:
        space = load_city(
            scenario.city,
            base_dir=base_dir,
            source=source,
            cache_dir=cache_dir,
            progress=city_progress,
        )
    city_load_s = time.perf_counter() - t0
    streams = spawn_streams(scenario.seed)
    start_s, horizon_s = scenario.time.start_s, scenario.time.horizon_s
    inputs: dict[str, dict[str, str]] = {}
    if getattr(space, "source_sha256", None):
        inputs["city"] = {"path": str(space.source_path), "sha256": space.source_sha256}
    demand = scenario.demand
    rng = streams["demand"]
    stats: dict[str, int | float] = {}
    if isinstance(demand, ReplayDemandSpec | FittedDemandSpec):
        try:
            files = resolve_trip_files(demand, base_dir=base_dir, source=source)
            for i, path in enumerate(files):
                inputs[f"trips.{i}"] = {"path": str(path), "sha256": file_sha256(path)}
            if isinstance(demand, ReplayDemandSpec):
                trips, stats = replay_trips(
                    rng,
                    demand,
                    space,
                    start_s,
                    horizon_s,
                    base_dir=base_dir,
                    source=source,
                    start_date=scenario.travel.start_date,
                )
            else:
                model = fit_demand(demand, space, base_dir=base_dir, source=source)
                trips, stats = fitted_trips(rng, model, demand, space, start_s, horizon_s)
        except PermissionError as exc:
            raise InputError(
                source,
                "demand.path",
                f"cannot read the trip file {exc.filename}: {exc.strerror} "
                "(expected a file this user may read)",
            ) from None

        def demand_nodes(g: np.random.Generator, n: int) -> np.ndarray:
            if len(trips) == 0:
                return space.locate(space.sample_points(g, n))
            return trips.pickup_node[g.integers(len(trips), size=n)]
    else:
        mix = spatial_mix(demand, space, source)
        trips = synthetic_trips(rng, demand, space, mix, start_s, horizon_s)
        demand_nodes = mix.sample_nodes
    fleet = generate_fleet(
        streams["supply"],
        scenario.fleet,
        space,
        demand_nodes,
        start_s,
        horizon_s,
        demand_profile=_hourly_profile(demand, trips, start_s),
    )
    riders = RiderDraws.draw(
        streams["riders"], streams["travel"], scenario.riders, scenario.travel, len(trips)
    )
    # The run's one zoning (surge prices it, reports read it from nodes.parquet), after demand
    # and fleet: on a plane those are what create the nodes. Its resolution / cell size is the
    # scenario's ([surge] when present, else the zoning defaults).
    spec = scenario.surge
    zones = (
        zones_for(space, h3_resolution=spec.h3_resolution, cell_m=spec.cell_m)
        if spec is not None
        else zones_for(space)
    )
    surge = None
    if spec is not None:
        policy = surge_policy
        surge = SurgePricing(policy, zones, spec.interval_s)
    travel, profile = resolve_travel(scenario.travel, base_dir=base_dir, source=source)
    if profile is not None:
        inputs["travel_profile"] = profile
    travel = with_start_date(travel, stats, source)
    resolved: dict[str, Any] = {}
    if isinstance(scenario.city, NamedCity):
        city_def, def_path = read_city_def(scenario.city.name)
        inputs["city_def"] = {"path": str(def_path), "sha256": file_sha256(def_path)}
        resolved["city_def"] = json.loads(city_def.model_dump_json())
        if travel.congestion is None:
            travel = travel.model_copy(update={"congestion": city_def.congestion})
    resolved["travel"] = json.loads(travel.model_dump_json())
    for role, obj in (("matcher", matcher), ("reposition", reposition), ("surge", surge)):
        plugin = obj.policy if isinstance(obj, SurgePricing) else obj
        module_file = _outside_module_file(plugin)
        if module_file is not None:
            inputs[f"plugin.{role}"] = {
                "path": str(module_file),
                "sha256": file_sha256(module_file),
            }
    faults = None
    if scenario.faults is not None:
        faults = plan_faults(streams["faults"], scenario.faults, start_s, horizon_s, len(fleet))
    market = Market(
        space=space,
        trips=trips,
        riders=riders,
        fleet=fleet,
        matcher=matcher,
        streams=streams,
        travel=travel,
        reposition=reposition,
        surge=surge,
        zones=zones,
        faults=faults,
        demand_stats={**drawn_demand_stats(trips, space, horizon_s), **stats},
        inputs=inputs,
        resolved=resolved,
    )
    return market, city_load_s


_KEPT: dict[str, Any] = {}
"""The road network last loaded with ``keep_city`` in this process: {key, space}."""


def _kept_city(
    scenario: Scenario,
    *,
    base_dir: Path,
    source: str,
    cache_dir: Path | None,
    progress: RowProgress | None = None,
) -> Any:
    """The scenario's city, reusing the one this process loaded last when it is the same road
    network from the same unchanged file (a sweep worker's runs share one memory-mapped
    table, its node index and lookups). Only road networks are kept: they are immutable, so a
    reused one gives byte-identical runs; a plane's nodes grow during a run."""
    spec = scenario.city
    if not isinstance(spec, NamedCity | OsmCity):
        return load_city(spec, base_dir=base_dir, source=source, cache_dir=cache_dir)
    definition = _stat(DEFS_DIR / f"{spec.name}.toml") if isinstance(spec, NamedCity) else None
    key = json.dumps(
        [
            json.loads(spec.model_dump_json()),
            str(Path(base_dir).resolve()),
            str(cache_dir),
            definition,
        ]
    )
    kept = _KEPT.get("key") == key and _KEPT.get("space")
    if kept and _stat(kept.source_path) == _KEPT.get("stat"):
        return kept
    _KEPT.clear()  # release the old table before mapping another
    space = load_city(
        spec, base_dir=base_dir, source=source, cache_dir=cache_dir, progress=progress
    )
    path = getattr(space, "source_path", None)
    if path is not None:
        _KEPT.update(key=key, space=space, stat=_stat(path))
    return space


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _outside_module_file(plugin: Any) -> Path | None:
    """The source file of a plug-in defined outside ridesim's code (which the code hash
    already covers), so that editing a user's matcher changes the run id."""
    if plugin is None:
        return None
    module = sys.modules.get(type(plugin).__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    if any(path.is_relative_to(ROOT / d) for d in CODE_DIRS):
        return None
    return path if path.is_file() else None


def _hourly_profile(demand: Any, trips: Trips, start_s: float) -> np.ndarray:
    """The demand's relative weight per clock hour (the synthetic profile, or the drawn
    trips' clock hours for replayed and fitted demand)."""
    if isinstance(demand, ReplayDemandSpec | FittedDemandSpec):
        hours = ((start_s + trips.t) // 3600).astype(np.int64) % 24
        counts = np.bincount(hours, minlength=24).astype(np.float64)
        return counts if counts.sum() > 0 else np.ones(24)
    return np.asarray(demand.profile, dtype=np.float64)


def simulate(
    market: Market, scenario: Scenario, log: EventLog, progress: Progress | None = None
) -> Simulation:
    """Run the market through the simulation, writing events to ``log`` (closed here)."""
    d = scenario.dispatch
    shard_of_node = None
    if d.shards > 1:
        # Balance shards by expected load: the pickups drawn for this run, per node.
        weights = 1.0 + np.bincount(market.trips.pickup_node, minlength=market.space.n_nodes)
        shard_of_node = partition_nodes(market.space.node_xy, d.shards, weights)
    policy = DispatchPolicy(
        batch_window_s=d.batch_window_s,
        max_pickup_eta_s=d.max_pickup_eta_s,
        decision_delay_s=d.decision_delay_s,
        decision_delay_per_request_s=d.decision_delay_per_request_s,
        shard_of_node=shard_of_node,
    )
    rules = MarketRules(
        riders=scenario.riders,
        drivers=scenario.drivers,
        pricing=scenario.pricing,
        travel=market.travel,
        start_s=scenario.time.start_s,
    )
    sim = Simulation(
        market.space,
        market.trips,
        market.riders,
        market.fleet,
        market.matcher,
        policy,
        market.streams,
        log,
        scenario.time.horizon_s,
        rules=rules,
        reposition=market.reposition,
        surge=market.surge,
        faults=market.faults,
    )
    sim.run(progress)
    log.close()
    return sim


@dataclass(frozen=True)
class RunResult:
    """Where a finished run lives and its headline figures."""

    run_dir: Path
    run_id: str
    metrics: dict[str, Any]
    perf: dict[str, Any]
    reused: bool = False
    """True when a complete run directory with this id already existed and was kept."""


RUN_GC_THRESHOLD = 100_000
"""Net allocations of tracked objects between collections of the youngest generation while a
run goes (see :func:`_collect_run_garbage`)."""


@contextmanager
def _collect_run_garbage() -> Iterator[None]:
    """Collect the cyclic garbage a run leaves, scanning only the objects made since it began.

    The simulation's callbacks form reference cycles that would keep the city (a memory-mapped
    table of up to gigabytes) resident until the next GC pass: in a sweep run in one process,
    the next run would map its own copy on top of it. A full ``gc.collect()`` also walks every
    object of the loaded libraries (0.12-0.14 CPU-s, a sixth of a 20k-request plane run), so the
    objects that existed before the run are frozen meanwhile (the run's cycles are made during
    the run) and given back to the collector afterwards, for its ordinary passes. A heap
    frozen already (a sweep's forked worker inherits one) stays as it is: unfreezing it would
    make the worker's collector copy the inherited pages.

    During the run the youngest generation is collected every :data:`RUN_GC_THRESHOLD` net
    allocations instead of Python's 700: the engine's per-event objects (heap entries, event
    rows, stops) die young or hold no references, and a 100,000-request plane run spent 5% of
    its CPU in about 500 collections that freed nothing, against one at this threshold. Cycles
    a plug-in makes per call are still collected, every so many allocations (memory stays
    bounded); the threshold is restored when the run ends.
    """
    ours = gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], RUN_GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.collect()
        if ours:
            gc.unfreeze()


@_collect_run_garbage()
def run_scenario(
    scenario: Scenario,
    *,
    source: str,
    base_dir: Path,
    out: Path = Path("runs"),
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    skip_existing: bool = False,
    event_chunk_rows: int = CHUNK_ROWS,
    keep_city: bool = False,
    city_progress: RowProgress | None = None,
) -> RunResult:
    """Run one scenario end to end and write its run directory under ``out``.

    With ``skip_existing``, a complete run directory of the same id (same scenario, inputs
    and code, hence the same results) is kept and returned instead of recomputed.
    ``event_chunk_rows`` sets how often the event log is flushed (what a crash can lose); the
    final ``events.parquet`` has row groups of :data:`sim.events.ROW_GROUP_ROWS` whatever it is.
    ``keep_city`` keeps the road network loaded for the next run of this process (sweeps).
    ``progress(sim_time, riders_arrived, events)`` follows the simulation and
    ``city_progress(rows_done, rows_total)`` the city's travel-time table while it is built.
    The process keeps the C library's allocator as Arrow's pool (:func:`use_system_arrow_pool`)."""
    wall0 = time.perf_counter()
    reset_peak_rss()  # perf.json's peak memory is this run's own
    use_system_arrow_pool()
    check_out_dir(out)  # before the city: a build can take minutes
    check_resources(scenario, source=source, base_dir=base_dir, out=out)
    market, city_load_s = build_market(
        scenario,
        source=source,
        base_dir=base_dir,
        cache_dir=cache_dir,
        keep_city=keep_city,
        city_progress=city_progress,
    )
    code = code_hash()  # reads every source file: once per run
    run_id = run_id_for(scenario, market, code)
    final = out / run_id
    out.mkdir(parents=True, exist_ok=True)
    with _run_lock(out, run_id):
        # Under the lock: a second writer of the same id (a duplicate sweep point, another
        # sweep on the same folder) waits here, then finds the first one's result.
        if skip_existing and _is_complete(final) and _is_clean(final):
            metrics = json.loads((final / "metrics.json").read_text())
            perf = json.loads((final / "perf.json").read_text())
            result = RunResult(final, run_id, metrics, perf, reused=True)
        else:
            timing = (wall0, city_load_s)
            try:
                result = _run_locked(
                    scenario, source, market, out, run_id, code, progress, event_chunk_rows, timing
                )
            except OSError as exc:
                if not _disk_full(exc):
                    raise
                partial = out / f"{run_id}.partial"
                raise InputError(
                    str(out),
                    "",
                    "the disk filled up while writing the run (no space left on device); "
                    f"its complete event batches are in {partial / 'events.arrows'}; "
                    "expected free space for the run (or another --out)",
                ) from None
            except MatcherContractError as exc:
                raise PluginFailure(source, "dispatch.matcher", f"{exc} (mid-run)") from None
            except Exception as exc:
                plugin = _failed_plugin(exc, market)
                if plugin is None:
                    raise
                partial = out / f"{run_id}.partial"
                raise PluginFailure(
                    source,
                    plugin,
                    f"failed during the run: {_describe(exc)}; the events up to then are in "
                    f"{partial / 'events.arrows'}",
                ) from None
    return result


def _failed_plugin(exc: BaseException, market: Market) -> str | None:
    """The scenario field of the plug-in whose own code raised ``exc`` (a frame of the
    traceback belongs to it), or None when the failure is ridesim's."""
    owners = [
        (market.matcher, "dispatch.matcher"),
        (market.reposition, "drivers.reposition"),
        (market.surge.policy if market.surge else None, "surge.policy"),
    ]
    plugins = {id(obj): field for obj, field in owners if obj is not None}
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if owner is not None and id(owner) in plugins:
            return plugins[id(owner)]
        tb = tb.tb_next
    return None


def _disk_full(exc: OSError) -> bool:
    """ENOSPC/EDQUOT, also as pyarrow reports them (an OSError without errno)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)


def check_out_dir(out: Path) -> None:
    """``out`` is (or can be made) a writable folder; raises :class:`InputError` otherwise.
    Creates nothing: a run that fails on its input leaves no empty folder behind."""
    out = Path(out)
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "found a file" if probe == out else f"{probe} is a file"
        raise InputError(str(out), "", f"expected a folder for run directories, {what}")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise InputError(
            str(out), "", f"cannot write run directories in {probe}: {exc.strerror or exc}"
        ) from None


def _is_complete(run_dir: Path) -> bool:
    """A finished run directory (metrics and perf are written last, before the rename)."""
    return (run_dir / "metrics.json").is_file() and (run_dir / "perf.json").is_file()


def _is_clean(run_dir: Path) -> bool:
    """A run whose matcher service never failed it (the manifest says so): the only kind a
    sweep may reuse, since a run that met an outage is not what its inputs give."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return not (manifest.get("matcher_service") or {}).get("outages")


@contextmanager
def _run_lock(out: Path, run_id: str) -> Iterator[None]:
    """Exclusive lock on ``out/.<run_id>.lock`` across processes, removed on release."""
    path = out / f".{run_id}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder before us removed this file: lock the new one
                continue
            try:
                yield
            finally:
                path.unlink(missing_ok=True)
            return
        finally:
            os.close(fd)


def _run_locked(
    scenario: Scenario,
    source: str,
    market: Market,
    out: Path,
    run_id: str,
    code: str,
    progress: Progress | None,
    event_chunk_rows: int,
    timing: tuple[float, float],
) -> RunResult:
    """Simulate into ``out/<id>.partial/`` and rename it to ``out/<id>/`` once complete."""
    final = out / run_id
    partial = out / f"{run_id}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()

    sim_t0 = time.perf_counter()
    log = EventLog(partial / "events.parquet", chunk_rows=event_chunk_rows)
    sim = simulate(market, scenario, log, progress)
    sim_wall = time.perf_counter() - sim_t0

    _write_city(partial, market.space, market.zones)
    _write_trips(partial, market.trips)
    if market.surge is not None:
        _write_surge(partial, sim)
    manifest = _manifest(scenario, source, market, run_id, code)
    # A run that met an outage of its matcher service is not the run its id stands for (the
    # id covers the inputs, not the service's availability): said here, and never reused.
    manifest["matcher_service"] = {
        "outages": sim.service.outages,
        "unanswered_calls": sim.service.failed_calls,
    }
    _write_json(partial / "manifest.json", manifest)
    metrics = write_metrics(partial)
    calls = sim.calls
    _write_matcher_calls(partial, calls)
    wall0, city_load_s = timing
    perf = _perf(calls, sim, sim_wall, city_load_s, time.perf_counter() - wall0)
    _write_json(partial / "perf.json", perf)

    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    del sim
    return RunResult(final, run_id, metrics, perf)


def _manifest(
    scenario: Scenario, source: str, market: Market, run_id: str, code: str
) -> dict[str, Any]:
    space = market.space
    return {
        "run_id": run_id,
        "ridesim_version": _version("ridesim"),
        "code_hash": code,
        "scenario_source": source,
        "scenario": scenario.canonical(),
        "seed_entropy": seed_entropy(scenario.seed),
        "streams": list(STREAMS),
        "city": {
            "name": space.name,
            "n_nodes": int(space.n_nodes),
            "content_hash": space.content_hash,
            "geographic": space.to_lonlat(space.node_xy[:1]) is not None,
        },
        "inputs": market.inputs,
        "resolved": market.resolved,
        "demand": market.demand_stats,
        "matcher": {
            "name": scenario.dispatch.matcher,
            "class": type(market.matcher).__qualname__,
            "params": matcher_params(market.matcher),
        },
        "reposition": {
            "name": scenario.drivers.reposition,
            "params": plugin_params(market.reposition) if market.reposition else {},
        },
        "surge": {
            "policy": scenario.surge.policy,
            "params": plugin_params(market.surge.policy),
            "zones": {"scheme": market.surge.zones.scheme, "cells": len(market.surge.zones)},
        }
        if market.surge
        else None,
        "counts": {"riders": len(market.trips), "drivers": len(market.fleet)},
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in VERSIONED}},
    }


@cache  # 1.5 ms a package (metadata parsing): once per process, as its modules are loaded once
def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _write_surge(run_dir: Path, sim: Simulation) -> None:
    """Per pricing interval and cell: supply, demand and the multiplier set (surge.parquet)."""
    assert sim.surge is not None
    cols = sim.surge.record.table()
    table = pa.table({f.name: cols[f.name] for f in SURGE_SCHEMA}, schema=SURGE_SCHEMA)
    pq.write_table(table, run_dir / "surge.parquet", compression="zstd")


def _write_city(run_dir: Path, space: Space, zones: Zones) -> None:
    """nodes.parquet (each node's position and cell in the run's zoning, whose parameters go
    in the schema metadata) and roads.parquet (segments, for maps)."""
    xy = np.asarray(space.node_xy)
    lonlat = space.to_lonlat(xy)
    n = xy.shape[0]
    lon = lonlat[:, 0] if lonlat is not None else np.full(n, np.nan)
    lat = lonlat[:, 1] if lonlat is not None else np.full(n, np.nan)
    # A node a plane added after the zoning was computed (a repositioning target) has no cell.
    # Each node's cell name through a dictionary of the cells' names: no Python string per node.
    k = min(zones.n_nodes, n)
    rows = np.zeros(n, dtype=np.int64)
    rows[:k] = zones.node_cell[:k]
    cell = pa.DictionaryArray.from_arrays(
        pa.array(rows, mask=np.arange(n) >= k), pa.array(list(zones.cell), type=pa.string())
    ).dictionary_decode()
    params: dict[str, Any] = {"scheme": zones.scheme}
    if zones.scheme == "h3":
        params["resolution"] = zones.resolution
    else:
        params.update(
            cell_m=zones.cell_m,
            origin_x_m=float(space.bounds[0]),
            origin_y_m=float(space.bounds[1]),
        )
    nodes = pa.table(
        {
            "node": pa.array(np.arange(n, dtype=np.int64)),
            "x_m": pa.array(xy[:, 0], type=pa.float64()),
            "y_m": pa.array(xy[:, 1], type=pa.float64()),
            "lon": pa.array(lon, mask=np.isnan(lon), type=pa.float64()),
            "lat": pa.array(lat, mask=np.isnan(lat), type=pa.float64()),
            "cell": cell,
        },
        schema=NODES_SCHEMA,
    ).replace_schema_metadata(zoning_metadata(params))
    # Dictionary pages only where values repeat: building one for every column of distinct
    # coordinates and ids tripled the writing time of a plane's 200,000 nodes (76 -> 26 ms)
    # and made the file 23% larger.
    pq.write_table(nodes, run_dir / "nodes.parquet", compression="zstd", use_dictionary=["cell"])
    seg = space.road_segments() if hasattr(space, "road_segments") else np.zeros((0, 2, 2))
    roads = pa.table(
        {
            "x0": pa.array(seg[:, 0, 0], type=pa.float64()),
            "y0": pa.array(seg[:, 0, 1], type=pa.float64()),
            "x1": pa.array(seg[:, 1, 0], type=pa.float64()),
            "y1": pa.array(seg[:, 1, 1], type=pa.float64()),
        },
        schema=ROADS_SCHEMA,
    )
    pq.write_table(roads, run_dir / "roads.parquet", compression="zstd")


def _write_trips(run_dir: Path, trips: Trips) -> None:
    """The drawn demand: every rider's arrival, pickup and dropoff node, and for replayed real
    trips the recorded duration (so reports can judge the simulated travel times)."""
    n = len(trips)
    recorded = trips.recorded_trip_s if trips.recorded_trip_s is not None else np.full(n, np.nan)
    table = pa.table(
        {
            "rider": pa.array(np.arange(n, dtype=np.int64)),
            "t": pa.array(trips.t, type=pa.float64()),
            "pickup_node": pa.array(trips.pickup_node, type=pa.int64()),
            "dropoff_node": pa.array(trips.dropoff_node, type=pa.int64()),
            "recorded_trip_s": pa.array(np.asarray(recorded, dtype=np.float64)),
        },
        schema=TRIPS_SCHEMA,
    )
    # Every column is nearly all distinct values: no dictionary pages (see _write_city).
    pq.write_table(table, run_dir / "trips.parquet", compression="zstd", use_dictionary=False)


def _write_matcher_calls(run_dir: Path, c: MatcherCalls) -> None:
    table = pa.table(
        {
            "batch_id": pa.array(c.batch_id),
            "shard_id": pa.array(c.shard_id),
            "n_requests": pa.array(c.n_requests),
            "n_drivers": pa.array(c.n_drivers),
            "wall_ms": pa.array(c.wall_s * 1e3),
        },
        schema=MATCHER_CALLS_SCHEMA,
    )
    pq.write_table(
        table,
        run_dir / "matcher_calls.parquet",
        compression="zstd",
        use_dictionary=["shard_id", "n_requests", "n_drivers"],
    )


def latency_summary(wall_ms: np.ndarray) -> dict[str, float | int]:
    """Call count and p50/p95/p99/max of matcher wall times (ms)."""
    if wall_ms.size == 0:
        return {"calls": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    p50, p95, p99 = np.percentile(wall_ms, [50, 95, 99])
    return {
        "calls": int(wall_ms.size),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(wall_ms.max()),
    }


def use_system_arrow_pool() -> bool:
    """Make the C library's allocator Arrow's default memory pool for this process (the event
    log's chunks, the Parquet files written and read back), unless ``ARROW_DEFAULT_MEMORY_POOL``
    chooses one. Returns whether the pool changed.

    Arrow's bundled mimalloc hands freed pages back to the kernel at once, and the next chunk
    faults them in again: a 100,000-request plane run spent 0.50-0.59 CPU-s of system time (a
    tenth of the run; medians of 6-8 runs in three alternating comparisons) against 0.14-0.20 s
    with the system pool, for the same user-space instructions.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    if pa.default_memory_pool().backend_name == "system":
        return False
    pa.set_memory_pool(pa.system_memory_pool())
    return True


def reset_peak_rss() -> bool:
    """Start the process's peak-memory mark afresh (Linux: ``/proc/self/clear_refs``), so a run
    in a long-lived process (a sweep's Dask worker, a notebook) reports its own peak, not the
    largest of every earlier run. False where the system cannot reset it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident memory (MB) since the last :func:`reset_peak_rss` (``VmHWM``), or since
    the process started where that mark is not available."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _perf(
    calls: MatcherCalls, sim: Simulation, sim_wall: float, city_load_s: float, wall: float
) -> dict[str, Any]:
    wall_ms = calls.wall_s * 1e3
    shard = calls.shard_id
    summary = latency_summary(wall_ms)
    per_shard = {str(s): latency_summary(wall_ms[shard == s]) for s in np.unique(shard).tolist()}
    n_events = len(sim.log)
    n_requests = len(sim.trips)
    return {
        "note": "wall-clock measurements of this machine; never used by the simulation",
        "wall_s": wall,
        "city_load_s": city_load_s,
        "sim_wall_s": sim_wall,
        "events": n_events,
        "events_per_s": n_events / sim_wall if sim_wall > 0 else None,
        "requests_per_s": n_requests / sim_wall if sim_wall > 0 else None,
        "peak_rss_mb": peak_rss_mb(),
        "matcher": {**summary, "per_shard": per_shard},
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")

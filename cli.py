"""ridesim command line: a thin layer over the library.

    python cli.py run scenarios/default.toml [--out runs] [--seed N] [--set KEY=VALUE ...]
    python cli.py validate scenarios/default.toml
    python cli.py sweep scenarios/a.toml scenarios/b.toml --vary demand.multiplier=1,2,5
    python cli.py capacity scenarios/default.toml --shards 1,2,4 --loads 1,5,10
    python cli.py check scenarios/nightly/smoke.toml --baseline baselines/smoke [--junit FILE]
    python cli.py serve-matcher assignment --params '{"k": 20}' --address 127.0.0.1:50051
    python cli.py cache list|prune|clear [--max-size 5GB]
    python cli.py report runs/<run-id>
    python cli.py compare runs/<a> runs/<b> [...] [--out DIR]
    python cli.py calibrate scenarios/chicago_replay.toml --out travel.toml [--from D --until D]

Bad input (a scenario, city file or flag) prints one clear line per problem and exits 2.
"""

from __future__ import annotations

import argparse
import atexit
import builtins
import gc
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.args import bounded_arg
from core.errors import InputError
from matching.wire.flags import add_serve_arguments

EXIT_INPUT = 2


def _load(path: str, seed: int | None, overrides: list[str] | None = None) -> Any:
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.run import read_scenario
    from harness.scenario import parse_overrides  # deferred: as above

    scenario = read_scenario(path, overrides=parse_overrides(overrides or []))
    return scenario.with_seed(seed) if seed is not None else scenario


def cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario, write its run directory and report, print the headline KPIs."""
    # The cyclic garbage collector is off while the libraries load, and what they made stays
    # frozen until the command ends: the imports make about 180,000 objects that live as
    # long as the command, so collections during them (an eighth of their time) and later
    # passes over them find nothing to free. A heap frozen by someone else stays theirs.
    gc_on, freeze = gc.isenabled(), gc.get_freeze_count() == 0
    gc.disable()
    try:
        scenario = _load(args.scenario, args.seed, args.set)  # imports the harness
        if freeze:
            gc.freeze()
    finally:
        if gc_on:
            gc.enable()
    try:
        return _run(args, scenario)
    finally:
        if freeze:
            gc.unfreeze()


def _run(args: argparse.Namespace, scenario: Any) -> int:
    """``run`` once the libraries are loaded."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.run import run_scenario

    # deferred: as above; this module itself imports nothing heavy
    from reports.background import ReportHelper

    # The report's helper process imports its libraries while this one simulates; forked
    # before the progress bar starts its thread.
    helper = None if args.no_report else ReportHelper()
    try:
        shown = not args.no_progress and _progress_visible()
        progress = _ProgressBar(scenario.time.horizon_s) if shown else None
        try:
            result = run_scenario(
                scenario,
                source=args.scenario,
                base_dir=Path(args.scenario).resolve().parent,
                out=Path(args.out),
                cache_dir=Path(args.cache) if args.cache else None,
                progress=progress,
                city_progress=progress.city_rows if progress is not None else None,
            )
        finally:
            if progress is not None:
                progress.close()
        print(f"run {result.run_id} ({scenario.name}, seed {scenario.seed})")
        _print_headline(result.metrics, result.perf)
        warning = service_warning(result.metrics)
        if warning:
            print(warning, file=sys.stderr)
        if helper is not None:
            if progress is not None:
                print("writing the report ...", file=sys.stderr, flush=True)
            sys.stdout.flush()
            print(f"report: {helper.write(result.run_dir)}")
    finally:
        if helper is not None:
            helper.close()
    print(f"results: {result.run_dir}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a scenario (schema, matcher, city extract, trip files) without running it."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.run import validate_scenario

    scenario = _load(args.scenario, None)
    estimate = validate_scenario(
        scenario,
        source=args.scenario,
        base_dir=Path(args.scenario).resolve().parent,
        cache_dir=Path(args.cache) if args.cache else None,
    )
    print(f"{args.scenario}: ok (scenario '{scenario.name}', seed {scenario.seed})")
    for line in estimate.lines():
        print(f"  {line}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run scenario files x varied values x seeds in parallel; write the sweep table."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.sweep import parse_vary, run_sweep, sweep_points

    points = sweep_points(args.scenarios, parse_vary(args.vary or []), args.seeds)
    out = Path(args.out)
    done = 0

    def tick(row: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        state = "reused" if row["reused"] else "ran"
        print(f"  [{done}/{len(points)}] {row['scenario']} {row['run_id']} ({state})", flush=True)

    table = run_sweep(
        points,
        out,
        workers=args.workers,
        scheduler=args.scheduler,
        cache_dir=Path(args.cache) if args.cache else None,
        on_done=tick,
    )
    folder = Path(table.attrs["sweep_dir"])
    _print_frame(table)
    print(f"sweep table: {folder / 'sweep.csv'} (runs in {out})")
    if args.plot:
        # deferred: each command imports only what it uses, so the CLI starts fast
        from reports.figures.sweep import write_sweep_figures

        for path in write_sweep_figures(table, folder, x=args.plot):
            print(f"figure: {path}")
    return 0


def _print_frame(table: Any) -> None:
    """A pandas table in the terminal as a table: numbers right-aligned, evenly formatted."""
    # deferred: rich's table module is needed only by the commands that print one
    from rich.console import Console
    from rich.table import Table  # deferred: as above

    shown = Table(show_edge=False, header_style="bold")
    for name in table.columns:
        numeric = table[name].dtype.kind in "iuf"
        shown.add_column(str(name), justify="right" if numeric else "left")
    for row in table.itertuples(index=False):
        shown.add_row(*(_cell(v) for v in row))
    Console(width=max(100, 16 * len(table.columns))).print(shown)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN: nothing measured
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def cmd_capacity(args: argparse.Namespace) -> int:
    """Measure a load x shard grid, fit the matcher cost model, and plan shards, cores and
    headroom (for a target of trips per day over a cities table when given)."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.capacity import Target, plan_capacity, read_cities

    if (args.target_trips_per_day is None) != (args.cities is None):
        raise InputError(
            "--target-trips-per-day" if args.cities else "--cities",
            "",
            "give both --target-trips-per-day N and --cities FILE (or neither)",
        )
    target = None
    if args.cities is not None:
        today = args.today_trips_per_day or args.target_trips_per_day / 10.0
        target = Target(
            args.target_trips_per_day,
            read_cities(Path(args.cities)),
            today,
            time_to_match_p99_s=args.time_to_match_p99_s,
        )
    out = Path(args.out)
    plan = plan_capacity(
        args.scenario,
        args.shards,
        args.loads,
        out,
        budget_fraction=args.budget_fraction,
        max_utilisation=args.max_utilisation,
        target=target,
        scale_fleet=not args.fixed_fleet,
        workers=args.workers,
        scheduler=args.scheduler,
        cache_dir=Path(args.cache) if args.cache else None,
    )
    print(plan.table.drop(columns="run_id").to_string(index=False))
    print()
    print(plan.recommendations.to_string(index=False))
    if plan.model is not None:
        m = plan.model
        q = m.alternatives[m.cost.kind]
        print(
            f"\ncost model ({m.matcher}): {m.cost.kind}, {m.cost.formula()}; held-out p99 error "
            f"median {q['holdout_p99_median_rel_err']:.1%}, max {q['holdout_p99_max_rel_err']:.1%}"
        )
    if plan.cities is not None:
        print()
        print(plan.cities.to_string(index=False))
        print()
        print(plan.regions.to_string(index=False))
    for note in plan.notes:
        print(f"note: {note}")
    print(f"capacity plan: {out / 'capacity.md'} ({out / 'capacity.html'})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run a check suite; exit 0 when every gate passes, 1 on a regression, 2 on bad input."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.check import gate_table, run_check

    done = 0

    def tick(row: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        state = "reused" if row["reused"] else "ran"
        print(
            f"  [{done}] {row['scenario']} seed {row['seed']} {row['run_id']} ({state})", flush=True
        )

    out = Path(args.out)
    result = run_check(
        args.suite,
        out,
        baseline=Path(args.baseline) if args.baseline else None,
        update_baseline=args.update_baseline,
        junit=Path(args.junit) if args.junit else None,
        runs_dir=Path(args.runs) if args.runs else None,
        workers=args.workers,
        scheduler=args.scheduler,
        cache_dir=Path(args.cache) if args.cache else None,
        reports=args.reports,
        on_done=tick,
    )
    print(gate_table(result))
    for note in result.notes:
        print(f"note: {note}")
    print(f"summary: {out / 'summary.md'} ({out / 'summary.html'}), {out / 'check.json'}")
    failed = result.failed
    print(
        f"check {result.suite}: {result.status.upper()} ({len(failed)} of {len(result.gates)} "
        "gates failed)"
    )
    return 1 if failed else 0


def cmd_serve_matcher(args: argparse.Namespace) -> int:
    """Serve a matcher over gRPC (the wire form of the v1 contract) until interrupted."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from matching.wire.server import run_server

    return run_server(args, source="serve-matcher")


def cmd_cache(args: argparse.Namespace) -> int:
    """List, prune or clear the travel-time cache."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness import cache

    folder = Path(args.cache) if args.cache else None
    where = cache.cities_dir(folder)
    if args.action == "list":
        entries = cache.list_entries(folder)
        for e in entries:
            print(f"{cache.human(e.bytes):>10}  {e.path.name[:16]}  {e.what}")
        total = sum(e.bytes for e in entries)
        print(f"{len(entries)} entries, {cache.human(total)} in {where}")
    elif args.action == "prune":
        cap = cache.parse_size(args.max_size) if args.max_size is not None else None
        removed = cache.prune(folder, cap)
        for path in removed:
            print(f"removed {path}")
        print(f"pruned {len(removed)} items in {where}")
    else:
        print(f"cleared {cache.human(cache.clear(folder))} from {where}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.html and report.md for a finished run directory."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from reports.html import write_report

    print(f"report: {write_report(Path(args.run_dir))}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Write a side-by-side comparison of several run directories."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from reports.compare import comparison_dir, write_comparison

    dirs = [Path(p) for p in args.run_dirs]
    # By default each comparison gets its own folder, named by the runs it compares.
    out = Path(args.out) if args.out else comparison_dir(dirs, dirs[0].parent)
    print(f"comparison: {write_comparison(dirs, out)}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit a travel model to a replay scenario's recorded rides; write the profile, its
    figures (JSON) and a figure of the factors beside ``--out``."""
    # deferred: each command imports only what it uses, so the CLI starts fast
    from harness.calibrate import calibrate, write_profile

    # deferred: matplotlib only for this command
    from reports.figures.replay import travel_factors_figure

    scenario = _load(args.scenario, None)
    cal = calibrate(
        scenario,
        source=args.scenario,
        base_dir=Path(args.scenario).resolve().parent,
        date_from=args.date_from,
        date_until=args.date_until,
        min_s=args.min_s,
        max_s=args.max_s,
        area=args.area,
        cache_dir=Path(args.cache) if args.cache else None,
    )
    out = Path(args.out)
    if out.parent and not out.parent.is_dir():
        raise InputError("--out", str(out), f"folder {out.parent} does not exist")
    write_profile(out, cal)
    figures = out.with_suffix(".fit.json")
    figures.write_text(json.dumps(cal.figures, indent=2, sort_keys=True) + "\n")
    fig = travel_factors_figure(cal.fit.table, cal.fit.trips_per_cell)
    fig.savefig(out.with_suffix(".png"))
    f = cal.figures
    print(f"split: {f['split']}")
    print(f"comparable trips: {f['comparable_trips']} on {f['comparable_dates']} dates; dropped:")
    for reason, n in f["dropped"].items():
        print(f"  {reason.replace('_', ' ')}: {n}")
    print(f"length term: {'kept' if f['length_term'] else 'not supported by the data'}")
    for part in ("fitted", "held_out"):
        for what in ("model", "free_flow"):
            m = f[part][what]
            if not m["trips"]:
                print(f"{part:>8} {what:>9}: no trips")
                continue
            rho = "n/a" if m["spearman"] is None else f"{m['spearman']:.3f}"
            print(
                f"{part:>8} {what:>9}: {m['trips']} trips, median abs error "
                f"{m['median_abs_pct_error']:.1f}%, bias {m['bias_pct']:+.1f}%, Spearman {rho}"
            )
    print(f"wrote {out}, {figures} and {out.with_suffix('.png')}")
    return 0


def service_warning(metrics: dict[str, Any]) -> str | None:
    """One line saying that the run's matcher service went unanswered, or None for a clean run.

    Such a run is deterministic given which calls failed, but it is not the run its id stands
    for: the headline alone would look like a clean run's (README, "Failure policy")."""
    faults = metrics.get("faults") or {}
    outages = faults.get("service_outages")
    if not outages:
        return None
    return (
        f"warning: the matcher service did not answer for {faults['service_downtime_s']:,.0f} s "
        f"of simulated time ({faults['service_downtime_share']:.1%}, {outages} outage"
        f"{'s' if outages != 1 else ''}); no rider was matched meanwhile, so these results are "
        "not a clean run's and this run directory will not be reused"
    )


def _print_headline(metrics: dict[str, Any], perf: dict[str, Any]) -> None:
    # deferred: each command imports only what it uses, so the CLI starts fast
    from reports.kpis import headline

    for label, value in headline(metrics):
        print(f"  {label:<32} {value}")
    print(
        f"  {'wall time':<32} {perf['wall_s']:.1f} s "
        f"({perf['events_per_s']:,.0f} events/s, city load {perf['city_load_s']:.1f} s)"
    )


def _progress_visible() -> bool:
    """Whether the run's progress bar would show at all. It is transient, and rich draws a
    transient bar only on an interactive terminal (or in Jupyter, or where its environment
    variables say the output is one): with standard output piped or captured it draws
    nothing, so it is not made there (importing rich and its refresh thread cost about
    0.05 s of a run on the critical path)."""
    in_ipython = hasattr(builtins, "get_ipython")  # what IPython (and Jupyter) install
    if in_ipython or any(
        os.environ.get(name) for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR")
    ):
        return True  # rich decides
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


class _ProgressBar:
    """The run's phase on a rich progress bar: while the city's travel-time table is built,
    its rows done / total and rows/s; while simulating, the simulated time, riders arrived so
    far and simulation events/s."""

    def __init__(self, horizon_s: float) -> None:
        # deferred: each command imports only what it uses, so the CLI starts fast
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._horizon_s = horizon_s
        self._progress = Progress(
            TextColumn("{task.fields[phase]:<34}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
            TextColumn("{task.fields[riders]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            transient=True,
        )
        self._task = self._progress.add_task(
            "run",
            total=horizon_s,
            phase="loading the city, drawing demand",
            clock="",
            riders="",
            rate="",
        )
        self._t0: float | None = None  # events/s count from the first simulated step
        self._build_t0: float | None = None  # rows/s count from the build's first report
        self._progress.start()

    def city_rows(self, done: int, total: int) -> None:
        """The city build's progress: ``done`` of ``total`` travel-time rows computed."""
        now = time.perf_counter()
        if self._build_t0 is None:
            self._build_t0 = now
        rate = done / (now - self._build_t0) if now > self._build_t0 else 0.0
        building = done < total
        self._progress.update(
            self._task,
            total=total,
            completed=done,
            phase="building the city's travel times" if building else "drawing demand",
            clock=f"{done:,}/{total:,} rows",
            rate=f"{rate:>10,.0f} rows/s" if building else "",
        )

    def __call__(self, sim_time: float, arrived: int, events: int) -> None:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        h, rem = divmod(int(sim_time), 3600)
        clock = f"t+{h:02d}:{rem // 60:02d}:{rem % 60:02d}"
        rate = events / (now - self._t0) if now > self._t0 else 0.0
        done = sim_time >= self._horizon_s
        self._progress.update(
            self._task,
            total=self._horizon_s,  # after a city build the bar counted rows
            completed=sim_time,
            phase="writing the event log and metrics" if done else "simulating",
            clock=clock,
            riders=f"{arrived:>9,} riders arrived",
            rate=f"{rate:>10,.0f} events/s",
        )

    def close(self) -> None:
        self._progress.stop()


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``error: ridesim run: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="ridesim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a scenario and write a run directory")
    run.add_argument("scenario", help="scenario file (TOML)")
    run.add_argument(
        "--out", default="runs", help="parent folder of the run directory (default: runs)"
    )
    run.add_argument("--seed", type=_seed, help="override the scenario's root seed")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a scenario value, e.g. --set dispatch.matcher=assignment (repeatable)",
    )
    run.add_argument(
        "--cache", help="travel-time cache folder (default: $RIDESIM_CACHE or ~/.cache/ridesim)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true", help="do not write report.html")
    run.set_defaults(fn=cmd_run)

    val = sub.add_parser("validate", help="check a scenario file without running it")
    val.add_argument("scenario")
    val.add_argument("--cache", help="travel-time cache folder (as for run)")
    val.set_defaults(fn=cmd_validate)

    swp = sub.add_parser("sweep", help="run scenario files x varied values x seeds in parallel")
    swp.add_argument("scenarios", nargs="+", help="scenario files")
    swp.add_argument(
        "--vary",
        action="append",
        metavar="KEY=V1,V2,...",
        help="values to sweep, e.g. --vary demand.multiplier=1,2,5 (repeatable: a grid)",
    )
    swp.add_argument(
        "--seeds",
        type=_list_of(_seed),
        help="comma-separated root seeds (default: each scenario's own)",
    )
    swp.add_argument("--out", default="runs", help="parent folder of the run directories")
    swp.add_argument(
        "--workers", type=_positive_int, default=2, help="local worker processes (1: in process)"
    )
    swp.add_argument(
        "--scheduler", help="address of a Dask scheduler (a real cluster) instead of local workers"
    )
    swp.add_argument("--cache", help="travel-time cache folder")
    swp.add_argument("--plot", metavar="KEY", help="draw the KPI curves against this varied key")
    swp.set_defaults(fn=cmd_sweep)

    cap = sub.add_parser("capacity", help="fit the matcher cost model; plan shards and cores")
    cap.add_argument("scenario")
    cap.add_argument(
        "--shards", type=_int_list, default=[1, 2, 4, 8], help="shard counts to measure (1,2,4,8)"
    )
    cap.add_argument(
        "--loads", type=_load_list, default=[1.0, 5.0, 10.0], help="load multipliers (1,5,10)"
    )
    cap.add_argument(
        "--budget-fraction",
        type=_share,
        default=0.3,
        help="matcher SLO: share of the batch window the worst shard's p99 may use (0.3)",
    )
    cap.add_argument(
        "--max-utilisation",
        type=_share,
        default=0.6,
        help="headroom: share of the time a matcher core may be busy (0.6)",
    )
    cap.add_argument("--target-trips-per-day", type=_positive, help="the load to plan for")
    cap.add_argument("--cities", metavar="FILE", help="CSV: city,trip_share,nodes[,region,...]")
    cap.add_argument(
        "--today-trips-per-day", type=_positive, help="today's load (default: target / 10)"
    )
    cap.add_argument(
        "--time-to-match-p99-s", type=_positive, help="rider-facing SLO, checked on the grid"
    )
    cap.add_argument(
        "--fixed-fleet", action="store_true", help="scale only demand with load, not the fleet"
    )
    cap.add_argument("--out", default="runs/capacity")
    cap.add_argument(
        "--workers", type=_positive_int, default=1, help="parallel runs (1: in process)"
    )
    cap.add_argument(
        "--scheduler", help="address of a Dask scheduler (a real cluster) instead of local workers"
    )
    cap.add_argument("--cache", help="travel-time cache folder")
    cap.set_defaults(fn=cmd_capacity)

    chk = sub.add_parser("check", help="the nightly gate: run a suite, judge SLO/baseline/perf")
    chk.add_argument("suite", help="check suite file (TOML), e.g. scenarios/nightly/smoke.toml")
    chk.add_argument("--baseline", metavar="DIR", help="folder holding baseline.json")
    chk.add_argument(
        "--update-baseline", action="store_true", help="write tonight's results as the baseline"
    )
    chk.add_argument("--junit", metavar="FILE", help="JUnit XML path (default: OUT/junit.xml)")
    chk.add_argument("--out", default="runs/check", help="output folder (default: runs/check)")
    chk.add_argument("--runs", metavar="DIR", help="run directories' parent (default: OUT/runs)")
    chk.add_argument(
        "--workers", type=_workers, default=2, help="local worker processes (1: in process)"
    )
    chk.add_argument(
        "--scheduler", help="address of a Dask scheduler (a real cluster) instead of local workers"
    )
    chk.add_argument("--cache", help="travel-time cache folder")
    chk.add_argument(
        "--reports",
        choices=("failed", "all", "none"),
        default="failed",
        help="which runs get a report.html linked from the summary (default: failed)",
    )
    chk.set_defaults(fn=cmd_check)

    srv = sub.add_parser("serve-matcher", help="serve a matcher over gRPC")
    # The same flags as `python -m matching.wire.server`, defined once (a light module).
    add_serve_arguments(srv, default_address="127.0.0.1:50051")
    srv.set_defaults(fn=cmd_serve_matcher)

    cch = sub.add_parser("cache", help="list, prune or clear the travel-time cache")
    cch.add_argument("action", choices=["list", "prune", "clear"])
    cch.add_argument(
        "--max-size",
        help="with prune: remove least recently used entries until the cache is this size "
        "(e.g. 5GB)",
    )
    cch.add_argument("--cache", help="cache folder (default: $RIDESIM_CACHE or ~/.cache/ridesim)")
    cch.set_defaults(fn=cmd_cache)

    rep = sub.add_parser("report", help="write report.html for a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(fn=cmd_report)

    cmp_ = sub.add_parser("compare", help="compare run directories side by side")
    cmp_.add_argument("run_dirs", nargs="+")
    cmp_.add_argument("--out", help="output folder (default: <runs>/compare)")
    cmp_.set_defaults(fn=cmd_compare)

    cal = sub.add_parser(
        "calibrate", help="fit a travel model to a replay scenario's recorded ride times"
    )
    cal.add_argument("scenario", help="replay scenario whose trip file records durations")
    cal.add_argument("--out", required=True, help="profile to write (TOML)")
    cal.add_argument("--from", dest="date_from", metavar="DATE", help="first fit date")
    cal.add_argument("--until", dest="date_until", metavar="DATE", help="last fit date")
    cal.add_argument(
        "--min-s", type=_seconds, default=60.0, help="shortest recorded ride compared (s)"
    )
    cal.add_argument(
        "--max-s", type=_seconds, default=4 * 3600.0, help="longest recorded ride compared (s)"
    )
    cal.add_argument(
        "--area",
        choices=("inside", "snap"),
        default="inside",
        help="inside (default): both ends inside the network; snap: within max_snap_m of it",
    )
    cal.add_argument("--cache", help="travel-time cache folder")
    cal.set_defaults(fn=cmd_calibrate)
    return parser


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _finite_positive(value: float) -> bool:
    return 0 < value < math.inf


_seconds = bounded_arg("_seconds", float, _finite_positive, "seconds > 0")
_seed = bounded_arg(
    "_seed", int, lambda v: 0 <= v < 2**63, "a whole number >= 0", "a whole number >= 0 and < 2**63"
)
_positive = bounded_arg("_positive", float, _finite_positive, "a number > 0")
_positive_float = bounded_arg(
    "_positive_float", float, _finite_positive, "a number > 0", "a finite number > 0"
)
_share = bounded_arg("_share", float, lambda v: 0 < v <= 1, "a share in (0, 1]")
_positive_int = bounded_arg("_positive_int", int, lambda v: v >= 1, "a whole number >= 1")
_sorted_ints = bounded_arg(
    "_sorted_ints",
    _ints,
    lambda vs: bool(vs) and all(1 <= v <= 1024 for v in vs),
    "comma-separated whole numbers 1..1024",
)
_sorted_floats = bounded_arg(
    "_sorted_floats",
    _floats,
    lambda vs: all(_finite_positive(v) for v in vs),
    "comma-separated numbers > 0",
)


def _int_list(text: str) -> list[int]:
    """Shard counts: comma-separated whole numbers 1..1024, sorted, each once."""
    return sorted(set(_sorted_ints(text)))


def _load_list(text: str) -> list[float]:
    """Load multipliers: comma-separated numbers > 0, sorted, each once."""
    return sorted(set(_sorted_floats(text)))


def _list_of(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An argparse type for comma-separated values of ``item``."""

    def parse(text: str) -> list[Any]:
        parts = [p.strip() for p in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
        return [item(p) for p in parts]

    parse.__name__ = f"list of {item.__name__.lstrip('_')}"
    return parse


_workers = _positive_int
"""Local worker counts (``check --workers``): a whole number >= 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python cli.py`` and the ``ridesim`` console command."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except InputError as exc:
        print(f"error: {exc}".replace("\n", "\nerror: "), file=sys.stderr)
        return EXIT_INPUT


def run_program(argv: Sequence[str] | None = None) -> int:
    """:func:`main` for a process that ends when it returns (``python cli.py ...``)."""
    try:
        return main(argv)
    finally:
        # The process ends now, and its objects with it. Frozen, they are not all traversed
        # once more by the collection Python runs at exit: about 0.2 s after a run, whose
        # imports and results are a few hundred thousand objects.
        gc.freeze()


def end_process(status: int) -> NoReturn:
    """End this process with ``status`` as Python would, less its teardown: the exit handlers
    run and the standard streams are flushed, but the interpreter does not free every module's
    objects one by one (about 0.04 s after a run, whose process holds a few hundred thousand).
    With threads still running, the ordinary exit (which waits for them) instead."""
    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()  # what the ordinary exit runs first; it empties the registry
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe or stream: Python's own exit reports it
        sys.exit(status)
    os._exit(status)


if __name__ == "__main__":
    end_process(run_program())

"""The command line's promise: bad input of any kind is one clear line and exit 2.

One parametrised corpus covers scenario, city, trip and plug-in files, resource limits and
flags: each case must exit 2, print exactly one line on stderr naming the file (or flag), the
field and what was expected, print no traceback, and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import cli

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
schema_version = 1
name = "corpus"
seed = 1

[city]
{city}

[time]
start = "08:00"
duration_h = {hours}

[demand]
{demand}

[fleet]
size = {fleet}

[dispatch]
matcher = "{matcher}"
{params}
{extra}
"""

GRID = 'kind = "grid"\nrows = 6\ncols = 6\nblock_m = 200\nspeed_kmh = 30'
POISSON = "requests_per_h = 200"
CAMPO = 'name = "campo_grande"'
REPLAY = (
    'model = "replay"\npath = "trips.csv"\ntime_format = "iso"\nalign = "clock"\n'
    'destinations = "sampled"\n'
    'columns = { pickup_time = "t", pickup_lon = "lon", pickup_lat = "lat" }'
)
TRIPS_OK = "t,lon,lat\n2020-01-01 08:10:00,-54.62,-20.46\n2020-01-01 08:20:00,-54.61,-20.45\n"
NO_ROADS_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="60.0" lon="24.0"/>
  <node id="2" lat="60.001" lon="24.001"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
</osm>
"""


def scenario(**kw: object) -> str:
    """The corpus scenario text with some parts replaced."""
    parts = {
        "city": GRID,
        "hours": 0.25,
        "demand": POISSON,
        "fleet": 10,
        "matcher": "batched_greedy",
        "params": "",
        "extra": "",
    }
    parts.update(kw)
    return BASE.format(**parts)


def bad_matcher(mode: str) -> str:
    return scenario(
        matcher="tests.harness.test_run:BadMatcher", params=f'params = {{ mode = "{mode}" }}'
    )


# name -> (scenario text or None, extra files {name: text or bytes}, words in the message)
FILE_CASES: dict[str, tuple[str | None, dict[str, str | bytes], str]] = {
    "missing-file": (None, {}, "scenario file not found"),
    "not-toml": ("name = \n[[", {}, "not valid TOML"),
    "not-utf8": (None, {"s.toml": b"name = '\xff\xfe'"}, "not UTF-8"),
    "deep-nesting": (None, {"s.toml": "x = " + "[" * 100_000 + "]" * 100_000}, "nested"),
    "unknown-key": (scenario(extra="[riders]\npatience_sx = 3"), {}, "riders.patience_sx"),
    "missing-seed": (scenario().replace("seed = 1\n", ""), {}, "seed: required key"),
    "negative-multiplier": (
        scenario(demand=POISSON + "\nmultiplier = -3"),
        {},
        "demand.multiplier: must be > 0",
    ),
    "bad-clock": (scenario().replace('"08:00"', '"25:00"'), {}, "time.start"),
    "no-duration": (scenario().replace("duration_h = 0.25\n", ""), {}, "duration"),
    "profile-23": (
        scenario(demand=POISSON + "\nprofile = [" + ", ".join(["1.0"] * 23) + "]"),
        {},
        "demand.profile",
    ),
    "bad-name": (scenario().replace('"corpus"', '"my run"'), {}, "name: must match"),
    "schema-2": (scenario().replace("schema_version = 1", "schema_version = 2"), {}, "schema"),
    "fleet-shares": (
        scenario(extra="[fleet.x]\n")
        .replace("size = 10", 'size = 10\nshifts = [{ start = "06:00", hours = 8, share = 0.5 }]')
        .replace("[fleet.x]\n", ""),
        {},
        "shift shares must add up to 1",
    ),
    "grid-rows-0": (scenario(city=GRID.replace("rows = 6", "rows = 0")), {}, "city.rows"),
    "city-kind": (scenario(city='kind = "sphere"'), {}, "city"),
    "unknown-city": (scenario(city='name = "atlantis"'), {}, "unknown city 'atlantis'"),
    "osm-missing": (scenario(city='osm = "nowhere.osm"'), {}, "city.osm: file not found"),
    "osm-corrupt": (
        scenario(city='osm = "c.osm"'),
        {"c.osm": b"\x00\x01garbage" * 50},
        "city.osm: cannot read",
    ),
    "osm-no-roads": (scenario(city='osm = "c.osm"'), {"c.osm": NO_ROADS_OSM}, "no drivable roads"),
    "trips-missing": (scenario(city=CAMPO, demand=REPLAY), {}, "demand.path: trip file not found"),
    "trips-header-only": (
        scenario(city=CAMPO, demand=REPLAY),
        {"trips.csv": "t,lon,lat\n"},
        "demand",
    ),
    "trips-text-coords": (
        scenario(city=CAMPO, demand=REPLAY),
        {"trips.csv": "t,lon,lat\n2020-01-01 08:10:00,west,south\n"},
        "demand",
    ),
    "trips-out-of-range": (
        scenario(city=CAMPO, demand=REPLAY),
        {"trips.csv": "t,lon,lat\n2020-01-01 08:10:00,-254.6,-120.4\n"},
        "demand",
    ),
    "trips-swapped": (
        scenario(city=CAMPO, demand=REPLAY),
        {
            "trips.csv": TRIPS_OK.replace("-54.62,-20.46", "-20.46,-54.62").replace(
                "-54.61,-20.45", "-20.45,-54.61"
            )
        },
        "demand",
    ),
    "trips-no-column": (
        scenario(city=CAMPO, demand=REPLAY),
        {"trips.csv": "t,x,lat\n2020-01-01 08:10:00,-54.62,-20.46\n"},
        "lon",
    ),
    "matcher-unknown": (scenario(matcher="telepathy"), {}, "dispatch.matcher: unknown matcher"),
    "matcher-no-module": (
        scenario(matcher="no_such_pkg.mod:M"),
        {},
        "dispatch.matcher: cannot import module",
    ),
    "matcher-bad-param": (
        scenario(matcher="assignment", params="params = { kk = 3 }"),
        {},
        "dispatch.params.kk: bad parameters",
    ),
    "reposition-unknown": (
        scenario(extra='[drivers]\nreposition = "teleport"'),
        {},
        "drivers.reposition",
    ),
    "surge-unknown": (scenario(extra='[surge]\npolicy = "auction"'), {}, "surge.policy"),
    "matcher-ctor-raises": (bad_matcher("ctor"), {}, "constructor raised RuntimeError"),
    "matcher-params-not-json": (bad_matcher("params"), {}, "get_params() must return"),
    "matcher-returns-none": (bad_matcher("none"), {}, "returned NoneType"),
    "matcher-returns-dict": (bad_matcher("dict"), {}, "returned dict"),
    "matcher-raises": (bad_matcher("raise"), {}, "match() raised KeyError"),
    "matcher-unknown-ids": (bad_matcher("unknown"), {}, "not in the request"),
    "matcher-driver-twice": (bad_matcher("twice"), {}, "a driver assigned twice"),
    "huge-requests": (
        scenario(demand="requests_per_h = 1e12"),
        {},
        "demand.requests_per_h: this run needs about",
    ),
    "huge-fleet": (scenario(fleet=2_000_000_000), {}, "fleet.size: this run needs about"),
    "huge-duration": (scenario(hours="1e9"), {}, "time.duration_h: this run needs about"),
    "huge-crashes": (
        scenario(extra="[faults]\ndriver_crash_per_h = 1e15"),
        {},
        "faults.driver_crash_per_h: this run needs",
    ),
    "tiny-mtbf": (
        scenario(extra="[faults]\nmatcher_mtbf_h = 1e-9\nmatcher_mttr_min = 1e-9"),
        {},
        "faults.matcher_mtbf_h: this run needs",
    ),
}


def call(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``cli.main(argv)`` in ``cwd``: exit status, stdout and stderr."""
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def assert_one_clear_line(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_bad_files_exit_2_with_one_line_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path, case: str, command: str
) -> None:
    """Each bad scenario, city, trip or plug-in file (and each scenario too big for the
    machine) fails `validate` and `run` alike: exit 2, one line naming the file and field."""
    text, files, words = FILE_CASES[case]
    for name, body in files.items():
        target = tmp_path / name
        target.write_bytes(body) if isinstance(body, bytes) else target.write_text(body)
    if text is not None:
        (tmp_path / "s.toml").write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [command, "s.toml", "--cache", str(cache_dir)]
    if command == "run":
        argv += ["--out", "runs", "--no-progress", "--no-report"]
    code, _, err = call(argv, tmp_path, monkeypatch)
    assert_one_clear_line(code, err, "s.toml", words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _file(tmp: Path) -> str:
    (tmp / "afile").write_text("x")
    return "afile"


FLAG_CASES: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "run-seed-negative": (lambda t: ["run", "s.toml", "--seed", "-4"], ("--seed",)),
    "run-seed-text": (lambda t: ["run", "s.toml", "--seed", "x"], ("--seed",)),
    "run-set-no-equals": (lambda t: ["run", "s.toml", "--set", "oops"], ("--set", "KEY=VALUE")),
    "run-set-bad-value": (
        lambda t: ["run", "s.toml", "--set", "demand.multiplier=-2"],
        ("demand.multiplier",),
    ),
    "run-out-file": (
        lambda t: ["run", "s.toml", "--out", _file(t), "--no-progress"],
        ("afile", "expected a folder"),
    ),
    "sweep-seeds-negative": (lambda t: ["sweep", "s.toml", "--seeds", "-1"], ("--seeds",)),
    "sweep-seeds-text": (lambda t: ["sweep", "s.toml", "--seeds", "1,a"], ("--seeds",)),
    "sweep-workers-0": (lambda t: ["sweep", "s.toml", "--workers", "0"], ("--workers", ">= 1")),
    "sweep-workers-negative": (
        lambda t: ["sweep", "s.toml", "--workers", "-1"],
        ("--workers", ">= 1"),
    ),
    "sweep-vary-bad": (lambda t: ["sweep", "s.toml", "--vary", "x"], ("--vary", "KEY=V1")),
    "sweep-out-file": (
        lambda t: ["sweep", "s.toml", "--out", _file(t), "--workers", "1"],
        ("afile", "expected a folder"),
    ),
    "capacity-shards-text": (lambda t: ["capacity", "s.toml", "--shards", "a"], ("--shards",)),
    "capacity-shards-zero": (lambda t: ["capacity", "s.toml", "--shards", "0,a"], ("--shards",)),
    "capacity-loads-text": (lambda t: ["capacity", "s.toml", "--loads", "x"], ("--loads",)),
    "serve-port-range": (
        lambda t: ["serve-matcher", "assignment", "--address", "127.0.0.1:99999"],
        ("--address", "0..65535"),
    ),
    "serve-params-json": (
        lambda t: ["serve-matcher", "assignment", "--params", "{k:1}"],
        ("--params", "JSON object"),
    ),
    "serve-tls-missing": (
        lambda t: ["serve-matcher", "assignment", "--tls-cert", "no.pem", "--tls-key", "no.key"],
        ("--tls-cert", "PEM file not found"),
    ),
    "serve-token-unset": (
        lambda t: ["serve-matcher", "assignment", "--token-env", "RIDESIM_UNSET_VARIABLE"],
        ("--token-env", "expected a set"),
    ),
    "serve-max-request-0": (
        lambda t: ["serve-matcher", "assignment", "--max-request-mb", "0"],
        ("--max-request-mb",),
    ),
    "serve-max-concurrent-0": (
        lambda t: ["serve-matcher", "assignment", "--max-concurrent", "0"],
        ("--max-concurrent",),
    ),
    "validate-no-file": (lambda t: ["validate", "nothing.toml"], ("nothing.toml", "not found")),
    "cache-bad-action": (lambda t: ["cache", "shrink"], ("invalid choice",)),
    "cache-max-size": (lambda t: ["cache", "prune", "--max-size", "lots"], ("--max-size",)),
    "unknown-command": (lambda t: ["fly"], ("invalid choice",)),
}


@pytest.mark.parametrize("case", sorted(FLAG_CASES))
def test_bad_flags_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Each bad flag value: exit 2, one line naming the flag and what it expects, nothing
    written beside the scenario."""
    (tmp_path / "s.toml").write_text(scenario())
    make_argv, words = FLAG_CASES[case]
    argv = make_argv(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = call(argv, tmp_path, monkeypatch)
    assert_one_clear_line(code, err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_validate_prints_the_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`validate` on a good scenario says ok and prints riders, drivers, events, memory, disk."""
    (tmp_path / "s.toml").write_text(scenario())
    code, out, err = call(["validate", "s.toml"], tmp_path, monkeypatch)
    assert code == 0, err
    assert "ok" in out
    for word in ("riders", "drivers", "events", "memory", "disk"):
        assert word in out


def test_serve_matcher_on_a_port_in_use_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second serve-matcher on a port a server holds exits 2 with one line naming
    --address, instead of sharing the port."""
    from matching.wire.server import serve_named

    server, port = serve_named("batched_greedy", {}, "127.0.0.1:0")
    try:
        argv = ["serve-matcher", "assignment", "--address", f"127.0.0.1:{port}"]
        code, _, err = call([*argv, "--max-seconds", "1"], tmp_path, monkeypatch)
        assert_one_clear_line(code, err, "--address", "already in use")
    finally:
        server.stop(grace=0.5).wait(5.0)


def test_sweep_prints_a_table_and_where_its_folder_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sweep` shows its table as a table (no raw pandas index) and names its own folder."""
    grid = str(Path(__file__).resolve().parents[1] / "scenarios" / "grid_small.toml")
    argv = ["sweep", grid, "--vary", "time.duration_h=0.5", "--workers", "1", "--out", "runs"]
    code, out, err = call(argv, tmp_path, monkeypatch)
    assert code == 0, err
    assert "┃ time.duration_h" in out or "time.duration_h ┃" in out
    line = next(x for x in out.splitlines() if x.startswith("sweep table: "))
    table = Path(line.removeprefix("sweep table: ").split(" (runs in")[0])
    assert table.parent.parent == Path("runs") / "sweeps" and (tmp_path / table).is_file()


def test_run_shows_the_city_build_rows_then_the_simulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` on a road network not yet cached puts the table build's rows done / total on the
    progress bar (the phase, the count, a rate), then the simulation; a second run loads the
    cached table and shows no build phase."""
    from tests.cities.test_tables import grid_osm

    seen: list[tuple[str, str, str, float, float | None]] = []

    class Recording(cli._ProgressBar):
        def _note(self, what: str) -> None:
            task = self._progress.tasks[0]
            phase, clock = task.fields["phase"], task.fields["clock"]
            seen.append((what, phase, clock, task.completed, task.total))

        def city_rows(self, done: int, total: int) -> None:
            super().city_rows(done, total)
            self._note("city")

        def __call__(self, sim_time: float, arrived: int, events: int) -> None:
            super().__call__(sim_time, arrived, events)
            self._note("sim")

    monkeypatch.setattr(cli, "_ProgressBar", Recording)
    monkeypatch.setattr(cli, "_progress_visible", lambda: True)  # as on a terminal
    grid_osm(tmp_path / "g.osm", 12)
    (tmp_path / "s.toml").write_text(scenario(city='osm = "g.osm"'))
    argv = ["run", "s.toml", "--out", "runs", "--cache", "cache", "--no-report"]
    code, _, err = call(argv, tmp_path, monkeypatch)
    assert code == 0, err
    city = [s for s in seen if s[0] == "city"]
    total = city[0][4]
    assert total is not None and total > 0
    assert [s[3] for s in city] == sorted({s[3] for s in city})  # rows only go up
    assert city[-1][3] == total and city[-1][2] == f"{int(total):,}/{int(total):,} rows"
    assert all(s[1] == "building the city's travel times" for s in city[:-1])
    first_sim = next(i for i, s in enumerate(seen) if s[0] == "sim")
    assert all(s[0] == "city" for s in seen[:first_sim])  # the build comes first
    assert seen[first_sim][1] == "simulating" and seen[first_sim][4] == 0.25 * 3600
    seen.clear()
    code, _, err = call(argv, tmp_path, monkeypatch)
    assert code == 0, err
    assert seen and not [s for s in seen if s[0] == "city"]  # cached: no build phase


def test_run_makes_no_progress_bar_where_it_would_not_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With standard output captured (no terminal), `run` makes no progress bar (rich would
    draw nothing); a terminal, rich's FORCE_COLOR, or IPython still gets one."""
    made: list[float] = []

    class Recording(cli._ProgressBar):
        def __init__(self, horizon_s: float) -> None:
            made.append(horizon_s)
            super().__init__(horizon_s)

    monkeypatch.setattr(cli, "_ProgressBar", Recording)
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delattr("builtins.get_ipython", raising=False)
    (tmp_path / "s.toml").write_text(scenario())
    argv = ["run", "s.toml", "--out", "runs", "--no-report"]
    code, _, err = call(argv, tmp_path, monkeypatch)
    assert code == 0, err
    assert made == []
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert cli._progress_visible()
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setattr("builtins.get_ipython", lambda: None, raising=False)  # IPython, Jupyter
    assert cli._progress_visible()
    monkeypatch.delattr("builtins.get_ipython")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    assert cli._progress_visible()


def test_run_writes_the_report_through_its_helper(tmp_path: Path) -> None:
    """`run` with its report prints the report's path under --out as given (as before the
    helper process wrote it), and the report is the one written in this process. (The CLI
    runs in a child process: its helper forks, and this test process may hold gRPC threads.)"""
    import subprocess
    import sys

    from reports.html import write_report

    (tmp_path / "s.toml").write_text(scenario())
    argv = [sys.executable, str(ROOT / "cli.py"), "run", "s.toml", "--out", "runs", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("report: "))
    path = Path(line.removeprefix("report: "))
    assert not path.is_absolute() and path.parts[0] == "runs" and path.name == "report.html"
    html = (tmp_path / path).read_bytes()
    assert write_report(tmp_path / path.parent).read_bytes() == html


def test_the_program_freezes_its_heap_before_exiting(tmp_path: Path) -> None:
    """`python cli.py` (run_program) leaves every object frozen when it returns, so Python's
    collection at exit skips them; main() itself, called in a process that goes on, does not."""
    import subprocess
    import sys

    code = (
        "import gc, cli; "
        f"cli.main(['cache', 'list', '--cache', {str(tmp_path)!r}]); "
        "after_main = gc.get_freeze_count(); "
        f"status = cli.run_program(['cache', 'list', '--cache', {str(tmp_path)!r}]); "
        "print(status, after_main, gc.get_freeze_count() > 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0 0 True"


def test_end_process_runs_exit_handlers_and_flushes(tmp_path: Path) -> None:
    """`python cli.py` ends through end_process: its status, its buffered output and its exit
    handlers survive skipping the interpreter's teardown; with a thread still running, the
    ordinary exit waits for it."""
    import subprocess
    import sys

    marker = tmp_path / "atexit"
    code = (
        "import atexit, pathlib, sys, threading, time, cli; "
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran'); "
        "print('x' * 5000, end=''); print('tail'); "
        "sys.stderr.write('err'); "
        "t = threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))) "
        "if sys.argv[1] == 'thread' else None; "
        "t.start() if t else None; "
        "cli.end_process(3)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for mode in ("alone", "thread"):
        marker.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-c", code, mode], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout.startswith("x" * 5000 + "tail\n")
        assert proc.stdout.endswith("thread\n") == (mode == "thread")
        assert proc.stderr == "err"
        assert marker.read_text() == "ran"


def test_run_warns_when_its_matcher_service_went_unanswered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` whose matcher service did not answer for part of the run ends with one warning
    line saying for how long and that the results are not a clean run's; a clean run has none."""
    down = "params = { down_from_s = 300, down_until_s = 600 }"
    matcher = "tests.sim.unavailable_matcher:DownBetween"
    (tmp_path / "down.toml").write_text(scenario(matcher=matcher, params=down))
    (tmp_path / "clean.toml").write_text(scenario(matcher=matcher))
    argv = ["--out", str(tmp_path / "runs"), "--no-progress", "--no-report"]
    assert cli.main(["run", str(tmp_path / "down.toml"), *argv]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    (metrics_path,) = (tmp_path / "runs").glob("*/metrics.json")
    faults = json.loads(metrics_path.read_text())["faults"]
    assert faults["service_outages"] == 1 and 0 < faults["service_downtime_s"] <= 300
    said = (
        f"did not answer for {faults['service_downtime_s']:,.0f} s of simulated time "
        f"({faults['service_downtime_share']:.1%}, 1 outage)"
    )
    assert said in warnings[0]
    assert "not a clean run's" in warnings[0]
    assert cli.main(["run", str(tmp_path / "clean.toml"), *argv]) == 0
    assert "warning:" not in capsys.readouterr().err

"""Files the user may not read and folders they may not write, for real: the CLI runs in a
child process that obeys file permissions, and each case must exit 2 with one line naming
the file, no traceback, and nothing left behind.

The tests run as root, who reads and writes anything. As root, the child is started through
util-linux's ``setpriv`` with the two capabilities that let root ignore permissions
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) dropped from its bounding set, so mode bits bind it like
any user. It stays uid 0 because the interpreter may live where only root may go (a home folder
of mode 700), which rules out switching to "nobody"; and no ``preexec_fn`` is used, since code
run between fork and exec is unsafe in a test process with threads (gRPC's, the sweeps'). As
any other user, chmod alone does it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.run import run_scenario
from harness.scenario import load_scenario
from tests.cities.conftest import write_osm

ROOT = Path(__file__).resolve().parents[1]
SETPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
PREFIX = SETPRIV if os.geteuid() == 0 else []
"""What the child is started through: as root, without the capabilities that bypass file
permissions."""


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless a child process here is really refused a file of mode 000."""
    if PREFIX and shutil.which("setpriv") is None:
        pytest.skip("running as root without util-linux's setpriv to drop the capabilities")
    probe = tmp_path_factory.mktemp("probe") / "secret"
    probe.write_text("x")
    probe.chmod(0)
    try:
        proc = subprocess.run(
            [*PREFIX, sys.executable, "-c", f"open({str(probe)!r}).read()"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        probe.chmod(0o600)
    if "PermissionError" not in proc.stderr:
        pytest.skip(
            "a child process here may still read a file of mode 000: "
            f"exit {proc.returncode}, {proc.stderr.strip()[-300:]!r}"
        )


def cli(cwd: Path, *argv: str) -> tuple[int, str]:
    """``cli.py argv`` in a child bound by file permissions: exit status and stderr."""
    proc = subprocess.run(
        [*PREFIX, sys.executable, str(ROOT / "cli.py"), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "ERROR"},
    )
    return proc.returncode, proc.stderr


def assert_one_line(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


@contextmanager
def mode(path: Path, bits: int) -> Iterator[None]:
    """``path`` with permission ``bits`` meanwhile (restored, so tmp_path can be removed)."""
    before = path.stat().st_mode & 0o7777
    path.chmod(bits)
    try:
        yield
    finally:
        path.chmod(before)


SCENARIO = """\
schema_version = 1
name = "perm"
seed = 1

[city]
{city}

[time]
start = "08:00"
duration_h = 0.25

[demand]
{demand}

[fleet]
size = 5
"""
GRID = 'kind = "grid"\nrows = 4\ncols = 4\nblock_m = 200\nspeed_kmh = 30'
OSM = 'osm = "c.osm"'
POISSON = "requests_per_h = 60"
REPLAY = (
    'model = "replay"\npath = "trips.csv"\ntime_format = "iso"\nalign = "clock"\n'
    'destinations = "sampled"\n'
    'columns = { pickup_time = "t", pickup_lon = "lon", pickup_lat = "lat" }'
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scenario folder: s.toml (grid city), replay.toml (a small OSM city replaying
    trips.csv), c.osm, trips.csv, and a travel-time cache."""
    n = 4
    nodes = {
        i * n + j + 1: (24.0 + 0.002 * j, 60.0 + 0.001 * i) for i in range(n) for j in range(n)
    }
    rows = [[i * n + j + 1 for j in range(n)] for i in range(n)]
    ways = [(100 + i, row, {"highway": "residential"}) for i, row in enumerate(rows)]
    ways += [(200 + j, [row[j] for row in rows], {"highway": "residential"}) for j in range(n)]
    write_osm(tmp_path / "c.osm", nodes, ways)
    (tmp_path / "trips.csv").write_text(
        "t,lon,lat\n2020-01-01 08:05:00,24.003,60.001\n2020-01-01 08:09:00,24.005,60.002\n"
    )
    (tmp_path / "s.toml").write_text(SCENARIO.format(city=GRID, demand=POISSON))
    (tmp_path / "replay.toml").write_text(SCENARIO.format(city=OSM, demand=REPLAY))
    (tmp_path / "cache").mkdir()
    return tmp_path


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` but the cache (what a failed command must not add to)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "cache" not in p.parts)


RUN = ("--no-progress", "--no-report", "--cache", "cache")


@pytest.mark.parametrize(
    ("scenario", "unreadable", "words"),
    [
        ("s.toml", "s.toml", ("s.toml: cannot read the scenario file: Permission denied",)),
        ("replay.toml", "trips.csv", ("demand.path: cannot read the trip file", "trips.csv")),
        ("replay.toml", "c.osm", ("city.osm: cannot read", "c.osm: Permission denied")),
    ],
    ids=["scenario", "trips", "city-extract"],
)
def test_unreadable_input_files_are_one_line(
    unprivileged: None,
    folder: Path,
    scenario: str,
    unreadable: str,
    words: tuple[str, ...],
) -> None:
    """A scenario file, a trip CSV or a city extract without read permission: `run` exits 2
    with one line naming the file; nothing is written. (`validate` sets the market up through
    the same code; it is run in the next test.)"""
    before = listing(folder)
    with mode(folder / unreadable, 0):
        code, err = cli(folder, "run", scenario, "--out", "runs", *RUN)
    assert_one_line(code, err, *words)
    assert listing(folder) == before


def test_scenario_in_a_folder_that_cannot_be_searched(unprivileged: None, folder: Path) -> None:
    """A scenario inside a folder without search permission is one line naming the file."""
    locked = folder / "locked"
    locked.mkdir()
    shutil.copy(folder / "s.toml", locked / "s.toml")
    with mode(locked, 0o600):
        code, err = cli(folder, "validate", "locked/s.toml", "--cache", "cache")
    assert_one_line(code, err, "locked/s.toml: cannot read the scenario file")


@pytest.mark.parametrize("target", ["out", "out/sub"])
def test_unwritable_out_is_one_line(unprivileged: None, folder: Path, target: str) -> None:
    """`run --out` in a folder the user may not write (itself, or the parent of a folder to
    make): exit 2, one line naming the folder; no run directory, no partial."""
    (folder / "out").mkdir()
    with mode(folder / "out", 0o555):
        code, err = cli(folder, "run", "s.toml", "--out", target, *RUN)
    assert_one_line(code, err, target, "cannot write run directories", "Permission denied")
    assert list((folder / "out").iterdir()) == []


def test_unwritable_city_cache_is_one_line(unprivileged: None, folder: Path) -> None:
    """A city cache folder the user may not write is named as the cache, not as the extract."""
    with mode(folder / "cache", 0o555):
        code, err = cli(folder, "validate", "replay.toml", "--cache", "cache")
    assert_one_line(code, err, "city.osm: cannot write the city cache", "--cache")


def test_check_with_unreadable_suite_scenario_or_unwritable_out(
    unprivileged: None, folder: Path
) -> None:
    """`check`: an unreadable suite file, an unreadable scenario it names, and an --out the user
    may not write are each one line naming the file (they were tracebacks)."""
    suite = folder / "suite.toml"
    suite.write_text('name = "perm"\nseeds = [1]\n\n[[scenario]]\nfile = "s.toml"\n')
    args = ("--workers", "1", "--cache", "cache", "--reports", "none")
    with mode(suite, 0):
        code, err = cli(folder, "check", "suite.toml", "--out", "chk", *args)
    assert_one_line(code, err, "suite.toml: cannot read the suite file: Permission denied")
    with mode(folder / "s.toml", 0):
        code, err = cli(folder, "check", "suite.toml", "--out", "chk", *args)
    assert_one_line(code, err, "s.toml: cannot read the scenario file: Permission denied")
    (folder / "ro").mkdir()
    with mode(folder / "ro", 0o555):
        code, err = cli(folder, "check", "suite.toml", "--out", "ro/chk", *args)
    assert_one_line(code, err, "ro", "Permission denied")
    assert not (folder / "chk").exists() and list((folder / "ro").iterdir()) == []


def test_report_and_compare_with_unreadable_metrics_or_unwritable_out(
    unprivileged: None, folder: Path
) -> None:
    """`report` and `compare` on a run whose metrics.json may not be read, and `compare --out`
    in a folder the user may not write: one line naming the file (they were tracebacks)."""
    scenario = load_scenario(folder / "s.toml")
    run = run_scenario(
        scenario, source="s.toml", base_dir=folder, out=folder / "runs", cache_dir=folder / "cache"
    ).run_dir
    with mode(run / "metrics.json", 0):
        for argv in (["report", str(run)], ["compare", str(run), str(run), "--out", "cmp"]):
            code, err = cli(folder, *argv)
            assert_one_line(code, err, "metrics.json: cannot read the run metrics")
    (folder / "ro").mkdir()
    with mode(folder / "ro", 0o555):
        code, err = cli(folder, "compare", str(run), str(run), "--out", "ro/cmp")
    assert_one_line(code, err, "ro/cmp: cannot write the comparison there: Permission denied")
    assert not (folder / "cmp").exists() and list((folder / "ro").iterdir()) == []

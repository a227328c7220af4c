"""Scenario files: valid ones load into frozen types; each malformed one gives one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from core.errors import InputError
from harness.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]

VALID = """
name = "t"
seed = 1
[city]
kind = "grid"
rows = 4
cols = 4
block_m = 100
speed_kmh = 36
[time]
start = "08:00"
duration_h = 1
[demand]
requests_per_h = 60
[fleet]
size = 3
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def test_valid_scenario_loads_frozen_with_defaults(tmp_path: Path) -> None:
    """A minimal scenario loads, fills defaults, and cannot be modified."""
    s = load_scenario(write(tmp_path, VALID))
    assert isinstance(s, Scenario)
    assert s.time.horizon_s == 3600.0 and s.time.start_s == 8 * 3600
    assert s.dispatch.matcher == "batched_greedy" and s.riders.patience_s == 300
    with pytest.raises(pydantic.ValidationError):
        s.seed = 2  # type: ignore[misc]


def test_shipped_scenarios_are_valid() -> None:
    """Every scenario file in scenarios/ passes validation."""
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    assert files
    for path in files:
        load_scenario(path)


BAD = [
    # (case id, transform of VALID, expected field, expected words in the message)
    (
        "missing-table",
        lambda v: v.split("[demand]")[0] + "[fleet]\nsize = 3\n",
        "demand",
        "required key is missing",
    ),
    ("missing-seed", lambda v: replace(v, "seed = 1\n", ""), "seed", "required key is missing"),
    ("wrong-type", lambda v: replace(v, "size = 3", 'size = "many"'), "fleet.size", "integer"),
    (
        "negative-rate",
        lambda v: replace(v, "requests_per_h = 60", "requests_per_h = -5"),
        "demand.requests_per_h",
        "must be > 0, got -5",
    ),
    (
        "negative-multiplier",
        lambda v: replace(v, "requests_per_h = 60", "requests_per_h = 60\nmultiplier = -3"),
        "demand.multiplier",
        "must be > 0, got -3",
    ),
    (
        "unknown-key",
        lambda v: replace(v, "requests_per_h = 60", "requests_per_h = 60\nrate = 5"),
        "demand.rate",
        "unknown key",
    ),
    ("bad-clock", lambda v: replace(v, '"08:00"', '"25:00"'), "time.start", "HH:MM"),
    (
        "two-durations",
        lambda v: replace(v, "duration_h = 1", "duration_h = 1\nduration_s = 10"),
        "time",
        "exactly one of duration_h or duration_s",
    ),
    (
        "short-profile",
        lambda v: replace(v, "requests_per_h = 60", "requests_per_h = 60\nprofile = [1.0, 2.0]"),
        "demand.profile",
        "24 hourly weights, got 2",
    ),
    (
        "shift-shares",
        lambda v: v + '\nshifts = [{start = "06:00", hours = 8, share = 0.5}]\n',
        "fleet.shifts",
        "add up to 1",
    ),
    (
        "negative-patience",
        lambda v: v + "[riders]\npatience_s = -1\n",
        "riders.patience_s",
        "must be >= 0",
    ),
    (
        "bad-patience-kind",
        lambda v: v + '[riders]\npatience = "gaussian"\n',
        "riders.patience",
        "must be one of",
    ),
    (
        "hotspot-no-position",
        lambda v: replace(
            v,
            "requests_per_h = 60",
            "requests_per_h = 60\nhotspot_share = 0.5\nhotspots = [{weight = 1, radius_m = 100}]",
        ),
        "demand.hotspots.0",
        "lon and lat",
    ),
    (
        "share-without-hotspots",
        lambda v: replace(v, "requests_per_h = 60", "requests_per_h = 60\nhotspot_share = 0.5"),
        "demand",
        "needs at least one",
    ),
    ("bad-name", lambda v: replace(v, 'name = "t"', 'name = "a b/c"'), "name", "must match"),
    (
        "bad-schema-version",
        lambda v: "schema_version = 2\n" + v,
        "schema_version",
        "must be one of",
    ),
]


@pytest.mark.parametrize("case,transform,field,words", BAD, ids=[b[0] for b in BAD])
def test_malformed_scenario_names_file_field_and_expectation(
    tmp_path, case, transform, field, words
) -> None:
    """Each malformed scenario raises InputError naming the file, the field and what is expected."""
    path = write(tmp_path, transform(VALID))
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert any(f == field for f, _ in info.value.problems), info.value.problems
    assert words in message, message


def test_not_toml_is_reported(tmp_path: Path) -> None:
    """A file that is not TOML gives a parse error naming the file."""
    path = write(tmp_path, "name = = 3\n[")
    with pytest.raises(InputError, match="not valid TOML"):
        load_scenario(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A scenario path that does not exist gives a clear error."""
    with pytest.raises(InputError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_binary_file_is_reported(tmp_path: Path) -> None:
    """A binary file is rejected as not TOML, not with a decoding traceback."""
    path = tmp_path / "bin.toml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="not valid TOML"):
        load_scenario(path)


CLI_BAD = {
    "negative-multiplier": (
        lambda v: replace(v, "requests_per_h = 60", "requests_per_h = 60\nmultiplier = -3"),
        "demand.multiplier: must be > 0, got -3",
    ),
    "unknown-matcher": (
        lambda v: v + '[dispatch]\nmatcher = "telepathy"\n',
        "dispatch.matcher: unknown matcher 'telepathy'",
    ),
    "missing-osm": (
        lambda v: (
            v.split("[city]")[0]
            + '[city]\nosm = "no/such/extract.osm.pbf"\n'
            + v.split("speed_kmh = 36\n")[1]
        ),
        "city.osm",
    ),
    "no-roads": (None, "no drivable roads"),
    "corrupt-osm": (None, "city.osm"),
    "unknown-city": (
        lambda v: (
            v.split("[city]")[0] + '[city]\nname = "atlantis"\n' + v.split("speed_kmh = 36\n")[1]
        ),
        "city.name",
    ),
}

NO_ROADS_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="60.0" lon="24.0"/>
  <node id="2" lat="60.001" lon="24.001"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
</osm>
"""


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", sorted(CLI_BAD))
def test_cli_bad_input_exits_2_without_run_directory(
    tmp_path: Path, case: str, command: str
) -> None:
    """`cli.py run` and `validate` on bad input print the clear error, exit 2, write no run."""
    transform, words = CLI_BAD[case]
    if case in ("no-roads", "corrupt-osm"):
        osm = tmp_path / "city.osm"
        if case == "no-roads":
            osm.write_text(NO_ROADS_OSM)
        else:
            osm.write_bytes(b"\x00\x01garbage" * 100)
        text = (
            VALID.split("[city]")[0]
            + '[city]\nosm = "city.osm"\n'
            + VALID.split("speed_kmh = 36\n")[1]
        )
    else:
        text = transform(VALID)
    path = write(tmp_path, text)
    out = tmp_path / "runs"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "run",
            str(path),
            "--out",
            str(out),
            "--no-progress",
            "--cache",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and words in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_cli_flag_errors_exit_2(tmp_path: Path) -> None:
    """A bad flag value is a usage error with status 2."""
    path = write(tmp_path, VALID)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", str(path), "--seed", "-4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--seed" in proc.stderr


def test_cli_validate_accepts_shipped_scenarios() -> None:
    """`cli.py validate` says ok and exits 0 for the default scenario."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "validate",
            str(ROOT / "scenarios" / "default.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


def test_overrides_set_dotted_keys(tmp_path: Path) -> None:
    """--set style overrides replace nested values, parse TOML values, and are validated."""
    from harness.scenario import parse_overrides

    path = write(tmp_path, VALID)
    over = parse_overrides(["dispatch.matcher=assignment", "demand.multiplier=2.5", "fleet.size=9"])
    s = load_scenario(path, overrides=over)
    assert (s.dispatch.matcher, s.demand.multiplier, s.fleet.size) == ("assignment", 2.5, 9)
    with pytest.raises(InputError, match="demand.multiplier: must be > 0"):
        load_scenario(path, overrides=parse_overrides(["demand.multiplier=-1"]))
    with pytest.raises(InputError, match="--set"):
        parse_overrides(["no_equals_sign"])


def test_cli_serve_matcher_bad_input_exits_2() -> None:
    """`cli.py serve-matcher` with an unknown matcher or non-JSON params exits 2 clearly."""
    for extra, words in (
        (["telepathy"], "unknown matcher 'telepathy'"),
        (["assignment", "--params", "{k:1}"], "--params: expected a JSON object"),
    ):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "serve-matcher", *extra, "--max-seconds", "1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr

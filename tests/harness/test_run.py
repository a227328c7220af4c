"""Whole runs: the run directory, determinism, and the invariants of every event log."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import harness.run
from cities import PlaneSpace
from cities.zones import zones_for
from core.schemas import EVENTS_SCHEMA, read_events
from harness.run import peak_rss_mb, reset_peak_rss, run_scenario, use_system_arrow_pool
from harness.scenario import load_scenario
from tests.scenarios import assert_invariants, run, small_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_run_directory_has_every_artifact(tmp_path: Path, cache_dir: Path) -> None:
    """A finished run directory holds manifest, events, metrics, perf and the city tables."""
    scenario = small_scenario()
    result = run(scenario, tmp_path, cache_dir)
    names = sorted(p.name for p in result.run_dir.iterdir())
    for want in (
        "events.parquet",
        "manifest.json",
        "metrics.json",
        "perf.json",
        "nodes.parquet",
        "roads.parquet",
        "matcher_calls.parquet",
    ):
        assert want in names
    assert result.run_dir.name == result.run_id
    assert not list((tmp_path / "runs").glob("*.partial"))
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["scenario"] == scenario.canonical()
    assert manifest["seed_entropy"] == str(scenario.seed)
    assert manifest["matcher"]["name"] == "batched_greedy"
    assert read_events(result.run_dir / "events.parquet").schema.equals(
        EVENTS_SCHEMA, check_metadata=False
    )


def test_same_seed_gives_byte_identical_outputs(tmp_path: Path, cache_dir: Path) -> None:
    """Same scenario and seed twice: events.parquet and metrics.json are byte-identical."""
    scenario = small_scenario()
    a = run(scenario, tmp_path, cache_dir, "a")
    b = run(scenario, tmp_path, cache_dir, "b")
    assert a.run_id == b.run_id
    for name in ("events.parquet", "metrics.json", "manifest.json"):
        assert (a.run_dir / name).read_bytes() == (b.run_dir / name).read_bytes(), name


def test_different_seed_gives_different_log(tmp_path: Path, cache_dir: Path) -> None:
    """Another seed gives another run id and another event log."""
    a = run(small_scenario(), tmp_path, cache_dir, "a")
    b = run(small_scenario(seed=12), tmp_path, cache_dir, "b")
    assert a.run_id != b.run_id
    assert (a.run_dir / "events.parquet").read_bytes() != (
        b.run_dir / "events.parquet"
    ).read_bytes()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"dispatch": {"matcher": "immediate_greedy", "batch_window_s": 0}},
        {"dispatch": {"matcher": "assignment", "batch_window_s": 20}},
        {"dispatch": {"decision_delay_s": 4, "decision_delay_per_request_s": 0.05}},
        {
            "riders": {"patience_s": 0, "patience": "fixed"},
            "dispatch": {"matcher": "immediate_greedy", "batch_window_s": 0},
        },
        {"demand": {"multiplier": 4}},
        {"city": {"kind": "plane", "side_m": 2000, "speed_mps": 8}, "demand": {"hotspot_share": 0}},
        {
            "surge": {"policy": "ratio", "interval_s": 120},
            "demand": {"multiplier": 4},
            "drivers": {"reposition": "surge", "reposition_after_s": 60},
        },
        {
            "travel": {"congestion": [1.3] * 24, "actual_noise_cv": 0.2, "quote_noise_cv": 0.1},
            "drivers": {"reposition": "demand", "accept": "logit"},
        },
    ],
    ids=[
        "batched",
        "immediate",
        "assignment",
        "decision-delay",
        "zero-patience",
        "4x-load",
        "plane",
        "surge",
        "traffic",
    ],
)
def test_invariants_hold(tmp_path: Path, cache_dir: Path, overrides) -> None:
    """Every scenario variant's event log satisfies all invariants and its counts add up."""
    scenario = small_scenario(**overrides)
    result = run(scenario, tmp_path, cache_dir)
    assert_invariants(result, scenario, tmp_path, cache_dir)
    events = read_events(result.run_dir / "events.parquet").to_pandas()
    n_req = int((events.kind == "request").sum())
    done = int((events.kind == "dropoff").sum())
    cancelled = int((events.kind == "cancel").sum())
    assigned_open = n_req - done - cancelled
    assert n_req > 0 and done > 0
    assert 0 <= assigned_open <= n_req
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    quotes = int((events.kind == "quote").sum())
    assert manifest["counts"]["riders"] == (quotes if quotes else n_req)


def test_load_multiplier_scales_requests(tmp_path: Path, cache_dir: Path) -> None:
    """demand.multiplier = 10 gives about ten times the requests of 1x."""
    one = run(small_scenario(), tmp_path, cache_dir, "one")
    ten = run(small_scenario(demand={"multiplier": 10}), tmp_path, cache_dir, "ten")
    n1 = json.loads((one.run_dir / "manifest.json").read_text())["counts"]["riders"]
    n10 = json.loads((ten.run_dir / "manifest.json").read_text())["counts"]["riders"]
    assert 8.5 < n10 / n1 < 11.5


def test_shift_end_lets_driver_finish_trip(tmp_path: Path, cache_dir: Path) -> None:
    """Drivers whose shift ends go offline, never in the middle of a ride."""
    result = run(small_scenario(), tmp_path, cache_dir)
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    off = ev[ev.kind == "driver_offline"]
    assert len(off) > 0  # the 30-minute shift block ends inside the hour
    # check_event_log's driver cycle rule forbids offline between assign and dropoff
    assert_invariants(result, small_scenario(), tmp_path, cache_dir)


def test_default_scenario_runs_on_the_shipped_city(tmp_path: Path, cache_dir: Path) -> None:
    """The README's main job, shortened: the default scenario runs on Campo Grande from the
    repo alone, with the city's usual congestion, and its report is written."""
    from harness.run import build_market
    from harness.scenario import load_scenario
    from reports.html import write_report

    path = Path(__file__).resolve().parents[2] / "scenarios" / "default.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 0.5})
    market, _ = build_market(scenario, source=str(path), base_dir=path.parent, cache_dir=cache_dir)
    assert market.travel.congestion is not None and max(market.travel.congestion) > 1.0
    result = run_scenario(
        scenario, source=str(path), base_dir=path.parent, out=tmp_path / "runs", cache_dir=cache_dir
    )
    assert result.metrics["requests"]["completed"] > 0
    assert write_report(result.run_dir).is_file()


def test_sharded_dispatch_never_crosses_a_shard_border(tmp_path: Path, cache_dir: Path) -> None:
    """With 4 shards every shard is asked separately (per-shard latency in perf.json) and no
    driver is assigned a pickup in another shard's area."""
    from matching.sharding import partition_nodes

    scenario = small_scenario(dispatch={"shards": 4})
    result = run(scenario, tmp_path, cache_dir)
    assert_invariants(result, scenario, tmp_path, cache_dir)
    calls = pq.read_table(result.run_dir / "matcher_calls.parquet").to_pandas()
    assert set(calls.shard_id) == {0, 1, 2, 3}
    perf = json.loads((result.run_dir / "perf.json").read_text())
    assert set(perf["matcher"]["per_shard"]) == {"0", "1", "2", "3"}
    nodes = pq.read_table(result.run_dir / "nodes.parquet").to_pandas()
    trips = pq.read_table(result.run_dir / "trips.parquet").to_pandas()
    weights = 1.0 + np.bincount(trips.pickup_node, minlength=len(nodes))
    shard = partition_nodes(nodes[["x_m", "y_m"]].to_numpy(), 4, weights)
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    assign = ev[ev.kind == "assign"]
    assert len(assign) > 0
    assert np.array_equal(shard[assign.node.astype(int)], shard[assign.dest_node.astype(int)])


def test_matcher_calls_file_has_one_row_per_call_in_call_order(
    tmp_path: Path, cache_dir: Path
) -> None:
    """matcher_calls.parquet (from the dispatcher's typed records) has a row per matcher call
    in call order: every assignment's batch is among them, with at least as many requests and
    drivers as it assigned, and perf.json counts the same calls."""
    scenario = small_scenario(dispatch={"shards": 2})
    result = run(scenario, tmp_path, cache_dir)
    calls = pq.read_table(result.run_dir / "matcher_calls.parquet").to_pandas()
    assert len(calls) > 10 and bool(np.all(np.diff(calls.batch_id) >= 0))
    assert set(calls.shard_id) <= {0, 1} and bool((calls.wall_ms > 0).all())
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    assign = ev[ev.kind == "assign"]
    assigned = assign.groupby(assign.detail.astype(int)).size()
    assert assigned.sum() > 10
    per_batch = calls.groupby("batch_id")[["n_requests", "n_drivers"]].sum()
    assert set(assigned.index) <= set(per_batch.index)
    assert bool((per_batch.loc[assigned.index, "n_requests"] >= assigned).all())
    assert bool((per_batch.loc[assigned.index, "n_drivers"] >= assigned).all())
    perf = json.loads((result.run_dir / "perf.json").read_text())
    assert perf["matcher"]["calls"] == len(calls)


def test_remote_matcher_gives_byte_identical_run(tmp_path: Path, cache_dir: Path) -> None:
    """The same scenario dispatched through a gRPC-served assignment matcher (loopback) writes
    exactly the events and metrics of the in-process matcher."""
    pytest.importorskip("grpc")
    from matching.wire.server import serve_named

    server, port = serve_named("assignment", {"k": 20})
    try:
        local = run(small_scenario(dispatch={"matcher": "assignment"}), tmp_path, cache_dir, "l")
        remote_scenario = small_scenario(
            dispatch={
                "matcher": "matching.wire.client:RemoteMatcher",
                "params": {"address": f"127.0.0.1:{port}", "k": 20, "timeout_s": 10.0},
            }
        )
        remote = run(remote_scenario, tmp_path, cache_dir, "r")
    finally:
        server.stop(grace=1.0).wait(5.0)
    for name in ("events.parquet", "metrics.json"):
        assert (local.run_dir / name).read_bytes() == (remote.run_dir / name).read_bytes(), name


class ExplodingMatcher:
    """A plug-in matcher that fails on its 30th call (a crash in the middle of a run)."""

    def __init__(self, after: int = 30) -> None:
        self.after = after
        self._calls = 0

    def get_params(self) -> dict:
        return {"after": self.after}

    def match(self, request):
        from matching.registry import make_matcher

        self._calls += 1
        if self._calls >= self.after:
            raise RuntimeError("matcher crashed")
        return make_matcher("batched_greedy", {}).match(request)


def test_crash_leaves_readable_prefix_and_no_result(tmp_path: Path, cache_dir: Path) -> None:
    """A run that dies mid-way leaves runs/<id>.partial/events.arrows readable up to the last
    flushed chunk, and no runs/<id>/ that could pass for a result."""
    scenario = small_scenario(dispatch={"matcher": "tests.harness.test_run:ExplodingMatcher"})
    with pytest.raises(RuntimeError, match="matcher crashed"):
        run_scenario(
            scenario,
            source="test",
            base_dir=tmp_path,
            out=tmp_path / "runs",
            cache_dir=cache_dir,
            event_chunk_rows=64,
        )
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith(".partial")
    prefix = read_events(runs[0] / "events.arrows")
    assert prefix.num_rows >= 64 and prefix.num_rows % 64 == 0
    assert prefix.column("seq").to_pylist() == list(range(prefix.num_rows))


def test_run_id_covers_the_city_definition(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing a named city's definition (its congestion 1.0 -> 3.0) changes the run id, and
    the manifest records the definition's hash and the resolved congestion."""
    import cities.spec
    from harness.run import build_market, run_id_for
    from harness.scenario import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / "default.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 0.1})

    def market_for(congestion: str) -> tuple[str, object]:
        defs = tmp_path / congestion
        defs.mkdir()
        text = (cities.spec.DEFS_DIR / "campo_grande.toml").read_text()
        head, _, rest = text.partition("congestion = [")
        _, _, tail = rest.partition("]")
        (defs / "campo_grande.toml").write_text(
            f"{head}congestion = [{', '.join([congestion] * 24)}]{tail}"
        )
        monkeypatch.setattr(cities.spec, "DEFS_DIR", defs)
        market, _ = build_market(
            scenario, source=str(path), base_dir=path.parent, cache_dir=cache_dir
        )
        return run_id_for(scenario, market, "code"), market

    id1, m1 = market_for("1.0")
    id3, m3 = market_for("3.0")
    assert id1 != id3
    assert m3.resolved["travel"]["congestion"] == [3.0] * 24
    assert m1.inputs["city_def"]["sha256"] != m3.inputs["city_def"]["sha256"]


def test_run_id_covers_a_plugin_module_outside_ridesim(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A matcher given by import path from the user's own folder: editing its file changes the
    run id (the code hash covers only ridesim's packages)."""
    import importlib
    import sys

    from harness.run import build_market, run_id_for

    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "my_matcher_mod.py"
    body = (
        "from matching.matchers.batched_greedy import BatchedGreedy as _B\n"
        "class Mine(_B):\n    pass\n"
    )
    ids = []
    for extra in ("", "# an edit\n"):
        module.write_text(body + extra)
        sys.modules.pop("my_matcher_mod", None)
        importlib.invalidate_caches()
        scenario = small_scenario(dispatch={"matcher": "my_matcher_mod:Mine"})
        market, _ = build_market(scenario, source="t", base_dir=tmp_path, cache_dir=cache_dir)
        assert market.inputs["plugin.matcher"]["path"] == str(module.resolve())
        ids.append(run_id_for(scenario, market, "code"))
    sys.modules.pop("my_matcher_mod", None)
    assert ids[0] != ids[1]


def test_two_writers_of_one_run_id_run_it_once(tmp_path: Path, cache_dir: Path) -> None:
    """Two concurrent runs of the same id into one folder: one simulates, the other waits and
    reuses its result; no partial directory or lock file is left."""
    from concurrent.futures import ThreadPoolExecutor

    scenario = small_scenario()

    def go(_: int):
        return run_scenario(
            scenario,
            source="t",
            base_dir=tmp_path,
            out=tmp_path / "runs",
            cache_dir=cache_dir,
            skip_existing=True,
        )

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(go, range(2))
    assert a.run_id == b.run_id and sorted([a.reused, b.reused]) == [False, True]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [a.run_id]


def test_out_that_is_a_file_is_an_input_error(tmp_path: Path, cache_dir: Path) -> None:
    """--out naming an existing file is refused before anything runs, naming the path."""
    from core.errors import InputError

    out = tmp_path / "afile"
    out.write_text("x")
    with pytest.raises(InputError, match="expected a folder") as err:
        run(small_scenario(), tmp_path, cache_dir, "afile")
    assert err.value.source == str(out)
    with pytest.raises(InputError, match="is a file"):
        run(small_scenario(), tmp_path, cache_dir, "afile/below")


class BadMatcher:
    """A plug-in whose ``mode`` picks how it breaks the contract."""

    def __init__(self, mode: str = "none") -> None:
        if mode == "ctor":
            raise RuntimeError("cannot connect to my database")
        self.mode = mode

    def get_params(self) -> dict:
        return {"mode": self.mode, "f": (lambda: 0) if self.mode == "params" else 0}

    def match(self, request):
        from matching.api import MatchResponse
        from matching.registry import make_matcher

        good = make_matcher("batched_greedy", {}).match(request)
        if self.mode == "none":
            return None
        if self.mode == "dict":
            return {"request_id": [0]}
        if self.mode == "raise":
            raise KeyError("boom")
        rid, did, eta = good.request_id, good.driver_id, good.pickup_eta_s
        if self.mode == "unknown":
            rid = rid + 1000
        elif self.mode == "twice":
            did = np.full_like(did, did[0])
        return MatchResponse(rid, did, eta, good.unmatched_id, good.unmatched_reason)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("ctor", "constructor raised RuntimeError: cannot connect"),
        ("params", "get_params() must return a JSON object"),
        ("none", "returned NoneType"),
        ("dict", "returned dict"),
        ("raise", "match() raised KeyError"),
        ("unknown", "not in the request"),
        ("twice", "a driver assigned twice"),
    ],
)
def test_broken_plugin_is_an_input_error_before_the_run(
    tmp_path: Path, cache_dir: Path, mode: str, words: str
) -> None:
    """A plug-in that raises in its constructor, has non-JSON params or answers a smoke call
    with garbage is refused at set-up (validate and run), naming dispatch.matcher."""
    from core.errors import InputError
    from harness.run import validate_scenario

    scenario = small_scenario(
        dispatch={"matcher": "tests.harness.test_run:BadMatcher", "params": {"mode": mode}}
    )
    with pytest.raises(InputError, match="dispatch.matcher") as err:
        validate_scenario(scenario, source="s.toml", base_dir=tmp_path, cache_dir=cache_dir)
    assert words in str(err.value)
    with pytest.raises(InputError, match="dispatch.matcher"):
        run(scenario, tmp_path, cache_dir)
    assert not (tmp_path / "runs").exists()


def test_event_log_on_a_full_disk_is_one_clear_error(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills while the log is written (the free-space estimate fooled) ends the run
    with an InputError naming --out, no ENOSPC traceback; the complete batches stay readable."""
    import harness.estimate
    from core.errors import InputError
    from tests.small_disk import small_disk

    monkeypatch.setattr(harness.estimate, "free_disk", lambda path: 10**12)
    scenario = small_scenario(demand={"multiplier": 6})
    with small_disk(tmp_path / "disk", "256k") as disk:
        with pytest.raises(InputError, match="disk filled up") as err:
            run_scenario(
                scenario,
                source="t",
                base_dir=tmp_path,
                out=disk / "runs",
                cache_dir=cache_dir,
                event_chunk_rows=512,
            )
        assert err.value.source == str(disk / "runs")
        (partial,) = (disk / "runs").glob("*.partial")
        prefix = read_events(partial / "events.arrows")
        assert prefix.num_rows > 0 and prefix.num_rows % 512 == 0


def test_kept_city_is_reused_and_changes_no_byte(tmp_path: Path, cache_dir: Path) -> None:
    """With keep_city (sweep workers) a second run on the same road network reuses the loaded
    space, and every run writes exactly the events of a run that loaded the city afresh; an
    edited extract is loaded again."""
    import harness.run as run_mod
    from tests.cities.test_tables import grid_osm

    osm = grid_osm(tmp_path / "g.osm", 8)
    scenario = small_scenario(city={"osm": str(osm)}, fleet={"size": 10, "shifts": []})

    def go(name: str, keep: bool):
        return run_scenario(
            scenario,
            source="t",
            base_dir=tmp_path,
            out=tmp_path / name,
            cache_dir=cache_dir,
            keep_city=keep,
        )

    fresh = go("fresh", False)
    first = go("k1", True)
    kept = run_mod._KEPT["space"]
    second = go("k2", True)
    assert run_mod._KEPT["space"] is kept
    for r in (first, second):
        a = (fresh.run_dir / "events.parquet").read_bytes()
        assert (r.run_dir / "events.parquet").read_bytes() == a
    osm.write_text(osm.read_text().replace("</osm>", "<!-- edited -->\n</osm>"))
    go("k3", True)
    assert run_mod._KEPT["space"] is not kept
    run_mod._KEPT.clear()


def test_plugin_beside_the_scenario_needs_no_pythonpath(tmp_path: Path) -> None:
    """A matcher module in the scenario's folder is found by `cli.py validate` and `run`
    without PYTHONPATH (the folder is importable while plug-ins are resolved)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "beside_mod.py").write_text(
        "from matching.matchers.batched_greedy import BatchedGreedy\n"
        "class Beside(BatchedGreedy):\n    pass\n"
    )
    scenario = (root / "scenarios" / "grid_small.toml").read_text()
    scenario = scenario.replace('matcher = "batched_greedy"', 'matcher = "beside_mod:Beside"')
    scenario = scenario.replace("duration_h = 2", "duration_h = 0.2")
    (tmp_path / "s.toml").write_text(scenario)
    for cmd in (["validate"], ["run", "--no-report", "--no-progress", "--out", "runs"]):
        proc = subprocess.run(
            [sys.executable, str(root / "cli.py"), cmd[0], "s.toml", *cmd[1:]],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"},
        )
        assert proc.returncode == 0, proc.stderr


def test_unreadable_trip_file_is_an_input_error(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trip file the user may not read (simulated: the tests run as root, who may read
    anything) is an InputError on demand.path, not a traceback."""
    import builtins

    from core.errors import InputError

    trips = tmp_path / "trips.csv"
    trips.write_text("t,lon,lat\n2020-01-01 08:10:00,-54.62,-20.46\n")
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if str(file) == str(trips):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    from harness.scenario import parse_scenario

    scenario = parse_scenario(
        {
            "name": "unreadable",
            "seed": 1,
            "city": {"name": "campo_grande"},
            "time": {"start": "08:00", "duration_h": 0.5},
            "demand": {
                "model": "replay",
                "path": "trips.csv",
                "time_format": "iso",
                "align": "clock",
                "destinations": "sampled",
                "columns": {"pickup_time": "t", "pickup_lon": "lon", "pickup_lat": "lat"},
            },
            "fleet": {"size": 5},
        },
        "test",
    )
    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: guarded(self, *a, **k))
    with pytest.raises(InputError, match="cannot read the trip file") as err:
        run(scenario, tmp_path, cache_dir)
    assert err.value.field == "demand.path"


class DyingMatcher:
    """A matcher whose process dies on its 40th call (a served matcher that crashes)."""

    def __init__(self, after: int = 40) -> None:
        self.after = after
        self._calls = 0

    def get_params(self) -> dict:
        return {"after": self.after}

    def match(self, request):
        import os

        from matching.registry import make_matcher

        self._calls += 1
        if self._calls >= self.after:
            os._exit(1)
        return make_matcher("batched_greedy", {}).match(request)


def test_matcher_failing_mid_run_is_one_line(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A plug-in raising in the middle of a run, and a served matcher whose process dies and
    stays down for max_failed_calls calls, end `cli.py run` with exit 2 and one line naming
    dispatch.matcher, no traceback (an outage that ends is survived: test_wire_outage.py)."""
    import socket
    import subprocess
    import sys

    import cli

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            str(root / "cli.py"),
            "serve-matcher",
            "tests.harness.test_run:DyingMatcher",
            "--address",
            f"127.0.0.1:{port}",
            "--max-seconds",
            "60",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving" in server.stdout.readline()
        base = (root / "scenarios" / "grid_small.toml").read_text()
        cases = {
            "local.toml": base.replace(
                'matcher = "batched_greedy"', 'matcher = "tests.harness.test_run:ExplodingMatcher"'
            ),
            "remote.toml": base.replace(
                'matcher = "batched_greedy"',
                'matcher = "matching.wire.client:RemoteMatcher"\n'
                f'params = {{ address = "127.0.0.1:{port}", timeout_s = 5.0, '
                "retry_backoff_s = 0.01, max_failed_calls = 3 }",
            ),
        }
        monkeypatch.syspath_prepend(str(root))
        for name, text in cases.items():
            (tmp_path / name).write_text(text)
            code = cli.main(
                [
                    "run",
                    str(tmp_path / name),
                    "--out",
                    str(tmp_path / "runs"),
                    "--cache",
                    str(cache_dir),
                    "--no-progress",
                    "--no-report",
                ]
            )
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2, err
            assert len(lines) == 1 and "dispatch.matcher: failed during the run" in lines[0], err
    finally:
        server.kill()
        server.wait()


def test_run_leaves_no_cyclic_garbage_and_the_heap_unfrozen(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's simulation (held in reference cycles) is collected when run_scenario returns,
    and the objects frozen meanwhile are handed back (a heap frozen before stays frozen)."""
    sims: list[weakref.ref] = []
    real_simulate = harness.run.simulate

    def recording(*args, **kwargs):
        sim = real_simulate(*args, **kwargs)
        sims.append(weakref.ref(sim))
        return sim

    monkeypatch.setattr(harness.run, "simulate", recording)
    assert gc.get_freeze_count() == 0
    run(small_scenario(), tmp_path, cache_dir, "a")
    assert sims and sims[0]() is None
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        run(small_scenario(seed=12), tmp_path, cache_dir, "b")
        assert sims[1]() is None
        assert gc.get_freeze_count() > 0  # (frozen objects freed by refcount leave the count)
    finally:
        gc.unfreeze()


def test_a_run_collects_young_garbage_less_often_and_restores_the_threshold(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the simulation runs, the youngest generation's threshold is the run's; Python's
    own comes back when the run ends, also when it fails."""
    seen: list[tuple[int, int, int]] = []
    real_simulate = harness.run.simulate

    def recording(*args, **kwargs):
        seen.append(gc.get_threshold())
        return real_simulate(*args, **kwargs)

    before = gc.get_threshold()
    monkeypatch.setattr(harness.run, "simulate", recording)
    run(small_scenario(), tmp_path, cache_dir, "a")
    assert seen == [(harness.run.RUN_GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before

    def failing(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.run, "simulate", failing)
    with pytest.raises(RuntimeError, match="boom"):
        run(small_scenario(seed=12), tmp_path, cache_dir, "b")
    assert gc.get_threshold() == before


def test_manifest_describes_the_drawn_demand_of_the_default_scenario(tmp_path: Path) -> None:
    """A real run of the shipped default scenario records its demand statistics (not {})."""
    path = ROOT / "scenarios" / "default.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 1})
    result = run_scenario(scenario, source=str(path), base_dir=path.parent, out=tmp_path)
    demand = json.loads((result.run_dir / "manifest.json").read_text())["demand"]
    events = read_events(result.run_dir / "events.parquet").to_pandas()
    assert demand["requests"] == int((events.kind == "quote").sum())  # every rider is quoted
    assert demand["requests_peak_hour"] >= demand["requests_per_h_mean"] > 0
    assert 0 < demand["distinct_pickup_nodes"] <= demand["requests"]
    assert demand["trip_straight_line_m_median"] > 100


def test_peak_memory_is_the_runs_own_in_a_long_lived_process(tmp_path: Path) -> None:
    """A run after a large allocation in the same process (a sweep worker) reports its own
    peak memory, not the process's earlier high-water mark."""
    if not reset_peak_rss():
        pytest.skip("this system cannot reset the peak-memory mark (/proc/self/clear_refs)")
    big = np.ones(400 * 2**20 // 8)  # 400 MB, touched
    before = peak_rss_mb()
    del big
    path = ROOT / "scenarios" / "grid_small.toml"
    scenario = load_scenario(path, overrides={"time.duration_h": 0.5})
    result = run_scenario(scenario, source=str(path), base_dir=path.parent, out=tmp_path)
    assert before > 400
    assert result.perf["peak_rss_mb"] < before - 300


def test_a_run_gives_arrow_the_system_allocator_unless_the_user_chose_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_scenario makes the C library's allocator Arrow's pool (mimalloc's page purging cost
    a tenth of a plane run in system time); a pool chosen by ARROW_DEFAULT_MEMORY_POOL stays."""
    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        assert not use_system_arrow_pool()
        assert pa.default_memory_pool().backend_name == "mimalloc"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        path = ROOT / "scenarios" / "grid_small.toml"
        scenario = load_scenario(path, overrides={"time.duration_h": 0.1})
        run_scenario(scenario, source=str(path), base_dir=path.parent, out=tmp_path)
        assert pa.default_memory_pool().backend_name == "system"
        assert not use_system_arrow_pool()  # already the system pool
    finally:
        pa.set_memory_pool(before)


def test_nodes_table_names_each_node_cell_and_none_for_later_nodes(tmp_path: Path) -> None:
    """nodes.parquet gives every node zoned with the run its cell's name, and no cell (null)
    to a node a plane added after the zoning (a repositioning target)."""
    plane = PlaneSpace(side_m=3000.0)
    plane.locate(np.array([[10.0, 10.0], [2500.0, 100.0], [1500.0, 2900.0], [20.0, 30.0]]))
    zones = zones_for(plane, cell_m=1000.0)
    plane.locate(np.array([[900.0, 900.0]]))
    harness.run._write_city(tmp_path, plane, zones)
    cells = pq.read_table(tmp_path / "nodes.parquet").column("cell").to_pylist()
    assert cells == ["g0_0", "g2_0", "g1_2", "g0_0", None]


def test_importing_the_run_leaves_the_heavy_optional_libraries_out() -> None:
    """A run's fixed cost stays small: importing harness.run loads neither the report's
    libraries, nor the KD-tree (a plane's candidate search imports it when it searches), nor
    the parallel or wire ones."""
    heavy = ("scipy.spatial", "matplotlib", "jinja2", "grpc", "distributed", "rich")
    code = f"import harness.run, sys; print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_code_hash_follows_every_edit_of_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code hash (part of every run id) reads settled files' digests from a cache keyed on
    their stat records: an edit changes it, even one of the same size in the same tick of the
    file clock, and touching a file without changing it does not."""
    import os

    for d in harness.run.CODE_DIRS:
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.py").write_text(f"x = '{d}'\n")
        os.utime(tmp_path / d / "a.py", ns=(10**18, 10**18))  # settled long ago
    monkeypatch.setattr(harness.run, "ROOT", tmp_path)
    first = harness.run.code_hash()
    assert harness.run.code_hash() == first
    target = tmp_path / "sim" / "a.py"
    target.write_text("x = 'SIM'\n")  # same size, new content, modified just now
    edited = harness.run.code_hash()
    assert edited != first
    target.write_text("x = 'Sim'\n")  # again, likely within the same tick
    assert harness.run.code_hash() not in (first, edited)
    target.write_text("x = 'SIM'\n")
    os.utime(target, ns=(11 * 10**17, 11 * 10**17))  # settled: its digest is kept
    assert harness.run.code_hash() == edited
    # The kept digest is what counts while the stat record stays (the cache is used)...
    target.write_text("x = 'sIm'\n")
    os.utime(target, ns=(11 * 10**17, 11 * 10**17))
    assert harness.run.code_hash() == edited
    # ...and the file is read again when its time moves, even to an older one.
    os.utime(target, ns=(10**18 + 1, 10**18 + 1))
    assert harness.run.code_hash() not in (first, edited)
    (tmp_path / "sim" / "b.py").write_text("")  # a new module
    assert harness.run.code_hash() != edited

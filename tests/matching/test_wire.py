"""The wire form of the matching contract: protobuf round trips, gRPC serving, RemoteMatcher.

Every server here binds 127.0.0.1 on a free port and is stopped by a fixture finaliser (or a
``finally``) with a bounded grace period.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pickle
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from core.errors import InputError
from matching import registry
from matching.api import (
    API_VERSION,
    CandidatePairs,
    MatchRequest,
    MatchResponse,
    UnmatchedReason,
)
from matching.candidates import to_wire
from matching.checks import (
    check_matcher,
    check_optimal_vs_brute_force,
    line_instance,
    random_instance,
)
from matching.registry import available, make_matcher
from matching.wire import (
    RemoteMatcher,
    WireError,
    register_remote,
    request_from_proto,
    request_to_proto,
    response_from_proto,
    response_to_proto,
    serve,
    serve_named,
)
from matching.wire import ridesim_matching_pb2 as pb
from matching.wire import ridesim_matching_pb2_grpc as pb_grpc

WIRE = Path(__file__).resolve().parents[2] / "matching" / "wire"
GENERATED = ("ridesim_matching_pb2.py", "ridesim_matching_pb2.pyi", "ridesim_matching_pb2_grpc.py")
GRACE_S = 1.0

# (seed, n_requests, n_drivers, kind), empty tables included.
INSTANCES = [
    (1, 6, 6, "plane"),
    (2, 9, 4, "grid"),
    (3, 4, 10, "graph"),
    (4, 25, 30, "plane"),
    (5, 30, 20, "graph"),
    (6, 40, 60, "grid"),
    (7, 0, 5, "plane"),
    (8, 5, 0, "grid"),
    (9, 0, 0, "graph"),
    (10, 1, 1, "plane"),
]


def _stop(server: grpc.Server) -> None:
    server.stop(grace=GRACE_S).wait(GRACE_S + 5.0)


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[grpc.Server, str]]]:
    """Start servers (via ``serve`` or ``serve_named``) that are all stopped at teardown."""
    servers: list[grpc.Server] = []

    def _start(
        matcher: Any, params: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[grpc.Server, str]:
        if isinstance(matcher, str):
            server, port = serve_named(matcher, params, "127.0.0.1:0", **kw)
        else:
            server, port = serve(matcher, "127.0.0.1:0", **kw)
        servers.append(server)
        return server, f"127.0.0.1:{port}"

    yield _start
    for server in servers:
        _stop(server)


@pytest.fixture(scope="module")
def builtin_addresses() -> Iterator[dict[str, str]]:
    """One server per built-in matcher (default params), shared by the module's tests."""
    servers, addresses = [], {}
    try:
        for name in available():
            server, port = serve_named(name, {}, "127.0.0.1:0")
            servers.append(server)
            addresses[name] = f"127.0.0.1:{port}"
        yield addresses
    finally:
        for server in servers:
            _stop(server)


def _same_request(a: MatchRequest, b: MatchRequest) -> None:
    for name in (
        "decision_time",
        "batch_id",
        "shard_id",
        "max_pickup_eta_s",
        "seed",
        "max_speed_mps",
        "api_version",
    ):
        x, y = getattr(a, name), getattr(b, name)
        assert x == y, name
        if name in ("decision_time", "max_pickup_eta_s", "max_speed_mps"):
            assert np.float64(x).tobytes() == np.float64(y).tobytes(), name
    for table in ("requests", "drivers", "candidates"):
        ta, tb = getattr(a, table), getattr(b, table)
        for col in ta.__dataclass_fields__:
            x, y = getattr(ta, col), getattr(tb, col)
            assert x.dtype == y.dtype and x.shape == y.shape, f"{table}.{col}"
            assert np.array_equal(x, y, equal_nan=True), f"{table}.{col}"
            # Exact to the bit, not merely equal (-0.0, NaN payloads).
            assert x.tobytes() == y.tobytes(), f"{table}.{col}"
    assert b.travel_time is None


def _same_response(a: MatchResponse, b: MatchResponse) -> None:
    for col in ("request_id", "driver_id", "pickup_eta_s", "unmatched_id", "unmatched_reason"):
        x, y = getattr(a, col), getattr(b, col)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), col
    assert dict(a.diagnostics) == dict(b.diagnostics)
    assert a.api_version == b.api_version == API_VERSION


# ---------------------------------------------------------------------------------------------
# Conversion


@pytest.mark.parametrize("spec", INSTANCES, ids=lambda s: f"{s[3]}-{s[1]}x{s[2]}")
@pytest.mark.parametrize("k", [None, 3])
def test_request_round_trip_exact(spec, k):
    """request_from_proto(request_to_proto(r, k)) is to_wire(r, k), bit for bit."""
    req = random_instance(*spec)
    msg = request_to_proto(req, k)
    back = request_from_proto(pb.MatchRequest.FromString(msg.SerializeToString()))
    _same_request(to_wire(req, k), back)
    assert request_to_proto(back).SerializeToString() == msg.SerializeToString()


def test_request_with_candidates_is_sent_as_is():
    """A request that already has candidates keeps all of them (k is not reapplied)."""
    req = to_wire(random_instance(11, 8, 9, "plane"))
    back = request_from_proto(request_to_proto(req, k=1))
    _same_request(req, back)


def test_special_values_round_trip():
    """-0.0, subnormals, huge values, inf speed and a 64-bit seed survive unchanged."""
    base = to_wire(line_instance([0.0, 5.0], [1.0, 9.0], 20.0))
    tiny, big = float(np.nextafter(0.0, 1.0)), float(np.finfo(np.float64).max)
    req = MatchRequest(
        decision_time=-0.0,
        batch_id=-3,
        shard_id=2**40,
        requests=base.requests,
        drivers=base.drivers,
        max_pickup_eta_s=big,
        seed=2**64 - 1,
        candidates=CandidatePairs([0, 1], [1, 0], [tiny, 1.0 / 3.0]),
        max_speed_mps=float("inf"),
    )
    back = request_from_proto(pb.MatchRequest.FromString(request_to_proto(req).SerializeToString()))
    _same_request(req, back)
    assert np.signbit(back.decision_time) and back.max_speed_mps == float("inf")


def test_seed_outside_uint64_rejected():
    """A seed the wire cannot carry is an error, not a silent wrap."""
    req = to_wire(random_instance(12, 2, 2, "plane"))
    for seed in (-1, 2**64):
        bad = MatchRequest(
            **{**{f: getattr(req, f) for f in req.__dataclass_fields__}, "seed": seed}
        )
        with pytest.raises(WireError, match="seed"):
            request_to_proto(bad)


def test_response_round_trip_exact():
    """Every built-in matcher's response survives the wire exactly, diagnostics included."""
    for name in available():
        m = make_matcher(name, {})
        for spec in INSTANCES:
            resp = m.match(to_wire(random_instance(*spec), 20))
            msg = response_to_proto(resp)
            back = response_from_proto(pb.MatchResponse.FromString(msg.SerializeToString()))
            _same_response(resp, back)


def test_response_with_every_reason_and_numpy_diagnostics():
    """All reasons cross the wire; numpy diagnostics come back as their JSON equivalents."""
    reasons = np.array([int(r) for r in UnmatchedReason], dtype=np.int8)
    resp = MatchResponse(
        request_id=[10],
        driver_id=[3],
        pickup_eta_s=[12.5],
        unmatched_id=np.arange(reasons.size) + 20,
        unmatched_reason=reasons,
        diagnostics={"n": np.int64(7), "x": np.float64(0.1), "v": np.arange(3), "s": "ok"},
    )
    back = response_from_proto(response_to_proto(resp))
    assert back.unmatched_reason.tobytes() == reasons.tobytes()
    assert back.diagnostics == {"n": 7, "x": 0.1, "v": [0, 1, 2], "s": "ok"}


def test_invalid_messages_rejected():
    """Wrong version, ragged columns, rows out of range and unknown reasons are WireErrors."""
    good = request_to_proto(random_instance(13, 4, 5, "plane"))
    cases: list[tuple[Callable[[pb.MatchRequest], None], str]] = [
        (lambda m: setattr(m, "api_version", 0), "api_version 0"),
        (lambda m: setattr(m, "api_version", 2), "api_version 2"),
        (lambda m: m.requests.pickup_x.append(1.0), "pickup"),
        (lambda m: m.drivers.free_at.append(1.0), "rows"),
        (lambda m: m.drivers.state.append(300), "state"),
        (lambda m: m.candidates.driver_row.__setitem__(0, 99), "driver_row"),
        (lambda m: m.requests.id.__setitem__(0, 10**6), "increasing"),
        (lambda m: setattr(m, "max_pickup_eta_s", 0.0), "max_pickup_eta_s"),
    ]
    assert len(good.candidates.driver_row) > 0
    for mutate, what in cases:
        msg = pb.MatchRequest()
        msg.CopyFrom(good)
        mutate(msg)
        with pytest.raises(WireError, match=what):
            request_from_proto(msg)
    resp = pb.MatchResponse(api_version=API_VERSION, unmatched_id=[1], unmatched_reason=[0])
    with pytest.raises(WireError, match="unknown reasons"):
        response_from_proto(resp)
    with pytest.raises(WireError, match="api_version"):
        response_from_proto(pb.MatchResponse())


# ---------------------------------------------------------------------------------------------
# Serving


@pytest.mark.parametrize("name", available())
@pytest.mark.parametrize("k", [20, 2])
def test_served_matcher_equals_local_on_wire_form(builtin_addresses, name, k):
    """Each built-in matcher over gRPC answers exactly as locally on to_wire(request, k)."""
    local = make_matcher(name, {})
    remote = RemoteMatcher(builtin_addresses[name], k=k)
    try:
        for spec in INSTANCES:
            req = random_instance(*spec)
            _same_response(local.match(to_wire(req, k)), remote.match(req))
    finally:
        remote.close()


def test_remote_conformance_against_served_assignment(start):
    """The conformance suite passes for RemoteMatcher, brute-force optimality included."""
    # No check is skipped. RemoteMatcher does not claim `optimal` itself (it cannot know the
    # served matcher's cost function), so check_matcher leaves the optimality check out; it is
    # run explicitly here, since the served default `assignment` minimises total pickup ETA,
    # which is what the check's brute force assumes.
    _, address = start("assignment", {})

    def factory() -> RemoteMatcher:
        return RemoteMatcher(address)

    check_matcher(factory)
    check_optimal_vs_brute_force(factory)


def test_get_params_describe_and_rebuild(start):
    """get_params names the served matcher and is stable; it rebuilds an equivalent client."""
    _, address = start("batched_greedy", {"k": 3})
    m = RemoteMatcher(address, k=7, timeout_s=5)
    params = registry.matcher_params(m)
    assert params == {
        "address": address,
        "k": 7,
        "timeout_s": 5,
        "remote": {"name": "batched_greedy", "params": {"k": 3}},
    }
    assert registry.matcher_params(m) == params
    twin = RemoteMatcher(**params)
    req = random_instance(14, 10, 10, "plane")
    _same_response(m.match(req), twin.match(req))
    stub = pb_grpc.MatcherStub(grpc.insecure_channel(address))
    got = stub.GetParams(pb.GetParamsRequest(), timeout=5)
    assert got.api_version == API_VERSION and got.params_json == '{"k":3}'
    m.close()
    twin.close()


def test_instance_served_under_import_path_name(start):
    """An unregistered matcher instance is described by its import path."""
    _, address = start(_Failing())
    assert RemoteMatcher(address).describe() == {"name": f"{__name__}:_Failing", "params": {}}


def test_wrong_remote_refused(start):
    """A client told what must be served refuses a server serving something else."""
    _, address = start("assignment", {})
    m = RemoteMatcher(address, remote={"name": "batched_greedy", "params": {"k": 20}})
    with pytest.raises(RuntimeError, match=f"remote matcher at {address} serves"):
        m.match(random_instance(15, 3, 3, "plane"))


def test_closed_port_fails_fast_and_clearly():
    """A RemoteMatcher pointed at a closed port raises a RuntimeError naming the address."""
    server, port = serve_named("batched_greedy", {}, "127.0.0.1:0")
    _stop(server)  # the port was free a moment ago and nothing listens on it now
    address = f"127.0.0.1:{port}"
    m = RemoteMatcher(address, timeout_s=2)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=f"remote matcher at {address}: .*UNAVAILABLE"):
        m.match(random_instance(16, 3, 3, "plane"))
    assert time.perf_counter() - t0 < 2.5
    with pytest.raises(RuntimeError, match=address):
        m.get_params()


def test_deadline_exceeded_is_a_clear_error(start):
    """A matcher slower than timeout_s gives a RuntimeError with DEADLINE_EXCEEDED."""
    _, address = start(_Slow(0.6))
    m = RemoteMatcher(address, timeout_s=0.2)
    m.describe()  # connect first: the deadline is on Match itself
    with pytest.raises(RuntimeError, match=f"{address}: Match failed: DEADLINE_EXCEEDED"):
        m.match(random_instance(17, 2, 2, "plane"))


def test_matcher_failure_is_reported(start):
    """A matcher's own exception comes back as INTERNAL with its message."""
    _, address = start(_Failing())
    with pytest.raises(RuntimeError, match="INTERNAL: .*ZeroDivisionError: boom"):
        RemoteMatcher(address).match(random_instance(18, 2, 2, "plane"))


def test_bad_request_is_invalid_argument(start):
    """The server answers a malformed request with INVALID_ARGUMENT."""
    _, address = start("batched_greedy", {})
    stub = pb_grpc.MatcherStub(grpc.insecure_channel(address))
    with pytest.raises(grpc.RpcError) as e:
        stub.Match(pb.MatchRequest(api_version=9), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "api_version 9" in e.value.details()


def test_concurrent_clients_get_identical_answers(start):
    """Many threads calling one server (its threads each with their own matcher instance) get
    the same answer each."""
    _, address = start("assignment", {}, max_workers=4)
    req = random_instance(19, 30, 30, "grid")
    m = RemoteMatcher(address)
    expected = m.match(req)
    results: list[MatchResponse] = []
    lock = threading.Lock()

    def work() -> None:
        r = m.match(req)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(results) == 8
    for r in results:
        _same_response(expected, r)


# ---------------------------------------------------------------------------------------------
# Constructing and naming RemoteMatcher


def test_constructor_only_stores_params_and_pickles():
    """No connection at construction; a pickled client keeps its parameters."""
    m = RemoteMatcher("127.0.0.1:9", k=None, timeout_s=1.5)  # nothing listens there
    twin = pickle.loads(pickle.dumps(m))
    assert (twin.address, twin.k, twin.timeout_s) == ("127.0.0.1:9", None, 1.5)
    m.close()


@pytest.mark.parametrize(
    "params",
    [
        {"address": ""},
        {"address": "127.0.0.1:1", "k": 0},
        {"address": "127.0.0.1:1", "k": True},
        {"address": "127.0.0.1:1", "timeout_s": 0},
        {"address": "127.0.0.1:1", "timeout_s": "3"},
        {"address": "127.0.0.1:1", "remote": {"name": "x"}},
        {},
    ],
)
def test_bad_params_are_input_errors(params):
    """Bad RemoteMatcher parameters given through the registry are InputErrors on params."""
    with pytest.raises(InputError) as e:
        make_matcher("matching.wire.client:RemoteMatcher", params)
    assert e.value.field.startswith("dispatch.params.")


def test_scenario_names_remote_by_import_path(start):
    """make_matcher('matching.wire.client:RemoteMatcher', params) calls the served matcher."""
    _, address = start("immediate_greedy", {})
    m = make_matcher("matching.wire.client:RemoteMatcher", {"address": address, "k": 5})
    assert isinstance(m, RemoteMatcher)
    req = random_instance(20, 12, 12, "graph")
    _same_response(make_matcher("immediate_greedy").match(to_wire(req, 5)), m.match(req))
    m.close()


def test_register_remote_short_name(monkeypatch):
    """register_remote() makes the name 'remote' resolve to RemoteMatcher."""
    monkeypatch.setattr(registry.MATCHERS, "_classes", dict(registry.MATCHERS._classes))
    assert "remote" not in available()
    register_remote()
    assert registry.matcher_class("remote") is RemoteMatcher


def test_server_command_line():
    """python -m matching.wire.server serves a named matcher and stops by itself."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "matching.wire.server",
            "batched_greedy",
            "--params",
            '{"k": 4}',
            "--max-seconds",
            "20",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=WIRE.parents[1],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving matcher 'batched_greedy' on 127.0.0.1:"), line
        address = line.split()[-1]
        m = RemoteMatcher(address, timeout_s=5)
        assert m.describe() == {"name": "batched_greedy", "params": {"k": 4}}
        req = random_instance(21, 5, 5, "plane")
        _same_response(
            make_matcher("batched_greedy", {"k": 4}).match(to_wire(req, 20)), m.match(req)
        )
        m.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Generated code


def _require_grpc_tools() -> None:
    # Never imported into this process: grpc_tools' bundled protoc aborts the interpreter when
    # another C++ protobuf (OR-Tools') is already loaded. It runs in a subprocess instead.
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools is not installed (it is in the dev extra)")


def _regenerate(tmp_path: Path) -> Path:
    """Run generate.sh on a copy of the .proto; return the copy's wire directory."""
    _require_grpc_tools()
    out = tmp_path / "matching" / "wire"
    out.mkdir(parents=True)
    for name in ("ridesim_matching.proto", "generate.sh"):
        shutil.copy(WIRE / name, out / name)
    subprocess.run(
        ["bash", str(out / "generate.sh")],
        check=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    return out


def test_generated_descriptor_matches_proto(tmp_path):
    """The committed modules describe exactly the .proto (fails when they are stale)."""
    from google.protobuf import descriptor_pb2

    _require_grpc_tools()
    fds = tmp_path / "set.bin"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{WIRE.parents[1]}",
            f"--descriptor_set_out={fds}",
            "matching/wire/ridesim_matching.proto",
        ],
        check=True,
        timeout=60,
    )
    fresh = descriptor_pb2.FileDescriptorSet.FromString(fds.read_bytes()).file[0]
    for message in fresh.message_type:  # the Python generator leaves json_name out
        for f in message.field:
            f.ClearField("json_name")
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert committed == fresh, "generated modules are stale: run matching/wire/generate.sh"
    methods = {m.name for m in fresh.service[0].method}
    assert methods == {"Match", "GetParams", "Describe"}
    grpc_text = (WIRE / "ridesim_matching_pb2_grpc.py").read_text()
    for method in methods:
        assert f"'/ridesim.matching.v1.Matcher/{method}'" in grpc_text, method


def test_generated_files_identical_to_regeneration(tmp_path):
    """generate.sh reproduces the committed files byte for byte (same grpcio-tools version)."""
    committed = (WIRE / "ridesim_matching_pb2_grpc.py").read_text()
    made_with = committed.split("GRPC_GENERATED_VERSION = '")[1].split("'")[0]
    try:
        installed = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("grpcio-tools is not installed (dev extra)")
    if installed != made_with:
        pytest.skip(
            f"committed files were made by grpcio-tools {made_with}, "
            f"{installed} is installed (the descriptor test still checks staleness)"
        )
    out = _regenerate(tmp_path)
    for name in GENERATED:
        assert (out / name).read_text() == (WIRE / name).read_text(), (
            f"{name} is stale: run matching/wire/generate.sh"
        )


# ---------------------------------------------------------------------------------------------
# Helpers


class _Slow:
    """Sleeps, then answers like batched_greedy."""

    def __init__(self, delay_s: float = 0.5) -> None:
        self.delay_s = delay_s

    def get_params(self) -> dict[str, Any]:
        return {"delay_s": self.delay_s}

    def match(self, request: MatchRequest) -> MatchResponse:
        time.sleep(self.delay_s)
        return make_matcher("batched_greedy").match(request)


class _Failing:
    """Always raises."""

    def __init__(self) -> None:
        pass

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        raise ZeroDivisionError("boom")

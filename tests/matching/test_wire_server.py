"""The matcher service's defences: ports, malformed and hostile requests, size and
concurrency bounds, TLS, mutual TLS, bearer tokens and health checks (matching/wire/server.py,
and RemoteMatcher's side of them)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matching.api import MatchRequest, MatchResponse
from matching.candidates import to_wire
from matching.checks import random_instance
from matching.registry import make_matcher
from matching.wire import ridesim_matching_pb2 as pb
from matching.wire.client import RemoteMatcher
from matching.wire.convert import request_to_proto
from matching.wire.server import TlsFiles, serve, serve_named

MATCH = "/ridesim.matching.v1.Matcher/Match"


@pytest.fixture
def servers() -> Iterator[list[grpc.Server]]:
    """Servers started by a test, all stopped at teardown."""
    started: list[grpc.Server] = []
    yield started
    for server in started:
        server.stop(grace=0.5).wait(5.0)


def start(servers: list[grpc.Server], **kw) -> str:
    server, port = serve_named("batched_greedy", {}, "127.0.0.1:0", **kw)
    servers.append(server)
    return f"127.0.0.1:{port}"


def raw_match(address: str, data: bytes) -> grpc.StatusCode:
    """Send raw bytes as a Match request; the status code of the answer."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(MATCH)
        try:
            call(data, timeout=5)
        except grpc.RpcError as e:
            return e.code()
    return grpc.StatusCode.OK


def good_request() -> pb.MatchRequest:
    return request_to_proto(to_wire(random_instance(3, 4, 5, "plane"), 20))


def test_a_second_server_on_a_port_in_use_is_refused(servers: list[grpc.Server]) -> None:
    """No SO_REUSEPORT: binding a port another server holds fails instead of sharing it."""
    address = start(servers)
    with pytest.raises(RuntimeError, match="cannot bind"):
        serve_named("batched_greedy", {}, address)


def test_malformed_and_hostile_requests_are_invalid_argument(
    servers: list[grpc.Server],
) -> None:
    """Bytes that are no MatchRequest, a NaN decision time, NaN coordinates, negative candidate
    ETAs and unknown driver states are INVALID_ARGUMENT; a good request is answered."""
    address = start(servers)
    assert raw_match(address, good_request().SerializeToString()) == grpc.StatusCode.OK
    assert raw_match(address, b"\xff\xfe not protobuf") == grpc.StatusCode.INVALID_ARGUMENT
    cases = []
    r = good_request()
    r.decision_time = float("nan")
    cases.append(r)
    r = good_request()
    r.requests.pickup_x[0] = float("nan")
    cases.append(r)
    r = good_request()
    r.candidates.pickup_eta_s[0] = -499.0
    cases.append(r)
    r = good_request()
    r.drivers.state[0] = 42
    cases.append(r)
    for request in cases:
        code = raw_match(address, request.SerializeToString())
        assert code == grpc.StatusCode.INVALID_ARGUMENT, request


def test_requests_above_the_size_bound_are_refused(servers: list[grpc.Server]) -> None:
    """A request bigger than max_request_bytes is RESOURCE_EXHAUSTED; the server goes on
    serving small ones."""
    address = start(servers, max_request_bytes=2_000)
    big = request_to_proto(to_wire(random_instance(4, 60, 80, "plane"), None))
    assert big.ByteSize() > 2_000
    assert raw_match(address, big.SerializeToString()) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raw_match(address, good_request().SerializeToString()) == grpc.StatusCode.OK


def test_health_service_reports_serving(servers: list[grpc.Server]) -> None:
    """grpc.health.v1 says SERVING for the server and the matcher service."""
    address = start(servers)
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "ridesim.matching.v1.Matcher"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made here."""
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl is not installed")
    d = tmp_path
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{who}.key",
            "-out",
            f"{who}.csr",
            "-subj",
            f"/CN={who}",
            cwd=d,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{who}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{who}.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            cwd=d,
        )
    return d


def test_tls_mutual_tls_and_bearer_token(
    servers: list[grpc.Server], pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS a client that trusts the CA is served; with mutual TLS one without a client
    certificate is refused; with a token, a call without it is UNAUTHENTICATED; get_params
    records the token's variable name, never the token."""
    request = random_instance(5, 4, 5, "plane")
    tls = TlsFiles(pki / "server.pem", pki / "server.key")
    address = start(servers, tls=tls)
    m = RemoteMatcher(address, tls_ca=str(pki / "ca.pem"), timeout_s=5)
    assert m.match(request).n_assigned > 0
    plain = RemoteMatcher(address, timeout_s=2, retries=0)
    with pytest.raises(RuntimeError, match="UNAVAILABLE"):
        plain.match(request)

    mtls = TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    address = start(servers, tls=mtls)
    no_cert = RemoteMatcher(address, tls_ca=str(pki / "ca.pem"), timeout_s=2, retries=0)
    with pytest.raises(RuntimeError, match=address):
        no_cert.match(request)
    with_cert = RemoteMatcher(
        address,
        tls_ca=str(pki / "ca.pem"),
        tls_cert=str(pki / "client.pem"),
        tls_key=str(pki / "client.key"),
        timeout_s=5,
    )
    assert with_cert.match(request).n_assigned > 0

    monkeypatch.setenv("MATCHER_TOKEN", "s3cret-token")
    address = start(servers, tls=tls, token="s3cret-token")
    ok = RemoteMatcher(address, tls_ca=str(pki / "ca.pem"), token_env="MATCHER_TOKEN")
    assert ok.match(request).n_assigned > 0
    assert "s3cret-token" not in str(ok.get_params())
    assert ok.get_params()["token_env"] == "MATCHER_TOKEN"
    anonymous = RemoteMatcher(address, tls_ca=str(pki / "ca.pem"), timeout_s=2)
    with pytest.raises(RuntimeError, match="UNAUTHENTICATED"):
        anonymous.match(request)
    monkeypatch.setenv("WRONG", "guess")
    wrong = RemoteMatcher(address, tls_ca=str(pki / "ca.pem"), token_env="WRONG", timeout_s=2)
    with pytest.raises(RuntimeError, match="UNAUTHENTICATED"):
        wrong.match(request)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"tls_cert": "c.pem"}, "give tls_cert and tls_key together"),
        ({"tls_ca": "/nowhere/ca.pem"}, "PEM file not found"),
        ({"token_env": "RIDESIM_NO_SUCH_VARIABLE"}, "is not set"),
        ({"retries": -1}, "retries"),
    ],
)
def test_bad_connection_parameters_are_input_errors(params: dict, words: str) -> None:
    """Bad TLS files, a missing token variable or negative retries fail at construction,
    naming the parameter (an InputError on dispatch.params through make_matcher)."""
    from core.errors import InputError
    from matching.registry import make_matcher

    with pytest.raises(InputError, match="dispatch.params") as err:
        make_matcher("matching.wire.client:RemoteMatcher", {"address": "127.0.0.1:1", **params})
    assert words in str(err.value)


_ROOM: dict[str, Any] = {}
"""What the rendezvous matcher shares across instances during one test: a barrier, and who
ran each call (instance id, thread id)."""


class _Rendezvous:
    """Batched greedy that keeps its request in per-instance scratch state and waits inside
    ``match`` until ``parties`` calls are in it at once: shared by threads, an instance would
    mix requests up; served one call at a time, it would never meet the others."""

    def __init__(self, parties: int = 4, k: int = 20) -> None:
        self.parties = parties
        self.k = k

    def get_params(self) -> dict[str, Any]:
        return {"parties": self.parties, "k": self.k}

    def match(self, request: MatchRequest) -> MatchResponse:
        self._scratch = request
        with _ROOM["lock"]:
            _ROOM["calls"].append((id(self), threading.get_ident()))
        _ROOM["barrier"].wait(timeout=20)
        return make_matcher("batched_greedy", {"k": self.k}).match(self._scratch)


def _concurrently(work: Callable[[int], MatchResponse], n: int) -> list[MatchResponse]:
    """``work(i)`` for i < n on n threads at once; the answers in order of i."""
    with futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(work, range(n)))


def _same(a: MatchResponse, b: MatchResponse) -> None:
    for col in ("request_id", "driver_id", "pickup_eta_s", "unmatched_id", "unmatched_reason"):
        assert getattr(a, col).tobytes() == getattr(b, col).tobytes(), col


def test_each_server_thread_calls_its_own_matcher_instance(servers: list[grpc.Server]) -> None:
    """Four clients at once meet inside four matcher instances, one per server thread (a
    shared, serialised instance never would); each answer equals the in-process matcher's,
    and a second round runs on the same four instances."""
    _ROOM.update(barrier=threading.Barrier(4), lock=threading.Lock(), calls=[])
    server, port = serve(_Rendezvous(4), "127.0.0.1:0", max_workers=4)
    servers.append(server)
    requests = [random_instance(30 + i, 8, 9, "plane") for i in range(8)]
    local = make_matcher("batched_greedy", {"k": 20})
    clients = [RemoteMatcher(f"127.0.0.1:{port}", timeout_s=30) for _ in range(4)]
    try:
        for batch in (requests[:4], requests[4:]):
            got = _concurrently(lambda i, batch=batch: clients[i].match(batch[i]), 4)
            for req, response in zip(batch, got, strict=True):
                _same(local.match(to_wire(req, 20)), response)
    finally:
        for c in clients:
            c.close()
    calls = _ROOM["calls"]
    instances = {inst for inst, _ in calls}
    assert len(calls) == 8 and len(instances) == 4
    for inst in instances:  # each instance lives on one thread only
        assert len({thread for i, thread in calls if i == inst}) == 1


def test_concurrent_clients_get_the_in_process_answers(servers: list[grpc.Server]) -> None:
    """Eight clients sending different requests at once to an assignment server with four
    threads each get exactly what the in-process matcher answers."""
    server, port = serve_named("assignment", {}, "127.0.0.1:0", max_workers=4)
    servers.append(server)
    requests = [random_instance(50 + i, 20, 25, "grid") for i in range(8)]
    local = make_matcher("assignment", {})
    remote = RemoteMatcher(f"127.0.0.1:{port}", timeout_s=30)
    try:
        got = _concurrently(lambda i: remote.match(requests[i]), 8)
    finally:
        remote.close()
    for req, response in zip(requests, got, strict=True):
        _same(local.match(to_wire(req, 20)), response)


class _Unrebuildable:
    """A matcher whose get_params() does not give back its constructor's arguments."""

    def __init__(self, size: int) -> None:
        self.size = size

    def get_params(self) -> dict[str, Any]:
        return {}

    def match(self, request: MatchRequest) -> MatchResponse:
        return make_matcher("batched_greedy").match(request)


def test_an_instance_that_cannot_be_rebuilt_is_refused() -> None:
    """serve() needs one instance per thread: an instance its class cannot rebuild from
    get_params() is refused before anything is bound, naming the class."""
    with pytest.raises(ValueError, match="_Unrebuildable cannot be rebuilt from its get_params"):
        serve(_Unrebuildable(3), "127.0.0.1:0")

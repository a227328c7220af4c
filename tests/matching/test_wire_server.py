"""The matcher service's defences: ports, malformed and hostile requests, size and
concurrency bounds, TLS, mutual TLS, bearer tokens and health checks (matching/wire/server.py,
and RemoteMatcher's side of them)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matching.candidates import to_wire
from matching.checks import random_instance
from matching.wire import ridesim_matching_pb2 as pb
from matching.wire.client import RemoteMatcher
from matching.wire.convert import request_to_proto
from matching.wire.server import TlsFiles, serve_named

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

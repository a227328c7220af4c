"""Serve any ridesim matcher as the gRPC ``ridesim.matching.v1.Matcher`` service.

From Python::

    from matching.wire.server import serve, serve_named
    server, port = serve_named("assignment", {"k": 10})        # 127.0.0.1, a free port
    ...
    server.stop(grace=1.0)

From a shell (serves until interrupted, or for ``--max-seconds``; the same flags as
``cli.py serve-matcher``, defined once in :mod:`matching.wire.flags`)::

    python -m matching.wire.server assignment --params '{"k": 10}' --address 127.0.0.1:50051

Without ``tls``/``token`` the server is insecure: bind it to loopback or a private network.
Calls run side by side on ``max_workers`` threads, each thread with its own matcher instance
(a matcher need not be thread-safe and may keep scratch state between calls), built like the
served one: from the registry name and params, or from the instance's class and
``get_params()``. ``Describe`` and ``GetParams`` never wait for a match.
"""

from __future__ import annotations

import argparse
import errno
import hmac
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer

from core.errors import InputError
from matching.api import API_VERSION, DriverState, Matcher, MatchRequest
from matching.registry import available, make_matcher, matcher_class, matcher_params
from matching.wire import ridesim_matching_pb2 as pb
from matching.wire import ridesim_matching_pb2_grpc as pb_grpc
from matching.wire.convert import (
    WireError,
    request_from_proto,
    response_to_proto,
)
from matching.wire.flags import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_REQUEST_MB,
    DEFAULT_MAX_WORKERS,
    OneLineParser,
    add_serve_arguments,
)

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
"""Largest message either side accepts (gRPC's default of 4 MiB is too small for big batches)."""

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def matcher_name(matcher: Matcher) -> str:
    """The registry name of the matcher's class, else its import path ``module:QualName``."""
    cls = type(matcher)
    for name in available():
        if matcher_class(name) is cls:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def check_request(req: MatchRequest) -> None:
    """What the wire form cannot promise: finite times and coordinates, known driver states,
    finite non-negative candidate ETAs. Raises ValueError naming the field."""
    if not np.isfinite(req.decision_time):
        raise ValueError(f"decision_time: expected a finite number, got {req.decision_time}")
    for name, arr in (
        ("requests.pickup_xy", req.requests.pickup_xy),
        ("requests.dropoff_xy", req.requests.dropoff_xy),
        ("drivers.xy", req.drivers.xy),
        ("drivers.free_at", req.drivers.free_at),
    ):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: expected finite numbers (NaN or infinity found)")
    states = {int(s) for s in DriverState}
    bad = set(np.unique(req.drivers.state).tolist()) - states
    if bad:
        raise ValueError(f"drivers.state: unknown driver states {sorted(bad)}")
    if req.candidates is not None:
        eta = req.candidates.pickup_eta_s
        if eta.size and not (np.all(np.isfinite(eta)) and eta.min() >= 0):
            raise ValueError("candidates.pickup_eta_s: expected finite ETAs >= 0")


def rebuilder(matcher: Matcher) -> Callable[[], Matcher]:
    """A factory of fresh instances like ``matcher``: its class on its ``get_params()`` (the
    contract: constructors only store parameters). Raises ValueError when the instance cannot
    be rebuilt that way, or the rebuilt one reports other parameters."""
    cls: Callable[..., Matcher] = type(matcher)
    params = matcher_params(matcher)
    label = type(matcher).__qualname__

    def make() -> Matcher:
        return cls(**params)

    try:
        twin = make()
    except Exception as e:
        raise ValueError(
            f"{label} cannot be rebuilt from its get_params() {params} "
            f"({type(e).__name__}: {e}); each server thread needs its own instance"
        ) from None
    if matcher_params(twin) != params:
        raise ValueError(f"{label} rebuilt from its get_params() reports other parameters")
    return make


class MatcherServicer(pb_grpc.MatcherServicer):
    """The gRPC service around ``matcher``: each worker thread calls its own instance, made
    by ``make`` (default: :func:`rebuilder`) on the thread's first call."""

    def __init__(
        self,
        matcher: Matcher,
        name: str | None = None,
        make: Callable[[], Matcher] | None = None,
    ) -> None:
        self.matcher = matcher
        self.name = name if name is not None else matcher_name(matcher)
        # Fixed when serving starts: what the server says it serves cannot drift.
        self.params_json = json.dumps(
            matcher_params(matcher), sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        self._make = make if make is not None else rebuilder(matcher)
        self._local = threading.local()

    def thread_matcher(self) -> Matcher:
        """This thread's own matcher instance (made on its first call)."""
        matcher: Matcher | None = getattr(self._local, "matcher", None)
        if matcher is None:
            matcher = self._local.matcher = self._make()
        return matcher

    def match_bytes(self, data: bytes, context: grpc.ServicerContext) -> pb.MatchResponse:
        """``Match`` on the raw request bytes: bytes that do not parse are the caller's
        error (INVALID_ARGUMENT), not the server's (gRPC would say INTERNAL)."""
        try:
            request = pb.MatchRequest.FromString(data)
        except DecodeError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a MatchRequest message: {e}")
        return self.Match(request, context)

    def Match(self, request: pb.MatchRequest, context: grpc.ServicerContext) -> pb.MatchResponse:
        try:
            req = request_from_proto(request)
            check_request(req)
        except (WireError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        # Work for a caller that has gone (cancelled, or past its deadline while the call
        # waited for a free thread) is never started.
        if not context.is_active():
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the caller's deadline passed")
        try:
            reply = response_to_proto(self.thread_matcher().match(req))
        except Exception as e:  # the matcher's failure is reported, not hidden
            context.abort(
                grpc.StatusCode.INTERNAL, f"matcher {self.name!r} failed: {type(e).__name__}: {e}"
            )
        if not context.is_active():
            context.abort(grpc.StatusCode.CANCELLED, "the caller has gone")
        return reply

    def GetParams(
        self, request: pb.GetParamsRequest, context: grpc.ServicerContext
    ) -> pb.GetParamsResponse:
        return pb.GetParamsResponse(api_version=API_VERSION, params_json=self.params_json)

    def Describe(
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.DescribeResponse:
        return pb.DescribeResponse(
            api_version=API_VERSION, name=self.name, params_json=self.params_json
        )


DEFAULT_MAX_REQUEST_BYTES = int(DEFAULT_MAX_REQUEST_MB * 2**20)
"""Largest request a server accepts by default (64 MiB, about 300,000 candidate pairs); a
bigger one is refused (RESOURCE_EXHAUSTED) before it is held in memory. Calls beyond
``DEFAULT_MAX_CONCURRENT`` held at once are refused too, so a flood cannot queue unbounded
work."""
SERVICE = "ridesim.matching.v1.Matcher"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS server: its certificate chain and key, and with ``client_ca`` the
    CA that client certificates must be signed by (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


class _BearerToken(grpc.ServerInterceptor):
    """Refuse (UNAUTHENTICATED) every matcher call without ``authorization: Bearer <token>``;
    health checks stay open so that load balancers can probe."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method.startswith("/grpc.health.v1.Health/"):
            return continuation(details)
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(str(given).encode(), self._expected):
            return continuation(details)
        return self._deny


def serve(
    matcher: Matcher,
    address: str = "127.0.0.1:0",
    max_workers: int = DEFAULT_MAX_WORKERS,
    *,
    name: str | None = None,
    make: Callable[[], Matcher] | None = None,
    tls: TlsFiles | None = None,
    token: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
) -> tuple[grpc.Server, int]:
    """Start serving ``matcher`` on ``address`` (``host:port``; port 0 picks a free one).

    Returns the started server and the bound port; stop it with ``server.stop(grace)``.
    ``name`` is what ``Describe`` reports (default: the registry name or import path).
    Each of the ``max_workers`` threads calls its own instance, made by ``make`` (default:
    the matcher's class on its ``get_params()``; ValueError when that cannot rebuild it).
    ``tls`` serves over TLS (mutual TLS with ``client_ca``); ``token`` requires
    ``authorization: Bearer <token>`` on every matcher call. The standard health service
    (``grpc.health.v1``) reports SERVING for ``""`` and the matcher service.
    """
    for label, value in (
        ("max_workers", max_workers),
        ("max_request_bytes", max_request_bytes),
        ("max_concurrent", max_concurrent),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label}: expected a positive integer, got {value!r}")
    if token is not None and not token:
        raise ValueError("token: expected a non-empty string")
    servicer = MatcherServicer(matcher, name, make)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ridesim-matcher"),
        interceptors=[_BearerToken(token)] if token else [],
        # No SO_REUSEPORT: a second server on a port in use must fail, not share it (clients
        # would reach either matcher at random).
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_concurrent,
    )
    handlers = {
        "Match": grpc.unary_unary_rpc_method_handler(
            servicer.match_bytes, response_serializer=pb.MatchResponse.SerializeToString
        ),
        "GetParams": grpc.unary_unary_rpc_method_handler(
            servicer.GetParams,
            request_deserializer=pb.GetParamsRequest.FromString,
            response_serializer=pb.GetParamsResponse.SerializeToString,
        ),
        "Describe": grpc.unary_unary_rpc_method_handler(
            servicer.Describe,
            request_deserializer=pb.DescribeRequest.FromString,
            response_serializer=pb.DescribeResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, tls.credentials())
    except RuntimeError as e:
        raise RuntimeError(f"cannot bind a matcher server to {address!r}: {e}") from e
    if port == 0:
        raise RuntimeError(f"cannot bind a matcher server to {address!r}")
    server.start()
    for service in ("", SERVICE):
        health.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port


def serve_named(
    name: str,
    params: Mapping[str, Any] | None = None,
    address: str = "127.0.0.1:0",
    max_workers: int = DEFAULT_MAX_WORKERS,
    **options: Any,
) -> tuple[grpc.Server, int]:
    """:func:`serve` the matcher :func:`~matching.registry.make_matcher` builds from ``name``
    (a registered name or an import path) and ``params``, one instance per thread;
    ``options`` as for :func:`serve`."""
    params = dict(params or {})

    def make() -> Matcher:
        return make_matcher(name, params)

    return serve(make(), address, max_workers, name=name, make=make, **options)


def run_server(args: argparse.Namespace, source: str) -> int:
    """Serve as :func:`~matching.wire.flags.add_serve_arguments`' flags say, until interrupted
    (or ``--max-seconds``). Bad flag values raise :class:`InputError` (``source`` names the
    command) before anything is bound."""
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        raise InputError(
            "--params", "", f"expected a JSON object, got {args.params!r} ({e})"
        ) from None
    host, port = _address(args.address)
    _port_free(host, port, args.address)
    matcher = make_matcher(args.name, params, source=source, field="NAME")  # fail fast, clearly
    for flag in ("tls_cert", "tls_key", "tls_client_ca"):
        value = getattr(args, flag)
        if value is not None and not Path(value).is_file():
            raise InputError(f"--{flag.replace('_', '-')}", value, "PEM file not found")
    if (args.tls_cert is None) != (args.tls_key is None) or (
        args.tls_client_ca and args.tls_cert is None
    ):
        raise InputError("--tls-cert", str(args.tls_cert), "give --tls-cert and --tls-key together")
    tls = None
    if args.tls_cert is not None:
        ca = Path(args.tls_client_ca) if args.tls_client_ca else None
        tls = TlsFiles(Path(args.tls_cert), Path(args.tls_key), ca)
    token = None
    if args.token_env is not None:
        token = os.environ.get(args.token_env)
        if not token:
            raise InputError("--token-env", args.token_env, "expected a set, non-empty variable")
    try:
        server, bound = serve(
            matcher,
            args.address,
            args.max_workers,
            name=args.name,
            make=lambda: make_matcher(args.name, params),
            tls=tls,
            token=token,
            max_request_bytes=max(1, int(args.max_request_mb * 2**20)),
            max_concurrent=args.max_concurrent,
        )
    except RuntimeError as e:  # the address cannot be bound (in use, not ours)
        if "cannot bind" not in str(e):
            raise
        raise InputError("--address", args.address, f"{e} (is the port in use?)") from None
    print(f"serving matcher {args.name!r} on {host or '127.0.0.1'}:{bound}", flush=True)
    try:
        if args.max_seconds is None:
            server.wait_for_termination()
        else:
            time.sleep(max(0.0, args.max_seconds))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=1.0).wait(5.0)
    return 0


def _address(text: str) -> tuple[str, int]:
    """``host:port`` with a port in 0..65535; raises InputError on ``--address``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError("--address", text, "expected HOST:PORT with a port in 0..65535")
    return host, int(port)


def _port_free(host: str, port: int, text: str) -> None:
    """Refuse, before gRPC tries (and logs its own lines), a port another process holds."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InputError("--address", text, f"unknown host {host!r} ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As gRPC binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise InputError("--address", text, "the port is already in use") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m matching.wire.server NAME [--params JSON] [--address HOST:PORT] ...``: bad
    input prints one line and returns 2."""
    prog = "python -m matching.wire.server"
    parser = OneLineParser(prog=prog, description="Serve a ridesim matcher over gRPC.")
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_server(args, source=prog)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

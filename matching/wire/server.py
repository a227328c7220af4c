"""Serve any ridesim matcher as the gRPC ``ridesim.matching.v1.Matcher`` service.

From Python::

    from matching.wire.server import serve, serve_named
    server, port = serve_named("assignment", {"k": 10})        # 127.0.0.1, a free port
    ...
    server.stop(grace=1.0)

From a shell (serves until interrupted, or for ``--max-seconds``)::

    python -m matching.wire.server assignment --params '{"k": 10}' --address 127.0.0.1:50051

The server is insecure (no TLS, no authentication): bind it to loopback or a private network.
Calls to ``match`` are serialised, since a matcher is not required to be thread-safe; run one
server per core for parallel decisions. ``Describe`` and ``GetParams`` never wait for a match.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer

from matching.api import API_VERSION, DriverState, Matcher, MatchRequest
from matching.registry import available, make_matcher, matcher_class, matcher_params
from matching.wire import ridesim_matching_pb2 as pb
from matching.wire import ridesim_matching_pb2_grpc as pb_grpc
from matching.wire.convert import (
    WireError,
    request_from_proto,
    response_to_proto,
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


class MatcherServicer(pb_grpc.MatcherServicer):
    """The gRPC service around one matcher instance."""

    def __init__(self, matcher: Matcher, name: str | None = None) -> None:
        self.matcher = matcher
        self.name = name if name is not None else matcher_name(matcher)
        # Fixed when serving starts: what the server says it serves cannot drift.
        self.params_json = json.dumps(
            matcher_params(matcher), sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        self._lock = threading.Lock()

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
        # Work for a caller that has gone (cancelled, past its deadline) is never started; a
        # call waits for the matcher at most until its own deadline.
        remaining = context.time_remaining()
        wait = -1 if remaining is None else max(0.0, remaining)
        if not context.is_active() or not self._lock.acquire(timeout=wait):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the caller's deadline passed")
        try:
            gone = not context.is_active()
            if not gone:
                try:
                    resp = self.matcher.match(req)
                    reply = response_to_proto(resp)
                except Exception as e:  # the matcher's failure is reported, not hidden
                    failure = f"matcher {self.name!r} failed: {type(e).__name__}: {e}"
                else:
                    failure = None
        finally:
            self._lock.release()
        if gone:
            context.abort(grpc.StatusCode.CANCELLED, "the caller has gone")
        if failure is not None:
            context.abort(grpc.StatusCode.INTERNAL, failure)
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


DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Largest request a server accepts by default (64 MiB, about 300,000 candidate pairs); a
bigger one is refused (RESOURCE_EXHAUSTED) before it is held in memory."""
DEFAULT_MAX_CONCURRENT = 8
"""Calls a server holds at once (running or waiting for the matcher); more are refused at
once (RESOURCE_EXHAUSTED), so a flood cannot queue unbounded work."""
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
    max_workers: int = 4,
    *,
    name: str | None = None,
    tls: TlsFiles | None = None,
    token: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
) -> tuple[grpc.Server, int]:
    """Start serving ``matcher`` on ``address`` (``host:port``; port 0 picks a free one).

    Returns the started server and the bound port; stop it with ``server.stop(grace)``.
    ``name`` is what ``Describe`` reports (default: the registry name or import path).
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
    servicer = MatcherServicer(matcher, name)
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
    max_workers: int = 4,
    **options: Any,
) -> tuple[grpc.Server, int]:
    """:func:`serve` the matcher :func:`~matching.registry.make_matcher` builds from ``name``
    (a registered name or an import path) and ``params``; ``options`` as for :func:`serve`."""
    return serve(make_matcher(name, params), address, max_workers, name=name, **options)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m matching.wire.server NAME [--params JSON] [--address HOST:PORT]``."""
    ap = argparse.ArgumentParser(
        prog="python -m matching.wire.server", description="Serve a ridesim matcher over gRPC."
    )
    ap.add_argument("name", help="registered matcher name or import path package.module:Class")
    ap.add_argument("--params", default="{}", help="constructor parameters as a JSON object")
    ap.add_argument(
        "--address",
        default="127.0.0.1:0",
        help="host:port to bind (default 127.0.0.1 and a free port)",
    )
    ap.add_argument("--max-workers", type=int, default=4)
    ap.add_argument("--tls-cert", help="PEM certificate chain: serve over TLS")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--tls-client-ca", help="PEM CA of client certificates: mutual TLS")
    ap.add_argument(
        "--token-env",
        metavar="VAR",
        help="require 'authorization: Bearer <token>', the token read from environment VAR",
    )
    ap.add_argument(
        "--max-request-mb",
        type=float,
        default=DEFAULT_MAX_REQUEST_BYTES / 2**20,
        help="largest request accepted, MiB (default 64)",
    )
    ap.add_argument(
        "--max-concurrent",
        type=int,
        default=DEFAULT_MAX_CONCURRENT,
        help="calls held at once; more are refused (default 8)",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop after this many seconds (default: serve until interrupted)",
    )
    args = ap.parse_args(argv)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        ap.error(f"--params is not JSON: {e}")
    tls = None
    if args.tls_cert or args.tls_key or args.tls_client_ca:
        if not (args.tls_cert and args.tls_key):
            ap.error("--tls-cert and --tls-key go together")
        ca = Path(args.tls_client_ca) if args.tls_client_ca else None
        tls = TlsFiles(Path(args.tls_cert), Path(args.tls_key), ca)
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            ap.error(f"--token-env: environment variable {args.token_env} is not set")
    server, port = serve_named(
        args.name,
        params,
        args.address,
        args.max_workers,
        tls=tls,
        token=token,
        max_request_bytes=max(1, int(args.max_request_mb * 2**20)),
        max_concurrent=args.max_concurrent,
    )
    host = args.address.rpartition(":")[0] or "127.0.0.1"
    print(f"serving matcher {args.name!r} on {host}:{port}", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())

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
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent import futures
from typing import Any

import grpc

from matching.api import API_VERSION, Matcher
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

    def Match(self, request: pb.MatchRequest, context: grpc.ServicerContext) -> pb.MatchResponse:
        try:
            req = request_from_proto(request)
        except WireError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        try:
            with self._lock:
                resp = self.matcher.match(req)
            return response_to_proto(resp)
        except Exception as e:  # the matcher's failure is reported to the caller, not hidden
            context.abort(
                grpc.StatusCode.INTERNAL, f"matcher {self.name!r} failed: {type(e).__name__}: {e}"
            )

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


def serve(
    matcher: Matcher,
    address: str = "127.0.0.1:0",
    max_workers: int = 4,
    *,
    name: str | None = None,
) -> tuple[grpc.Server, int]:
    """Start serving ``matcher`` on ``address`` (``host:port``; port 0 picks a free one).

    Returns the started server and the bound port; stop it with ``server.stop(grace)``.
    ``name`` is what ``Describe`` reports (default: the registry name or import path).
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers: expected a positive integer, got {max_workers!r}")
    servicer = MatcherServicer(matcher, name)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ridesim-matcher"),
        # No SO_REUSEPORT: a second server on a port in use must fail, not share it (clients
        # would reach either matcher at random).
        options=[*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    pb_grpc.add_MatcherServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise RuntimeError(f"cannot bind a matcher server to {address!r}: {e}") from e
    if port == 0:
        raise RuntimeError(f"cannot bind a matcher server to {address!r}")
    server.start()
    return server, port


def serve_named(
    name: str,
    params: Mapping[str, Any] | None = None,
    address: str = "127.0.0.1:0",
    max_workers: int = 4,
) -> tuple[grpc.Server, int]:
    """:func:`serve` the matcher :func:`~matching.registry.make_matcher` builds from ``name``
    (a registered name or an import path) and ``params``."""
    return serve(make_matcher(name, params), address, max_workers, name=name)


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
    server, port = serve_named(args.name, params, args.address, args.max_workers)
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

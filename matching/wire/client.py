"""A matcher that runs as a separate service: :class:`RemoteMatcher`, a gRPC client.

A scenario names it by import path, like any plug-in::

    [dispatch]
    matcher = "matching.wire.client:RemoteMatcher"
    params = { address = "127.0.0.1:50051", k = 20, timeout_s = 30.0 }

The pickup ETAs are computed here, in the simulator, as :func:`matching.candidates.to_wire`
``(request, k)`` does: the service receives each request's ``k`` nearest drivers within max
pickup ETA (``k = None``: every pair within it). So the remote answer is, exactly, what the
served matcher gives locally on ``to_wire(request, k)``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import grpc
import numpy as np
from pydantic import Field, StrictStr, field_validator, model_validator

from matching.api import API_VERSION, MatcherUnavailable, MatchRequest, MatchResponse
from matching.candidates import to_wire
from matching.matchers.base import MatcherBase
from matching.plugins import Params, Positive, PositiveInt
from matching.wire import ridesim_matching_pb2 as pb
from matching.wire import ridesim_matching_pb2_grpc as pb_grpc
from matching.wire.convert import WireError, request_to_proto, response_from_proto
from matching.wire.server import CHANNEL_OPTIONS


class RemoteMatcher(MatcherBase):
    """The matcher served at ``address`` (``host:port``), called over gRPC.

    ``k`` candidates per request are sent (``None``: all within max pickup ETA); each call
    waits at most ``timeout_s`` seconds. ``remote``, when given (``{"name": ..., "params":
    ...}``, as :meth:`get_params` records it), is what the server must be serving: a run
    rebuilt from a manifest then refuses a server that serves anything else.

    The constructor only stores parameters; the channel opens on first use, and the first call
    asks the server what it serves (``Describe``). Failures of the remote (deadline exceeded,
    the matcher's own error, a server that serves something else) raise :class:`RuntimeError`
    naming the address, and stop a run.

    Failure policy for a service that is down (gRPC ``UNAVAILABLE``): each call makes up to
    ``1 + retries`` attempts, waiting ``retry_backoff_s``, then twice that, and so on, between
    them (wall-clock waits only). When every attempt fails, the call raises
    :class:`~matching.api.MatcherUnavailable` and closes the channel: a run records a matcher
    service outage and carries on (:class:`sim.faults.ServiceOutages`), and its next decision
    calls again, on a fresh channel that asks ``Describe`` again (a server restarted with another
    matcher is refused). With ``max_failed_calls``, that many unanswered calls in a row stop the
    run instead. Whether a call failed is decided by attempts, never by elapsed time; a deadline
    (``timeout_s``) that passes is not an outage but an error, since it depends on how fast
    this machine is.
    """

    class Params(Params):
        address: StrictStr
        k: PositiveInt | None = 20
        timeout_s: Positive = 30.0
        remote: dict[str, Any] | None = None
        tls_ca: StrictStr | None = None
        """PEM CA the server's certificate must chain to: connect over TLS."""
        tls_cert: StrictStr | None = None
        """PEM client certificate (with ``tls_key``), for a server that requires mutual TLS."""
        tls_key: StrictStr | None = None
        token_env: StrictStr | None = None
        """Environment variable holding the bearer token (the token never enters a manifest)."""
        retries: Annotated[int, Field(ge=0, le=20)] = 2
        """Attempts after the first when the service is unavailable (backoff doubling)."""
        retry_backoff_s: Positive = 0.25
        max_failed_calls: PositiveInt | None = None
        """Unanswered calls in a row (service unavailable) after which a run stops; ``None``:
        the run carries on however long the service is down."""

        @model_validator(mode="after")
        def _security(self) -> RemoteMatcher.Params:
            if (self.tls_cert is None) != (self.tls_key is None):
                raise ValueError("give tls_cert and tls_key together")
            if self.tls_cert is not None and self.tls_ca is None:
                raise ValueError("tls_cert needs tls_ca (client certificates go over TLS)")
            for name in ("tls_ca", "tls_cert", "tls_key"):
                path = getattr(self, name)
                if path is not None and not Path(path).is_file():
                    raise ValueError(f"{name}: PEM file not found: {path}")
            if self.token_env is not None and not os.environ.get(self.token_env):
                raise ValueError(f"token_env: environment variable {self.token_env} is not set")
            return self

        @field_validator("address")
        @classmethod
        def _address(cls, address: str) -> str:
            if not address.strip():
                raise ValueError(f"expected 'host:port', got {address!r}")
            return address

        @field_validator("remote")
        @classmethod
        def _remote(cls, remote: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if remote is None else _check_remote(remote)

    address: str
    k: int | None
    timeout_s: float
    remote: dict[str, Any] | None
    tls_ca: str | None
    tls_cert: str | None
    tls_key: str | None
    token_env: str | None
    retries: int
    retry_backoff_s: float
    max_failed_calls: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.MatcherStub | None = None
        self._described: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._failed_in_a_row = 0

    # --- the Matcher protocol ------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """``address``, ``k``, ``timeout_s``, and ``remote``: the served matcher's name and params.

        Contacts the server once (then cached): the served matcher belongs in a manifest.
        """
        return {
            "address": self.address,
            "k": self.k,
            "timeout_s": self.timeout_s,
            "remote": dict(self.describe()),
            **self._connection(),
        }

    def match(self, request: MatchRequest) -> MatchResponse:
        """The served matcher's response to ``to_wire(request, k)``."""
        msg = request_to_proto(to_wire(request, self.k))
        try:
            stub = self._connect()
            reply = self._call(stub.Match, msg, "Match")
        except MatcherUnavailable as e:
            # A fresh channel next time: no stale reconnect backoff, and Describe is asked again.
            self.close()
            self._failed_in_a_row += 1
            limit = self.max_failed_calls
            if limit is not None and self._failed_in_a_row >= limit:
                raise RuntimeError(
                    f"{e}; {self._failed_in_a_row} calls in a row unanswered "
                    f"(max_failed_calls = {limit})"
                ) from None
            raise
        self._failed_in_a_row = 0
        try:
            response = response_from_proto(reply)
        except WireError as e:
            raise RuntimeError(f"remote matcher at {self.address}: invalid response: {e}") from e
        _check_ids(request, response, self.address)
        return response

    # --- extras --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """``{"name": ..., "params": ...}`` of the served matcher (asked once, then cached: a
        run's manifest is written even when the service is down by then)."""
        if self._described is None:
            self._connect()
        assert self._described is not None
        return {"name": self._described["name"], "params": dict(self._described["params"])}

    def close(self) -> None:
        """Close the channel (the next call opens a new one). What was served is remembered:
        a server that serves something else by then is refused."""
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    def __enter__(self) -> RemoteMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # A channel cannot be pickled (a run may ship matchers to worker processes): send the
        # parameters and what was served, and reconnect there.
        return {
            "address": self.address,
            "k": self.k,
            "timeout_s": self.timeout_s,
            "remote": self.remote,
            **{name: getattr(self, name) for name in _CONNECTION},
            "_described": self._described,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        described = state.pop("_described")
        self.__init__(**state)
        self._described = described

    def __repr__(self) -> str:
        return (
            f"RemoteMatcher(address={self.address!r}, k={self.k!r}, timeout_s={self.timeout_s!r})"
        )

    # --- internals -----------------------------------------------------------------------

    def _connect(self) -> pb_grpc.MatcherStub:
        with self._lock:
            if self._stub is not None:
                return self._stub
            channel = self._channel_for()
            stub = pb_grpc.MatcherStub(channel)
            try:
                reply = self._call(stub.Describe, pb.DescribeRequest(), "Describe")
                described = self._check_description(reply)
            except BaseException:
                channel.close()
                raise
            self._channel, self._stub = channel, stub
            if self._described is None:
                self._described = described
            return stub

    def _connection(self) -> dict[str, Any]:
        """The connection settings that differ from their defaults (what get_params adds)."""
        fields = type(self).Params.model_fields
        return {
            name: getattr(self, name)
            for name in _CONNECTION
            if getattr(self, name) != fields[name].default
        }

    def _channel_for(self) -> grpc.Channel:
        if self.tls_ca is None:
            return grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(self.tls_ca).read_bytes(),
            private_key=Path(self.tls_key).read_bytes() if self.tls_key else None,
            certificate_chain=Path(self.tls_cert).read_bytes() if self.tls_cert else None,
        )
        return grpc.secure_channel(self.address, creds, options=CHANNEL_OPTIONS)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        if self.token_env is None:
            return ()
        return (("authorization", f"Bearer {os.environ.get(self.token_env, '')}"),)

    def _check_description(self, reply: pb.DescribeResponse) -> dict[str, Any]:
        where = f"remote matcher at {self.address}"
        if reply.api_version != API_VERSION:
            raise RuntimeError(
                f"{where} speaks api_version {reply.api_version}, this client {API_VERSION}"
            )
        try:
            params = json.loads(reply.params_json) if reply.params_json else {}
        except json.JSONDecodeError as e:
            raise RuntimeError(f"{where}: Describe params_json is not JSON: {e}") from e
        if not isinstance(params, dict):
            raise RuntimeError(f"{where}: Describe params_json is not a JSON object")
        described = {"name": reply.name, "params": params}
        for expected, what in (
            (self.remote, "the remote parameter"),
            (self._described, "it served before"),
        ):
            if expected is not None and described != expected:
                raise RuntimeError(f"{where} serves {described}, but {what} says {expected}")
        return described

    def _call(self, method: Any, msg: Any, what: str) -> Any:
        """One call; while the service is UNAVAILABLE, ``retries`` more with doubling waits
        (wall-clock only: the simulation's results never depend on them)."""
        for attempt in range(self.retries + 1):
            try:
                return method(msg, timeout=self.timeout_s, metadata=self._metadata())
            except grpc.RpcError as e:
                code = e.code() if hasattr(e, "code") else None
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    _sleep(self.retry_backoff_s * 2**attempt)
                    continue
                details = e.details() if hasattr(e, "details") else str(e)
                name = code.name if code is not None else "UNKNOWN"
                tries = f" after {attempt + 1} attempts" if attempt else ""
                error = MatcherUnavailable if code == grpc.StatusCode.UNAVAILABLE else RuntimeError
                raise error(
                    f"remote matcher at {self.address}: {what} failed{tries}: {name}: {details}"
                ) from None
        raise AssertionError("unreachable")


_sleep = time.sleep
"""How the client waits between attempts (wall clock only; a test replaces it)."""

_CONNECTION = (
    "tls_ca",
    "tls_cert",
    "tls_key",
    "token_env",
    "retries",
    "retry_backoff_s",
    "max_failed_calls",
)
"""Connection settings recorded by get_params (paths and a variable name, never a secret)."""


def _check_remote(remote: Mapping[str, Any]) -> dict[str, Any]:
    if (
        not isinstance(remote, Mapping)
        or set(remote) != {"name", "params"}
        or not isinstance(remote["name"], str)
        or not isinstance(remote["params"], Mapping)
    ):
        raise ValueError(f"expected {{'name': str, 'params': {{...}}}}, got {remote!r}")
    try:
        return json.loads(json.dumps(dict(remote), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"not JSON-serialisable: {e}") from e


def _check_ids(request: MatchRequest, response: MatchResponse, address: str) -> None:
    """Cheap structural checks on a remote answer: known ids, nothing assigned twice."""
    problems = []
    for name, ids, table in (
        ("request_id", response.request_id, request.requests.id),
        ("driver_id", response.driver_id, request.drivers.id),
        ("unmatched_id", response.unmatched_id, request.requests.id),
    ):
        if not np.isin(ids, table).all():
            problems.append(f"{name} names ids not in the request")
        if np.unique(ids).size != ids.size:
            problems.append(f"{name} repeats an id")
    if problems:
        raise RuntimeError(f"remote matcher at {address}: invalid response: " + "; ".join(problems))


__all__ = ["RemoteMatcher"]

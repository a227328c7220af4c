"""The wire form of the matching contract: protobuf messages and a gRPC ``Matcher`` service.

``ridesim_matching.proto`` (package ``ridesim.matching.v1``) is the language-neutral form of
:mod:`matching.api`; ``ridesim_matching_pb2*.py`` are generated from it by ``generate.sh`` and
committed (a test fails when they are stale).

* Serve any ridesim matcher: :func:`matching.wire.server.serve` (an instance) or
  :func:`~matching.wire.server.serve_named` (a registered name or import path, plus params);
  from a shell, ``python -m matching.wire.server assignment --params '{"k": 10}'
  --address 127.0.0.1:50051``.
* Call a served matcher (ridesim's, or any implementation of the service) from the simulator:
  :class:`matching.wire.client.RemoteMatcher`, which a scenario names by import path::

      [dispatch]
      matcher = "matching.wire.client:RemoteMatcher"
      params = { address = "127.0.0.1:50051", k = 20, timeout_s = 30.0 }

  It is deliberately not registered under a short name at import time: the registry's list
  of names would then depend on which modules happen to have been imported. A program that
  wants the short name calls :func:`register_remote` once.
* Convert messages: :mod:`matching.wire.convert` (exact round trips).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matching.wire.client import RemoteMatcher
    from matching.wire.convert import (
        WireError,
        request_from_proto,
        request_to_proto,
        response_from_proto,
        response_to_proto,
    )
    from matching.wire.server import serve, serve_named

_LAZY = {
    "RemoteMatcher": "matching.wire.client",
    "WireError": "matching.wire.convert",
    "request_from_proto": "matching.wire.convert",
    "request_to_proto": "matching.wire.convert",
    "response_from_proto": "matching.wire.convert",
    "response_to_proto": "matching.wire.convert",
    "serve": "matching.wire.server",
    "serve_named": "matching.wire.server",
}
"""Names imported on first use: importing the package (the CLI's flag definitions in
:mod:`matching.wire.flags`) must not load gRPC."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def register_remote(name: str = "remote") -> None:
    """Make :class:`RemoteMatcher` available in the matcher registry as ``name``."""
    # deferred: the package imports gRPC only when it is used (see _LAZY)
    from matching.registry import register
    from matching.wire.client import RemoteMatcher  # deferred: as above

    register(name)(RemoteMatcher)


__all__ = [
    "RemoteMatcher",
    "WireError",
    "register_remote",
    "request_from_proto",
    "request_to_proto",
    "response_from_proto",
    "response_to_proto",
    "serve",
    "serve_named",
]

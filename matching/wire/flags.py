"""The matcher server's command-line flags, defined once for both of its entry points:
``cli.py serve-matcher`` and ``python -m matching.wire.server``
(:func:`matching.wire.server.run_server` acts on them).

Kept apart from :mod:`matching.wire.server` and light on purpose (argparse only): the CLI
builds every subcommand's parser at start, and importing gRPC for that would cost every
command most of a CPU-second.
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from core.args import bounded_arg

DEFAULT_MAX_WORKERS = 4
"""Threads serving calls side by side, each with its own matcher instance."""
DEFAULT_MAX_REQUEST_MB = 64.0
"""Largest request a server accepts by default (MiB; about 300,000 candidate pairs)."""
DEFAULT_MAX_CONCURRENT = 8
"""Calls a server holds at once (running or queued); more are refused at once."""


_positive_float = bounded_arg(
    "positive_float", float, lambda v: 0 < v < math.inf, "a number > 0", "a finite number > 0"
)
_positive_int = bounded_arg("positive_int", int, lambda v: v >= 1, "a whole number >= 1")


class OneLineParser(argparse.ArgumentParser):
    """A parser whose errors are one line (``error: <prog>: ...``) and exit 2, as the CLI's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n")


def add_serve_arguments(
    parser: argparse.ArgumentParser, *, default_address: str = "127.0.0.1:0"
) -> None:
    """Add the server's arguments and flags to ``parser`` (``default_address`` differs by entry
    point: the CLI serves on a fixed port, the module on a free one)."""
    parser.add_argument("name", help="registered matcher name or import path package.module:Class")
    parser.add_argument("--params", default="{}", help="constructor parameters as a JSON object")
    parser.add_argument(
        "--address", default=default_address, help=f"host:port to bind (default {default_address})"
    )
    parser.add_argument(
        "--max-workers",
        type=_positive_int,
        default=DEFAULT_MAX_WORKERS,
        help="threads serving calls side by side, each with its own matcher instance "
        f"(default {DEFAULT_MAX_WORKERS})",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop after this many seconds (default: serve until interrupted)",
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve over TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca", help="PEM CA that client certificates must chain to (mTLS)"
    )
    parser.add_argument(
        "--token-env",
        metavar="VAR",
        help="require a bearer token, read from environment variable VAR (never a flag value)",
    )
    parser.add_argument(
        "--max-request-mb",
        type=_positive_float,
        default=DEFAULT_MAX_REQUEST_MB,
        help=f"largest request accepted, MiB (default {DEFAULT_MAX_REQUEST_MB:g})",
    )
    parser.add_argument(
        "--max-concurrent",
        type=_positive_int,
        default=DEFAULT_MAX_CONCURRENT,
        help="calls held at once, running or waiting; more are refused "
        f"(default {DEFAULT_MAX_CONCURRENT})",
    )

"""One definition of the matcher server's flags (matching/wire/flags.py) serves both entry
points, `cli.py serve-matcher` and `python -m matching.wire.server`: the same flags, defaults,
bounds and one-line errors (exit 2) in each."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import cli
from matching.wire import server
from matching.wire.flags import add_serve_arguments


def _serve_parser() -> argparse.ArgumentParser:
    """The CLI's serve-matcher subparser."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve-matcher"]


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple[object, object]]:
    return {
        a.dest: (tuple(a.option_strings), a.default)
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction)
    }


def test_both_entry_points_define_the_same_flags_and_defaults() -> None:
    """Every flag and default is the same in both parsers, except the address each binds by
    default (the CLI a fixed port, the module a free one)."""
    module = argparse.ArgumentParser()
    add_serve_arguments(module)
    via_cli, via_module = _options(_serve_parser()), _options(module)
    assert _serve_parser().get_default("fn") is cli.cmd_serve_matcher
    assert via_cli.pop("address") == (("--address",), "127.0.0.1:50051")
    assert via_module.pop("address") == (("--address",), "127.0.0.1:0")
    assert via_cli == via_module
    assert via_cli["max_concurrent"] == (("--max-concurrent",), 8)
    assert via_cli["max_request_mb"] == (("--max-request-mb",), 64.0)
    assert via_cli["max_workers"] == (("--max-workers",), 4)


def _via_cli(argv: list[str]) -> tuple[int, str]:
    return _call(cli.main, ["serve-matcher", *argv])


def _via_module(argv: list[str]) -> tuple[int, str]:
    return _call(server.main, argv)


def _call(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


BAD = {
    "max-concurrent-0": (["--max-concurrent", "0"], "--max-concurrent", "whole number >= 1"),
    "max-concurrent-text": (["--max-concurrent", "x"], "--max-concurrent", "whole number"),
    "max-workers-0": (["--max-workers", "0"], "--max-workers", "whole number >= 1"),
    "max-workers-negative": (["--max-workers", "-2"], "--max-workers", ">= 1"),
    "max-request-0": (["--max-request-mb", "0"], "--max-request-mb", "finite number > 0"),
    "max-request-inf": (["--max-request-mb", "inf"], "--max-request-mb", "finite number > 0"),
    "max-request-text": (["--max-request-mb", "lots"], "--max-request-mb", "number > 0"),
    "params-json": (["--params", "{k:1}"], "--params", "JSON object"),
    "params-unknown": (["--params", '{"nope": 1}'], "params.nope", "unknown parameter"),
    "port-range": (["--address", "127.0.0.1:99999"], "--address", "0..65535"),
    "address-no-port": (["--address", "localhost"], "--address", "HOST:PORT"),
    "tls-missing": (["--tls-cert", "no.pem", "--tls-key", "no.key"], "--tls-cert", "not found"),
    "tls-key-alone": (["--tls-key", __file__], "--tls-cert", "together"),
    "token-unset": (["--token-env", "RIDESIM_UNSET_VARIABLE"], "--token-env", "expected a set"),
}


@pytest.mark.parametrize("entry", ["cli", "module"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_are_one_line_and_exit_2_in_both_entry_points(
    case: str, entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad flag value: exit 2 and one line naming the flag and what it expects, from
    `cli.py serve-matcher` and `python -m matching.wire.server` alike; nothing is served."""
    monkeypatch.delenv("RIDESIM_UNSET_VARIABLE", raising=False)
    flags, *words = BAD[case]
    call = _via_cli if entry == "cli" else _via_module
    code, err = call(["batched_greedy", *flags, "--max-seconds", "0"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


def test_module_entry_point_serves_and_stops(tmp_path: Path) -> None:
    """`python -m matching.wire.server` with good flags (every one given) serves, says where,
    and stops after --max-seconds with exit 0."""
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "matching.wire.server",
            "batched_greedy",
            "--params",
            '{"k": 3}',
            "--max-workers",
            "2",
            "--max-request-mb",
            "1.5",
            "--max-concurrent",
            "3",
            "--max-seconds",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("serving matcher 'batched_greedy' on 127.0.0.1:")


def test_building_the_cli_parser_does_not_import_grpc() -> None:
    """The CLI builds every parser at start: the server's flags come from a light module, so
    no command pays for importing gRPC before it needs it."""
    import subprocess

    code = "import cli, sys; cli.build_parser(); sys.exit('grpc' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr

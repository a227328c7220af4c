"""The failure policy when a matcher service goes down mid-run: retries counted in attempts,
then a matcher service outage recorded as a fault while the run carries on, ended by the first
answered call (RemoteMatcher against real gRPC servers on loopback, stopped and restarted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.errors import InputError, PluginFailure
from core.schemas import read_events
from harness.run import RunResult, run_scenario
from matching.api import MatcherUnavailable
from matching.wire import client as client_module
from matching.wire.client import RemoteMatcher
from matching.wire.server import serve_named
from tests.scenarios import small_scenario

ROOT = Path(__file__).resolve().parents[2]
STOP_STEP, RESTART_STEP = 50, 100
"""Progress steps (of 200 equal slices of the one-hour run) at which the server is stopped
and started again: 900 s and 1800 s of simulated time."""


class Service:
    """A batched_greedy server in this process (gRPC's thread pool) on one fixed port, that
    can be stopped and started again on it."""

    def __init__(self) -> None:
        self.server: grpc.Server | None = None
        self.server, port = serve_named("batched_greedy", {}, "127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait(5.0)
            self.server = None

    def start(self, name: str = "batched_greedy") -> None:
        self.server, _ = serve_named(name, {}, self.address)


@pytest.fixture
def service() -> Iterator[Service]:
    """A running in-process server, stopped at teardown."""
    s = Service()
    yield s
    s.stop()


def at_steps(actions: dict[int, Callable[[], None]]) -> Callable[[float, int, int], None]:
    """A progress callback that runs ``actions[k]`` at the k-th call: between slices of
    simulated time, so the service goes down and up at the same simulated moments every run."""
    calls = [0]

    def progress(sim_time: float, arrived: int, events: int) -> None:
        calls[0] += 1
        action = actions.get(calls[0])
        if action is not None:
            action()

    return progress


def remote_run(
    tmp_path: Path,
    cache_dir: Path,
    address: str,
    progress: Callable[[float, int, int], None],
    name: str = "runs",
    **params: Any,
) -> RunResult:
    """The small scenario with its matcher served at ``address``."""
    scenario = small_scenario(
        dispatch={
            "matcher": "matching.wire.client:RemoteMatcher",
            "params": {"address": address, "retries": 2, "retry_backoff_s": 0.01, **params},
        },
        drivers={"accept": "always"},  # an assign is then the decision itself
    )
    return run_scenario(
        scenario,
        source="scenario.toml",
        base_dir=tmp_path,
        out=tmp_path / name,
        cache_dir=cache_dir,
        progress=progress,
    )


def fault_rows(result: RunResult) -> list[tuple[float, float, str]]:
    ev = read_events(result.run_dir / "events.parquet").to_pandas()
    faults = ev[ev.kind == "fault"]
    columns = (faults.t.tolist(), faults.value.fillna(-1).tolist(), faults.detail.tolist())
    return list(zip(*columns, strict=True))


def test_service_stopped_mid_run_and_restarted_is_a_recorded_outage(
    service: Service, tmp_path: Path, cache_dir: Path
) -> None:
    """A server stopped at 900 s and started again at 1800 s: service_down at the first
    decision it missed, service_up at the first it answered (90 ten-second windows unanswered),
    nobody assigned in between, the run finished; metrics, manifest and a second run with the
    same failures (byte-identical) agree."""
    results = []
    for name in ("a", "b"):
        progress = at_steps({STOP_STEP: service.stop, RESTART_STEP: service.start})
        results.append(remote_run(tmp_path, cache_dir, service.address, progress, name))
    a, b = results
    assert fault_rows(a) == [(900.0, -1.0, "service_down"), (1800.0, 90.0, "service_up")]
    ev = read_events(a.run_dir / "events.parquet").to_pandas()
    assigned = ev[ev.kind == "assign"].t
    assert not ((assigned >= 900.0) & (assigned < 1800.0)).any()
    assert assigned.max() > 3000.0  # the run went on after the outage, to the end
    f = a.metrics["faults"]
    assert f["service_outages"] == 1 and f["service_downtime_s"] == 900.0
    assert f["service_downtime_share"] == 0.25
    manifest = json.loads((a.run_dir / "manifest.json").read_text())
    assert manifest["matcher_service"] == {"outages": 1, "unanswered_calls": 90}
    assert manifest["matcher"]["params"]["remote"]["name"] == "batched_greedy"
    for file in ("events.parquet", "metrics.json"):
        assert (a.run_dir / file).read_bytes() == (b.run_dir / file).read_bytes(), file


def test_server_process_killed_and_restarted_mid_run(tmp_path: Path, cache_dir: Path) -> None:
    """`python -m matching.wire.server` killed with SIGKILL mid-run and started again on the
    same port: the run records one outage, carries on and finishes."""
    procs: list[subprocess.Popen[str]] = []

    def start(address: str = "127.0.0.1:0") -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "matching.wire.server", "batched_greedy", "--address", address],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving matcher"), line
        return line.split()[-1]

    def kill() -> None:
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(10)

    try:
        address = start()
        progress = at_steps({STOP_STEP: kill, RESTART_STEP: lambda: start(address)})
        result = remote_run(tmp_path, cache_dir, address, progress)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
    rows = fault_rows(result)
    assert [detail for _, _, detail in rows] == ["service_down", "service_up"]
    assert rows[0][0] == 900.0 and rows[1][0] == 1800.0
    assert result.metrics["faults"]["service_outages"] == 1
    assert result.metrics["requests"]["completed"] > 0


def test_a_service_restarted_with_another_matcher_stops_the_run(
    service: Service, tmp_path: Path, cache_dir: Path
) -> None:
    """After an outage the client asks Describe again: a server now serving another matcher
    ends the run with one line naming dispatch.matcher, not a silently different run."""
    progress = at_steps(
        {STOP_STEP: service.stop, RESTART_STEP: lambda: service.start("assignment")}
    )
    with pytest.raises(PluginFailure) as e:
        remote_run(tmp_path, cache_dir, service.address, progress)
    message = str(e.value)
    assert message.startswith("scenario.toml: dispatch.matcher: ") and "\n" not in message
    assert "serves {'name': 'assignment'" in message and "it served before" in message


def test_max_failed_calls_stops_a_run_whose_service_stays_down(
    service: Service, tmp_path: Path, cache_dir: Path
) -> None:
    """With max_failed_calls = 5, the fifth unanswered call in a row ends the run with one
    line naming dispatch.matcher and the limit (the count, never the time, decides)."""
    progress = at_steps({STOP_STEP: service.stop})
    with pytest.raises(PluginFailure) as e:
        remote_run(tmp_path, cache_dir, service.address, progress, max_failed_calls=5)
    message = str(e.value)
    assert "dispatch.matcher" in message and "\n" not in message
    assert "5 calls in a row unanswered (max_failed_calls = 5)" in message


def test_a_service_down_at_the_start_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    """A service that does not answer when the run starts (nothing to record an outage
    against yet) is an input error on dispatch.matcher that says so, before anything runs."""
    server, port = serve_named("batched_greedy", {}, "127.0.0.1:0")
    server.stop(grace=None).wait(5.0)  # the port was free a moment ago; nothing listens now
    with pytest.raises(InputError) as e:
        remote_run(tmp_path, cache_dir, f"127.0.0.1:{port}", at_steps({}))
    message = str(e.value)
    assert message.startswith("scenario.toml: dispatch.matcher: the matcher service does not")
    assert "UNAVAILABLE" in message and "\n" not in message
    assert not (tmp_path / "runs").exists()


class _Unavailable(grpc.RpcError):
    """What a stub raises when nothing listens."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection refused"


def test_retries_are_counted_in_attempts_and_waits_only_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call makes 1 + retries attempts while UNAVAILABLE, waiting backoff, 2x, 4x between
    them; an answer on the last attempt is returned; one more failure is MatcherUnavailable
    (a RuntimeError), whatever the waits were."""
    waits: list[float] = []
    monkeypatch.setattr(client_module, "_sleep", waits.append)
    m = RemoteMatcher("127.0.0.1:1", retries=3, retry_backoff_s=0.5)
    attempts = [0]

    def fails(times: int) -> Callable[..., str]:
        def method(msg: Any, timeout: float, metadata: Any) -> str:
            attempts[0] += 1
            if attempts[0] <= times:
                raise _Unavailable()
            return "answer"

        return method

    assert m._call(fails(3), None, "Match") == "answer"
    assert attempts[0] == 4 and waits == [0.5, 1.0, 2.0]
    attempts[0], waits[:] = 0, []
    with pytest.raises(MatcherUnavailable, match="Match failed after 4 attempts: UNAVAILABLE"):
        m._call(fails(4), None, "Match")
    assert attempts[0] == 4 and waits == [0.5, 1.0, 2.0]
    assert issubclass(MatcherUnavailable, RuntimeError)


def test_readme_and_client_document_the_failure_policy() -> None:
    """The README and RemoteMatcher's docstring state the policy: retries counted in attempts,
    the outage as a fault, the run carrying on, the markers of such a run, determinism."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    for words in (
        "1 + retries",
        "service_down",
        "service_up",
        "max_failed_calls",
        "carries on",
        "not byte-identical",
        "faults.service_outages",
        "matcher_service",
        "service:matcher_service",
        "never reused",
    ):
        assert words in readme, words
    doc = " ".join((RemoteMatcher.__doc__ or "").split())
    for words in ("1 + retries", "MatcherUnavailable", "max_failed_calls", "never by elapsed time"):
        assert words in doc, words

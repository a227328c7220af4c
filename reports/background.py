"""Reports drawn beside the caller's work, in forked processes (the machine has two cores).

A report's libraries (matplotlib, Jinja2) take a few tenths of a second to import and its
figures most of a second to draw, all after the run is complete:

* :class:`ReportHelper` forks a process before a run starts; it imports those libraries (and
  pandas, for the KPIs) while the caller simulates, then waits. :meth:`ReportHelper.metrics`
  has it compute the run's metrics.json (the caller then never loads pandas), and
  :meth:`ReportHelper.write` has it write the report of the finished run directory.
* :func:`forked_map` computes a list of independent jobs (the report's figures) in this
  process and forked ones, each taking the next job when it is free.

Nothing changes in what is written: the report reads only the run directory, and a figure is
the same PNG whichever process draws it. Where processes cannot be forked, or a helper fails in
any way, the caller does the work itself, so results and errors are exactly the serial ones.
This module imports nothing heavy: the caller's process never loads the report's libraries.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO

FIGURE_PROCESSES = 2
"""Processes drawing a report's figures in the helper (the machine's two cores)."""


class ReportHelper:
    """A forked process that imports the report's libraries now, then computes one run's
    metrics and writes its report when asked. Call :meth:`close` in any case (a ``finally``)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._requests: TextIO | None = None
        self._replies: TextIO | None = None
        if not hasattr(os, "fork"):
            return
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper
            os.close(requests_w)
            os.close(replies_r)
            _serve(requests_r, replies_w)
        os.close(requests_r)
        os.close(replies_w)
        self._pid = pid
        self._requests = os.fdopen(requests_w, "w", encoding="utf-8")
        self._replies = os.fdopen(replies_r, "r", encoding="utf-8")

    def metrics(self, run_dir: Path) -> dict[str, Any]:
        """Write ``metrics.json`` into the run directory and return the metrics
        (:func:`reports.kpis.write_metrics`): by the helper, else in this process."""
        reply = self._ask("metrics", run_dir)
        if reply is not None:
            return dict(reply["metrics"])
        # deferred: the KPI modules and pandas, only when the helper could not compute them
        from reports.kpis import write_metrics

        return write_metrics(Path(run_dir))

    def write(self, run_dir: Path) -> Path:
        """Write ``report.html`` (and ``report.md``) for the complete run ``run_dir`` and return
        the HTML path: by the helper (which then exits), else in this process."""
        reply = self._ask("report", run_dir)
        self.close()
        if reply is not None:
            return Path(reply["path"])
        # deferred: the report's libraries, only when the helper could not write the report
        from reports.html import write_report

        return write_report(Path(run_dir))

    def _ask(self, what: str, run_dir: Path) -> dict[str, Any] | None:
        """The helper's reply to one request, or None when it failed or is gone."""
        if self._requests is None or self._replies is None:
            return None
        try:
            self._requests.write(json.dumps({"do": what, "dir": str(Path(run_dir).resolve())}))
            self._requests.write("\n")
            self._requests.flush()
            line = self._replies.readline()
        except OSError:  # the helper is gone
            line = ""
        if not line:
            self.close()
            return None
        reply = json.loads(line)
        return reply if reply.get("ok") else None

    def close(self) -> None:
        """Let the helper go (it exits when its requests end) and reap it."""
        for stream in (self._requests, self._replies):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._requests = self._replies = None
        if self._pid is not None:
            os.waitpid(self._pid, 0)
            self._pid = None


def _serve(requests_fd: int, replies_fd: int) -> NoReturn:
    """The helper's life: import, then answer requests (one JSON line each) until they end,
    then exit. It leaves by ``os._exit``: nothing of the caller's (buffered output, atexit
    hooks, a test runner's teardown) runs twice. A request that fails is answered
    ``{"ok": false}`` and the caller does that work itself, raising any error there."""
    status = 1
    try:
        gc.disable()  # the libraries' objects live as long as the helper (see cli.cmd_run)
        # deferred: the point of the helper, imported while the caller simulates
        from reports.html import write_report
        from reports.kpis import write_metrics  # deferred: as above

        gc.freeze()
        gc.enable()
        with (
            os.fdopen(requests_fd, "r", encoding="utf-8") as requests,
            os.fdopen(replies_fd, "w", encoding="utf-8") as replies,
        ):
            for line in requests:
                ask = json.loads(line)
                run_dir = Path(ask["dir"])
                reply: dict[str, Any] = {"ok": True}
                try:
                    if ask["do"] == "metrics":
                        reply["metrics"] = write_metrics(run_dir)
                    else:
                        reply["path"] = str(write_report(run_dir, processes=FIGURE_PROCESSES))
                except Exception:  # noqa: BLE001 - the caller redoes it and shows the error
                    reply = {"ok": False}
                replies.write(json.dumps(reply) + "\n")
                replies.flush()
        status = 0
    except BaseException:  # noqa: BLE001 - the caller does the work itself
        status = 1
    finally:
        os._exit(status)


def forked_map(job: Callable[[int], Any], n: int, processes: int = 2) -> list[Any]:
    """``[job(0), ..., job(n - 1)]``, computed by this process and ``processes - 1`` forked
    ones, each taking the next index when it is free. Results cross a pipe as JSON, so a job
    returns JSON data (a tuple comes back as a list). An index a helper took but never
    answered (it died) is computed here; without ``os.fork`` everything is."""
    if processes < 2 or n < 2 or not hasattr(os, "fork"):
        return [job(i) for i in range(n)]
    if n > 255:
        raise ValueError(f"forked_map: at most 255 jobs (one byte each), got {n}")
    tasks_r, tasks_w = os.pipe()
    _write_all(tasks_w, bytes(range(n)))  # one byte per job: a one-byte read is atomic
    os.close(tasks_w)
    helpers = []
    try:
        for _ in range(min(processes, n) - 1):
            results_r, results_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(results_r)
                _map_helper(job, tasks_r, results_w)
            os.close(results_w)
            helpers.append((pid, results_r))
        out: dict[int, Any] = {i: job(i) for i in _take(tasks_r)}
    finally:
        os.close(tasks_r)
        for pid, results_r in helpers:
            data = _read_all(results_r)
            os.close(results_r)
            _, status = os.waitpid(pid, 0)
            if status == 0 and data:
                out.update((int(k), v) for k, v in json.loads(data).items())
    return [out[i] if i in out else job(i) for i in range(n)]


def _map_helper(job: Callable[[int], Any], tasks: int, results: int) -> NoReturn:
    """A :func:`forked_map` helper: take jobs until none are left, send the results, exit."""
    status = 1
    try:
        done = {i: job(i) for i in _take(tasks)}
        _write_all(results, json.dumps(done).encode())
        status = 0
    except BaseException:  # noqa: BLE001 - its jobs are redone by the caller
        status = 1
    finally:
        os._exit(status)


def _take(tasks: int) -> Iterator[int]:
    """Job indices from the shared task pipe until it is empty."""
    while chunk := os.read(tasks, 1):
        yield chunk[0]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

"""Reports drawn beside the caller's work, in forked processes (the machine has two cores).

A report's libraries (matplotlib, Jinja2) take a few tenths of a second to import and its
figures most of a second to draw, all after the run is complete:

* :class:`ReportHelper` forks a process before a run starts; it imports those libraries and
  compiles the report's templates while the caller simulates, then waits.
  :meth:`ReportHelper.write` hands it the finished run directory; the helper writes the report
  and answers with its path.
* :func:`forked_map` computes a list of independent jobs (the report's figures) in this
  process and forked ones, each taking the next job when it is free.

Nothing changes in what is written: the report reads only the run directory, and a figure is
the same PNG whichever process draws it. Where processes cannot be forked, or a helper fails in
any way, the caller does the work itself, so results and errors are exactly the serial ones.
This module imports nothing heavy: the caller's process never loads the report's libraries.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

FIGURE_PROCESSES = 2
"""Processes drawing a report's figures in the helper (the machine's two cores)."""


class ReportHelper:
    """A forked process that imports the report's libraries now and writes one run's report
    when asked. Call :meth:`write` at most once, and :meth:`close` in any case."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._inbox = self._answers = -1
        if not hasattr(os, "fork"):
            return
        inbox_r, inbox_w = os.pipe()
        answers_r, answers_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper
            os.close(inbox_w)
            os.close(answers_r)
            _serve(inbox_r, answers_w)
        os.close(inbox_r)
        os.close(answers_w)
        self._pid, self._inbox, self._answers = pid, inbox_w, answers_r

    def write(self, run_dir: Path) -> Path:
        """Write ``report.html`` (and ``report.md``) for the complete run ``run_dir`` and return
        the HTML path: by the helper, or in this process when the helper cannot."""
        answer = b""
        if self._pid is not None:
            try:
                # As given (the helper shares this process's working folder), so the path
                # it answers is the one write_report gives here.
                _write_all(self._inbox, os.fsencode(str(run_dir)))
                os.close(self._inbox)
                self._inbox = -1
                answer = _read_all(self._answers)
            except OSError:  # the helper is gone
                answer = b""
            self.close()
        if answer.startswith(b"ok "):
            return Path(os.fsdecode(answer[3:]))
        # deferred: the report's libraries, only when the helper could not write the report
        from reports.html import write_report

        return write_report(Path(run_dir))

    def close(self) -> None:
        """Let the helper go (it exits when its inbox closes unused) and reap it."""
        for fd in (self._inbox, self._answers):
            if fd >= 0:
                os.close(fd)
        self._inbox = self._answers = -1
        if self._pid is not None:
            os.waitpid(self._pid, 0)
            self._pid = None


def _serve(inbox: int, answers: int) -> NoReturn:
    """The helper's life: import, wait for a run directory, write its report, answer, exit.
    It leaves by ``os._exit``: nothing of the caller's (buffered output, atexit hooks, a test
    runner's teardown) runs twice."""
    status = 1
    try:
        gc.disable()  # the libraries' objects live as long as the helper (see cli.cmd_run)
        # deferred: the point of the helper, imported while the caller simulates
        from reports.html import prepare, write_report

        prepare()
        gc.freeze()
        gc.enable()
        request = _read_all(inbox)
        if request:
            path = write_report(Path(os.fsdecode(request)), processes=FIGURE_PROCESSES)
            _write_all(answers, b"ok " + os.fsencode(str(path)))
        status = 0
    except BaseException:  # noqa: BLE001 - the caller writes the report and shows any error
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

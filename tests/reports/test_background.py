"""Reports drawn in forked processes: the same bytes as drawn serially, every job answered even
when a helper dies, and a report helper that writes the report or leaves it to its caller."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from reports import background
from reports.background import ReportHelper, forked_map
from reports.html import write_report

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _wait_for(folder: Path, pattern: str, count: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(folder.glob(pattern))) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_forked_map_shares_jobs_between_processes(tmp_path: Path) -> None:
    """Two processes take the jobs between them, and the results come back in job order."""
    parent = os.getpid()

    def job(i: int) -> list[int]:
        (tmp_path / f"{i}.{os.getpid()}").touch()
        deadline = time.monotonic() + 20.0  # each process's first job waits for the other's
        while len({p.suffix for p in tmp_path.iterdir()}) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return [i * i, os.getpid()]

    out = forked_map(job, 6, processes=2)
    assert [r[0] for r in out] == [i * i for i in range(6)]
    pids = {r[1] for r in out}
    assert parent in pids and len(pids) == 2


def test_forked_map_redoes_the_jobs_of_a_helper_that_died(tmp_path: Path) -> None:
    """A helper that dies with jobs taken (no answer) leaves them to this process: every
    result is there, computed here."""
    parent = os.getpid()

    def job(i: int) -> int:
        if os.getpid() != parent:
            (tmp_path / "took").touch()
            os._exit(3)
        _wait_for(tmp_path, "took", 1)
        return 10 * i

    assert forked_map(job, 5, processes=2) == [0, 10, 20, 30, 40]
    assert (tmp_path / "took").exists()  # the helper did take a job before dying


def test_forked_map_serial_cases() -> None:
    """One process, or one job, runs here; more than 255 jobs is refused."""
    parent = os.getpid()
    assert forked_map(lambda i: [i, os.getpid()], 3, processes=1) == [[i, parent] for i in range(3)]
    assert forked_map(lambda i: os.getpid(), 1, processes=2) == [parent]
    with pytest.raises(ValueError, match="255"):
        forked_map(lambda i: i, 300, processes=2)


def test_report_drawn_by_two_processes_is_the_same(real_run, tmp_path: Path) -> None:  # noqa: ANN001
    """The default run's report, its figures drawn by two processes, has the same bytes as the
    one drawn in one process (report.html and report.md)."""
    run = real_run("default")
    serial = write_report(run, processes=1)
    html, md = serial.read_bytes(), (run / "report.md").read_bytes()
    assert html.count(b"data:image/png;base64,") >= 4
    parallel = write_report(run, processes=2)
    assert parallel.read_bytes() == html
    assert (run / "report.md").read_bytes() == md


def test_helper_writes_the_report(real_run) -> None:  # noqa: ANN001
    """The helper writes the report of a finished run: the path and bytes write_report gives."""
    run = real_run("default")
    expected = write_report(run).read_bytes()
    (run / "report.html").unlink()
    helper = ReportHelper()
    try:
        path = helper.write(run)
    finally:
        helper.close()
    assert path == run / "report.html"  # the path write_report gives, as the caller named it
    assert path.read_bytes() == expected


def test_a_dead_helper_leaves_the_report_to_its_caller(
    real_run, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    """When the helper is gone (killed), write() writes the report in this process."""
    run = real_run("default")
    (run / "report.html").unlink(missing_ok=True)
    helper = ReportHelper()
    assert helper._pid is not None
    os.kill(helper._pid, signal.SIGKILL)
    calls: list[Path] = []

    def here(run_dir: Path, processes: int = 1) -> Path:
        calls.append(run_dir)
        return write_report(run_dir, processes)

    monkeypatch.setattr("reports.html.write_report", here)
    try:
        path = helper.write(run)
    finally:
        helper.close()
    assert calls == [run] and path.is_file()


def test_an_unused_helper_exits_when_closed() -> None:
    """A helper never asked (the run failed, or --no-report) exits and is reaped on close()."""
    helper = ReportHelper()
    pid = helper._pid
    assert pid is not None
    helper.close()
    helper.close()  # twice is harmless
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_helper_without_fork_writes_here(real_run, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Where processes cannot be forked, the report is written in this process."""
    run = real_run("default")
    monkeypatch.delattr(background.os, "fork")
    helper = ReportHelper()
    assert helper._pid is None
    assert helper.write(run) == run / "report.html"


def test_prepare_compiles_every_template_the_report_uses() -> None:
    """The helper's prepare() leaves each template report.html.j2 extends or imports compiled
    in the Jinja2 cache (so REPORT_TEMPLATES stays the full list)."""
    import re

    from reports.html import REPORT_TEMPLATES, TEMPLATES, prepare

    folder = Path(background.__file__).parent / "templates"
    used, todo = set(), ["report.html.j2"]
    while todo:
        name = todo.pop()
        used.add(name)
        text = (folder / name).read_text(encoding="utf-8")
        refs = re.findall(r"{%-?\s*(?:extends|import|from|include)\s+\"([^\"]+)\"", text)
        todo += [r for r in refs if r not in used]
    assert used == set(REPORT_TEMPLATES)
    TEMPLATES.cache.clear()
    prepare()
    assert {key[1] for key in TEMPLATES.cache} >= used

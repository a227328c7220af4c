"""All-pairs free-flow travel-time tables, computed once and written straight to disk.

The table is an (n, n) float32 ``.npy`` file of seconds, filled block of rows by block of rows
with ``scipy.sparse.csgraph.dijkstra`` (one search per source node). Large graphs are shared
between this process and helper processes that write into the same memory-mapped file, so no
process ever holds the whole table in memory: Milan (~24,000 nodes) is a 2.2 GB file but each
process holds one block of rows at a time.

A build can report its progress, ``progress(rows_done, rows_total)``: the rows searched so far
in every process (each helper counts its finished rows in its own slot of a small shared
file, which this process reads between its own blocks and while it waits), then every row
once the rows of one-exit nodes are derived at the end.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from cities import _table_worker

BLOCK_ROWS = 256
"""Sources per Dijkstra call: a float64 block of 256 x 24,000 is 49 MB."""
PARALLEL_MIN_NODES = 5_000
"""Below this a table takes a few seconds in-process; starting helpers would cost more."""
POLL_S = 0.25
"""How often the progress is read while this process waits for its helpers."""

RowProgress = Callable[[int, int], None]
"""``progress(rows_done, rows_total)`` of a table build: rows_done never decreases and ends at
rows_total (the table's node count)."""


def default_workers() -> int:
    """Processes for a table build: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def build_table(
    graph: csr_matrix,
    path: Path,
    *,
    workers: int | None = None,
    progress: RowProgress | None = None,
) -> None:
    """Write the all-pairs shortest travel times of ``graph`` (seconds) to ``path`` (.npy).

    ``path`` should be a temporary name: the caller renames it once complete. ``progress``
    is called with (rows done, rows total) as blocks of rows finish, last with (n, n).
    """
    n = graph.shape[0]
    graph = csr_matrix(graph)
    table = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n))
    _reserve(path)
    single_exit = np.diff(graph.indptr) == 1
    sources = np.flatnonzero(~single_exit)
    workers = default_workers() if workers is None else max(1, workers)
    report = _Report(progress, n)
    # No interpreter to start helpers with (embedded Python): compute here.
    if workers == 1 or n < PARALLEL_MIN_NODES or not sys.executable:
        blocks = _table_worker.my_blocks(sources, BLOCK_ROWS, 0, 1)
        _table_worker.fill_rows(graph, table, blocks, on_block=report.own)
    else:
        _fill_parallel(graph, table, path, sources, workers, report)
    _derive_single_exit_rows(graph, table, single_exit)
    table.flush()
    report.done()


class _Report:
    """Rows searched by this process plus those its helpers count in the shared slots, passed
    on to a progress callback (never decreasing)."""

    def __init__(self, progress: RowProgress | None, total: int) -> None:
        self.progress, self.total = progress, total
        self.mine = 0
        self.slots: np.ndarray | None = None
        self.last = -1
        self.tell()

    def own(self, rows: int) -> None:
        """This process finished ``rows`` more rows."""
        self.mine += rows
        self.tell()

    def tell(self) -> None:
        if self.progress is None:
            return
        helpers = int(self.slots.sum()) if self.slots is not None else 0
        done = min(self.mine + helpers, self.total)
        if done > self.last:
            self.last = done
            self.progress(done, self.total)

    def done(self) -> None:
        """Every row is in the table (the derived ones included)."""
        self.mine, self.slots = self.total, None
        self.tell()


def _reserve(path: Path) -> None:
    """Allocate the whole file now: a sparse memory-mapped file on a disk that fills up kills
    the process with SIGBUS on a later write; allocating first fails here with ENOSPC."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # e.g. a file system without it
            raise
    finally:
        os.close(fd)


def _die_with_parent(parent: int) -> None:
    """In a helper, before exec: be killed when the process that started it (pid ``parent``)
    dies (Linux), so a killed build leaves no helper running."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        # The parent died between fork and prctl: no signal will ever come.
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _fill_parallel(
    graph: csr_matrix,
    table: np.ndarray,
    path: Path,
    sources: np.ndarray,
    workers: int,
    report: _Report,
) -> None:
    """Rows of ``sources`` split between this process (share 0) and ``workers - 1`` helpers;
    each helper counts its finished rows in its slot of ``<path>.progress.npy``."""
    graph_file = path.with_name(path.name + ".graph.npz")
    slots_file = path.with_name(path.name + ".progress.npy")
    slots = np.lib.format.open_memmap(slots_file, mode="w+", dtype=np.int64, shape=(workers,))
    report.slots = slots
    with graph_file.open("wb") as f:
        np.savez(
            f,
            n=graph.shape[0],
            data=graph.data,
            indices=graph.indices,
            indptr=graph.indptr,
            sources=sources,
        )
    table.flush()
    helpers = []
    try:
        for k in range(1, workers):
            # -P: the worker is a plain script; nothing of the caller's sys.path belongs on its own.
            cmd = [sys.executable, "-P", _table_worker.__file__, str(graph_file), str(path)]
            cmd += [str(k), str(workers), str(BLOCK_ROWS), str(slots_file)]
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=functools.partial(_die_with_parent, os.getpid())
                if sys.platform == "linux"
                else None,
            )
            helpers.append((k, proc))
        share = _table_worker.my_blocks(sources, BLOCK_ROWS, 0, workers)
        _table_worker.fill_rows(graph, table, share, on_block=report.own)
        for k, proc in helpers:
            while report.progress is not None and proc.poll() is None:
                report.tell()  # this process is done: show the helpers' rows as they come
                try:
                    proc.wait(timeout=POLL_S)  # returns as soon as the helper ends
                except subprocess.TimeoutExpired:
                    pass
            _, err = proc.communicate()
            if proc.returncode != 0:
                # Correctness first: redo the helper's share here rather than fail the build.
                warnings.warn(
                    f"travel-time helper {k} failed ({err.decode()[-300:].strip()}); "
                    "computing its rows in this process",
                    RuntimeWarning,
                    stacklevel=3,
                )
                share = _table_worker.my_blocks(sources, BLOCK_ROWS, k, workers)
                slots[k] = 0  # its rows are counted again as this process computes them
                _table_worker.fill_rows(graph, table, share, on_block=report.own)
    finally:
        for _, proc in helpers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        graph_file.unlink(missing_ok=True)
        report.mine += int(slots.sum())  # the helpers' rows, kept once their file is gone
        report.slots = None
        del slots
        slots_file.unlink(missing_ok=True)


def _derive_single_exit_rows(graph: csr_matrix, table: np.ndarray, single_exit: np.ndarray) -> None:
    """Rows of nodes with one way out, without a search: every route from ``x`` starts with its
    only edge ``x -> p``, so ``t(x, j) = t(x, p) + t(p, j)`` exactly (and ``t(x, x) = 0``).

    About a quarter of a city's nodes (dead ends, one-way streets) qualify, which saves that
    share of the Dijkstra work. Rows are derived level by level once their successor's row is
    known; a cycle made only of such nodes (no way out to a searched node) is searched.
    """
    succ = graph.indices[graph.indptr[:-1].clip(max=graph.indices.size - 1)]
    step = graph.data[graph.indptr[:-1].clip(max=graph.data.size - 1)]
    done = ~single_exit
    while True:
        ready = np.flatnonzero(~done & done[succ])
        if ready.size == 0:
            break
        for s in range(0, ready.size, BLOCK_ROWS):
            x = ready[s : s + BLOCK_ROWS]
            rows = table[succ[x]].astype(np.float64) + step[x, None]
            rows[np.arange(x.size), x] = 0.0
            table[x] = rows
        done[ready] = True
    rest = np.flatnonzero(~done)
    if rest.size:
        _table_worker.fill_rows(graph, table, _table_worker.my_blocks(rest, BLOCK_ROWS, 0, 1))

"""Fill part of a travel-time table: run as a plain script by :mod:`cities.tables`.

It is started as ``python -P <this file> graph.npz table.npy worker n_workers block_rows
progress.npy`` (a fresh interpreter, not multiprocessing): a child that re-imports the
caller's ``__main__`` (spawn) or inherits its threads (fork) would be fragile in notebooks,
scripts and Dask workers. Only numpy and scipy are imported here, so the child starts fast.
After each block it writes how many rows it has finished into its slot of ``progress.npy``
(one int64 per worker), which the parent reads to show the build's progress.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


def my_blocks(
    sources: np.ndarray, block_rows: int, worker: int, n_workers: int
) -> list[np.ndarray]:
    """Blocks of ``sources`` for worker ``worker``: every ``n_workers``-th block, so all
    workers get early and late rows and finish together."""
    starts = range(worker * block_rows, sources.size, n_workers * block_rows)
    return [sources[s : s + block_rows] for s in starts]


def fill_rows(
    graph: csr_matrix,
    table: np.ndarray,
    blocks: list[np.ndarray],
    on_block: Callable[[int], None] | None = None,
) -> None:
    """Shortest travel times from the sources of each block to every node, into ``table``;
    ``on_block(rows)`` after each block is written."""
    for rows in blocks:
        if rows.size == 0:
            continue
        times = dijkstra(graph, directed=True, indices=rows)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo == rows.size:  # contiguous: a slice write avoids a fancy-index copy
            table[lo:hi] = times  # float64 -> float32 on assignment
        else:
            table[rows] = times
        if on_block is not None:
            on_block(int(rows.size))


def main(argv: list[str]) -> int:
    graph_file, table_file, worker, n_workers, block_rows, progress_file = argv
    with np.load(graph_file) as z:
        n = int(z["n"])
        graph = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, n))
        sources = z["sources"]
    table = np.load(table_file, mmap_mode="r+")
    slots = np.load(progress_file, mmap_mode="r+")
    slot = int(worker)

    def count(rows: int) -> None:
        slots[slot] += rows  # one aligned int64 store: the parent never reads half of it

    fill_rows(graph, table, my_blocks(sources, int(block_rows), slot, int(n_workers)), count)
    table.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

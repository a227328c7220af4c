"""Fill part of a travel-time table: run as a plain script by :mod:`cities.tables`.

It is started as ``python -P <this file> graph.npz table.npy worker n_workers block_rows`` (a
fresh interpreter, not multiprocessing): a child that re-imports the caller's ``__main__``
(spawn) or inherits its threads (fork) would be fragile in notebooks, scripts and Dask
workers. Only numpy and scipy are imported here, so the child starts fast.
"""

from __future__ import annotations

import sys

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


def fill_rows(graph: csr_matrix, table: np.ndarray, blocks: list[np.ndarray]) -> None:
    """Shortest travel times from the sources of each block to every node, into ``table``."""
    for rows in blocks:
        if rows.size == 0:
            continue
        times = dijkstra(graph, directed=True, indices=rows)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo == rows.size:  # contiguous: a slice write avoids a fancy-index copy
            table[lo:hi] = times  # float64 -> float32 on assignment
        else:
            table[rows] = times


def main(argv: list[str]) -> int:
    graph_file, table_file, worker, n_workers, block_rows = argv
    with np.load(graph_file) as z:
        n = int(z["n"])
        graph = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, n))
        sources = z["sources"]
    table = np.load(table_file, mmap_mode="r+")
    fill_rows(graph, table, my_blocks(sources, int(block_rows), int(worker), int(n_workers)))
    table.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

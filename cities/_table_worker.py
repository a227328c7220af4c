"""Fill part of a travel-time table: run as a plain script by :mod:`cities.tables`.

It is started as ``python <this file> graph.npz table.npy worker n_workers block_rows`` (a fresh
interpreter, not multiprocessing): a child that re-imports the caller's ``__main__`` (spawn)
or inherits its threads (fork) would be fragile in notebooks, scripts and Dask workers.
Only numpy and scipy are imported here, so the child starts fast.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


def my_blocks(n: int, block_rows: int, worker: int, n_workers: int) -> list[tuple[int, int]]:
    """Row blocks of worker ``worker``: every ``n_workers``-th block, so all finish together."""
    starts = range(worker * block_rows, n, n_workers * block_rows)
    return [(s, min(s + block_rows, n)) for s in starts]


def fill_rows(graph: csr_matrix, table: np.ndarray, blocks: list[tuple[int, int]]) -> None:
    """Shortest travel times from the sources of each block to every node, into ``table``."""
    for start, stop in blocks:
        rows = dijkstra(graph, directed=True, indices=np.arange(start, stop))
        table[start:stop] = rows  # float64 -> float32 on assignment


def main(argv: list[str]) -> int:
    graph_file, table_file, worker, n_workers, block_rows = argv
    with np.load(graph_file) as z:
        n = int(z["n"])
        graph = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, n))
    table = np.load(table_file, mmap_mode="r+")
    fill_rows(graph, table, my_blocks(n, int(block_rows), int(worker), int(n_workers)))
    table.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

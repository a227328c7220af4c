"""Travel-time table builds: full disks, killed builds' leftovers, helpers that outlive nothing,
and the rows-done progress a build reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import cities.graph_space as graph_space
from cities import _table_worker, tables
from cities.graph_space import load_graph_space, remove_stale_temporaries
from cities.load import load_city
from cities.roads import load_road_graph
from cities.spec import OsmCity
from core.errors import InputError
from tests.cities.conftest import write_osm
from tests.small_disk import small_disk

ROOT = Path(__file__).resolve().parents[2]


def grid_osm(path: Path, side: int) -> Path:
    """A side x side two-way street grid (side**2 nodes) as OSM XML."""
    nodes = {
        1 + i * side + j: (24.0 + j * 0.001, 60.0 + i * 0.001)
        for i in range(side)
        for j in range(side)
    }
    ways = []
    for i in range(side):
        ways.append((10_000 + i, [1 + i * side + j for j in range(side)], {"highway": "primary"}))
        ways.append((20_000 + i, [1 + j * side + i for j in range(side)], {"highway": "primary"}))
    return write_osm(path, nodes, ways)


def test_table_build_on_a_full_disk_fails_with_one_clear_error(tmp_path: Path) -> None:
    """A city whose table (4 x nodes^2 bytes) exceeds the cache's free space is refused before
    building, with the sizes named; nothing is left in the cache."""
    osm = grid_osm(tmp_path / "g.osm", 30)  # 900 nodes: a 3.2 MB table
    with small_disk(tmp_path / "disk", "1m") as disk:
        with pytest.raises(InputError, match=r"needs 0\.00 GB \(4 x nodes\^2") as err:
            load_city(OsmCity(osm=str(osm)), base_dir=tmp_path, source="s.toml", cache_dir=disk)
        assert err.value.field == "city.osm"
        assert not list(disk.rglob("*.npy")) and not list(disk.rglob("*.tmp*"))


def test_disk_filling_during_a_build_is_enospc_not_sigbus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the free-space check is fooled (another writer fills the disk), the build still fails
    with ENOSPC when the table is allocated, not SIGBUS later; no temporary is left."""
    osm = grid_osm(tmp_path / "g.osm", 30)
    real = graph_space.shutil.disk_usage

    def lie(path: object) -> object:
        u = real(path)
        return type(u)(u.total, 0, 10**12)

    monkeypatch.setattr(graph_space.shutil, "disk_usage", lie)
    with small_disk(tmp_path / "disk", "1m") as disk:
        with pytest.raises(InputError, match="cannot build the city cache"):
            load_city(OsmCity(osm=str(osm)), base_dir=tmp_path, source="s.toml", cache_dir=disk)
        assert not list(disk.rglob("*.tmp*"))


def test_stale_temporaries_of_dead_builds_are_removed(tmp_path: Path) -> None:
    """Temporaries named after a process that is gone are removed (and by the next build of
    that entry); those of a live process stay."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [
        tmp_path / f"table.{dead.pid}.{uuid.uuid4().hex}.tmp.npy",
        tmp_path / f"table.{dead.pid}.{uuid.uuid4().hex}.tmp.npy.graph.npz",
        tmp_path / f"graph.{dead.pid}.{uuid.uuid4().hex}.tmp.npz",
    ]
    live = tmp_path / f"table.{os.getppid()}.{uuid.uuid4().hex}.tmp.npy"
    for p in [*stale, live]:
        p.write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert [p.name for p in tmp_path.iterdir()] == [live.name]


def test_a_build_removes_leftovers_of_a_killed_build(tmp_path: Path) -> None:
    """Building an entry whose folder holds a killed build's temporaries removes them."""
    osm = grid_osm(tmp_path / "g.osm", 5)
    first = load_graph_space(osm, name="g", cache_dir=tmp_path / "c")
    folder = next((tmp_path / "c" / "cities").iterdir())
    (folder / "graph.npz").unlink()  # incomplete: the next load rebuilds
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    junk = folder / f"table.{dead.pid}.{uuid.uuid4().hex}.tmp.npy"
    junk.write_bytes(b"\0" * 1000)
    again = load_graph_space(osm, name="g", cache_dir=tmp_path / "c")
    assert not junk.exists()
    assert np.array_equal(np.asarray(first.table), np.asarray(again.table))


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from scipy.sparse import random as sparse_random
from cities import tables
n = 10000
g = sparse_random(n, n, density=8 / n, format="csr", random_state=1)
g.data[:] = 1.0 + g.data
g = g + g.T
tables.build_table(g.tocsr(), Path({out!r}), workers=2)
"""


def test_table_helpers_die_with_their_parent(tmp_path: Path) -> None:
    """A table build killed with SIGKILL takes its helper processes with it."""
    script = CHILD.format(root=str(ROOT), out=str(tmp_path / "t.tmp.npy"))
    parent = subprocess.Popen([sys.executable, "-c", script])
    children: list[int] = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.05)
        path = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
        if path.exists():
            children = [int(x) for x in path.read_text().split()]
    if not children:
        parent.kill()
        parent.wait()
        pytest.skip("the build finished before a helper could be observed")
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 2  # the helpers alone would compute for longer
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.05)
    assert not any(_alive(c) for c in children)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class _Rows:
    """Records every ``progress(done, total)`` call of a table build."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_monotone_to(self, total: int) -> None:
        assert self.calls, "no progress reported"
        assert all(t == total for _, t in self.calls)
        done = [d for d, _ in self.calls]
        assert done == sorted(set(done)), done  # strictly increasing
        assert done[0] == 0 and done[-1] == total


def test_build_reports_rows_of_a_real_extract_and_keeps_the_bytes(
    shared_data: Path, tmp_path: Path
) -> None:
    """A build of a small real extract reports rows done, strictly increasing from 0 to the
    node count, and writes the same table bytes as a build without a progress callback."""
    osm = shared_data / "barcelona-osm-graphdecomposition" / "barcelona.drive.osm.bz2"
    rows = _Rows()
    space = load_graph_space(osm, name="b", cache_dir=tmp_path / "with", progress=rows)
    plain = load_graph_space(osm, name="b", cache_dir=tmp_path / "without")
    rows.assert_monotone_to(space.n_nodes)
    assert len(rows.calls) > 2  # block by block, not only the start and the end
    assert Path(space.table.filename).read_bytes() == Path(plain.table.filename).read_bytes()


def test_cached_load_reports_no_build(tmp_path: Path) -> None:
    """A load from the cache builds nothing, so it never calls the progress callback."""
    osm = grid_osm(tmp_path / "g.osm", 12)
    first, again = _Rows(), _Rows()
    space = load_graph_space(osm, name="g", cache_dir=tmp_path / "c", progress=first)
    load_graph_space(osm, name="g", cache_dir=tmp_path / "c", progress=again)
    first.assert_monotone_to(space.n_nodes)
    assert again.calls == []


def test_parallel_build_counts_the_helpers_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With helper processes, the rows they finish are counted too: progress rises to the node
    count, and the table is the one the single-process build writes."""
    from scipy.sparse import csr_matrix

    osm = grid_osm(tmp_path / "g.osm", 40)  # about 1,600 nodes: blocks over 3 processes
    graph = load_road_graph(osm, {}).csr()
    n = graph.shape[0]
    monkeypatch.setattr(tables, "BLOCK_ROWS", 64)
    serial = tmp_path / "serial.npy"
    tables.build_table(csr_matrix(graph), serial, workers=1)
    monkeypatch.setattr(tables, "PARALLEL_MIN_NODES", 0)
    rows = _Rows()
    parallel = tmp_path / "parallel.npy"
    tables.build_table(csr_matrix(graph), parallel, workers=3, progress=rows)
    rows.assert_monotone_to(n)
    assert parallel.read_bytes() == serial.read_bytes()
    assert not list(tmp_path.glob("*.progress.npy"))  # the shared counter file is removed


def test_helper_counts_its_rows_in_its_slot(tmp_path: Path) -> None:
    """A helper writes the number of rows it finished into its own slot of the counter file
    (the parent's slot and the others stay 0)."""
    osm = grid_osm(tmp_path / "g.osm", 10)
    graph = load_road_graph(osm, {}).csr()
    n = graph.shape[0]
    sources = np.arange(n)
    graph_file = tmp_path / "g.npz"
    np.savez(
        graph_file,
        n=n,
        data=graph.data,
        indices=graph.indices,
        indptr=graph.indptr,
        sources=sources,
    )
    table_file = tmp_path / "t.npy"
    np.lib.format.open_memmap(table_file, mode="w+", dtype=np.float32, shape=(n, n)).flush()
    slots_file = tmp_path / "p.npy"
    np.lib.format.open_memmap(slots_file, mode="w+", dtype=np.int64, shape=(3,)).flush()
    args = [str(graph_file), str(table_file), "1", "3", "16", str(slots_file)]
    assert _table_worker.main(args) == 0
    mine = sum(b.size for b in _table_worker.my_blocks(sources, 16, 1, 3))
    assert np.load(slots_file).tolist() == [0, mine, 0]


def test_progress_adds_the_helpers_slots_to_this_process_rows() -> None:
    """The reported rows are this process's own plus every helper's slot, never going back
    (a failed helper's slot reset while its rows are redone here), and all rows at the end."""
    rows = _Rows()
    report = tables._Report(rows, 100)
    report.slots = np.zeros(3, dtype=np.int64)
    report.own(10)
    report.slots[1] = 25
    report.slots[2] = 5
    report.tell()
    report.slots[1] = 0  # helper 1 failed: its rows are computed again here
    report.own(20)
    report.own(25)
    report.done()
    assert rows.calls == [(0, 100), (10, 100), (40, 100), (60, 100), (100, 100)]

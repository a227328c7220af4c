"""Travel-time table builds: full disks, killed builds' leftovers, helpers that outlive nothing."""

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
from cities.graph_space import load_graph_space, remove_stale_temporaries
from cities.load import load_city
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

"""`ridesim cache`: what the travel-time cache holds, and pruning and clearing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from cities.graph_space import load_graph_space
from harness import cache
from tests.cities.test_tables import grid_osm

ROOT = Path(__file__).resolve().parents[2]


def fake_entry(root: Path, name: str, nbytes: int, used: float, complete: bool = True) -> Path:
    """A cache entry folder of about ``nbytes``, last used at ``used``."""
    folder = root / "cities" / name
    folder.mkdir(parents=True)
    np.save(folder / "table.npy", np.zeros(max(1, nbytes // 4), dtype=np.float32))
    if complete:
        (folder / "graph.npz").write_bytes(b"g")
    os.utime(folder, (used, used))
    return folder


def test_list_describes_a_real_entry(tmp_path: Path) -> None:
    """A built city is listed with its size, city name, node count and source file."""
    osm = grid_osm(tmp_path / "g.osm", 6)
    n = load_graph_space(osm, name="g", cache_dir=tmp_path / "c").n_nodes
    (entry,) = cache.list_entries(tmp_path / "c")
    assert entry.complete and entry.bytes > n * n * 4
    assert entry.what.startswith(f"g: {n} nodes from ") and str(osm.resolve()) in entry.what


def test_prune_removes_leftovers_and_caps_the_size(tmp_path: Path) -> None:
    """prune removes stale temporaries and incomplete entries; with a cap it removes the least
    recently used entries until the rest fit; clear removes everything."""
    old = fake_entry(tmp_path, "old", 40_000, 1_000)
    mid = fake_entry(tmp_path, "mid", 40_000, 2_000)
    new = fake_entry(tmp_path, "new", 40_000, 3_000)
    broken = fake_entry(tmp_path, "broken", 1_000, 4_000, complete=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = new / f"table.{dead.pid}.{uuid.uuid4().hex}.tmp.npy"
    stale.write_bytes(b"x" * 10)
    os.utime(new, (3_000, 3_000))
    assert [e.path.name for e in cache.list_entries(tmp_path)] == ["broken", "new", "mid", "old"]
    removed = cache.prune(tmp_path)
    assert sorted(removed) == sorted([stale, broken])
    removed = cache.prune(tmp_path, max_bytes=90_000)
    assert removed == [old]
    assert [e.path.name for e in cache.list_entries(tmp_path)] == ["new", "mid"]
    assert mid.exists()
    assert cache.clear(tmp_path) > 80_000
    assert cache.list_entries(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "value"), [("500MB", 500 * 1024**2), ("2g", 2 * 1024**3), ("1024", 1024)]
)
def test_parse_size(text: str, value: int) -> None:
    """Sizes take B/KB/MB/GB/TB suffixes (case-insensitive) or plain bytes."""
    assert cache.parse_size(text) == value


def test_cli_cache_list_prune_clear(tmp_path: Path) -> None:
    """`cli.py cache list/prune/clear --cache DIR` print the entries and what they removed."""
    fake_entry(tmp_path, "a" * 64, 4_000, 1_000)

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "cache", *args, "--cache", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "1 entries" in cli("list") and "aaaaaaaaaaaaaaaa" in cli("list")
    assert "pruned 1" in cli("prune", "--max-size", "1KB")
    assert "0 entries" in cli("list")
    json.dumps(cli("clear"))

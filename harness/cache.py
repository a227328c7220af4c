"""The travel-time cache on disk: what is in it, and keeping it small.

Each built road network is one folder ``<cache>/cities/<key>/`` (``graph.npz``, ``table.npy``
and ``entry.json`` saying which city, source file and speeds it was built from). The same
extract as PBF and as XML, or with other speeds, is another entry; nothing is ever removed
automatically except the temporaries of builds that were killed. ``ridesim cache`` lists the
entries, prunes (temporaries, incomplete entries, and least recently used entries above a size
cap) and clears.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cities.graph_space import ENTRY_FILE, default_cache_dir, remove_stale_temporaries
from core.errors import InputError


@dataclass(frozen=True)
class CacheEntry:
    """One folder of the cache."""

    path: Path
    bytes: int
    last_used: float
    """Seconds since the epoch of the last load (the folder's mtime)."""
    complete: bool
    what: str


def cities_dir(cache_dir: Path | None = None) -> Path:
    """Where the built road networks live."""
    return (cache_dir or default_cache_dir()) / "cities"


def list_entries(cache_dir: Path | None = None) -> list[CacheEntry]:
    """Every entry of the cache, most recently used first."""
    root = cities_dir(cache_dir)
    if not root.is_dir():
        return []
    entries = [_entry(p) for p in root.iterdir() if p.is_dir()]
    return sorted(entries, key=lambda e: (-e.last_used, e.path.name))


def _entry(folder: Path) -> CacheEntry:
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    complete = (folder / "graph.npz").is_file() and (folder / "table.npy").is_file()
    return CacheEntry(folder, size, folder.stat().st_mtime, complete, _describe(folder, complete))


def _describe(folder: Path, complete: bool) -> str:
    if not complete:
        return "incomplete (a build that did not finish)"
    try:
        info = json.loads((folder / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict):
        speeds = info.get("speeds") or {}
        extra = f", speeds {speeds}" if speeds else ""
        extra += ", service roads" if info.get("service_roads") else ""
        return f"{info.get('name')}: {info.get('n_nodes'):,} nodes from {info.get('path')}{extra}"
    try:
        n = np.load(folder / "table.npy", mmap_mode="r").shape[0]
    except (OSError, ValueError):
        return "unreadable table"
    return f"{n:,} nodes (built before entries were described)"


def prune(cache_dir: Path | None = None, max_bytes: int | None = None) -> list[Path]:
    """Remove stale temporaries and incomplete entries, then, with ``max_bytes``, the least
    recently used entries until the cache fits. Returns what was removed."""
    removed: list[Path] = []
    for entry in list_entries(cache_dir):
        removed += remove_stale_temporaries(entry.path)
        if not entry.complete and not _building(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    if max_bytes is not None:
        entries = list_entries(cache_dir)
        total = sum(e.bytes for e in entries)
        for entry in reversed(entries):  # least recently used first
            if total <= max_bytes:
                break
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
            total -= entry.bytes
    return removed


def _building(folder: Path) -> bool:
    """A build is under way in ``folder`` (a temporary of a live process is there)."""
    return any(folder.glob("*.tmp*"))


def clear(cache_dir: Path | None = None) -> int:
    """Remove every entry; returns the bytes freed."""
    entries = list_entries(cache_dir)
    for entry in entries:
        shutil.rmtree(entry.path, ignore_errors=True)
    return sum(e.bytes for e in entries)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.IGNORECASE)


def parse_size(text: str, *, source: str = "--max-size") -> int:
    """``"500MB"``, ``"2G"``, ``"1.5TB"`` or plain bytes -> bytes; raises InputError."""
    m = _SIZE.match(text)
    if not m:
        raise InputError(source, text, "expected a size like 500MB, 2GB or 1.5TB")
    scale = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def human(n: float) -> str:
    """Bytes as B/KB/MB/GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"

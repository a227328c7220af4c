"""Surge pricing inside a run: prices move with supply and demand and feed back into conversion."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from core.schemas import read_events
from tests.scenarios import run, small_scenario


def test_surge_raises_prices_and_damps_conversion(tmp_path: Path, cache_dir: Path) -> None:
    """Under 4x load a ratio surge sets multipliers above 1, recorded per cell and interval in
    surge.parquet, and fewer quotes convert than at fixed prices."""
    busy = {"demand": {"multiplier": 4}}
    fixed = run(small_scenario(**busy), tmp_path, cache_dir, "fixed")
    surged = run(small_scenario(**busy, surge={"policy": "ratio"}), tmp_path, cache_dir, "surge")
    assert not (fixed.run_dir / "surge.parquet").exists()
    table = pq.read_table(surged.run_dir / "surge.parquet").to_pandas()
    assert {"t", "cell", "multiplier", "open_requests", "idle_drivers"} <= set(table.columns)
    assert table.multiplier.max() > 1.0 and table.multiplier.min() >= 1.0
    nodes = pq.read_table(surged.run_dir / "nodes.parquet").to_pandas()
    assert set(nodes.cell) <= set(table.cell)

    def conversion(result) -> float:
        ev = read_events(result.run_dir / "events.parquet").to_pandas()
        return (ev.kind == "request").sum() / (ev.kind == "quote").sum()

    assert conversion(surged) < conversion(fixed)

"""Peak memory of computing metrics.json: a fixed overhead plus a bounded rate per event row."""

from __future__ import annotations

from pathlib import Path

from big_log import baseline_rss_mb, peak_rss_mb, write_big_run

ROWS = 400_000
FIXED_MB = 120.0  # Parquet batch buffers, allocator slack
BYTES_PER_ROW = 200  # 8.1M rows measured at ~150 B/row over the imports (big_log.py)


def test_metrics_peak_memory_per_row(tmp_path: Path) -> None:
    """A fresh interpreter computes a 400k-row log's metrics within 120 MB + 200 B/row over its
    imports (the same bound allows 1.7 GB in all at 8M rows)."""
    run = write_big_run(tmp_path / "big", ROWS)
    peak, _ = peak_rss_mb(run)
    extra = peak - baseline_rss_mb()
    assert extra < FIXED_MB + BYTES_PER_ROW * ROWS / 2**20, f"{extra:.0f} MB over the imports"

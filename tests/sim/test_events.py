"""The event log: rows in, declared-schema columns out, in chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import EVENTS_SCHEMA, NONE
from sim.events import EventLog


def test_rows_and_keyword_adds_give_the_same_table() -> None:
    """row() with a full tuple and add() with keywords log identical events."""
    a, b = EventLog(None), EventLog(None)
    a.add(1.0, "request", rider=3, node=5, dest_node=6, value=20.0, fare=7.5)
    a.add(2.0, "fault", detail="matcher_down")
    b.row((1.0, "request", 3, NONE, 5, 6, 20.0, 7.5, None))
    b.row((2.0, "fault", NONE, NONE, NONE, NONE, np.nan, np.nan, "matcher_down"))
    assert a.table().equals(b.table())


def test_missing_ids_and_values_are_null() -> None:
    """NONE ids and NaN values are stored as nulls; seq numbers rows 0..n-1."""
    log = EventLog(None)
    log.row((0.0, "driver_online", NONE, 4, 2, NONE, np.nan, np.nan, None))
    log.row((1.0, "cancel", 1, NONE, 2, NONE, np.nan, np.nan, "patience"))
    t = log.table()
    assert t.schema.equals(EVENTS_SCHEMA)
    assert t.column("seq").to_pylist() == [0, 1]
    assert t.column("rider").to_pylist() == [None, 1]
    assert t.column("value").null_count == 2


def test_chunks_stream_to_disk_and_become_parquet(tmp_path: Path) -> None:
    """write_chunks() streams every complete chunk of chunk_rows rows (the rest waits); close()
    leaves only the Parquet file, with every row in order, in row groups of row_group_rows
    whatever the chunks were."""
    path = tmp_path / "events.parquet"
    log = EventLog(path, chunk_rows=3, row_group_rows=5)
    for k in range(7):
        log.row((float(k), "request", k, NONE, 0, 1, 1.0, 5.0, None))
    log.write_chunks()
    assert len(log) == 7
    with pa.ipc.open_stream(pa.OSFile(str(path.with_suffix(".arrows")))) as stream:
        assert [b.num_rows for b in stream] == [3, 3]
    log.close()
    assert not path.with_suffix(".arrows").exists()
    table = pq.read_table(path)
    assert table.column("rider").to_pylist() == list(range(7))
    assert table.column("seq").to_pylist() == list(range(7))
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [5, 2]


def test_parquet_bytes_do_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    """The same rows give the same events.parquet, byte for byte, whether the run streamed
    them in chunks smaller than a row group, of one row group, or larger."""
    files = []
    for chunk in (1, 3, 8, 8 * 5, 1000):
        path = tmp_path / f"events_{chunk}.parquet"
        log = EventLog(path, chunk_rows=chunk, row_group_rows=8)
        for k in range(37):
            detail = None if k % 4 else str(k % 3)
            log.row((0.5 * k, "assign", k, k % 5, k, NONE, float(k), np.nan, detail))
            if k % 6 == 5:
                log.write_chunks()  # the engine's steps fall anywhere
        log.close()
        files.append(path.read_bytes())
    assert all(f == files[0] for f in files)
    meta = pq.ParquetFile(tmp_path / "events_1.parquet").metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [8, 8, 8, 8, 5]


def test_only_the_few_valued_columns_are_dictionary_encoded(tmp_path: Path) -> None:
    """kind and detail are stored with dictionary pages; times, ids and amounts (nearly every
    value distinct) are not; the table reads back the same."""
    path = tmp_path / "events.parquet"
    log = EventLog(path)
    for k in range(50):
        log.row((float(k), "assign", k, k + 1, k, k + 2, 0.5 * k, 3.0 + k, str(k % 3)))
    log.close()
    group = pq.ParquetFile(path).metadata.row_group(0)
    encoded = {
        group.column(c).path_in_schema: group.column(c).has_dictionary_page
        for c in range(group.num_columns)
    }
    assert encoded == {f.name: f.name in ("kind", "detail") for f in EVENTS_SCHEMA}
    table = pq.read_table(path)
    assert table.schema.equals(EVENTS_SCHEMA, check_metadata=False)
    assert table.column("detail").to_pylist() == [str(k % 3) for k in range(50)]
    assert table.column("fare").to_pylist() == [3.0 + k for k in range(50)]


def test_chunk_boundaries_keep_every_row() -> None:
    """Rows filling whole chunks, and a partial last one, lose and repeat nothing, and len()
    counts written and buffered rows alike."""
    log = EventLog(None, chunk_rows=4)
    n = 3 * 4 + 3
    for k in range(n):
        log.row((float(k), "request", k, NONE, 0, 1, 1.0, 5.0, None))
        assert len(log) == k + 1
    table = log.table()
    assert [b.num_rows for b in table.to_batches()] == [4, 4, 4, 3]
    assert table.column("rider").to_pylist() == list(range(n))
    assert table.column("seq").to_pylist() == list(range(n))


def test_numpy_scalars_and_int_times_convert_as_python_numbers() -> None:
    """Rows holding numpy scalars (and the int time 0 of the first step) give the same table
    as rows of Python floats and ints."""
    a, b = EventLog(None), EventLog(None)
    a.row((0, "assign", np.int64(3), np.int64(4), 5, 6, np.float64(2.5), np.float64(np.nan), "7"))
    b.row((0.0, "assign", 3, 4, 5, 6, 2.5, np.nan, "7"))
    assert a.table().equals(b.table())
    assert a.table().column("fare").null_count == 1

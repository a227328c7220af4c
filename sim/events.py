"""The event log writer: rows appended in simulated-time order, written in chunks.

Rows arrive as tuples (one list append per event) and become a chunk's columns in one
conversion when the chunk is written (in chunks of ``chunk_rows`` rows).

The schema and the meaning of every column and kind are declared in :mod:`core.schemas`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import EVENTS_SCHEMA, NONE

Row = tuple[float, str, int, int, int, int, float, float, str | None]
"""One event: ``(t, kind, rider, driver, node, dest_node, value, fare, detail)``."""
ROW_TYPE = pa.struct([(f.name, f.type) for f in EVENTS_SCHEMA][1:])
"""A row as Arrow converts it: the schema's columns after ``seq``, in order, as one struct
(a list of row tuples converts to one struct array in a single pass, no per-column lists)."""


CHUNK_ROWS = 8_192
"""Rows per chunk streamed while the run goes (what a crash can lose at most). Small enough
that the buffered row tuples (about 300 bytes each) stay in cache and their memory is reused
chunk after chunk: with 65,536-row chunks (20 MB of tuples) two runs side by side on this
2-core machine each took 1.165x the CPU of a run alone, with 8,192-row ones 1.045x."""

ROW_GROUP_ROWS = 65_536
"""Rows per row group of ``events.parquet``, whatever the chunk size (the file's layout, and
so its bytes, do not depend on how often the run flushed)."""

DICTIONARY_COLUMNS = ["kind", "detail"]
"""The columns stored dictionary-encoded in ``events.parquet``: those with few distinct values.
Dictionary pages for the others (times, ids, amounts: nearly every value distinct) cost a
third of the writing time and made a 100,000-request plane log 43% larger (10.9 MB against
7.7 MB), and reading it slower."""


class EventLog:
    """Buffers events as rows and streams them to disk in chunks of ``chunk_rows`` rows.

    ``row(row)`` appends one event, a full tuple ``(t, kind, rider, driver, node, dest_node,
    value, fare, detail)`` in simulated-time order: it *is* the buffer's ``list.append`` (the
    engine's hot path, several calls per request), so it never writes anything itself. The
    engine calls :meth:`write_chunks` between steps of the run, which writes every complete
    chunk buffered; :meth:`flush` writes the rest too. Chunks hold exactly ``chunk_rows``
    rows (the last one fewer) however the calls fall.

    While the run goes, chunks are appended to an Arrow IPC stream next to ``path``
    (``events.arrows``), which stays readable up to the last complete chunk if the process
    dies. :meth:`close` converts the stream into the final ``events.parquet`` chunk by chunk
    and removes it. With ``path=None`` the log is kept in memory (tests, notebooks).
    """

    def __init__(
        self, path: Path | None, chunk_rows: int = CHUNK_ROWS, row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        self.row_group_rows = row_group_rows
        self._stream_path = path.with_suffix(".arrows") if path else None
        self._sink = pa.OSFile(str(self._stream_path), "wb") if self._stream_path else None
        self._writer = pa.ipc.new_stream(self._sink, EVENTS_SCHEMA) if self._sink else None
        self._chunks: list[pa.RecordBatch] = []
        self._written = 0
        self._rows: list[Row] = []
        self.row: Callable[[Row], None] = self._rows.append

    def __len__(self) -> int:
        return self._written + len(self._rows)

    def add(
        self,
        t: float,
        kind: str,
        rider: int = NONE,
        driver: int = NONE,
        node: int = NONE,
        dest_node: int = NONE,
        value: float = np.nan,
        detail: str | None = None,
        fare: float = np.nan,
    ) -> None:
        """Append one event (in simulated-time order)."""
        self.row((t, kind, rider, driver, node, dest_node, value, fare, detail))

    def write_chunks(self) -> None:
        """Write every complete chunk buffered (the rows after the last one stay)."""
        if len(self._rows) >= self.chunk_rows:
            self.flush(whole_chunks=True)

    def flush(self, whole_chunks: bool = False) -> None:
        """Write the buffered rows (``whole_chunks``: only complete chunks), a record batch
        of ``chunk_rows`` rows each."""
        rows, size = self._rows, self.chunk_rows
        n = len(rows) - len(rows) % size if whole_chunks else len(rows)
        for lo in range(0, n, size):
            self._write(rows[lo : min(lo + size, n)])
        # In place: ``row`` is this very list's append.
        del rows[:n]

    def _write(self, rows: list[Row]) -> None:
        n = len(rows)
        start = self._written
        cols = pa.array(rows, type=ROW_TYPE).flatten()
        t, kind, rider, driver, node, dest, value, fare, detail = cols
        batch = pa.record_batch(
            [
                pa.array(np.arange(start, start + n, dtype=np.int64)),
                t,
                kind,
                _ids(rider),
                _ids(driver),
                _ids(node),
                _ids(dest),
                _values(value),
                _values(fare),
                detail,
            ],
            schema=EVENTS_SCHEMA,
        )
        if self._writer is not None:
            assert self._sink is not None
            self._writer.write_batch(batch)
            self._sink.flush()
        else:
            self._chunks.append(batch)
        self._written += n

    def close(self) -> None:
        """Flush, then turn the chunk stream into the final Parquet file."""
        self.flush()
        if self._writer is None:
            return
        assert self._sink is not None
        self._writer.close()
        self._sink.close()
        self._writer = None
        assert self.path is not None and self._stream_path is not None
        with pa.memory_map(str(self._stream_path)) as source:
            # The stream's batches stay in the mapped file (no copy); the writer cuts them into
            # row groups of exactly `row_group_rows` rows, as if the run had streamed chunks of
            # that size.
            table = pa.ipc.open_stream(source).read_all()
            with pq.ParquetWriter(
                self.path, EVENTS_SCHEMA, compression="zstd", use_dictionary=DICTIONARY_COLUMNS
            ) as out:
                out.write_table(table, row_group_size=self.row_group_rows)
            del table
        self._stream_path.unlink()

    def table(self) -> pa.Table:
        """Everything logged so far (only for in-memory logs)."""
        if self.path is not None:
            raise RuntimeError("EventLog.table(): this log streams to disk; read the file")
        self.flush()
        return pa.Table.from_batches(self._chunks, schema=EVENTS_SCHEMA)


def _ids(values: pa.Array) -> pa.Array:
    arr = values.to_numpy()
    return pa.array(arr, mask=arr < 0)


def _values(values: pa.Array) -> pa.Array:
    arr = values.to_numpy()
    return pa.array(arr, mask=np.isnan(arr))

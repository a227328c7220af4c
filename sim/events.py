"""The event log writer: rows appended in simulated-time order, written in chunks.

Rows arrive as tuples (one append per event) and are moved into column buffers in small
batches; a chunk is written every ``chunk_rows`` rows.

The schema and the meaning of every column and kind are declared in :mod:`core.schemas`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import EVENTS_SCHEMA, NONE

Row = tuple[float, str, int, int, int, int, float, float, str | None]
"""One event: ``(t, kind, rider, driver, node, dest_node, value, fare, detail)``."""
ROW_FIELDS = 9
SPILL_ROWS = 512
"""Rows kept as tuples before they move into the column buffers."""


class EventLog:
    """Buffers events as rows and streams them to disk every ``chunk_rows`` rows.

    While the run goes, chunks are appended to an Arrow IPC stream next to ``path``
    (``events.arrows``), which stays readable up to the last complete chunk if the process
    dies. :meth:`close` converts the stream into the final ``events.parquet`` chunk by chunk
    and removes it. With ``path=None`` the log is kept in memory (tests, notebooks).
    """

    def __init__(self, path: Path | None, chunk_rows: int = 65_536) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        self._stream_path = path.with_suffix(".arrows") if path else None
        self._sink = pa.OSFile(str(self._stream_path), "wb") if self._stream_path else None
        self._writer = pa.ipc.new_stream(self._sink, EVENTS_SCHEMA) if self._sink else None
        self._chunks: list[pa.RecordBatch] = []
        self._seq = 0
        self._reset()

    def _reset(self) -> None:
        self._rows: list[Row] = []
        self._columns: list[list[Any]] = [[] for _ in range(ROW_FIELDS)]
        self._n_buffered = 0

    def __len__(self) -> int:
        return self._seq

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

    def row(self, row: Row) -> None:
        """Append one event given as a full row ``(t, kind, rider, driver, node, dest_node,
        value, fare, detail)``: the engine's hot path (one tuple, no keyword handling)."""
        rows = self._rows
        rows.append(row)
        self._seq += 1
        if len(rows) >= SPILL_ROWS:
            self._spill()
        if self._n_buffered + len(rows) >= self.chunk_rows:
            self.flush()

    def _spill(self) -> None:
        # Row tuples are garbage-collector-tracked containers; moved into column lists (of
        # untracked numbers and strings) while young, they never weigh on full collections.
        if not self._rows:
            return
        for column, values in zip(self._columns, zip(*self._rows, strict=True), strict=True):
            column.extend(values)
        self._n_buffered += len(self._rows)
        self._rows = []

    def flush(self) -> None:
        """Write the buffered rows as one record batch."""
        self._spill()
        n = self._n_buffered
        if n == 0:
            return
        start = self._seq - n
        t, kind, rider, driver, node, dest, value, fare, detail = self._columns
        batch = pa.record_batch(
            [
                pa.array(np.arange(start, self._seq, dtype=np.int64)),
                pa.array(np.asarray(t, dtype=np.float64)),
                pa.array(kind, type=pa.string()),
                _ids(rider),
                _ids(driver),
                _ids(node),
                _ids(dest),
                _values(value),
                _values(fare),
                pa.array(detail, type=pa.string()),
            ],
            schema=EVENTS_SCHEMA,
        )
        if self._writer is not None:
            assert self._sink is not None
            self._writer.write_batch(batch)
            self._sink.flush()
        else:
            self._chunks.append(batch)
        self._reset()

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
            reader = pa.ipc.open_stream(source)
            with pq.ParquetWriter(self.path, EVENTS_SCHEMA, compression="zstd") as out:
                for batch in reader:
                    out.write_batch(batch)
        self._stream_path.unlink()

    def table(self) -> pa.Table:
        """Everything logged so far (only for in-memory logs)."""
        if self.path is not None:
            raise RuntimeError("EventLog.table(): this log streams to disk; read the file")
        self.flush()
        return pa.Table.from_batches(self._chunks, schema=EVENTS_SCHEMA)


def _ids(values: list[int]) -> pa.Array:
    arr = np.asarray(values, dtype=np.int64)
    return pa.array(arr, mask=arr < 0)


def _values(values: list[float]) -> pa.Array:
    arr = np.asarray(values, dtype=np.float64)
    return pa.array(arr, mask=np.isnan(arr))

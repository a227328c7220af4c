"""The event log writer: rows appended in simulated-time order, written in chunks.

The schema and the meaning of every column and kind are declared in :mod:`core.schemas`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import EVENTS_SCHEMA, NONE


class EventLog:
    """Buffers events in columns and streams them to disk every ``chunk_rows`` rows.

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
        self._t: list[float] = []
        self._kind: list[str] = []
        self._rider: list[int] = []
        self._driver: list[int] = []
        self._node: list[int] = []
        self._dest: list[int] = []
        self._value: list[float] = []
        self._fare: list[float] = []
        self._detail: list[str | None] = []

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
        self._t.append(t)
        self._kind.append(kind)
        self._rider.append(rider)
        self._driver.append(driver)
        self._node.append(node)
        self._dest.append(dest_node)
        self._value.append(value)
        self._fare.append(fare)
        self._detail.append(detail)
        self._seq += 1
        if len(self._t) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one record batch."""
        n = len(self._t)
        if n == 0:
            return
        start = self._seq - n
        batch = pa.record_batch(
            [
                pa.array(np.arange(start, self._seq, dtype=np.int64)),
                pa.array(np.asarray(self._t, dtype=np.float64)),
                pa.array(self._kind, type=pa.string()),
                _ids(self._rider),
                _ids(self._driver),
                _ids(self._node),
                _ids(self._dest),
                _values(self._value),
                _values(self._fare),
                pa.array(self._detail, type=pa.string()),
            ],
            schema=EVENTS_SCHEMA,
        )
        if self._writer is not None:
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

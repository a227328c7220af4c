"""The event log: one declared Arrow schema, appended in simulated-time order, written in chunks.

One row per thing that happened. Columns:

===========  ============  ==============================================================
column       type          meaning
===========  ============  ==============================================================
seq          int64         position in the total order (0, 1, 2, ...)
t            float64       simulated seconds since the scenario start
kind         string        what happened (see :class:`Kind`)
rider        int64 / null  ride request id
driver       int64 / null  driver id
node         int64 / null  where it happened (access node id)
dest_node    int64 / null  where it is heading (see per-kind notes)
value        float64/null  the kind's measured quantity (see per-kind notes)
fare         float64/null  money: the quoted price (quote) or the fare paid (dropoff)
detail       string/null   the kind's qualifier (cancel reason, ...)
===========  ============  ==============================================================

Per kind:

* ``driver_online`` / ``driver_offline``: driver, node; detail ``crash`` on an app crash
  and ``reconnect`` when the driver comes back.
* ``fault``: detail ``matcher_down`` / ``matcher_up`` (a matcher outage starts / ends).
* ``quote``: rider, node = pickup node, dest_node = dropoff node, value = quoted pickup ETA
  seconds shown to the rider, fare = quoted price, detail = ``request`` or ``decline`` (the
  rider's choice; a declined quote never becomes a request).
* ``request``: rider, node = pickup node, dest_node = dropoff node,
  value = free-flow trip seconds pickup -> dropoff, fare = the accepted quote.
* ``offer``: rider, driver, node = driver's node, dest_node = pickup node,
  value = pickup ETA seconds the matcher saw, detail = batch id (only when drivers may decline).
* ``decline``: rider, driver, node = driver's node, detail = ``declined``, ``timeout`` or
  ``rider_gone``; the request goes back to the matcher.
* ``assign``: rider, driver, node = driver's node, dest_node = pickup node,
  value = pickup ETA seconds the matcher saw (the quote to compare with the actual), detail =
  batch id. The driver starts towards the pickup now.
* ``pickup``: rider, driver, node = pickup node, value = actual seconds from assign to pickup.
* ``dropoff``: rider, driver, node = dropoff node, value = actual seconds pickup -> dropoff,
  fare = fare paid.
* ``cancel``: rider, driver (if one was assigned), node = pickup node, detail = reason:
  ``patience`` (nobody matched in time), ``no_driver`` (zero patience, nobody in range),
  ``after_match`` (the rider gave up on the assigned driver; the driver still drives to the
  pickup node and is free there).
* ``reposition``: driver, node = where the driver is, dest_node = where they head while idle,
  value = seconds the drive takes.

Rows are appended in the order the simulation processes them, which is the SimPy
(time, priority, sequence) order, so ``t`` never decreases.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 2

SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("t", pa.float64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("rider", pa.int64()),
        pa.field("driver", pa.int64()),
        pa.field("node", pa.int64()),
        pa.field("dest_node", pa.int64()),
        pa.field("value", pa.float64()),
        pa.field("fare", pa.float64()),
        pa.field("detail", pa.string()),
    ],
    metadata={"ridesim.events.schema_version": str(SCHEMA_VERSION)},
)


class Kind(StrEnum):
    """Event kinds written to the log."""

    DRIVER_ONLINE = "driver_online"
    DRIVER_OFFLINE = "driver_offline"
    QUOTE = "quote"
    REQUEST = "request"
    OFFER = "offer"
    DECLINE = "decline"
    ASSIGN = "assign"
    PICKUP = "pickup"
    DROPOFF = "dropoff"
    CANCEL = "cancel"
    REPOSITION = "reposition"
    FAULT = "fault"


NONE = -1
"""In-memory marker for a missing id; written to Parquet as null, never as -1."""


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
        self._writer = pa.ipc.new_stream(self._sink, SCHEMA) if self._sink else None
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
            schema=SCHEMA,
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
            with pq.ParquetWriter(self.path, SCHEMA, compression="zstd") as out:
                for batch in reader:
                    out.write_batch(batch)
        self._stream_path.unlink()

    def table(self) -> pa.Table:
        """Everything logged so far (only for in-memory logs)."""
        if self.path is not None:
            raise RuntimeError("EventLog.table(): this log streams to disk; read the file")
        self.flush()
        return pa.Table.from_batches(self._chunks, schema=SCHEMA)


def _ids(values: list[int]) -> pa.Array:
    arr = np.asarray(values, dtype=np.int64)
    return pa.array(arr, mask=arr < 0)


def _values(values: list[float]) -> pa.Array:
    arr = np.asarray(values, dtype=np.float64)
    return pa.array(arr, mask=np.isnan(arr))


def read_events(path: Path) -> pa.Table:
    """Read an event log (``events.parquet``, or the ``events.arrows`` prefix a crashed run
    left behind), checking its schema."""
    path = Path(path)
    if path.suffix == ".arrows":
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
    else:
        table = pq.read_table(path)
    if not table.schema.equals(SCHEMA, check_metadata=False):
        raise ValueError(f"{path}: not a ridesim event log (schema differs from v{SCHEMA_VERSION})")
    return table

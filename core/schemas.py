"""Every table a run directory holds, declared once: the event log and its companions.

The event log (``events.parquet``): one row per thing that happened, appended in
simulated-time order and written in chunks by :class:`sim.events.EventLog`.

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

import pyarrow as pa
import pyarrow.parquet as pq

EVENTS_SCHEMA_VERSION = 2

EVENTS_SCHEMA = pa.schema(
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
    metadata={"ridesim.events.schema_version": str(EVENTS_SCHEMA_VERSION)},
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


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    # Nullable and without metadata, exactly as the files have always been written (a
    # declared schema must not change a byte of what a run writes).
    return pa.schema([pa.field(name, dtype) for name, dtype in fields])


SURGE_SCHEMA = _schema(
    ("t", pa.float64()),
    ("cell", pa.string()),
    ("multiplier", pa.float64()),
    ("open_requests", pa.int64()),
    ("quotes", pa.int64()),
    ("unconverted_quotes", pa.int64()),
    ("idle_drivers", pa.int64()),
    ("en_route_drivers", pa.int64()),
    ("recent_pickup_eta_s", pa.float64()),
)
"""``surge.parquet``: per pricing interval (``t``, its start) and zone (``cell``), the supply and
demand the surge policy saw and the multiplier it set."""

NODES_SCHEMA = _schema(
    ("node", pa.int64()),
    ("x_m", pa.float64()),
    ("y_m", pa.float64()),
    ("lon", pa.float64()),
    ("lat", pa.float64()),
    ("cell", pa.string()),
)
"""``nodes.parquet``: each access node's position (metres; lon/lat null on synthetic spaces)
and its zone, the run's one zoning (reports read it and never recompute zones)."""

ROADS_SCHEMA = _schema(
    ("x0", pa.float64()),
    ("y0", pa.float64()),
    ("x1", pa.float64()),
    ("y1", pa.float64()),
)
"""``roads.parquet``: road segments in metres, for maps."""

TRIPS_SCHEMA = _schema(
    ("rider", pa.int64()),
    ("t", pa.float64()),
    ("pickup_node", pa.int64()),
    ("dropoff_node", pa.int64()),
    ("recorded_trip_s", pa.float64()),
)
"""``trips.parquet``: the drawn demand, with the recorded ride seconds of replayed real trips
(null otherwise)."""

MATCHER_CALLS_SCHEMA = _schema(
    ("batch_id", pa.int64()),
    ("shard_id", pa.int64()),
    ("n_requests", pa.int64()),
    ("n_drivers", pa.int64()),
    ("wall_ms", pa.float64()),
)
"""``matcher_calls.parquet``: wall time and size of every matcher call (perf only)."""

RUN_TABLES: dict[str, pa.Schema] = {
    "events.parquet": EVENTS_SCHEMA,
    "surge.parquet": SURGE_SCHEMA,
    "nodes.parquet": NODES_SCHEMA,
    "roads.parquet": ROADS_SCHEMA,
    "trips.parquet": TRIPS_SCHEMA,
    "matcher_calls.parquet": MATCHER_CALLS_SCHEMA,
}
"""Every table a run directory may hold, by file name."""


def read_events(path: Path) -> pa.Table:
    """Read an event log (``events.parquet``, or the ``events.arrows`` prefix a crashed run
    left behind), checking its schema.

    An ``events.arrows`` stream cut short (disk full, a killed run, a partial copy) yields
    every complete record batch before the cut; a damaged ``events.parquet`` raises
    ``ValueError`` naming the file."""
    path = Path(path)
    if path.suffix == ".arrows":
        table = _read_stream_prefix(path)
    else:
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            if not path.is_file():
                raise
            raise ValueError(f"{path}: not a complete Parquet event log ({exc})") from None
    if not table.schema.equals(EVENTS_SCHEMA, check_metadata=False):
        raise ValueError(
            f"{path}: not a ridesim event log (schema differs from v{EVENTS_SCHEMA_VERSION})"
        )
    return table


def _read_stream_prefix(path: Path) -> pa.Table:
    """The complete record batches of an Arrow IPC stream, up to where it was cut."""
    batches: list[pa.RecordBatch] = []
    with pa.OSFile(str(path), "rb") as source:
        head = source.read(4)
        source.seek(0)
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            # Cut inside the schema message (the stream starts with a 0xFFFFFFFF marker):
            # nothing complete was written yet. Anything else is not a stream at all.
            if _STREAM_MARKER.startswith(head):
                return EVENTS_SCHEMA.empty_table()
            raise ValueError(f"{path}: not an Arrow IPC stream (not a ridesim event log)") from None
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                break  # a batch cut short: keep the complete ones before it
        return pa.Table.from_batches(batches, schema=reader.schema)


_STREAM_MARKER = b"\xff\xff\xff\xff"

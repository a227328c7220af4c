"""The declared Arrow schemas: pinned, and what a real run writes follows them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.schemas import EVENTS_SCHEMA, EVENTS_SCHEMA_VERSION, RUN_TABLES, Kind, read_events
from harness.run import run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]

PINNED = {
    "events.parquet": "seq:int64! t:double! kind:string! rider:int64 driver:int64 node:int64 "
    "dest_node:int64 value:double fare:double detail:string",
    "surge.parquet": "t:double cell:string multiplier:double open_requests:int64 quotes:int64 "
    "unconverted_quotes:int64 idle_drivers:int64 en_route_drivers:int64 "
    "recent_pickup_eta_s:double",
    "nodes.parquet": "node:int64 x_m:double y_m:double lon:double lat:double cell:string",
    "roads.parquet": "x0:double y0:double x1:double y1:double",
    "trips.parquet": "rider:int64 t:double pickup_node:int64 dropoff_node:int64 "
    "recorded_trip_s:double",
    "matcher_calls.parquet": "batch_id:int64 shard_id:int64 n_requests:int64 n_drivers:int64 "
    "wall_ms:double",
}


def _describe(schema) -> str:  # noqa: ANN001 - a pyarrow schema
    return " ".join(f"{f.name}:{f.type}{'' if f.nullable else '!'}" for f in schema)


@pytest.mark.parametrize("name", sorted(RUN_TABLES))
def test_schema_is_pinned(name: str) -> None:
    """Changing a declared table's columns is a deliberate act (update PINNED with it)."""
    assert _describe(RUN_TABLES[name]) == PINNED[name]


def test_event_schema_carries_its_version() -> None:
    """The event log names its schema version in its metadata."""
    meta = EVENTS_SCHEMA.metadata[b"ridesim.events.schema_version"]
    assert meta == str(EVENTS_SCHEMA_VERSION).encode()
    assert {k.value for k in Kind} >= {"request", "assign", "pickup", "dropoff", "cancel"}


@pytest.fixture(scope="module")
def surge_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of a shipped surge scenario (it writes every table)."""
    path = ROOT / "scenarios" / "wild_goose_chase_surge.toml"
    out = tmp_path_factory.mktemp("runs")
    result = run_scenario(load_scenario(path), source=str(path), base_dir=path.parent, out=out)
    return result.run_dir


@pytest.mark.parametrize("name", sorted(RUN_TABLES))
def test_a_real_run_writes_the_declared_schema(surge_run: Path, name: str) -> None:
    """Every table of a shipped scenario's run directory has exactly its declared schema."""
    written = pq.read_schema(surge_run / name)
    assert written.equals(RUN_TABLES[name], check_metadata=False)


def test_read_events_refuses_a_foreign_table(tmp_path: Path) -> None:
    """The reader checks the schema instead of handing on a table it does not know."""
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(ValueError, match="not a ridesim event log"):
        read_events(path)


def test_read_events_recovers_complete_batches_of_a_cut_stream(tmp_path: Path) -> None:
    """An events.arrows stream cut anywhere reads as its complete record batches (none when
    cut inside the schema); a file that is not a stream is refused."""
    from sim.events import EventLog

    log = EventLog(tmp_path / "events.parquet", chunk_rows=10)
    for i in range(35):
        log.add(float(i), "quote", rider=i)
    log.flush()
    data = (tmp_path / "events.arrows").read_bytes()
    full = read_events(tmp_path / "events.arrows")
    assert full.num_rows == 35  # three batches of 10 and the flushed 5
    for cut, rows in ((0, 0), (3, 0), (60, 0), (len(data) - 1, 30), (len(data), 35)):
        part = tmp_path / f"cut{cut}.arrows"
        part.write_bytes(data[:cut])
        table = read_events(part)
        assert table.num_rows == rows, cut
        assert table.column("seq").to_pylist() == list(range(rows))
    junk = tmp_path / "junk.arrows"
    junk.write_bytes(b"not an arrow stream")
    with pytest.raises(ValueError, match="not an Arrow IPC stream"):
        read_events(junk)
    cut_parquet = tmp_path / "cut.parquet"
    cut_parquet.write_bytes(b"PAR1" + b"\0" * 20)
    with pytest.raises(ValueError, match="not a complete Parquet event log"):
        read_events(cut_parquet)

"""Per-rider and per-driver alignment in reports/tables.py against plain Python definitions."""

from __future__ import annotations

import numpy as np
import pytest

from reports import tables
from reports.tables import OFFER, _RiderRows, columns
from sim.events import EventLog


def test_rider_rows_first_last_and_count_follow_the_log_order() -> None:
    """first/last take a rider's first and last row of the kind in log order; riders without
    one get the fill; count counts them."""
    rng = np.random.default_rng(8)
    log = EventLog(None)
    rows = []
    for k in range(2000):
        rider = int(rng.integers(0, 60))
        kind = "request" if rng.random() < 0.3 else "offer"
        rows.append((rider, kind, float(k)))
        log.row((float(k), kind, rider, 1, 2, 3, float(rng.random()), float(k) * 2, None))
    c = columns(log.table())
    riders = np.array(sorted({r for r, kind, _ in rows if kind == "request"} | {59, 61}))
    offers = _RiderRows(c, riders, OFFER)
    t_of = {}
    for r, kind, t in rows:
        if kind == "offer":
            t_of.setdefault(r, []).append(t)
    first, last = offers.first(c.t), offers.last(c.fare, fill=-1.0)
    for i, r in enumerate(riders.tolist()):
        ts = t_of.get(r, [])
        assert (first[i] == ts[0]) if ts else np.isnan(first[i])
        assert last[i] == (ts[-1] * 2 if ts else -1.0)
        assert offers.count()[i] == len(ts)


def test_detail_codes_number_words_in_order_of_first_appearance_across_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each distinct detail gets the next code when first seen in log order, whatever the
    batches (here of 7 rows): words repeat within and across batches, nulls stay -1."""
    monkeypatch.setattr(tables, "BATCH_ROWS", 7)
    rng = np.random.default_rng(3)
    log = EventLog(None)
    words: list[str | None] = []
    for k in range(300):
        word = None if rng.random() < 0.2 else str(int(rng.integers(0, 5 + k // 3)))
        words.append(word)
        log.row((float(k), "cancel", k, -1, 1, -1, float("nan"), float("nan"), word))
    c = columns(log.table())
    expected: dict[str, int] = {}
    codes = [-1 if w is None else expected.setdefault(w, len(expected)) for w in words]
    assert c.detail.tolist() == codes
    assert c.detail_names == tuple(expected)
    assert c.detail_names[c.detail[-1]] == words[-1] or words[-1] is None


def test_detail_lookups_and_names_follow_the_dictionary() -> None:
    """detail_code finds looked-up words and any other word, NO_CODE for an absent one;
    names() maps codes back to the words, -1 to ``missing``."""
    log = EventLog(None)
    words = ["7", "request", None, "gift", "timeout", "7", "request"]
    for k, word in enumerate(words):
        log.row((float(k), "cancel", k, -1, 1, -1, float("nan"), float("nan"), word))
    c = columns(log.table())
    assert [c.detail_code(w) for w in ("7", "request", "gift", "timeout")] == [0, 1, 2, 3]
    assert c.detail_code("after_match") == tables.NO_CODE
    assert c.detail_code("absent") == tables.NO_CODE
    assert c.detail_is("request").tolist() == [w == "request" for w in words]
    assert c.names(c.detail, missing="?").tolist() == [w or "?" for w in words]


def test_read_columns_across_row_groups_equals_the_in_memory_columns(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of many small row groups read in batches spanning several of them gives the
    columns of the table it holds (kinds decoded as dictionaries per row group)."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(tables, "BATCH_ROWS", 50)
    rng = np.random.default_rng(5)
    log = EventLog(None)
    kinds = ["request", "assign", "pickup", "dropoff", "cancel", "mystery"]
    for k in range(500):
        word = None if rng.random() < 0.3 else str(int(rng.integers(0, 40)))
        kind = kinds[int(rng.integers(0, len(kinds)))]
        log.row((float(k), kind, k % 37, k % 11, 1, -1, float(k), float("nan"), word))
    table = log.table()
    pq.write_table(table, tmp_path / "events.parquet", row_group_size=17)
    got, want = tables.read_columns(tmp_path / "events.parquet"), columns(table)
    for name in ("t", "kind", "rider", "driver", "node", "value", "fare", "detail"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert got.detail_names == want.detail_names
    assert (got.kind == -1).any() and (got.detail == -1).any()


@pytest.mark.parametrize("arrow_strings", [True, False])
def test_rider_table_string_columns_are_what_pandas_infers(
    monkeypatch: pytest.MonkeyPatch, arrow_strings: bool
) -> None:
    """cancel_reason (None without a cancel, "unknown" for a cancel without detail) and outcome
    equal the columns pandas builds from the same Python strings, dtype included, whether built
    in Arrow or (``arrow_strings`` false) from Python strings."""
    import pandas as pd

    if not arrow_strings:
        monkeypatch.setattr(tables, "_INFERRED_STR", np.dtype(object))
    log = EventLog(None)
    for rider in range(4):
        log.row((0.0, "request", rider, -1, 1, -1, float("nan"), float("nan"), None))
    log.row((1.0, "cancel", 0, -1, 1, -1, float("nan"), float("nan"), "patience"))
    log.row((1.0, "cancel", 1, -1, 1, -1, float("nan"), float("nan"), None))
    log.row((2.0, "dropoff", 2, 3, 1, -1, 5.0, 7.0, None))
    r = tables.rider_table(columns(log.table()))
    reasons = np.array(["patience", "unknown", None, None], dtype=object)
    outcomes = np.array(["cancelled", "cancelled", "completed", "open"], dtype=object)
    want = pd.DataFrame({"cancel_reason": reasons, "outcome": outcomes}, index=r.index)
    pd.testing.assert_frame_equal(r[["cancel_reason", "outcome"]], want, check_exact=True)

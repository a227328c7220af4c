"""Per-zone service KPIs (grid and H3) and the SLO key convention."""

from __future__ import annotations

import h3
import pyarrow as pa
from report_helpers import grid_nodes, make_events

from reports.kpis import compute_metrics
from reports.slo import DEFAULT_SLO, evaluate, parse_key
from reports.zones import read_zoning, zone_kpis, zone_name, zoning_metadata

LINE = read_zoning(
    pa.table(
        {
            "node": pa.array([0, 1, 2, 3], pa.int64()),
            "x_m": [0.0, 500.0, 1000.0, 2000.0],
            "y_m": [0.0, 0.0, 0.0, 0.0],
            "lon": pa.array([None] * 4, pa.float64()),
            "lat": pa.array([None] * 4, pa.float64()),
            "cell": ["g0_0", "g0_0", "g1_0", "g1_0"],
        }
    ).replace_schema_metadata(zoning_metadata({"scheme": "grid", "cell_m": 1000.0}))
)
"""Four nodes on a line, zoned as a run zones them (the far-edge node in the last square)."""
ZONE_LOG = [
    (0.0, "request", 1, None, 0, 3),
    (0.0, "request", 2, None, 1, 3),
    (0.0, "request", 3, None, 2, 0),
    (0.0, "request", 4, None, 3, 0),
    (10.0, "assign", 1, 1, 0, 0, 50.0),
    (10.0, "assign", 3, 2, 0, 2, 50.0),
    (10.0, "assign", 4, 3, 0, 3, 50.0),
    (100.0, "pickup", 1, 1, 0, None, 90.0),
    (200.0, "cancel", 2, None, 1, None, None, "patience"),
    (300.0, "pickup", 3, 2, 2, None, 290.0),
    (500.0, "pickup", 4, 3, 3, None, 490.0),
]


def test_grid_zones_by_hand() -> None:
    """Requests are counted in their pickup node's cell of the run's zoning."""
    z = zone_kpis(make_events(ZONE_LOG), LINE, min_requests=1)
    assert z["scheme"] == "grid" and z["count"] == 2 and z["cell_m"] == 1000.0
    assert z["cells"]["g0_0"]["requests"] == 2
    assert z["cells"]["g0_0"]["match_rate"] == 0.5
    assert z["cells"]["g0_0"]["mean_wait_s"] == 100.0
    assert z["cells"]["g1_0"]["match_rate"] == 1.0
    assert z["cells"]["g1_0"]["mean_wait_s"] == 400.0
    assert z["worst_match_rate"]["cell"] == "g0_0"
    assert z["worst_mean_wait"]["cell"] == "g1_0"
    assert z["spread"] == {"match_rate": 0.5, "mean_wait_s": 300.0}


def test_small_zones_are_not_ranked() -> None:
    """Zones under min_requests are listed but never named worst-served."""
    z = zone_kpis(make_events(ZONE_LOG), LINE, min_requests=3)
    assert z["count"] == 2 and z["ranked"] == 0
    assert z["worst_match_rate"] is None and z["spread"]["match_rate"] is None


def test_h3_zones_read_from_nodes() -> None:
    """H3 cells and their resolution come from nodes.parquet, not from the report."""
    rows = [(0.0, "request", i, None, i * 11, 0) for i in range(10)]
    z = zone_kpis(make_events(rows), read_zoning(grid_nodes(geo=True)))
    assert z["scheme"] == "h3" and z["resolution"] == 8
    assert sum(c["requests"] for c in z["cells"].values()) == 10
    assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == 8 for c in z["cells"])


def test_slo_key_convention() -> None:
    """_max / _min name the bound; a bare metric ending in _s is an upper bound."""
    assert parse_key("time_to_match_p99_s") == ("time_to_match_p99_s", "max")
    assert parse_key("time_to_match_p99_s_max") == ("time_to_match_p99_s", "max")
    assert parse_key("match_rate_min") == ("match_rate", "min")
    assert parse_key("cancel_rate_max") == ("cancel_rate", "max")
    assert parse_key("match_rate") is None  # a share needs an explicit direction
    assert parse_key("no_such_metric_max") is None


def test_slo_evaluation() -> None:
    """Rows pass, fail, are n/a without data, or unknown for a bad key; defaults when none."""
    m = compute_metrics(make_events(ZONE_LOG), 600.0)  # match rate 0.75, no trips completed
    res = evaluate(
        m, {"match_rate_min": 0.7, "cancel_rate_max": 0.1, "journey_p50_s": 900, "bogus_max": 1}
    )
    status = {r["key"]: r["status"] for r in res["rows"]}
    assert status == {
        "match_rate_min": "pass",
        "cancel_rate_max": "fail",
        "journey_p50_s": "n/a",
        "bogus_max": "unknown",
    }
    assert (res["source"], res["passed"], res["failed"]) == ("scenario", 1, 1)
    assert [r["key"] for r in res["rows"]] == sorted(status)
    default = evaluate(m, {})
    assert default["source"] == "default"
    assert {r["key"] for r in default["rows"]} == set(DEFAULT_SLO)


def test_nodes_without_zoning_give_no_zones() -> None:
    """A nodes table without the run's zoning (no cell column) yields no zoning at all."""
    assert read_zoning(LINE_NO_CELLS) is None and read_zoning(None) is None


LINE_NO_CELLS = pa.table({"node": pa.array([0], pa.int64()), "x_m": [0.0], "y_m": [0.0]})


def test_zone_names_say_where() -> None:
    """Zones are named by distance and compass direction from the centre, never by raw id."""
    zones = {"centre_x_m": 0.0, "centre_y_m": 0.0}
    assert zone_name(100.0, -50.0, zones) == "the city centre"
    assert zone_name(1700.0, 1700.0, zones) == "2.4 km NE of the centre"
    assert zone_name(0.0, -3000.0, zones) == "3.0 km S of the centre"
    assert zone_name(None, 1.0, zones) == "an unnamed zone"


def test_zoning_codes_rank_cells_by_id_from_strings_or_a_dictionary(tmp_path) -> None:
    """Cells get codes in the order of their ids ("" and null: -1, cell ""), the same whether
    the column is read as strings or as a dictionary (as load_zoning reads it)."""
    import numpy as np
    import pyarrow.parquet as pq

    from reports.run import load_zoning

    cells = ["g1_0", None, "g0_0", "", "g1_0", "g0_10"]
    table = pa.table(
        {
            "node": pa.array([5, 0, 1, 2, 3, 4], pa.int64()),
            "x_m": [5.0, 0.0, 1.0, 2.0, 3.0, 4.0],
            "y_m": [0.0] * 6,
            "lon": pa.array([None] * 6, pa.float64()),
            "lat": pa.array([None] * 6, pa.float64()),
            "cell": cells,
        }
    ).replace_schema_metadata(zoning_metadata({"scheme": "grid", "cell_m": 1.0}))
    pq.write_table(table, tmp_path / "nodes.parquet", row_group_size=2)
    for z in (read_zoning(table), load_zoning(tmp_path)):
        assert z is not None and z.params["cell_m"] == 1.0
        assert z.names.tolist() == ["g0_0", "g0_10", "g1_0"]
        assert z.code.tolist() == [-1, 0, -1, 2, 1, 2]
        assert z.cell.tolist() == ["", "g0_0", "", "g1_0", "g0_10", "g1_0"]
        assert z.cells_of(np.array([-1, 5, 6, 2])).tolist() == ["", "g1_0", "", ""]
        assert z.x_m.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert load_zoning(tmp_path / "nowhere") is None

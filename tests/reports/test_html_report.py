"""The HTML and Markdown run reports: written, self-contained, escaped, with the SLO table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_helpers import make_events, manifest, write_run

from core.errors import InputError
from reports.html import OSM_ATTRIBUTION, OSM_COPYRIGHT_URL, write_report
from reports.kpis import write_metrics

# Real attributes only: escaped text such as src=&quot;...&quot; is not a resource reference.
RESOURCE = re.compile(r"""\b(?:src|href)\s*=\s*(["'])(.*?)\1""", re.I | re.S)


def external_refs(page: str) -> list[str]:
    """src/href values that point outside the page (anything but data: URIs and the OSM link)."""
    urls = [m.group(2).strip() for m in RESOURCE.finditer(page)]
    return [u for u in urls if not u.lower().startswith("data:") and u != OSM_COPYRIGHT_URL]


def test_report_written_and_self_contained(grid_run: Path) -> None:
    """report.html and report.md exist; the page loads nothing from outside itself."""
    out = write_report(grid_run)
    assert out == grid_run / "report.html"
    page = out.read_text(encoding="utf-8")
    assert external_refs(page) == []
    assert "<script" not in page.lower()
    assert page.count('src="data:image/png;base64,') == 5
    assert "Service-level objectives" in page
    assert "wall-clock" in page
    assert OSM_ATTRIBUTION not in page  # synthetic city: no OSM data
    md = (grid_run / "report.md").read_text(encoding="utf-8")
    assert "| objective | key | target | this run | result |" in md
    assert "time_to_match_p99_s" in md


def test_report_slo_table_from_scenario(osm_run: Path) -> None:
    """The scenario's SLO targets appear with pass/fail, and an OSM city gets its attribution."""
    page = write_report(osm_run).read_text(encoding="utf-8")
    slo = json.loads((osm_run / "metrics.json").read_text())["slo"]
    assert slo["source"] == "scenario"
    assert [r["key"] for r in slo["rows"]] == [
        "cancel_rate_max",
        "match_rate_min",
        "time_to_match_p99_s",
    ]
    section = page.split("Service-level objectives", 1)[1].split("<h2>", 1)[0]
    for row in slo["rows"]:
        assert row["key"] in section
        assert row["status"].upper() in section
    assert "from the scenario file" in section
    assert OSM_ATTRIBUTION in page
    assert external_refs(page) == []


def test_manifest_text_is_escaped(tmp_path: Path) -> None:
    """Markup in scenario names and ids is shown as text, never interpreted."""
    man = manifest(name='<img src="http://evil.example/x.png">', run_id="<b>id</b>")
    man["matcher"]["name"] = "<script>alert(1)</script>"
    run = write_run(tmp_path / "r", make_events([]), man)
    page = write_report(run).read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert '<img src="http://evil' not in page
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;&gt;" in page
    assert external_refs(page) == []


def test_empty_run_still_renders(tmp_path: Path) -> None:
    """A run with no events and no city files renders with notes instead of failing."""
    run = write_run(tmp_path / "r", make_events([]), manifest())
    page = write_report(run).read_text(encoding="utf-8")
    assert "no city nodes in this run" not in page  # the note is drawn inside the figure
    assert "Figure unavailable" not in page
    assert "No perf.json in this run." in page


def test_missing_run_files_raise_input_error(tmp_path: Path) -> None:
    """An incomplete run directory is reported with its path and the missing file."""
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "manifest.json").write_text(json.dumps(manifest()))
    with pytest.raises(InputError, match="events.parquet"):
        write_report(tmp_path / "half")
    with pytest.raises(InputError, match="manifest.json"):
        write_metrics(tmp_path / "nowhere")


def test_metrics_written_once_and_reused(grid_run: Path) -> None:
    """write_report reuses an existing metrics.json (the engine writes it) byte for byte."""
    write_metrics(grid_run)
    before = (grid_run / "metrics.json").read_bytes()
    write_report(grid_run)
    assert (grid_run / "metrics.json").read_bytes() == before

"""The HTML and Markdown run reports on real runs of the shipped scenarios: which sections each
scenario family gets (a section only when the run has what it describes), self-contained,
escaped, readable numbers; and the report's input errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from report_helpers import make_events, manifest, write_run

from core.errors import InputError
from reports.html import OSM_ATTRIBUTION, OSM_COPYRIGHT_URL, section_ids, write_report
from reports.kpis import write_metrics
from reports.run import load_run

# Real attributes only: escaped text such as src=&quot;...&quot; is not a resource reference.
RESOURCE = re.compile(r"""\b(?:src|href)\s*=\s*(["'])(.*?)\1""", re.I | re.S)
ALWAYS = ["headline", "slo", "funnel", "over-time", "waiting", "driver-time", "provenance"]
EXPECTED = {
    "default": [*ALWAYS, "offers", "money", "fairness", "zones", "matcher-speed"],
    "grid_small": [*ALWAYS, "offers", "money", "fairness", "zones", "matcher-speed"],
    "surge": [*ALWAYS, "money", "fairness", "zones", "surge", "matcher-speed"],
    "faults": [*ALWAYS, "offers", "money", "fairness", "zones", "faults", "matcher-speed"],
    "multi_day": [*ALWAYS, "offers", "money", "fairness", "zones", "matcher-speed"],
    "chicago_replay": [*ALWAYS, "offers", "money", "fairness", "zones", "replay", "matcher-speed"],
}
"""The sections a real run of each family's report shows (order aside)."""
OSM_FAMILIES = {"default", "faults", "chicago_replay"}
"""Families on OpenStreetMap road networks (their reports carry the attribution)."""
INTERNAL_WORDS = ("patience", "after_match", "no_driver", "before_match", "_share", "None", "nan")


def external_refs(page: str) -> list[str]:
    """src/href values that point outside the page (anything but data: URIs and the OSM link)."""
    urls = [m.group(2).strip() for m in RESOURCE.finditer(page)]
    return [u for u in urls if not u.lower().startswith("data:") and u != OSM_COPYRIGHT_URL]


def page_ids(page: str) -> list[str]:
    """The section ids of a rendered page, in order."""
    return re.findall(r'<section id="([^"]+)"', page)


def visible_text(page: str) -> str:
    """The page's text outside tags, images, styles and the raw scenario dumps."""
    page = re.sub(r"<style>.*?</style>|<details>.*?</details>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_sections_per_scenario_family(reports, family: str) -> None:  # noqa: ANN001
    """A real run's report has exactly the sections its run has data for, and every sentence
    that would be false elsewhere stays out (no replay claim on synthetic demand)."""
    run, page = reports(family)
    assert sorted(page_ids(page)) == sorted(EXPECTED[family])
    assert page_ids(page) == section_ids(load_run(run))
    if family != "chicago_replay":
        assert "replayed recorded trips" not in page
    assert "Figure unavailable" not in page
    assert external_refs(page) == []
    assert "<script" not in page.lower()
    assert (OSM_ATTRIBUTION in page) == (family in OSM_FAMILIES)
    md = (run / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# Simulation report:")


def test_default_report_reads_as_plain_language(reports) -> None:  # noqa: ANN001
    """No internal words, money carries its currency, zones have names, not H3 ids; the
    pickup-time card shows the rider's quote error (quoted vs actual)."""
    run, page = reports("default")
    text = visible_text(page)
    for word in INTERNAL_WORDS:
        assert not re.search(rf"\b{word}\b", text), word
    m = json.loads((run / "metrics.json").read_text())
    cur = m["money"]["currency"]
    assert cur and f"{m['money']['fare_per_trip']['mean']:,.2f} {cur}" in text
    fairness = text.split("Driver income fairness", 1)[1].split("Service across", 1)[0]
    assert cur in fairness
    assert not re.search(r"\b8[0-9a-f]{14}\b", text)  # no raw H3 cell id on the page
    assert "of the centre" in text
    card = page.split("Pickup-time accuracy", 1)[1].split("</div></div>", 1)[0]
    mae = m["quote_error_s"]["mae"]
    assert f"{mae:.0f} s" in card and "quoted to the rider" in card
    # One convention per number kind: no three-decimal counts or ratios.
    assert not re.search(r"\d,\d{3}\.\d{3}\b", text)


def test_cancellations_counted_once(reports) -> None:  # noqa: ANN001
    """The cancellations table has one row per reason, split by stage, summing to the total."""
    run, page = reports("default")
    m = json.loads((run / "metrics.json").read_text())
    by = m["funnel"]["cancelled_by_reason_and_stage"]
    assert sum(sum(v.values()) for v in by.values()) == m["requests"]["cancelled"]
    table = page.split("why the ride was cancelled", 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == sum(1 for v in by.values() if sum(v.values()))


def test_multi_day_header_and_axes(reports) -> None:  # noqa: ANN001
    """A 50-hour run says how many days it simulated (not thousands of minutes)."""
    _, page = reports("multi_day")
    sub = page.split('<p class="sub">', 1)[1].split("</p>", 1)[0]
    assert "2.1 days simulated" in sub and "min simulated" not in sub


def test_report_slo_table_from_scenario(real_run, tmp_path: Path) -> None:  # noqa: ANN001
    """The scenario's SLO targets appear with pass/fail, named as the scenario says."""
    run = Path(shutil.copytree(real_run("grid_small"), tmp_path / "run"))
    man = json.loads((run / "manifest.json").read_text())
    man["scenario"]["slo"] = {"time_to_match_p99_s": 60, "match_rate_min": 0.95}
    (run / "manifest.json").write_text(json.dumps(man))
    write_metrics(run)
    page = write_report(run).read_text(encoding="utf-8")
    slo = json.loads((run / "metrics.json").read_text())["slo"]
    assert slo["source"] == "scenario"
    section = page.split('<section id="slo">', 1)[1].split("</section>", 1)[0]
    for row in slo["rows"]:
        assert row["key"] in section and row["status"].upper() in section
    assert "from the scenario file" in section


def test_manifest_text_is_escaped(tmp_path: Path) -> None:
    """Markup in scenario names and ids is shown as text, never interpreted."""
    man = manifest(name='<img src="http://evil.example/x.png">', run_id="<b>id</b>")
    man["matcher"]["name"] = "<script>alert(1)</script>"
    run = write_run(tmp_path / "r", make_events([]), man)
    page = write_report(run).read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert '<img src="http://evil' not in page
    assert "&lt;img src=&#34;http://evil.example/x.png&#34;&gt;" in page
    assert external_refs(page) == []


def test_empty_run_still_renders(tmp_path: Path) -> None:
    """A run with no events and no city files renders only what it has, without failing."""
    run = write_run(tmp_path / "r", make_events([]), manifest())
    page = write_report(run).read_text(encoding="utf-8")
    assert "Figure unavailable" not in page
    assert "zones" not in page_ids(page) and "matcher-speed" not in page_ids(page)


def test_missing_run_files_raise_input_error(tmp_path: Path) -> None:
    """An incomplete run directory is reported with its path and the missing file."""
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "manifest.json").write_text(json.dumps(manifest()))
    with pytest.raises(InputError, match="events.parquet"):
        write_report(tmp_path / "half")
    with pytest.raises(InputError, match="manifest.json"):
        write_metrics(tmp_path / "nowhere")


def test_metrics_written_once_and_reused(real_run, tmp_path: Path) -> None:  # noqa: ANN001
    """write_report reuses the metrics.json the run wrote, byte for byte."""
    run = Path(shutil.copytree(real_run("grid_small"), tmp_path / "run"))
    before = (run / "metrics.json").read_bytes()
    write_report(run)
    assert (run / "metrics.json").read_bytes() == before


def test_sentences_fit_an_exact_immediate_run(reports) -> None:  # noqa: ANN001
    """The surge family matches at once with exact ETAs: the page says so instead of "0.0 s
    later than quoted", and equal match rates are not called a worst area."""
    run, page = reports("surge")
    m = json.loads((run / "metrics.json").read_text())
    text = visible_text(page)
    assert "0.0 s later" not in text and "0.0 s earlier" not in text
    if m["quote_error_s"]["bias"] == 0:
        assert "the car came exactly when quoted" in text
    if m["zones"]["spread"]["match_rate"] == 0:
        assert "Worst-served area" not in text and "in every ranked area" in text
    slo = page.split('<section id="slo">', 1)[1].split("</section>", 1)[0]
    assert "driver&#39;s pickup ETA at assignment" in slo  # eta_mae_s is the matcher's ETA


def test_replay_section_says_what_the_ratio_means(reports) -> None:  # noqa: ANN001
    """The replay section's verdict follows this run's median simulated / recorded ratio."""
    run, page = reports("chicago_replay")
    ratio = json.loads((run / "metrics.json").read_text())["replay"]["median_ratio"]
    section = page.split('<section id="replay">', 1)[1].split("</section>", 1)[0]
    assert f"{ratio:.2f}× its recorded time" in section
    word = "like" if 0.9 <= ratio <= 1.1 else "faster" if ratio < 1 else "slower"
    assert word in section

"""The run report: one self-contained ``report.html`` (and ``report.md`` with the KPI tables),
rendered from the Jinja2 templates in ``reports/templates``.

Self-contained means a reader can open the file offline, mail it, or attach it to a review:
figures are inline base64 PNGs, CSS is inline, there is no JavaScript and no external URL
(the only link is the plain-text OpenStreetMap copyright notice for OSM cities). Jinja2
escapes every string that comes from the run (manifest, scenario, ids).

The report is a list of :class:`Section` s, and a section appears only when the run has what it
describes (no replay section on a synthetic run, no offers section when drivers always
accept): :func:`report_sections` decides, and tests assert it per scenario family. Figures are
drawn only for the sections shown.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from reports.background import forked_map
from reports.figures import city_map, distributions, income, latency, replay, surge, timeseries
from reports.figures._style import Margins, Panel, compose, png_base64
from reports.kpis import ensure_metrics
from reports.run import RunData, load_run
from reports.text import (
    CANCEL_HEAD,
    cancel_rows,
    driver_time_rows,
    eta_rows,
    fairness_rows,
    fault_rows,
    fmt_duration,
    funnel_head,
    funnel_rows,
    get,
    has_replay,
    headline_cards,
    latency_rows,
    money_rows,
    offer_rows,
    provenance_rows,
    replay_rows,
    replay_verdict,
    slo_rows,
    surge_rows,
    zone_rows,
)

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OSM_COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# ---------------------------------------------------------------------------------------------
# Page model: sections of blocks (tables, figures, notes), rendered by the templates


@dataclass(frozen=True)
class Block:
    """One piece of a section: ``kind`` is table, image, broken, note, wall, warn or details."""

    kind: str
    head: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    num_cols: frozenset[int] = frozenset()
    code_cols: frozenset[int] = frozenset()
    status_cols: frozenset[int] = frozenset()
    text: str = ""
    alt: str = ""
    png: str = ""
    error: str = ""
    summary: str = ""
    make: Callable[[], Figure] | None = field(default=None, compare=False, repr=False)
    """How to draw an image block not drawn yet (see :func:`draw_figures`)."""


@dataclass(frozen=True)
class Section:
    """A titled part of a page; ``id`` names it in the HTML (``<section id=...>``)."""

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[Any]],
    num_cols: Sequence[int] = (),
    code_cols: Sequence[int] = (),
    status_cols: Sequence[int] = (),
) -> Block:
    """A table block (cells are text; the template escapes them): ``num_cols`` right-aligned,
    ``code_cols`` in code type, ``status_cols`` coloured as PASS / FAIL."""
    return Block(
        "table",
        head=list(head),
        rows=[[str(c) for c in r] for r in rows],
        num_cols=frozenset(num_cols),
        code_cols=frozenset(code_cols),
        status_cols=frozenset(status_cols),
    )


def note(text: str) -> Block:
    """A short explanatory paragraph."""
    return Block("note", text=text)


def figure(make: Callable[[], Figure], alt: str, draw: bool = True) -> Block:
    """A figure as an inline PNG; a failing figure becomes a note, not a lost report. With
    ``draw`` false, only the figure's place and how to draw it (for deciding and listing
    sections quickly, or drawing every figure at once with :func:`draw_figures`)."""
    block = Block("image", alt=alt, make=make)
    if not draw:
        return block
    kind, png, error = _drawn(block)
    return Block(kind, alt=alt, png=png, error=error)


def _drawn(block: Block) -> tuple[str, str, str]:
    """(kind, png, error) of an image block once drawn: JSON data, so that another process
    may draw it (:func:`reports.background.forked_map`)."""
    assert block.make is not None
    try:
        return "image", png_base64(block.make()), ""
    except Exception as e:  # a broken figure must not lose the rest of the report
        return "broken", "", f"{type(e).__name__}: {e}"


def draw_figures(sections: Sequence[Section], processes: int = 1) -> list[Section]:
    """``sections`` with every figure not drawn yet drawn, by ``processes`` processes (forked
    from this one where the system can; each figure is the same PNG whichever draws it)."""
    todo = [b for s in sections for b in s.blocks if b.kind == "image" and b.make is not None]
    results = forked_map(lambda i: _drawn(todo[i]), len(todo), processes)
    drawn = {
        id(b): Block(kind, alt=b.alt, png=png, error=error)
        for b, (kind, png, error) in zip(todo, results, strict=True)
    }
    return [replace(s, blocks=[drawn.get(id(b), b) for b in s.blocks]) for s in sections]


def _panels(
    run: RunData,
    draws: Sequence[Callable[[Any, RunData], None]],
    width: float,
    height: float,
    alt: str,
    draw: bool = True,
    **layout: Any,
) -> Block:
    """A figure composed of one panel per ``draw(ax, run)`` of ``draws``."""
    bound: list[Panel] = [lambda ax, d=d: d(ax, run) for d in draws]
    return figure(lambda: compose(bound, width, height, **layout), alt, draw)


REPORT_TEMPLATES = ("report.html.j2", "page.html.j2", "macros.html.j2")
"""The run report's template and the ones it extends and imports."""


def prepare() -> None:
    """Do the run report's one-off setup now, for a process that writes a report later (the
    report helper, while the run goes on): compile its templates (Jinja2 caches them), about
    0.02 s of a first render; and load what the first Parquet read and the first PNG save
    load on first use (about 0.01 s)."""
    for name in REPORT_TEMPLATES:
        TEMPLATES.get_template(name)
    # deferred: pyarrow.parquet.read_table imports it on first use; a report reads Parquet
    import pyarrow.dataset  # noqa: F401
    from PIL import Image  # deferred: as above, what saving a PNG imports first

    Image.preinit()  # the image format plugins, which the first PNG save imports


def render_page(template: str, **context: Any) -> str:
    """A page from a template in ``reports/templates``."""
    context.setdefault("osm", False)
    return TEMPLATES.get_template(template).render(
        osm_attribution=OSM_ATTRIBUTION, osm_url=OSM_COPYRIGHT_URL, **context
    )


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown_sections(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The tables of a page in Markdown, for pasting into a review."""
    out = [f"# {title}", "", subtitle]
    for s in sections:
        tables = [b for b in s.blocks if b.kind == "table"]
        if not tables:
            continue
        out += ["", f"## {s.title}"]
        for t in tables:
            out += ["", md_table(list(t.head) if any(t.head) else [""] * len(t.rows[0]), t.rows)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# The run report's sections


def _kv(rows: list[list[str]]) -> Block:
    return table(["", ""], rows)


def report_sections(run: RunData, draw: bool = True) -> list[Section]:
    """The sections of a run's report after the headline cards, each only when the run has
    what it describes (``draw`` false: without rendering the figures)."""
    m = run.metrics

    def panels(*args: Any, **layout: Any) -> Block:
        return _panels(*args, draw=draw, **layout)

    out: list[Section] = []
    slo = slo_rows(m)
    if slo:
        passed, failed = get(m, "slo", "passed") or 0, get(m, "slo", "failed") or 0
        src = (
            "from the scenario file"
            if get(m, "slo", "source") == "scenario"
            else "are the ridesim defaults (the scenario sets none)"
        )
        out.append(
            Section(
                "slo",
                "Service-level objectives",
                [
                    note(f"{passed} passed, {failed} failed. Targets {src}."),
                    table(
                        ["objective", "key", "target", "this run", "result"],
                        [
                            [r["objective"], r["key"], r["target"], r["value"], r["status"].upper()]
                            for r in slo
                        ],
                        num_cols=(2, 3),
                        code_cols=(1,),
                        status_cols=(4,),
                    ),
                ],
            )
        )
    fu = m.get("funnel") or {}
    quotes, offers_logged = bool(fu.get("quotes_logged")), bool(fu.get("offers_logged"))
    funnel_note = (
        "Riders were shown a price and pickup time first; some turned it down. "
        if quotes
        else "Riders in this scenario always request (they are shown no quote). "
    ) + (
        "A ride may be offered to several drivers before one accepts: the riders who had their "
        "ride offered to a driver count once however many offers they got, and those who got a "
        "driver assigned are the ones a driver accepted."
        if offers_logged
        else "Drivers in this scenario always accept, so an offer is a match."
    )
    blocks = [note(funnel_note), table(funnel_head(m), funnel_rows(m), num_cols=(1, 2, 3))]
    cancels = cancel_rows(m)
    if cancels:
        blocks += [
            note("Each cancelled request is counted once: by why and when it was cancelled."),
            table(CANCEL_HEAD, cancels, num_cols=range(1, len(CANCEL_HEAD))),
        ]
    out.append(Section("funnel", "Rider funnel", blocks))
    offers = offer_rows(m)
    if offers:
        out.append(
            Section(
                "offers",
                "Offers to drivers",
                [
                    note(
                        "The decline rate counts offers a driver turned down or did not answer "
                        "in time; each time, the rider waits for another driver. Time to match "
                        "is measured to the accepted offer, not to the first offer."
                    ),
                    _kv(offers),
                ],
            )
        )
    draws = [timeseries.draw_demand]
    if timeseries.has_quotes(run):
        draws.append(timeseries.draw_conversion)
    draws.append(timeseries.draw_driver_states)
    out.append(
        Section(
            "over-time",
            "Over time",
            [
                note(
                    "Per time bin of simulated clock time: requests, completed trips and "
                    "cancellations per hour"
                    + (", quote conversion" if len(draws) == 3 else "")
                    + ", and how many online drivers were idle, on the way to a pickup or "
                    "carrying a rider."
                ),
                panels(
                    run,
                    draws,
                    9.0,
                    2.6 * len(draws),
                    "time series of demand, trips and driver states",
                    rows=len(draws),
                    sharex=True,
                    margins=Margins(right=1.45, bottom=0.8),
                ),
            ],
        )
    )
    eta = eta_rows(m)
    promise = (
        "the pickup time shown to the rider before requesting, against the rider's actual wait "
        "(matching included)"
        if get(m, "quote_error_s", "count")
        else "the driver's pickup ETA the matcher saw at assignment, against the actual drive"
    )
    out.append(
        Section(
            "waiting",
            "Waiting and pickup-time accuracy",
            [
                note(
                    "How long riders waited for a match and for the car, and how far the "
                    "promised pickup time was from the real one (positive = later than "
                    f"promised): {promise}. Each histogram spans 99% of the riders; the rest "
                    "are piled into its end bars."
                ),
                *(
                    [
                        table(
                            ["promise", "rides", "mean error", "bias (late +)", "90% within"],
                            eta,
                            num_cols=(1, 2, 3, 4),
                        )
                    ]
                    if eta
                    else []
                ),
                panels(
                    run,
                    [
                        distributions.draw_time_to_match,
                        distributions.draw_pickup_wait,
                        distributions.draw_pickup_error,
                    ],
                    11.0,
                    3.4,
                    "distributions of waits and pickup-time error",
                ),
            ],
        )
    )
    repositioned = bool(get(m, "drivers", "repositioning_h"))
    out.append(
        Section(
            "driver-time",
            "How drivers spent their time",
            [
                note(
                    "Deadhead is empty driving: to a pickup"
                    + (
                        " or repositioning. Repositioning is counted until the driver's next "
                        "event (an offer may cut it short)."
                        if repositioned
                        else ". Drivers in this run never repositioned."
                    )
                ),
                table(
                    ["", "driver-hours", "share of online time"],
                    driver_time_rows(m),
                    num_cols=(1, 2),
                ),
            ],
        )
    )
    money = money_rows(m)
    if money:
        out.append(
            Section(
                "money",
                "Fares and income",
                [
                    note(
                        "Riders pay the fare at drop-off; drivers keep the fare minus the "
                        "platform's commission."
                    ),
                    _kv(money),
                ],
            )
        )
    if get(m, "fairness", "drivers"):
        out.append(
            Section(
                "fairness",
                "Driver income fairness",
                [
                    _kv(fairness_rows(m)),
                    note(
                        "The Lorenz curve shows what share of all income the poorest x% of "
                        "drivers earn; the further it sags below the diagonal, the less equal "
                        "the earnings."
                    ),
                    panels(
                        run,
                        [income.draw_income, income.draw_lorenz],
                        10.0,
                        3.6,
                        "driver income distribution and Lorenz curve",
                        width_ratios=[1.4, 1.0],
                    ),
                ],
            )
        )
    zones = zone_rows(m)
    if zones:
        out.append(
            Section(
                "zones",
                "Service across the city",
                [
                    _kv(zones),
                    note(
                        "Each area of the city is coloured by the mean pickup wait (left) and the "
                        "share of requests that got a driver (right) for rides starting there. "
                        "Areas are named by where they lie from the city centre (the mean "
                        "position of its road nodes)."
                    ),
                    panels(
                        run,
                        [city_map.draw_wait_map, city_map.draw_match_map],
                        11.0,
                        5.0,
                        "maps of mean wait and match rate by area",
                    ),
                ],
            )
        )
    sg = surge_rows(m)
    if sg:
        out.append(
            Section(
                "surge",
                "Surge pricing",
                [
                    note(
                        "Prices are multiplied in areas where demand outran supply. An "
                        "area-interval is one area during one pricing interval; each request is "
                        "matched to the price of its pickup area when it was made."
                    ),
                    _kv(sg),
                    panels(
                        run,
                        [surge.draw_surge_multiplier, surge.draw_surge_share],
                        9.0,
                        4.6,
                        "surge multiplier over time",
                        rows=2,
                        sharex=True,
                        height_ratios=[2, 1],
                        margins=Margins(bottom=0.8),
                    ),
                    note("Darker areas were more expensive on average over the run."),
                    panels(run, [surge.draw_surge_map], 7.0, 5.6, "mean surge multiplier by area"),
                ],
            )
        )
    if has_replay(m):
        out.append(
            Section(
                "replay",
                "Replay fidelity",
                [
                    note(
                        "This run replayed recorded trips. For each one completed in the "
                        "simulation, its simulated trip time is compared with the recorded one: a "
                        "median ratio near 1 and correlations near 1 mean the simulated city "
                        "drives like the real one."
                    ),
                    note(replay_verdict(m)),
                    _kv(replay_rows(m)),
                    figure(
                        lambda: replay.replay_figure(run),
                        "simulated vs recorded trip times",
                        draw,
                    ),
                ],
            )
        )
    faults = fault_rows(m)
    if faults:
        out.append(
            Section(
                "faults",
                "Faults",
                [
                    note(
                        "This scenario injected failures: while the matcher was down nobody was "
                        "assigned; a crashed driver app took an idle driver offline until they "
                        "reconnected."
                    ),
                    _kv(faults),
                ],
            )
        )
    if run.perf or latency.has_batches(run):
        blocks = [
            Block(
                "wall",
                text="Measured wall-clock time on the machine that ran this simulation. It "
                "varies between machines and between runs, and it never influenced the "
                "simulated results above.",
            )
        ]
        if run.perf:
            blocks.append(_kv(latency_rows(run)))
        if latency.has_batches(run):
            blocks.append(
                panels(
                    run,
                    [latency.draw_latency_scatter, latency.draw_latency_hist],
                    10.0,
                    3.2,
                    "matcher wall-clock time per call",
                )
            )
        out.append(
            Section("matcher-speed", "Matcher speed (wall-clock, not deterministic)", blocks)
        )
    sc = run.manifest.get("scenario", {})
    provenance = {k: run.manifest.get(k, {}) for k in ("versions", "inputs")}
    out.append(
        Section(
            "provenance",
            "Scenario and provenance",
            [
                _kv(provenance_rows(run)),
                Block(
                    "details",
                    summary="Full scenario",
                    text=json.dumps(sc, indent=2, sort_keys=True),
                ),
                Block(
                    "details",
                    summary="Package versions and inputs",
                    text=json.dumps(provenance, indent=2, sort_keys=True),
                ),
            ],
        )
    )
    return out


def section_ids(run: RunData) -> list[str]:
    """The ids of the sections a run's report shows, headline first (without drawing)."""
    return ["headline", *(s.id for s in report_sections(run, draw=False))]


def _title(run: RunData) -> str:
    return f"Simulation report: {run.manifest.get('scenario', {}).get('name', run.run_id)}"


def _subtitle(run: RunData) -> str:
    sc = run.manifest.get("scenario", {})
    return (
        f"Run {run.run_id} · city {get(run.manifest, 'city', 'name')} · matcher "
        f"{get(run.manifest, 'matcher', 'name')} · seed {sc.get('seed')} · "
        f"{fmt_duration(run.horizon_s)} simulated from {run.start_clock}"
    )


def render_html(run: RunData, processes: int = 1) -> str:
    """The report page as a string; ``processes`` draw its figures (see :func:`draw_figures`)."""
    if processes > 1:
        # Read the event log once, here, rather than in every process that draws a figure.
        with contextlib.suppress(Exception):  # a failing figure reports its own error
            run.riders  # noqa: B018
    return render_page(
        "report.html.j2",
        title=_title(run),
        subtitle=_subtitle(run),
        cards=headline_cards(run.metrics),
        sections=draw_figures(report_sections(run, draw=False), processes),
        osm=run.geographic,
    )


def render_markdown(run: RunData) -> str:
    """The KPI tables in Markdown, for pasting into a review."""
    cards = headline_cards(run.metrics)
    head = Section(
        "headline",
        "Headline results",
        [table(["KPI", "value", "meaning"], [[c.title, c.value, c.explanation] for c in cards])],
    )
    text = render_markdown_sections(
        _title(run), _subtitle(run), [head, *report_sections(run, draw=False)]
    )
    return text + (f"\nMap data {OSM_ATTRIBUTION}.\n" if run.geographic else "")


def write_report(run_dir: Path, processes: int = 1) -> Path:
    """Write ``report.html`` and ``report.md`` into a run directory; returns the HTML path.
    ``processes`` > 1 draws the figures in that many processes (the same bytes)."""
    ensure_metrics(Path(run_dir))
    run = load_run(Path(run_dir))
    out = run.run_dir / "report.html"
    out.write_text(render_html(run, processes), encoding="utf-8")
    (run.run_dir / "report.md").write_text(render_markdown(run), encoding="utf-8")
    return out

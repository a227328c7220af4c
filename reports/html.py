"""The run report: one self-contained ``report.html`` (and ``report.md`` with the KPI tables).

Self-contained means a reader can open the file offline, mail it, or attach it to a review:
figures are inline base64 PNGs, CSS is inline, there is no JavaScript and no external URL
(the only link is the plain-text OpenStreetMap copyright notice for OSM cities). Every string
that comes from the run (manifest, scenario, ids) is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from reports import figures
from reports.figures._style import png_base64
from reports.run import RunData, load_run

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OSM_COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111827;
       max-width: 1120px; margin: 0 auto; padding: 24px; line-height: 1.45; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 8px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; }
.sub { color: #4b5563; margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px; }
.card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 14px; background: #f9fafb; }
.card .v { font-size: 1.5rem; font-weight: 600; }
.card .k { font-weight: 600; color: #374151; }
.card .e { color: #4b5563; font-size: 0.9rem; margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 5px 10px; text-align: left; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { color: #166534; font-weight: 600; } .fail { color: #b91c1c; font-weight: 600; }
.na { color: #6b7280; }
.note { color: #4b5563; font-size: 0.9rem; }
.wall { border-left: 4px solid #f59e0b; background: #fffbeb; padding: 8px 12px; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
pre { background: #f3f4f6; padding: 10px; overflow-x: auto; font-size: 0.82rem; }
footer { margin-top: 32px; color: #6b7280; font-size: 0.85rem; }
"""


# ---------------------------------------------------------------------------------------------
# Formatting


def esc(x: Any) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(x), quote=True)


def fmt_s(x: float | None) -> str:
    """Seconds as "42 s" or "3.5 min" (or "—" when missing)."""
    if x is None:
        return "—"
    if abs(x) < 10:
        return f"{x:.1f} s"
    return f"{x:.0f} s" if abs(x) < 120 else f"{x / 60:.1f} min"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def fmt_num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.{digits}f}"


def get(d: dict[str, Any], *path: str) -> Any:
    """Nested lookup that returns None for anything missing."""
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def fmt_metric(name: str, v: float | None, like: float | None = None) -> str:
    """Format an SLO metric value by its name's convention (``_s`` seconds, rates as %);
    seconds use the unit ``like`` (the target) would get, so value and target compare easily."""
    if v is None:
        return "—"
    if name.endswith("_s"):
        ref = abs(like) if like is not None else abs(v)
        if ref < 120:
            return f"{v:.1f} s" if abs(v) < 10 else f"{v:.0f} s"
        return f"{v / 60:.1f} min"
    if name.endswith(("rate", "share", "spread")) or any(
        w in name for w in ("rate", "share", "conversion")
    ):
        return fmt_pct(v)
    return fmt_num(v, 3)


# ---------------------------------------------------------------------------------------------
# Content


SLO_WORDS = {
    "time_to_match": "time from request to driver assigned",
    "pickup_wait": "time from request to pickup",
    "in_vehicle": "time in the car",
    "journey": "time from request to arrival",
    "wait_all_riders": "wait of every rider, including those who gave up",
    "eta_mae_s": "average error of the quoted pickup time",
    "eta_bias_s": "average lateness vs the quoted pickup time",
    "eta_abs_p90_s": "90th percentile error of the quoted pickup time",
    "match_rate": "share of requests that got a driver",
    "completion_rate": "share of requests that ended in a trip",
    "cancel_rate": "share of requests cancelled",
    "open_rate": "share of requests unfinished at the end",
    "utilisation": "share of online driver time that was busy",
    "idle_share": "share of online driver time spent idle",
    "deadhead_share": "share of busy time driving empty to pickups",
    "completed_per_h": "completed trips per hour",
    "income_gini": "inequality of driver income per hour (Gini)",
    "income_p90_p10_ratio": "top-10% vs bottom-10% driver hourly income",
    "zone_match_rate_spread": "gap in match rate between best and worst zone",
    "zone_mean_wait_spread_s": "gap in mean wait between best and worst zone",
    "worst_zone_match_rate": "match rate in the worst-served zone",
    "worst_zone_mean_wait_s": "mean wait in the worst-served zone",
    "time_to_first_offer": "time from request to the first offer to a driver",
    "conversion": "share of quoted riders who requested",
    "driver_decline_rate": "share of offers drivers declined or let time out",
    "offers_per_trip": "offers sent per completed trip",
    "quote_eta_mae_s": "average error of the pickup time quoted to riders",
    "quote_eta_bias_s": "average lateness vs the pickup time quoted to riders",
    "quote_eta_abs_p90_s": "90th percentile error of the pickup time quoted to riders",
    "repositioning_share": "share of online driver time spent repositioning",
    "fare_mean": "average fare per trip",
    "driver_income_per_online_h": "driver income per online hour (after commission)",
    "replay_median_ratio": "median simulated / recorded trip time",
    "replay_spearman": "rank correlation of simulated and recorded trip times",
    "surge_share_of_requests": "share of requests made under surge",
    "surge_mean_multiplier": "mean multiplier paid by requests",
}


def slo_words(metric: str | None) -> str:
    """A plain-language description of an SLO metric name."""
    if metric is None:
        return "unknown metric"
    if metric in SLO_WORDS:
        return SLO_WORDS[metric]
    for prefix, words in SLO_WORDS.items():
        if metric.startswith(prefix + "_"):
            q = metric[len(prefix) + 1 :].removesuffix("_s")
            qw = "average" if q == "mean" else ("longest" if q == "max" else q)
            return f"{words} ({qw})"
    return metric


def headline(m: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(title, value, plain-language explanation) for the headline KPI cards."""
    r = m.get("requests", {})
    n = r.get("count", 0)
    reasons = r.get("cancelled_by_reason") or {}
    top_reason = max(sorted(reasons), key=lambda k: reasons[k]) if reasons else None
    ttm, pw = m.get("time_to_match_s", {}), m.get("pickup_wait_s", {})
    eta, d, f = m.get("eta_error_s", {}), m.get("drivers", {}), m.get("fairness", {})
    bias = eta.get("bias")
    late = (
        "no quotes to check"
        if bias is None
        else f"on average drivers arrived {fmt_s(abs(bias))} {'later' if bias > 0 else 'earlier'}"
        " than quoted"
    )
    fu, off, money = m.get("funnel") or {}, m.get("offers") or {}, m.get("money") or {}
    cards = [
        (
            "Ride requests",
            fmt_num(n),
            "How many rides riders asked for during the simulated period.",
        ),
        (
            "Quote conversion",
            fmt_pct(fu.get("conversion")),
            (
                f"Share of the {fmt_num(get(fu, 'stages', 'arrived'))} riders shown a price and "
                "pickup time who went on to request."
                if fu.get("quotes_logged")
                else "Riders in this scenario always request: no quote was ever turned down."
            ),
        ),
        (
            "Completed trips",
            fmt_pct(r.get("completed_share")),
            f"{fmt_num(r.get('completed', 0))} of the requests ended with the rider dropped off.",
        ),
        (
            "Matched with a driver",
            fmt_pct(r.get("match_rate")),
            "Share of requests that were assigned a driver at all.",
        ),
        (
            "Cancelled",
            fmt_pct(r.get("cancelled_share")),
            "Requests that ended without a trip"
            + (f"; most often because of '{top_reason}'." if top_reason else "."),
        ),
        (
            "Time to match (median)",
            fmt_s(ttm.get("p50")),
            f"Half of matched riders had a driver within this time; 99% within "
            f"{fmt_s(ttm.get('p99'))}.",
        ),
        (
            "Pickup wait (median)",
            fmt_s(pw.get("p50")),
            f"From tapping 'request' until the car arrived; 95% of riders waited less than "
            f"{fmt_s(pw.get('p95'))}.",
        ),
        (
            "Pickup-time accuracy",
            fmt_s(eta.get("mae")),
            f"Average gap between the quoted and the actual pickup time; {late}.",
        ),
        (
            "Driver utilisation",
            fmt_pct(d.get("utilisation")),
            f"Share of drivers' online time spent driving to a pickup or carrying a rider; "
            f"{fmt_pct(d.get('idle_share'))} was idle.",
        ),
        (
            "Empty driving (deadhead)",
            fmt_pct(d.get("deadhead_share")),
            "Share of drivers' driving time spent without a rider: on the way to a pickup or "
            f"repositioning ({fmt_pct(d.get('repositioning_share'))} of online time was spent "
            "repositioning).",
        ),
        (
            "Trips per hour",
            fmt_num(get(m, "throughput", "completed_per_h")),
            "Completed trips per hour of simulated time across the whole city.",
        ),
        (
            "Driver income inequality",
            "—" if f.get("gini") is None else f"{f['gini']:.2f}",
            "Gini coefficient of income per online hour: 0 means every driver earns the same "
            "per hour, 1 means one driver earns everything.",
        ),
    ]
    if off.get("logged"):
        cards.insert(
            5,
            (
                "Driver declines",
                fmt_pct(off.get("decline_rate")),
                f"Share of ride offers drivers turned down or let time out; on average a "
                f"completed trip took {fmt_num(off.get('offers_per_completed'), 2)} offers.",
            ),
        )
    if money.get("fares_logged"):
        cur = f" {money['currency']}" if money.get("currency") else ""
        cards.append(
            (
                "Average fare",
                fmt_num(get(money, "fare_per_trip", "mean"), 2) + cur,
                f"What a rider paid per completed trip; riders spent "
                f"{fmt_num(money.get('rider_spend'), 0)}{cur} in total.",
            )
        )
        cards.append(
            (
                "Driver income per online hour",
                fmt_num(money.get("driver_income_per_online_h"), 2) + cur,
                f"Fares after the platform's {fmt_pct(money.get('commission'))} commission, "
                "divided by drivers' online hours.",
            )
        )
    worst = get(m, "zones", "worst_match_rate")
    if worst:
        cards.append(
            (
                "Worst-served area",
                fmt_pct(worst["match_rate"]),
                f"Match rate in the zone with the lowest one (zone {worst['cell']}, "
                f"{worst['requests']} requests, mean wait {fmt_s(worst['mean_wait_s'])}).",
            )
        )
    return cards


def _table(head: list[str], rows: list[list[str]], num_cols: set[int] = frozenset()) -> str:
    """An HTML table; cells are already-escaped HTML."""
    th = "".join(f"<th>{h}</th>" for h in head)
    thead = f"<thead><tr>{th}</tr></thead>" if any(head) else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def slo_rows(m: dict[str, Any]) -> list[dict[str, str]]:
    """The SLO table as display strings: objective, key, target, value, status."""
    out = []
    for r in get(m, "slo", "rows") or []:
        metric = r.get("metric")
        bound = {"max": "≤", "min": "≥"}.get(r.get("bound"), "?")
        target = r.get("target")
        shown_target = (
            fmt_metric(metric or "", target) if isinstance(target, int | float) else str(target)
        )
        out.append(
            {
                "objective": slo_words(metric),
                "key": str(r.get("key")),
                "target": f"{bound} {shown_target}",
                "value": fmt_metric(
                    metric or "",
                    r.get("value"),
                    target if isinstance(target, int | float) else None,
                ),
                "status": str(r.get("status")),
            }
        )
    return out


FUNNEL_WORDS = {
    "arrived": "opened the app and were shown a quote",
    "requested": "asked for a ride",
    "offered": "had their ride offered to a driver",
    "matched": "got a driver assigned",
    "picked_up": "were picked up",
    "completed": "arrived at their destination",
}
CANCEL_WORDS = {
    "patience": "gave up waiting for a driver",
    "no_driver": "found no driver in range (would not wait)",
    "after_match": "cancelled after a driver was assigned",
}


def funnel_rows(m: dict[str, Any]) -> list[list[str]]:
    """Stage, count, share of arrived riders, share of requests."""
    stages = get(m, "funnel", "stages") or {}
    shares = get(m, "funnel", "shares") or {}
    arrived = get(m, "funnel", "shares_of_arrived") or {}
    # Fixed order: metrics.json is written with sorted keys.
    return [
        [w, fmt_num(stages.get(k)), fmt_pct(arrived.get(k)), fmt_pct(shares.get(k))]
        for k, w in FUNNEL_WORDS.items()
        if k in stages
    ]


def cancel_rows(m: dict[str, Any]) -> list[list[str]]:
    """Cancellations by reason (in words) and by the stage they happened at."""
    reasons = get(m, "funnel", "cancelled_by_reason") or {}
    by_stage = get(m, "funnel", "cancelled_by_stage") or {}
    rows = [[f"{CANCEL_WORDS.get(k, 'other')} ({k})", fmt_num(v)] for k, v in reasons.items()]
    rows += [
        ["cancelled " + k.replace("_", " "), fmt_num(by_stage.get(k))]
        for k in ("before_match", "before_pickup", "after_pickup")
        if k in by_stage
    ]
    return rows


def offer_rows(m: dict[str, Any]) -> list[list[str]]:
    """Offers to drivers and how they ended."""
    o = m.get("offers") or {}
    if not o:
        return []
    if not o.get("logged"):
        return [
            ["offers", f"{fmt_num(o.get('offers'))} (drivers always accept in this scenario)"],
            ["offers per completed trip", fmt_num(o.get("offers_per_completed"), 2)],
        ]
    n = o.get("offers") or 0

    def part(k: str) -> str:
        return f"{fmt_num(o.get(k))} ({fmt_pct(o[k] / n if n and o.get(k) is not None else None)})"

    return [
        ["offers sent to drivers", fmt_num(n)],
        ["accepted (driver set off)", part("accepted")],
        ["declined by the driver", part("declined")],
        ["no answer in time (timeout)", part("timeout")],
        ["withdrawn: the rider had gone", part("rider_gone")],
        ["decline rate (declined + timeout)", fmt_pct(o.get("decline_rate"))],
        ["offers per completed trip", fmt_num(o.get("offers_per_completed"), 2)],
        ["riders refused at least once", fmt_num(o.get("riders_refused_at_least_once"))],
        ["time to first offer (median)", fmt_s(get(m, "time_to_first_offer_s", "p50"))],
    ]


def eta_rows(m: dict[str, Any]) -> list[list[str]]:
    """Pickup-time accuracy: the matcher's ETA and the rider's quote against what happened."""
    rows = []
    for key, what in (
        ("eta_error_s", "driver's pickup ETA at assignment vs actual drive"),
        ("quote_error_s", "pickup time quoted to the rider vs actual wait (completed rides)"),
    ):
        e = m.get(key) or {}
        rows.append(
            [
                what,
                fmt_num(e.get("count")),
                fmt_s(e.get("mae")),
                "—" if e.get("bias") is None else f"{e['bias']:+.0f} s",
                fmt_s(e.get("p90_abs")),
            ]
        )
    return rows


def driver_time_rows(m: dict[str, Any]) -> list[list[str]]:
    """How drivers' online time was spent."""
    d = m.get("drivers") or {}
    return [
        [label, fmt_num(d.get(f"{k}_h")), fmt_pct(d.get(f"{k}_share"))]
        for k, label in (
            ("idle", "idle, waiting for a ride"),
            ("repositioning", "repositioning (driving empty to a better place)"),
            ("to_pickup", "driving to a pickup (incl. rides cancelled on the way)"),
            ("with_rider", "carrying a rider"),
        )
    ]


def money_rows(m: dict[str, Any]) -> list[list[str]]:
    """Rider spend, driver income and the platform's part."""
    mo = m.get("money") or {}
    if not mo.get("fares_logged"):
        return []
    cur = f" {mo['currency']}" if mo.get("currency") else ""

    def money(v: float | None) -> str:
        return "—" if v is None else f"{v:,.2f}{cur}"

    fpt = mo.get("fare_per_trip") or {}
    pq = mo.get("paid_over_quoted") or {}
    return [
        ["riders paid (all completed trips)", money(mo.get("rider_spend"))],
        [
            "fare per trip: mean / median / p90",
            " / ".join(money(fpt.get(k)) for k in ("mean", "p50", "p90")),
        ],
        [
            f"drivers kept (after {fmt_pct(mo.get('commission'))} commission)",
            money(mo.get("driver_income")),
        ],
        ["platform commission", money(mo.get("platform_revenue"))],
        ["driver income per online hour", money(mo.get("driver_income_per_online_h"))],
        ["paid fare / quoted price (median)", fmt_num(pq.get("p50"), 3)],
        [
            "mean quoted price: requested / declined",
            f"{money(mo.get('mean_price_of_requested_quotes'))} / "
            f"{money(mo.get('mean_price_of_declined_quotes'))}",
        ],
    ]


def replay_rows(m: dict[str, Any]) -> list[list[str]]:
    """Simulated vs recorded trip times of the replayed trips."""
    r = m.get("replay")
    if not r:
        return []

    def num(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    return [
        ["replayed trips in the file", fmt_num(r.get("trips_in_file"))],
        ["completed in the simulation with a recorded time", fmt_num(r.get("compared"))],
        ["median simulated / recorded trip time", num(r.get("median_ratio"))],
        [
            "10% / 90% of trips have a ratio below",
            f"{num(r.get('p10_ratio'))} / {num(r.get('p90_ratio'))}",
        ],
        ["correlation (Pearson)", num(r.get("pearson"))],
        ["rank correlation (Spearman)", num(r.get("spearman"))],
        [
            "mean trip: simulated / recorded",
            f"{fmt_s(r.get('mean_simulated_s'))} / {fmt_s(r.get('mean_recorded_s'))}",
        ],
        ["mean absolute difference", fmt_s(r.get("mae_s"))],
    ]


def surge_rows(m: dict[str, Any]) -> list[list[str]]:
    """How often and how high prices surged, by area-interval and by request."""
    sg = m.get("surge")
    if not sg:
        return []
    ci = sg.get("cell_intervals") or {}
    mult = ci.get("multiplier") or {}

    def x(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}×"

    rows = [
        ["pricing interval", fmt_s(sg.get("interval_s"))],
        [
            "areas × intervals priced",
            f"{fmt_num(ci.get('count'))} ({fmt_num(ci.get('cells'))} areas, "
            f"{fmt_num(ci.get('intervals'))} intervals)",
        ],
        ["area-intervals surging (multiplier > 1)", fmt_pct(ci.get("share_surging"))],
        [
            "multiplier over area-intervals: mean / p90 / max",
            f"{x(mult.get('mean'))} / {x(mult.get('p90'))} / {x(mult.get('max'))}",
        ],
    ]
    r = sg.get("requests")
    if r:
        rm = r.get("multiplier") or {}
        rows += [
            ["requests made under surge", fmt_pct(r.get("share_surging"))],
            [
                "multiplier over requests: mean / p90 / max",
                f"{x(rm.get('mean'))} / {x(rm.get('p90'))} / {x(rm.get('max'))}",
            ],
        ]
    else:
        rows.append(["requests under surge", "— (the city's nodes give no cell to join on)"])
    q = sg.get("quotes")
    if q:
        rows.append(
            [
                "conversion of quotes: surging / calm",
                f"{fmt_pct(q.get('conversion_surging'))} / {fmt_pct(q.get('conversion_calm'))}",
            ]
        )
    return rows


def fault_rows(m: dict[str, Any]) -> list[list[str]]:
    """Outages and crashes, or nothing when the run had no faults."""
    f = m.get("faults") or {}
    if not (f.get("matcher_outages") or f.get("driver_crashes")):
        return []
    return [
        ["matcher outages", fmt_num(f.get("matcher_outages"), 0)],
        [
            "matcher down for",
            f"{fmt_s(f.get('matcher_downtime_s'))} "
            f"({fmt_pct(f.get('matcher_downtime_share'))} of the run)",
        ],
        ["driver app crashes (idle drivers logged off)", fmt_num(f.get("driver_crashes"), 0)],
        ["drivers back after a crash", fmt_num(f.get("driver_reconnects"), 0)],
    ]


def fairness_rows(m: dict[str, Any]) -> list[list[str]]:
    """Driver income per online hour: distribution and inequality."""
    f = m.get("fairness", {})
    return [
        ["income measure", str(f.get("income_label", "—"))],
        [
            "drivers counted (online ≥ " + fmt_s(f.get("min_online_s")) + ")",
            fmt_num(f.get("drivers")),
        ],
        ["mean per online hour", fmt_num(f.get("mean"))],
        ["bottom 10% earn at most (p10)", fmt_num(f.get("p10"))],
        ["median (p50)", fmt_num(f.get("p50"))],
        ["top 10% earn at least (p90)", fmt_num(f.get("p90"))],
        ["Gini (0 = equal)", "—" if f.get("gini") is None else f"{f['gini']:.3f}"],
    ]


def zone_rows(m: dict[str, Any]) -> list[list[str]]:
    z = m.get("zones")
    if not z:
        return []
    scheme = (
        f"H3 cells, resolution {z.get('resolution')}"
        if z["scheme"] == "h3"
        else f"square cells of {fmt_num(z.get('cell_m'))} m"
    )
    wm, ww = z.get("worst_match_rate"), z.get("worst_mean_wait")
    sp = z.get("spread", {})
    return [
        [
            "zones",
            f"{z['count']} ({scheme}); {z['ranked']} with ≥ {z['min_requests']} requests"
            " are ranked",
        ],
        [
            "lowest match rate",
            "—" if not wm else f"{fmt_pct(wm['match_rate'])} in zone {wm['cell']}",
        ],
        [
            "longest mean wait",
            "—" if not ww else f"{fmt_s(ww['mean_wait_s'])} in zone {ww['cell']}",
        ],
        ["match-rate gap, best to worst zone", fmt_pct(sp.get("match_rate"))],
        ["mean-wait gap, best to worst zone", fmt_s(sp.get("mean_wait_s"))],
    ]


def latency_rows(run: RunData) -> list[list[str]]:
    p = run.perf or {}
    mt = p.get("matcher", {}) or {}

    def ms(v: Any) -> str:
        return "—" if v is None else f"{v:.2f} ms"

    rows = [
        ["matcher calls (batches)", fmt_num(mt.get("calls"))],
        [
            "p50 / p95 / p99 per call",
            f"{ms(mt.get('p50_ms'))} / {ms(mt.get('p95_ms'))} / {ms(mt.get('p99_ms'))}",
        ],
        ["slowest call", ms(mt.get("max_ms"))],
        ["whole run", fmt_s(p.get("wall_s"))],
        ["events per second", fmt_num(p.get("events_per_s"), 0)],
        ["peak memory", "—" if p.get("peak_rss_mb") is None else f"{p['peak_rss_mb']:.0f} MB"],
    ]
    return rows


def provenance_rows(run: RunData) -> list[list[str]]:
    man = run.manifest
    sc = man.get("scenario", {})
    city = man.get("city", {}) or {}
    matcher = man.get("matcher", {}) or {}
    rows = [
        ["run id", run.run_id],
        ["scenario", sc.get("name", "—")],
        ["seed", sc.get("seed", "—")],
        ["start / duration", f"{get(sc, 'time', 'start')} / {fmt_s(run.horizon_s)}"],
        [
            "city",
            f"{city.get('name', '—')} ({city.get('n_nodes', '—')} nodes, "
            f"hash {city.get('content_hash', '—')})",
        ],
        [
            "matcher",
            f"{matcher.get('name', '—')} {json.dumps(matcher.get('params', {}), sort_keys=True)}",
        ],
    ]
    for k in ("ridesim_version", "code_hash"):
        if k in man:
            rows.append([k.replace("_", " "), man[k]])
    return [[str(a), str(b)] for a, b in rows]


# ---------------------------------------------------------------------------------------------
# Assembly


def figure_html(make: Callable[[RunData], Figure], run: RunData, alt: str) -> str:
    """A figure as an inline <img> (data: URI); a failing figure becomes a note, not a crash."""
    try:
        fig = make(run)
    except Exception as e:  # a broken figure must not lose the rest of the report
        return f'<p class="note">Figure unavailable: {esc(type(e).__name__)}: {esc(e)}</p>'
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{png_base64(fig)}">'


def render_html(run: RunData) -> str:
    """The report page as a string."""
    m = run.metrics
    sc = run.manifest.get("scenario", {})
    title = f"Simulation report: {sc.get('name', run.run_id)}"
    cards = "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
        f'<div class="e">{esc(e)}</div></div>'
        for k, v, e in headline(m)
    )
    slo = slo_rows(m)
    slo_src = get(m, "slo", "source")
    slo_table = _table(
        ["objective", "key", "target", "this run", "result"],
        [
            [
                esc(r["objective"]),
                f"<code>{esc(r['key'])}</code>",
                esc(r["target"]),
                esc(r["value"]),
                f'<span class="{"na" if r["status"] not in ("pass", "fail") else r["status"]}">'
                f"{esc(r['status'].upper())}</span>",
            ]
            for r in slo
        ],
        {2, 3},
    )
    passed, failed = get(m, "slo", "passed") or 0, get(m, "slo", "failed") or 0
    cancels = cancel_rows(m)
    offers = offer_rows(m)
    money = money_rows(m)
    replay = replay_rows(m)
    surge = surge_rows(m)
    fu = m.get("funnel") or {}
    funnel_note = (
        "Riders were shown a price and pickup time first; some turned it down. "
        if fu.get("quotes_logged")
        else "Riders in this scenario always request (no quotes logged), so every arrival is a "
        "request. "
    ) + (
        "A ride may be offered to several drivers before one accepts: <em>offered</em> counts "
        "riders whose ride was offered at least once, <em>matched</em> those a driver accepted."
        if fu.get("offers_logged")
        else "Drivers in this scenario always accept, so an offer is a match."
    )
    zones = zone_rows(m)
    osm = run.geographic
    provenance = {k: run.manifest.get(k, {}) for k in ("versions", "inputs")}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">Run <code>{esc(run.run_id)}</code>'
        f" · city {esc(get(run.manifest, 'city', 'name'))}"
        f" · matcher {esc(get(run.manifest, 'matcher', 'name'))} · seed {esc(sc.get('seed'))}"
        f" · {esc(fmt_s(run.horizon_s))} simulated from {esc(run.start_clock)}</p>",
        "<h2>Headline results</h2>",
        '<p class="note">All figures below except the matcher timing are deterministic: the same '
        "scenario and seed always give exactly these numbers.</p>",
        f'<div class="cards">{cards}</div>',
        "<h2>Service-level objectives</h2>",
        f'<p class="note">{passed} passed, {failed} failed. Targets '
        + (
            "from the scenario file."
            if slo_src == "scenario"
            else "are the ridesim defaults (the scenario sets none)."
        )
        + "</p>",
        slo_table,
        "<h2>Rider funnel</h2>",
        f'<p class="note">{funnel_note}</p>',
        _table(
            ["riders who…", "count", "share of arrived", "share of requests"],
            [[esc(c) for c in r] for r in funnel_rows(m)],
            {1, 2, 3},
        ),
        _table(["cancellations", "count"], [[esc(a), esc(b)] for a, b in cancels], {1})
        if cancels
        else "",
        "<h2>Offers to drivers</h2>",
        '<p class="note">The decline rate counts offers a driver turned down or did not answer in '
        "time; each time, the rider waits for another driver. Time to match is measured to the "
        "accepted offer (the assignment), not to the first offer.</p>",
        _table(["", ""], [[esc(a), esc(b)] for a, b in offers]) if offers else "",
        "<h2>Over time</h2>",
        '<p class="note">Top: requests, completed trips and cancellations per hour. '
        "Bottom: how many drivers were idle, on the way to a pickup, or carrying a rider.</p>",
        figure_html(
            figures.timeseries_figure, run, "time series of demand, trips and driver states"
        ),
        "<h2>Waiting and pickup-time accuracy</h2>",
        '<p class="note">How long riders waited for a match and for the car, and how far '
        "the quoted pickup time was from the real one (positive = later than promised). Two "
        "promises are checked: the ETA the matcher saw when it assigned the driver, against the "
        "driver's actual drive; and the pickup time shown to the rider before requesting, against "
        "the rider's whole wait (matching included).</p>",
        _table(
            ["promise", "rides", "mean error", "bias (late +)", "90% within"],
            [[esc(c) for c in r] for r in eta_rows(m)],
            {1, 2, 3, 4},
        ),
        figure_html(figures.distributions_figure, run, "distributions of waits and ETA error"),
        "<h2>How drivers spent their time</h2>",
        '<p class="note">Deadhead is empty driving: to a pickup or repositioning. Repositioning '
        "is counted until the driver's next event (an offer may cut it short).</p>",
        _table(
            ["", "driver-hours", "share of online time"],
            [[esc(c) for c in r] for r in driver_time_rows(m)],
            {1, 2},
        ),
        *(
            [
                "<h2>Fares and income</h2>",
                '<p class="note">Riders pay the fare at drop-off; drivers keep the fare minus the '
                "platform's commission.</p>",
                _table(["", ""], [[esc(a), esc(b)] for a, b in money]),
            ]
            if money
            else []
        ),
        "<h2>Driver income fairness</h2>",
        _table(["", ""], [[esc(a), esc(b)] for a, b in fairness_rows(m)]),
        '<p class="note">The Lorenz curve shows what share of all income the poorest x% of drivers '
        "earn; the further it sags below the diagonal, the less equal the earnings.</p>",
        figure_html(figures.income_figure, run, "driver income distribution and Lorenz curve"),
        "<h2>Service across the city</h2>",
        _table(["", ""], [[esc(a), esc(b)] for a, b in zones]) if zones else "",
        '<p class="note">Each cell is an area of the city, coloured by the mean pickup wait (left) '
        "and the share of requests that got a driver (right) for rides starting there. Grey cells "
        "had no pickups.</p>",
        figure_html(figures.city_map_figure, run, "maps of mean wait and match rate by zone"),
        *(
            [
                "<h2>Surge pricing</h2>",
                '<p class="note">Prices are multiplied in areas where demand outran supply. An '
                "<em>area-interval</em> is one area during one pricing interval; each request is "
                "matched to the price of its pickup area when it was made.</p>",
                _table(["", ""], [[esc(a), esc(b)] for a, b in surge]),
                figure_html(figures.surge_timeseries_figure, run, "surge multiplier over time"),
                '<p class="note">Darker areas were more expensive on average over the run.</p>',
                figure_html(figures.surge_map_figure, run, "mean surge multiplier by area"),
            ]
            if surge
            else []
        ),
        *(
            [
                "<h2>Replay fidelity</h2>",
                '<p class="note">This run replayed recorded trips. For each one completed in the '
                "simulation, its simulated trip time is compared with the recorded one: a "
                "median ratio near 1 and correlations near 1 mean the simulated city drives "
                "like the real one.</p>",
                _table(["", ""], [[esc(a), esc(b)] for a, b in replay]),
                figure_html(figures.replay_figure, run, "simulated vs recorded trip times"),
            ]
            if replay
            else []
        ),
        *(
            [
                "<h2>Faults</h2>",
                '<p class="note">This scenario injected failures: while the matcher was down '
                "nobody was assigned; a crashed driver app took an idle driver offline until "
                "they reconnected.</p>",
                _table(["", ""], [[esc(a), esc(b)] for a, b in fault_rows(m)]),
            ]
            if fault_rows(m)
            else []
        ),
        "<h2>Matcher speed (wall-clock, not deterministic)</h2>",
        '<div class="wall">Measured wall-clock time on the machine that ran this simulation. It '
        "varies between machines and between runs, and it never influenced the simulated results "
        "above.</div>",
        _table(["", ""], [[esc(a), esc(b)] for a, b in latency_rows(run)])
        if run.perf
        else '<p class="note">No perf.json in this run.</p>',
        figure_html(figures.latency_figure, run, "matcher wall-clock time per batch"),
        "<h2>Scenario and provenance</h2>",
        _table(["", ""], [[esc(a), esc(b)] for a, b in provenance_rows(run)]),
        "<details><summary>Full scenario</summary>",
        f"<pre>{esc(json.dumps(sc, indent=2, sort_keys=True))}</pre></details>",
        "<details><summary>Package versions and inputs</summary>",
        f"<pre>{esc(json.dumps(provenance, indent=2, sort_keys=True))}</pre></details>",
        "<footer>",
        (
            f'Map data {esc(OSM_ATTRIBUTION)} (<a href="{OSM_COPYRIGHT_URL}">'
            f"{esc(OSM_COPYRIGHT_URL)}</a>), available under the Open Database License. "
            if osm
            else ""
        ),
        "Generated by ridesim from the run directory only.</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(run: RunData) -> str:
    """The KPI tables in Markdown, for pasting into a review."""
    m = run.metrics
    sc = run.manifest.get("scenario", {})
    out = [
        f"# Simulation report: {_md_cell(sc.get('name', run.run_id))}",
        "",
        f"Run `{_md_cell(run.run_id)}`, seed {_md_cell(sc.get('seed'))}, "
        f"matcher {_md_cell(get(run.manifest, 'matcher', 'name'))}.",
        "",
        "## Headline results",
        "",
        _md_table(["KPI", "value", "meaning"], [[k, v, e] for k, v, e in headline(m)]),
        "",
        "## Service-level objectives",
        "",
        _md_table(
            ["objective", "key", "target", "this run", "result"],
            [
                [r["objective"], f"`{r['key']}`", r["target"], r["value"], r["status"].upper()]
                for r in slo_rows(m)
            ],
        ),
        "",
        "## Rider funnel",
        "",
        _md_table(
            ["riders who…", "count", "share of arrived", "share of requests"], funnel_rows(m)
        ),
        "",
        _md_table(["cancellations", "count"], cancel_rows(m)),
        "",
        "## Offers to drivers",
        "",
        _md_table(["", ""], offer_rows(m)),
        "",
        "## Pickup-time accuracy",
        "",
        _md_table(["promise", "rides", "mean error", "bias (late +)", "90% within"], eta_rows(m)),
        "",
        "## How drivers spent their time",
        "",
        _md_table(["", "driver-hours", "share of online time"], driver_time_rows(m)),
        "",
        "## Driver income fairness",
        "",
        _md_table(["", ""], fairness_rows(m)),
    ]
    for title, rows in (
        ("Fares and income", money_rows(m)),
        ("Surge pricing", surge_rows(m)),
        ("Replay fidelity", replay_rows(m)),
        ("Faults", fault_rows(m)),
        ("Service across the city", zone_rows(m)),
    ):
        if rows:
            out += ["", f"## {title}", "", _md_table(["", ""], rows)]
    if run.perf:
        out += [
            "",
            "## Matcher speed (wall-clock, not deterministic)",
            "",
            _md_table(["", ""], latency_rows(run)),
        ]
    if run.geographic:
        out += ["", f"Map data {OSM_ATTRIBUTION}."]
    return "\n".join(out) + "\n"


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` and ``report.md`` into a run directory; returns the HTML path."""
    run = load_run(Path(run_dir))
    out = run.run_dir / "report.html"
    out.write_text(render_html(run), encoding="utf-8")
    (run.run_dir / "report.md").write_text(render_markdown(run), encoding="utf-8")
    return out

"""The report's words and numbers: formatting conventions, plain-language descriptions and
the rows of every table, computed from ``metrics.json`` alone (no plotting here, so the CLI's
terminal summary and the comparison use it without matplotlib).

Internal names (cancel reasons, stage keys) never reach the page: each has words here.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from reports.replay import fidelity_rows
from reports.run import RunData
from reports.zones import zone_name

# ---------------------------------------------------------------------------------------------
# Formatting: one convention per kind of number, so a table never mixes "1,714.330" and "1,752"


def get(d: dict[str, Any], *path: str) -> Any:
    """Nested lookup that returns None for anything missing."""
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def fmt_s(x: float | None) -> str:
    """Seconds as "4.2 s", "42 s", "3.5 min" or "2.5 h" (or "—" when missing)."""
    if _missing(x):
        return "—"
    a = abs(x)
    if a < 10:
        return f"{x:.1f} s"
    if a < 120:
        return f"{x:.0f} s"
    return f"{x / 60:.1f} min" if a < 7200 else f"{x / 3600:.1f} h"


def fmt_duration(x: float | None) -> str:
    """A run's length in words: "2 h", "90 min", "16 days"."""
    if _missing(x):
        return "—"
    if x >= 2 * 86400:
        d = x / 86400
        return f"{d:.0f} days" if float(d).is_integer() else f"{d:.1f} days"
    if x >= 7200:
        h = x / 3600
        return f"{h:.0f} h" if float(h).is_integer() else f"{h:.1f} h"
    return fmt_s(x)


def fmt_signed_s(x: float | None) -> str:
    """Signed whole seconds ("+7 s", "-3 s", "0 s": never "-0 s")."""
    if _missing(x):
        return "—"
    r = round(x)
    return "0 s" if r == 0 else f"{r:+d} s"


def fmt_pct(x: float | None) -> str:
    """A share as "42.3%"."""
    return "—" if _missing(x) else f"{100 * x:.1f}%"


def fmt_count(x: float | None) -> str:
    """A count: "6,149" (a mean of counts keeps one decimal: "6,558.5")."""
    if _missing(x):
        return "—"
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


def fmt_num(x: float | None, digits: int = 2) -> str:
    """Any other number with a fixed number of decimals: "1.00", "1,714.33"."""
    return "—" if _missing(x) else f"{x:,.{digits}f}"


def fmt_rate(x: float | None) -> str:
    """A rate such as trips per hour: whole numbers above 100, else one decimal."""
    if _missing(x):
        return "—"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def fmt_money(x: float | None, currency: str | None) -> str:
    """Money with two decimals and the scenario's currency: "14.28 BRL"."""
    if _missing(x):
        return "—"
    return f"{x:,.2f} {currency}" if currency else f"{x:,.2f}"


def fmt_metric(name: str, v: float | None, like: float | None = None) -> str:
    """Format an SLO metric value by its name's convention (``_s`` seconds, rates as %);
    seconds use the unit ``like`` (the target) would get, so value and target compare easily."""
    if _missing(v):
        return "—"
    if name.endswith("_s"):
        ref = abs(like) if like is not None else abs(v)
        if ref < 120:
            return f"{v:.1f} s" if abs(v) < 10 else f"{v:.0f} s"
        return f"{v / 60:.1f} min"
    if any(w in name for w in ("rate", "share", "spread", "conversion")):
        return fmt_pct(v)
    if name.endswith("_per_h"):
        return fmt_rate(v)
    return fmt_num(v)


# ---------------------------------------------------------------------------------------------
# Words


SLO_WORDS = {
    "time_to_match": "time from request to driver assigned",
    "pickup_wait": "time from request to pickup",
    "in_vehicle": "time in the car",
    "journey": "time from request to arrival",
    "wait_all_riders": "wait of every rider, including those who gave up",
    "eta_mae_s": "average error of the driver's pickup ETA at assignment",
    "eta_bias_s": "average lateness vs the driver's pickup ETA at assignment",
    "eta_abs_p90_s": "90th percentile error of the driver's pickup ETA at assignment",
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
    return metric.replace("_", " ")


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
                "status_class": str(r.get("status"))
                if r.get("status") in ("pass", "fail")
                else "na",
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


# ---------------------------------------------------------------------------------------------
# Headline cards


class Card(NamedTuple):
    """One headline card: what it measures, its value, and one sentence that says what the
    value is (and nothing the value does not show)."""

    title: str
    value: str
    explanation: str


CANCEL_WORDS = {
    "patience": "gave up waiting for a driver",
    "no_driver": "found no driver in range and left",
    "after_match": "cancelled after a driver was assigned",
}
"""Cancel reasons the engine writes, in words."""


def cancel_words(reason: str) -> str:
    """A cancel reason in words ("an unrecorded reason" for anything unknown)."""
    return CANCEL_WORDS.get(reason, "cancelled for an unrecorded reason")


def lateness(bias: float | None, who: str, than: str) -> str:
    """ "the car came 7.5 s later than quoted" / "... on time" from a mean lateness."""
    if _missing(bias) or abs(bias) < 0.05:
        return f"on average {who} came exactly when {than}"
    return (
        f"on average {who} came {fmt_s(abs(bias))} {'later' if bias > 0 else 'earlier'} than {than}"
    )


def currency_of(m: dict[str, Any]) -> str | None:
    """The scenario's currency code ("BRL"), or None."""
    c = get(m, "money", "currency")
    return str(c) if c else None


def headline_cards(m: dict[str, Any]) -> list[Card]:
    """The headline KPI cards of a run; a card appears only when the run measured it."""
    r = m.get("requests", {}) or {}
    reasons = {k: v for k, v in (r.get("cancelled_by_reason") or {}).items() if v}
    top_reason = max(sorted(reasons), key=lambda k: reasons[k]) if reasons else None
    ttm, pw = m.get("time_to_match_s", {}) or {}, m.get("pickup_wait_s", {}) or {}
    d, f = m.get("drivers", {}) or {}, m.get("fairness", {}) or {}
    fu, off, money = m.get("funnel") or {}, m.get("offers") or {}, m.get("money") or {}
    cards = [
        Card(
            "Ride requests",
            fmt_count(r.get("count")),
            "How many rides riders asked for during the simulated period.",
        )
    ]
    if fu.get("quotes_logged"):
        cards.append(
            Card(
                "Quote conversion",
                fmt_pct(fu.get("conversion")),
                f"Share of the {fmt_count(get(fu, 'stages', 'arrived'))} riders shown a price "
                "and pickup time who went on to request.",
            )
        )
    cards += [
        Card(
            "Completed trips",
            fmt_pct(r.get("completed_share")),
            f"{fmt_count(r.get('completed', 0))} of the requests ended with the rider dropped off.",
        ),
        Card(
            "Matched with a driver",
            fmt_pct(r.get("match_rate")),
            "Share of requests that were assigned a driver at all.",
        ),
        Card(
            "Cancelled",
            fmt_pct(r.get("cancelled_share")),
            "Requests that ended without a trip"
            + (f"; most often the rider {cancel_words(top_reason)}." if top_reason else "."),
        ),
    ]
    if off.get("logged"):
        cards.append(
            Card(
                "Driver declines",
                fmt_pct(off.get("decline_rate")),
                "Share of ride offers drivers turned down or let time out; on average a "
                f"completed trip took {fmt_num(off.get('offers_per_completed'))} offers.",
            )
        )
    cards += [
        Card(
            "Time to match (median)",
            fmt_s(ttm.get("p50")),
            f"Half of matched riders had a driver within this time; 99% within "
            f"{fmt_s(ttm.get('p99'))}.",
        ),
        Card(
            "Pickup wait (median)",
            fmt_s(pw.get("p50")),
            "From tapping 'request' until the car arrived; 95% of riders waited less than "
            f"{fmt_s(pw.get('p95'))}.",
        ),
    ]
    quote = m.get("quote_error_s") or {}
    eta = m.get("eta_error_s") or {}
    if quote.get("count"):
        bias = quote.get("bias")
        cards.append(
            Card(
                "Pickup-time accuracy",
                fmt_s(quote.get("mae")),
                "Average gap between the pickup time quoted to the rider and the actual wait "
                f"(completed rides); {lateness(bias, 'the car', 'quoted')}.",
            )
        )
    elif eta.get("count"):
        bias = eta.get("bias")
        cards.append(
            Card(
                "Pickup ETA accuracy",
                fmt_s(eta.get("mae")),
                "Riders see no quote in this scenario: this is the average gap between the "
                "driver's pickup ETA at assignment and the actual drive; "
                f"{lateness(bias, 'the driver', 'that ETA said')}.",
            )
        )
    cards += [
        Card(
            "Driver utilisation",
            fmt_pct(d.get("utilisation")),
            "Share of drivers' online time spent driving to a pickup or carrying a rider; "
            f"{fmt_pct(d.get('idle_share'))} was idle.",
        ),
        Card(
            "Empty driving (deadhead)",
            fmt_pct(d.get("deadhead_share")),
            "Share of drivers' driving time spent without a rider"
            + (
                ": on the way to a pickup or repositioning "
                f"({fmt_pct(d.get('repositioning_share'))} of online time was spent "
                "repositioning)."
                if d.get("repositioning_share")
                else ": on the way to a pickup."
            ),
        ),
        Card(
            "Trips per hour",
            fmt_rate(get(m, "throughput", "completed_per_h")),
            "Completed trips per hour of simulated time across the whole city.",
        ),
    ]
    if f.get("gini") is not None:
        cards.append(
            Card(
                "Driver income inequality",
                fmt_num(f["gini"]),
                "Gini coefficient of income per online hour: 0 means every driver earns the "
                "same per hour, 1 means one driver earns everything.",
            )
        )
    if money.get("fares_logged"):
        cur = currency_of(m)
        cards.append(
            Card(
                "Average fare",
                fmt_money(get(money, "fare_per_trip", "mean"), cur),
                "What a rider paid per completed trip; riders spent "
                f"{fmt_money(money.get('rider_spend'), cur)} in total.",
            )
        )
        cards.append(
            Card(
                "Driver income per online hour",
                fmt_money(money.get("driver_income_per_online_h"), cur),
                f"Fares after the platform's {fmt_pct(money.get('commission'))} commission, "
                "divided by drivers' online hours.",
            )
        )
    zones = m.get("zones") or {}
    worst = zones.get("worst_match_rate")
    slowest = zones.get("worst_mean_wait")
    if worst and not get(zones, "spread", "match_rate") and slowest:
        cards.append(
            Card(
                "Longest-waiting area",
                fmt_s(slowest["mean_wait_s"]),
                f"Every ranked area matched {fmt_pct(worst['match_rate'])} of its requests; "
                f"riders waited longest {zone_name(slowest.get('x_m'), slowest.get('y_m'), zones)}"
                f" ({fmt_count(slowest['requests'])} requests).",
            )
        )
    elif worst:
        cards.append(
            Card(
                "Worst-served area",
                fmt_pct(worst["match_rate"]),
                "Match rate in the area with the lowest one, "
                f"{zone_name(worst.get('x_m'), worst.get('y_m'), zones)} "
                f"({fmt_count(worst['requests'])} requests, mean wait "
                f"{fmt_s(worst['mean_wait_s'])}).",
            )
        )
    return cards


# ---------------------------------------------------------------------------------------------
# Table rows (display strings)


FUNNEL_WORDS = {
    "arrived": "opened the app and were shown a quote",
    "requested": "asked for a ride",
    "offered": "had their ride offered to a driver",
    "matched": "got a driver assigned",
    "picked_up": "were picked up",
    "completed": "arrived at their destination",
}
STAGE_WORDS = {
    "before_match": "before a driver was assigned",
    "before_pickup": "after the match, before pickup",
    "after_pickup": "after pickup",
}


def funnel_rows(m: dict[str, Any]) -> list[list[str]]:
    """Stage, count, share of arrived riders, share of requests (without quotes, every rider
    requested: the "arrived" row and column say nothing and are left out)."""
    fu = m.get("funnel") or {}
    stages = fu.get("stages") or {}
    shares = fu.get("shares") or {}
    arrived = fu.get("shares_of_arrived") or {}
    quotes = bool(fu.get("quotes_logged"))
    rows = []
    for k, w in FUNNEL_WORDS.items():  # fixed order: metrics.json is written with sorted keys
        if k not in stages or (k == "arrived" and not quotes):
            continue
        if k == "offered" and not fu.get("offers_logged"):
            continue
        row = [w, fmt_count(stages.get(k))]
        row += [fmt_pct(arrived.get(k))] if quotes else []
        rows.append([*row, fmt_pct(shares.get(k))])
    return rows


def funnel_head(m: dict[str, Any]) -> list[str]:
    """The funnel table's column titles (matching :func:`funnel_rows`)."""
    quotes = bool(get(m, "funnel", "quotes_logged"))
    return ["riders who…", "count", *(["share of arrived"] if quotes else []), "share of requests"]


def cancel_rows(m: dict[str, Any]) -> list[list[str]]:
    """One row per cancel reason that happened, split by the stage it happened at: each
    cancellation is counted once."""
    fu = m.get("funnel") or {}
    by = fu.get("cancelled_by_reason_and_stage") or {}
    n = get(m, "requests", "count") or 0
    rows = []
    for reason in sorted(by):
        st = by[reason]
        total = sum(st.values())
        if not total:
            continue
        rows.append(
            [
                f"the rider {cancel_words(reason)}",
                *(fmt_count(st.get(k, 0)) for k in STAGE_WORDS),
                fmt_count(total),
                fmt_pct(total / n if n else None),
            ]
        )
    return rows


CANCEL_HEAD = ["why the ride was cancelled", *STAGE_WORDS.values(), "total", "share of requests"]


def offer_rows(m: dict[str, Any]) -> list[list[str]]:
    """Offers to drivers and how they ended (empty when drivers always accept)."""
    o = m.get("offers") or {}
    if not o.get("logged"):
        return []
    n = o.get("offers") or 0

    def part(k: str) -> str:
        v = o.get(k)
        return f"{fmt_count(v)} ({fmt_pct(v / n if n and v is not None else None)})"

    return [
        ["offers sent to drivers", fmt_count(n)],
        ["accepted (driver set off)", part("accepted")],
        ["declined by the driver", part("declined")],
        ["no answer in time", part("timeout")],
        ["withdrawn: the rider had gone", part("rider_gone")],
        ["decline rate (declined or no answer)", fmt_pct(o.get("decline_rate"))],
        ["offers per completed trip", fmt_num(o.get("offers_per_completed"))],
        ["riders refused at least once", fmt_count(o.get("riders_refused_at_least_once"))],
        ["time to first offer (median)", fmt_s(get(m, "time_to_first_offer_s", "p50"))],
    ]


def eta_rows(m: dict[str, Any]) -> list[list[str]]:
    """Pickup-time accuracy: the rider's quote and the matcher's ETA against what happened
    (a promise the run never made is left out)."""
    rows = []
    for key, what in (
        ("quote_error_s", "pickup time quoted to the rider vs actual wait (completed rides)"),
        ("eta_error_s", "driver's pickup ETA at assignment vs actual drive"),
    ):
        e = m.get(key) or {}
        if not e.get("count"):
            continue
        rows.append(
            [
                what,
                fmt_count(e.get("count")),
                fmt_s(e.get("mae")),
                fmt_signed_s(e.get("bias")),
                fmt_s(e.get("p90_abs")),
            ]
        )
    return rows


def driver_time_rows(m: dict[str, Any]) -> list[list[str]]:
    """How drivers' online time was spent (repositioning only when drivers repositioned)."""
    d = m.get("drivers") or {}
    return [
        [label, fmt_num(d.get(f"{k}_h"), 1), fmt_pct(d.get(f"{k}_share"))]
        for k, label in (
            ("idle", "idle, waiting for a ride"),
            ("repositioning", "repositioning (driving empty to a better place)"),
            ("to_pickup", "driving to a pickup (incl. rides cancelled on the way)"),
            ("with_rider", "carrying a rider"),
        )
        if k != "repositioning" or d.get("repositioning_h")
    ]


def money_rows(m: dict[str, Any]) -> list[list[str]]:
    """Rider spend, driver income and the platform's part (empty without fares)."""
    mo = m.get("money") or {}
    if not mo.get("fares_logged"):
        return []
    cur = currency_of(m)
    fpt = mo.get("fare_per_trip") or {}
    pq = mo.get("paid_over_quoted") or {}
    rows = [
        ["riders paid (all completed trips)", fmt_money(mo.get("rider_spend"), cur)],
        [
            "fare per trip: mean / median / p90",
            " / ".join(fmt_money(fpt.get(k), cur) for k in ("mean", "p50", "p90")),
        ],
        [
            f"drivers kept (after {fmt_pct(mo.get('commission'))} commission)",
            fmt_money(mo.get("driver_income"), cur),
        ],
        ["platform commission", fmt_money(mo.get("platform_revenue"), cur)],
        ["driver income per online hour", fmt_money(mo.get("driver_income_per_online_h"), cur)],
    ]
    if pq.get("count"):
        rows.append(["paid fare ÷ quoted price (median)", fmt_num(pq.get("p50"))])
    if get(m, "funnel", "quotes_logged"):
        rows.append(
            [
                "mean quoted price: requested / turned down",
                f"{fmt_money(mo.get('mean_price_of_requested_quotes'), cur)} / "
                f"{fmt_money(mo.get('mean_price_of_declined_quotes'), cur)}",
            ]
        )
    return rows


def has_replay(m: dict[str, Any]) -> bool:
    """Whether the run replayed recorded trips with known durations (not merely wrote the
    drawn demand to trips.parquet)."""
    r = m.get("replay") or {}
    return bool(r.get("with_recorded_time"))


def replay_verdict(m: dict[str, Any]) -> str:
    """One sentence on what the replay's median ratio says about this run."""
    r = m.get("replay") or {}
    ratio = r.get("median_ratio")
    if _missing(ratio):
        return "No replayed trip was completed with a recorded time, so nothing was compared."
    if 0.9 <= ratio <= 1.1:
        how = "within 10% of their recorded time: the simulated city drives like the real one"
    elif ratio < 1:
        how = "less than their recorded time: the simulated city drives faster than the real one"
    else:
        how = "more than their recorded time: the simulated city drives slower than the real one"
    return f"Here the median simulated trip took {fmt_num(ratio)}× its recorded time, {how}."


def replay_rows(m: dict[str, Any]) -> list[list[str]]:
    """Simulated vs recorded trip times of the replayed trips (empty without them)."""
    if not has_replay(m):
        return []
    r = m["replay"]
    if "excluded" in r:  # a run with recorded times: the fidelity rows of reports.replay
        return fidelity_rows(r)
    return [
        ["recorded trips replayed", fmt_count(r.get("trips_in_file"))],
        ["of which with a recorded trip time", fmt_count(r.get("with_recorded_time"))],
        ["completed in the simulation and compared", fmt_count(r.get("compared"))],
        ["median simulated ÷ recorded trip time", fmt_num(r.get("median_ratio"))],
        [
            "10% / 90% of trips have a ratio below",
            f"{fmt_num(r.get('p10_ratio'))} / {fmt_num(r.get('p90_ratio'))}",
        ],
        ["correlation (Pearson)", fmt_num(r.get("pearson"))],
        ["rank correlation (Spearman)", fmt_num(r.get("spearman"))],
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
        return "—" if _missing(v) else f"{v:.2f}×"

    rows = [
        ["pricing interval", fmt_s(sg.get("interval_s"))],
        [
            "areas × intervals priced",
            f"{fmt_count(ci.get('count'))} ({fmt_count(ci.get('cells'))} areas, "
            f"{fmt_count(ci.get('intervals'))} intervals)",
        ],
        ["area-intervals surging (multiplier above 1)", fmt_pct(ci.get("share_surging"))],
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
    q = sg.get("quotes")
    if q:
        rows.append(
            [
                "quotes that became requests: surging / calm",
                f"{fmt_pct(q.get('conversion_surging'))} / {fmt_pct(q.get('conversion_calm'))}",
            ]
        )
    return rows


def fault_rows(m: dict[str, Any]) -> list[list[str]]:
    """Outages and crashes, or nothing when the run had no faults."""
    f = m.get("faults") or {}
    if not (f.get("matcher_outages") or f.get("driver_crashes") or f.get("service_outages")):
        return []
    rows = [
        ["matcher outages", fmt_count(f.get("matcher_outages"))],
        [
            "matcher down for",
            f"{fmt_s(f.get('matcher_downtime_s'))} "
            f"({fmt_pct(f.get('matcher_downtime_share'))} of the run)",
        ],
        ["driver app crashes (idle drivers logged off)", fmt_count(f.get("driver_crashes"))],
        ["drivers back after a crash", fmt_count(f.get("driver_reconnects"))],
    ]
    if f.get("service_outages"):  # unplanned: this run is not a clean one
        rows += [
            ["matcher service unreachable (not planned)", fmt_count(f.get("service_outages"))],
            [
                "matcher service down for",
                f"{fmt_s(f.get('service_downtime_s'))} "
                f"({fmt_pct(f.get('service_downtime_share'))} of the run)",
            ],
        ]
    return rows


def income_unit(m: dict[str, Any]) -> str:
    """The unit of driver income per online hour: the currency, or paid minutes (the proxy
    for logs without fares)."""
    if get(m, "fairness", "income_basis") == "fare":
        cur = currency_of(m)
        return f"{cur} per online hour" if cur else "money per online hour"
    return "paid minutes per online hour"


def fairness_rows(m: dict[str, Any]) -> list[list[str]]:
    """Driver income per online hour: distribution and inequality."""
    f = m.get("fairness", {}) or {}
    fare = f.get("income_basis") == "fare"
    cur = currency_of(m) if fare else None

    def v(x: float | None) -> str:
        return fmt_money(x, cur) if fare else f"{fmt_num(x, 1)} min"

    return [
        [
            "income measure",
            "fares after commission, per online hour"
            if fare
            else "paid (in-vehicle) minutes per online hour: no fares in this run",
        ],
        [
            f"drivers counted (online at least {fmt_s(f.get('min_online_s'))})",
            fmt_count(f.get("drivers")),
        ],
        ["mean per online hour", v(f.get("mean"))],
        ["bottom 10% earn at most (p10)", v(f.get("p10"))],
        ["median (p50)", v(f.get("p50"))],
        ["top 10% earn at least (p90)", v(f.get("p90"))],
        ["Gini (0 = equal)", fmt_num(f.get("gini"))],
    ]


def zone_rows(m: dict[str, Any]) -> list[list[str]]:
    """Service across the city's zones (empty when the run has no zoning)."""
    z = m.get("zones")
    if not z:
        return []
    scheme = (
        f"hexagonal H3 cells of resolution {z.get('resolution')}"
        if z.get("scheme") == "h3"
        else f"squares of {fmt_count(z.get('cell_m'))} m"
    )
    wm, ww = z.get("worst_match_rate"), z.get("worst_mean_wait")
    sp = z.get("spread", {}) or {}

    def where(w: dict[str, Any]) -> str:
        return zone_name(w.get("x_m"), w.get("y_m"), z)

    return [
        [
            "areas",
            f"{fmt_count(z['count'])} ({scheme}); the {fmt_count(z['ranked'])} with at least "
            f"{z['min_requests']} requests are ranked",
        ],
        [
            "lowest match rate",
            "—"
            if not wm
            else f"{fmt_pct(wm['match_rate'])} in every ranked area"
            if not sp.get("match_rate")
            else f"{fmt_pct(wm['match_rate'])}, {where(wm)}",
        ],
        [
            "longest mean wait",
            "—" if not ww else f"{fmt_s(ww['mean_wait_s'])}, {where(ww)}",
        ],
        ["match-rate gap, best to worst area", fmt_pct(sp.get("match_rate"))],
        ["mean-wait gap, best to worst area", fmt_s(sp.get("mean_wait_s"))],
    ]


def latency_rows(run: RunData) -> list[list[str]]:
    """Measured matcher and run timings (wall-clock)."""
    p = run.perf or {}
    mt = p.get("matcher", {}) or {}

    def ms(v: Any) -> str:
        return "—" if _missing(v) else f"{v:.2f} ms"

    return [
        ["matcher calls (batches)", fmt_count(mt.get("calls"))],
        [
            "p50 / p95 / p99 per call",
            f"{ms(mt.get('p50_ms'))} / {ms(mt.get('p95_ms'))} / {ms(mt.get('p99_ms'))}",
        ],
        ["slowest call", ms(mt.get("max_ms"))],
        ["whole run", fmt_s(p.get("wall_s"))],
        ["events per second", fmt_rate(p.get("events_per_s"))],
        ["peak memory", "—" if _missing(p.get("peak_rss_mb")) else f"{p['peak_rss_mb']:,.0f} MB"],
    ]


def provenance_rows(run: RunData) -> list[list[str]]:
    """Where the run came from: ids, scenario, seed, city, matcher, code."""
    man = run.manifest
    sc = man.get("scenario", {})
    city = man.get("city", {}) or {}
    matcher = man.get("matcher", {}) or {}
    rows = [
        ["run id", run.run_id],
        ["scenario", sc.get("name", "—")],
        ["seed", sc.get("seed", "—")],
        ["start / duration", f"{get(sc, 'time', 'start')} / {fmt_duration(run.horizon_s)}"],
        [
            "city",
            f"{city.get('name', '—')} ({fmt_count(city.get('n_nodes'))} nodes, "
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

"""Invariants every event log must satisfy, checked vectorised (usable on large logs).

``check_event_log`` returns a list of human-readable violations (empty when all hold):

* rows are in total order: ``seq`` is 0..n-1 and ``t`` never decreases;
* each request appears once and ends in at most one terminal state (dropoff or cancel);
  requests without one are still open (or under way) at the end;
* a ride goes request <= assign <= pickup <= dropoff in time, with matching driver ids;
* no driver serves two riders at once (offer/assign/pickup/dropoff cycles never interleave);
* no driver moves faster than the road allows: every leg takes at least the free-flow
  travel time between its nodes, and a driver starts each leg where the last one ended.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

TOLERANCE_S = 1e-6


def check_event_log(
    events: pa.Table, travel_time: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> list[str]:
    """All invariant violations in ``events`` (see module docstring)."""
    df = events.to_pandas()
    problems: list[str] = []
    n = len(df)
    if n == 0:
        return problems
    if not np.array_equal(df["seq"].to_numpy(), np.arange(n)):
        problems.append("seq is not 0..n-1 in row order")
    if np.any(np.diff(df["t"].to_numpy()) < 0):
        problems.append("t decreases somewhere: events out of time order")

    by_kind = {k: g for k, g in df.groupby("kind", sort=True)}
    empty = df.iloc[0:0]
    req, asg, pck, drp, cnc = (
        by_kind.get(k, empty) for k in ("request", "assign", "pickup", "dropoff", "cancel")
    )

    if req["rider"].duplicated().any():
        problems.append("a request id appears in two request events")
    for name, g in (("assign", asg), ("pickup", pck), ("dropoff", drp), ("cancel", cnc)):
        if g["rider"].duplicated().any():
            problems.append(f"a rider has two {name} events")
        if not g["rider"].isin(req["rider"]).all():
            problems.append(f"a {name} event names a rider that never requested")
    both = np.intersect1d(drp["rider"].to_numpy(), cnc["rider"].to_numpy())
    if both.size:
        problems.append(f"{both.size} riders both completed and cancelled (e.g. rider {both[0]})")

    ride = (
        req.set_index("rider")[["t", "node", "dest_node"]]
        .rename(columns={"t": "t_req", "node": "pickup_node", "dest_node": "dropoff_node"})
        .join(
            asg.set_index("rider")[["t", "driver", "node"]].rename(
                columns={"t": "t_asg", "driver": "d_asg", "node": "asg_node"}
            )
        )
        .join(
            pck.set_index("rider")[["t", "driver"]].rename(
                columns={"t": "t_pck", "driver": "d_pck"}
            )
        )
        .join(
            drp.set_index("rider")[["t", "driver"]].rename(
                columns={"t": "t_drp", "driver": "d_drp"}
            )
        )
    )
    problems += _ride_order(ride)
    problems += _speed(ride, travel_time)
    problems += _driver_cycles(df)
    return problems


def _ride_order(ride: pd.DataFrame) -> list[str]:
    out = []
    for a, b in (("t_req", "t_asg"), ("t_asg", "t_pck"), ("t_pck", "t_drp")):
        have = ride[b].notna()
        if (ride.loc[have, a].isna()).any():
            out.append(f"{b[2:]} without a preceding {a[2:]}")
        if (ride.loc[have, b] < ride.loc[have, a] - TOLERANCE_S).any():
            out.append(f"{b[2:]} happens before {a[2:]}")
    for col in ("d_pck", "d_drp"):
        have = ride[col].notna()
        if (ride.loc[have, col] != ride.loc[have, "d_asg"]).any():
            out.append(f"{col[2:]} by a different driver than the one assigned")
    return out


def _speed(
    ride: pd.DataFrame, travel_time: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> list[str]:
    out = []
    picked = ride[ride["t_pck"].notna()]
    if len(picked):
        need = travel_time(
            picked["asg_node"].to_numpy(np.int64), picked["pickup_node"].to_numpy(np.int64)
        )
        took = (picked["t_pck"] - picked["t_asg"]).to_numpy()
        if np.any(took < need - TOLERANCE_S):
            out.append("a driver reached a pickup faster than the road allows")
    done = ride[ride["t_drp"].notna()]
    if len(done):
        need = travel_time(
            done["pickup_node"].to_numpy(np.int64), done["dropoff_node"].to_numpy(np.int64)
        )
        took = (done["t_drp"] - done["t_pck"]).to_numpy()
        if np.any(took < need - TOLERANCE_S):
            out.append("a trip was driven faster than the road allows")
    return out


# Each driver's events follow the cycle online -> (
#   [offer -> decline]* -> assign -> (pickup -> dropoff | cancel) | reposition
# )* -> offline.
_FREE_NEXT = {"offer", "assign", "reposition", "driver_offline"}
_NEXT = {
    "driver_online": _FREE_NEXT,
    "offer": {"assign", "decline"},
    "decline": _FREE_NEXT,
    "assign": {"pickup", "cancel"},
    "pickup": {"dropoff"},
    "dropoff": _FREE_NEXT,
    "cancel": _FREE_NEXT,
    "reposition": _FREE_NEXT,
    "driver_offline": {"driver_online"},
}
_STARTS_AT_NODE = ["offer", "assign", "reposition", "driver_offline", "driver_online"]
# (fault events carry no driver and are outside the driver cycle)


def _driver_cycles(df: pd.DataFrame) -> list[str]:
    mine = df[df["driver"].notna() & df["kind"].isin(list(_NEXT))]
    if mine.empty:
        return []
    mine = mine.sort_values(["driver", "seq"], kind="stable")
    kind = mine["kind"].to_numpy()
    drv = mine["driver"].to_numpy()
    node = mine["node"].to_numpy()
    # Where the driver is once the event is over: a repositioning driver heads for dest_node.
    end = np.where(kind == "reposition", mine["dest_node"].to_numpy(), node)
    same = drv[1:] == drv[:-1]
    names = list(_NEXT)
    table = np.array([[b in _NEXT[a] for b in names] for a in names])
    code = pd.Categorical(kind, categories=names).codes
    allowed = table[code[:-1], code[1:]]
    out = []
    bad = same & ~allowed
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        out.append(
            f"driver {int(drv[i])} goes from {kind[i]} to {kind[i + 1]}: "
            "serving two riders at once or skipping a step"
        )
    # A driver starts each leg where the previous one ended (no teleporting).
    starts = same & np.isin(kind[1:], _STARTS_AT_NODE) & (kind[:-1] != "assign")
    if np.any(node[1:][starts] != end[:-1][starts]):
        out.append("a driver starts somewhere other than where their last leg ended")
    return out

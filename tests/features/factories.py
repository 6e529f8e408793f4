"""Small hand-built and random :class:`History` objects for tests (reusable by any area).

``make_history(opportunities=[{...}], ...)`` fills every contract column you leave out with a
sensible default and gives each column its contract dtype; ``random_history(seed)`` draws a
small valid history on a coarse time grid, so ties and events exactly at an as_of are common.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.pit import keep_feature_cache
from salespilot.features.schema import TABLES

T0 = pd.Timestamp("2024-01-01")

_DEFAULTS: dict[str, dict[str, object]] = {
    "reps": {
        "name": "Rep",
        "team": "east",
        "region": "EU",
        "manager_id": None,
        "hired_at": pd.Timestamp("2022-01-01"),
        "left_at": pd.NaT,
    },
    "accounts": {
        "name": "Acme",
        "industry": "software",
        "region": "EU",
        "employees": 100,
        "created_at": pd.Timestamp("2022-06-01"),
        "owner_rep_id": "R1",
    },
    "contacts": {"account_id": "A1", "role": "decision_maker", "timezone": "Europe/Berlin"},
    "opportunities": {
        "account_id": "A1",
        "owner_rep_id": "R1",
        "product_line": "core",
        "lead_source": "inbound",
        "amount": 10_000.0,
        "created_at": T0,
        "expected_close_at": T0 + pd.Timedelta(days=60),
        "closed_at": pd.NaT,
        "status": "open",
    },
    "stage_changes": {},
    "activities": {
        "rep_id": "R1",
        "account_id": "A1",
        "contact_id": None,
        "opportunity_id": None,
        "channel": "call",
        "direction": "outbound",
        "outcome": None,
        "duration_s": None,
    },
    "subscriptions": {
        "account_id": "A1",
        "product_line": "core",
        "ended_at": pd.NaT,
        "monthly_value": 1_000.0,
    },
}


def frame(table: str, rows: list[dict] | None) -> pd.DataFrame:
    """A contract-typed DataFrame for ``table`` from row dicts (missing columns defaulted)."""
    schema = TABLES[table]
    rows = rows or []
    filled = []
    for i, r in enumerate(rows):
        row = dict(_DEFAULTS.get(table, {}))
        if len(schema.key) == 1 and schema.key[0] not in r:
            row[schema.key[0]] = f"{table[:3].upper()}{i}"
        row.update(r)
        filled.append(row)
    df = pd.DataFrame(filled, columns=list(schema.column_names))
    for c in schema.columns:
        if c.kind == "timestamp":
            df[c.name] = pd.to_datetime(df[c.name]).astype("datetime64[ns]")
        elif c.kind in ("float", "int"):
            df[c.name] = pd.to_numeric(df[c.name]).astype(
                "float64" if c.kind == "float" else "Int64"
            )
        else:
            df[c.name] = df[c.name].astype("str").where(df[c.name].notna())
    return df


def make_history(**tables: list[dict] | None) -> History:
    """A History from row dicts; reps R1 and account A1 exist unless you pass your own."""
    tables.setdefault("reps", [{"rep_id": "R1"}])
    tables.setdefault("accounts", [{"account_id": "A1"}])
    tables.setdefault("opportunities", [])
    kwargs = {}
    for name in TABLES:
        rows = tables.get(name)
        if rows is None and not TABLES[name].required:
            kwargs[name] = None
        else:
            kwargs[name] = frame(name, rows)
    return History(**kwargs)


ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney")
STAGES = ("prospecting", "qualification", "discovery", "demo", "proposal", "negotiation")


def random_history(seed: int, **kwargs) -> History:
    """A small valid random history with times on a ``step_hours`` grid (plenty of ties).

    Cached per arguments (building one costs more than the features do): treat it as
    read-only; ``with_late_changes`` and ``truncate_history`` return copies.
    """
    return keep_feature_cache(_random_history(seed, **kwargs))


@functools.lru_cache(maxsize=256)
def _random_history(
    seed: int,
    *,
    n_reps: int = 4,
    n_accounts: int = 5,
    n_contacts: int = 10,
    n_deals: int = 12,
    n_activities: int = 160,
    n_subscriptions: int = 8,
    days: int = 60,
    step_hours: int = 6,
    start: pd.Timestamp = T0,
) -> History:
    rng = np.random.default_rng(seed)
    n_steps = days * 24 // step_hours

    def when(n: int, lo: int = 0) -> pd.Series:
        return start + pd.to_timedelta(rng.integers(lo, n_steps, n) * step_hours, unit="h")

    reps = [
        {
            "rep_id": f"R{i}",
            "team": f"team{i % 2}",
            "region": "EU" if i % 2 else "US",
            "hired_at": start - pd.Timedelta(days=int(rng.integers(1, 400))),
            "left_at": when(1)[0] if rng.random() < 0.3 else pd.NaT,
        }
        for i in range(n_reps)
    ]
    rep_ids = [r["rep_id"] for r in reps]
    accounts = [
        {"account_id": f"A{i}", "owner_rep_id": rng.choice(rep_ids)} for i in range(n_accounts)
    ]
    contacts = [
        {
            "contact_id": f"C{i}",
            "account_id": f"A{int(rng.integers(n_accounts))}",
            "role": str(rng.choice(["decision_maker", "influencer", "user", "other"])),
            "timezone": str(rng.choice(ZONES)),
        }
        for i in range(n_contacts)
    ]
    acct_of_contact = {c["contact_id"]: c["account_id"] for c in contacts}
    opps, changes = [], []
    for i in range(n_deals):
        created = when(1)[0]
        status = str(rng.choice(["open", "won", "lost"]))
        closed = pd.NaT
        if status != "open":
            closed = created + pd.Timedelta(hours=step_hours * int(rng.integers(0, n_steps // 2)))
        opps.append(
            {
                "opportunity_id": f"O{i}",
                "account_id": f"A{int(rng.integers(n_accounts))}",
                "owner_rep_id": str(rng.choice(rep_ids)),
                "product_line": str(rng.choice(["core", "addon"])),
                "lead_source": str(rng.choice(["inbound", "outbound", "partner"])),
                "amount": float(rng.integers(1, 50)) * 1000,
                "created_at": created,
                "expected_close_at": created + pd.Timedelta(days=int(rng.integers(10, 90))),
                "closed_at": closed,
                "status": status,
            }
        )
        t = created
        for s in sorted(rng.choice(len(STAGES), int(rng.integers(0, 4)), replace=False)):
            if pd.notna(closed) and t > closed:
                break
            changes.append({"opportunity_id": f"O{i}", "changed_at": t, "stage": STAGES[s]})
            t = t + pd.Timedelta(hours=step_hours * int(rng.integers(1, 40)))
    acts = []
    channels = ["call", "email", "meeting", "demo", "message"]
    for i in range(n_activities):
        contact = f"C{int(rng.integers(n_contacts))}"
        opp = f"O{int(rng.integers(n_deals))}" if rng.random() < 0.7 else None
        channel = str(rng.choice(channels, p=[0.4, 0.3, 0.1, 0.1, 0.1]))
        direction = "inbound" if rng.random() < 0.3 else "outbound"
        outcome = {
            "call": ["connected", "no_answer"],
            "email": ["replied", "no_reply"],
            "meeting": ["held", "postponed", "cancelled"],
            "demo": ["held", "postponed", "cancelled"],
            "message": [None],
        }[channel]
        acts.append(
            {
                "activity_id": f"X{i}",
                "occurred_at": when(1)[0],
                "rep_id": str(rng.choice(rep_ids)),
                "account_id": acct_of_contact[contact],
                "contact_id": contact,
                "opportunity_id": opp,
                "channel": channel,
                "direction": direction,
                "outcome": outcome[int(rng.integers(len(outcome)))],
            }
        )
    subs = []
    for i in range(n_subscriptions):
        started = when(1)[0] - pd.Timedelta(days=30)
        ended = (
            started + pd.Timedelta(hours=step_hours * int(rng.integers(1, n_steps)))
            if rng.random() < 0.5
            else pd.NaT
        )
        subs.append(
            {
                "subscription_id": f"S{i}",
                "account_id": f"A{int(rng.integers(n_accounts))}",
                "product_line": str(rng.choice(["core", "addon"])),
                "started_at": started,
                "ended_at": ended,
                "monthly_value": float(rng.integers(1, 20)) * 100,
            }
        )
    return make_history(
        reps=reps,
        accounts=accounts,
        contacts=contacts,
        opportunities=opps,
        stage_changes=changes,
        activities=acts,
        subscriptions=subs,
    )


def with_late_changes(
    history: History,
    t: pd.Timestamp,
    *,
    events: list[dict] = (),
    closes: list[tuple[int, int, bool]] = (),
    leaves: list[tuple[int, int]] = (),
    sub_ends: list[tuple[int, int]] = (),
) -> History:
    """A copy of ``history`` with things that happen at or after ``t`` added or edited.

    ``events``: activities (after_h, opp, contact, rep, channel, direction, outcome);
    ``closes``: (deal, after_h, won) closes still-open-at-t deals; ``leaves``: (rep, after_h);
    ``sub_ends``: (subscription, after_h) ends subscriptions still running at t. A new deal,
    a new subscription and a stage change, all at exactly ``t``, are always added.
    """
    h = History(
        **{n: (None if history.table(n) is None else history.table(n).copy()) for n in TABLES}
    )
    hour = pd.Timedelta(hours=1)
    acts = h.activities
    account_of = h.contacts.set_index("contact_id")["account_id"]
    new = pd.DataFrame(
        [
            {
                "activity_id": f"NEW{i}",
                "occurred_at": t + e["after_h"] * hour,
                "rep_id": f"R{e['rep']}",
                "account_id": account_of[f"C{e['contact']}"],
                "contact_id": f"C{e['contact']}",
                "opportunity_id": f"O{e['opp']}",
                "channel": e["channel"],
                "direction": e["direction"],
                "outcome": e["outcome"],
                "duration_s": np.nan,
            }
            for i, e in enumerate(events)
        ],
        columns=acts.columns,
    )
    h.activities = pd.concat([acts, new.astype(acts.dtypes.to_dict())], ignore_index=True)
    h.stage_changes = pd.concat(
        [
            h.stage_changes,
            frame(
                "stage_changes", [{"opportunity_id": "O0", "changed_at": t, "stage": "proposal"}]
            ),
        ],
        ignore_index=True,
    )
    h.opportunities = pd.concat(
        [
            h.opportunities,
            frame(
                "opportunities",
                [
                    {
                        "opportunity_id": "ONEW",
                        "account_id": "A0",
                        "owner_rep_id": "R0",
                        "created_at": t,
                    }
                ],
            ),
        ],
        ignore_index=True,
    )
    h.subscriptions = pd.concat(
        [
            h.subscriptions,
            frame(
                "subscriptions", [{"subscription_id": "SNEW", "account_id": "A1", "started_at": t}]
            ),
        ],
        ignore_index=True,
    )
    opps = h.opportunities
    for i, after_h, won in closes:
        row = opps["opportunity_id"] == f"O{i}"
        if (opps.loc[row, "closed_at"].isna() | (opps.loc[row, "closed_at"] >= t)).all():
            opps.loc[row, "closed_at"] = t + after_h * hour
            opps.loc[row, "status"] = "won" if won else "lost"
    reps = h.reps
    for r, after_h in leaves:
        row = reps["rep_id"] == f"R{r}"
        if (reps.loc[row, "left_at"].isna() | (reps.loc[row, "left_at"] >= t)).all():
            reps.loc[row, "left_at"] = t + after_h * hour
    subs = h.subscriptions
    for s, after_h in sub_ends:
        row = subs["subscription_id"] == f"S{s}"
        if (subs.loc[row, "ended_at"].isna() | (subs.loc[row, "ended_at"] >= t)).all():
            subs.loc[row, "ended_at"] = t + after_h * hour
    return h


def comparable(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows in (as_of, key) order with categories as plain values, so two builds compare equal
    whatever category sets their chunks carried."""
    out = df.sort_values(["as_of", key]).reset_index(drop=True)
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object)
    return out

"""Hand-made histories: a few rows, written out in full, for rule and ranking tests."""

from __future__ import annotations

import pandas as pd

from salespilot.features.history import History

T0 = pd.Timestamp("2026-03-02 09:00")  # a Monday


def ts(days: float = 0, hours: float = 0) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days, hours=hours)


def _frame(rows: list[dict], columns: list[str], times: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        if c in times:
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        elif c in ("amount", "duration_s", "monthly_value"):
            df[c] = df[c].astype(float)
        elif c != "employees":
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def history(
    *,
    opportunities: list[dict] | None = None,
    activities: list[dict] | None = None,
    stage_changes: list[dict] | None = None,
    contacts: list[dict] | None = None,
) -> History:
    """Two reps (R1 in team T1, R2 in team T2), account A1 owned by R1, contacts C1 (decision
    maker) and C2 (user); plus whatever rows are passed."""
    reps = _frame(
        [
            dict(
                rep_id="R1",
                name="Ann",
                team="T1",
                region="EU",
                manager_id=None,
                hired_at=ts(-400),
                left_at=None,
            ),
            dict(
                rep_id="R2",
                name="Bob",
                team="T2",
                region="EU",
                manager_id=None,
                hired_at=ts(-400),
                left_at=None,
            ),
        ],
        ["rep_id", "name", "team", "region", "manager_id", "hired_at", "left_at"],
        ("hired_at", "left_at"),
    )
    accounts = _frame(
        [
            dict(
                account_id="A1",
                name="Acme",
                industry="tech",
                region="EU",
                employees=50,
                created_at=ts(-300),
                owner_rep_id="R1",
            )
        ],
        ["account_id", "name", "industry", "region", "employees", "created_at", "owner_rep_id"],
        ("created_at",),
    )
    contacts_df = _frame(
        contacts
        or [
            dict(contact_id="C1", account_id="A1", role="decision_maker", timezone="Europe/Paris"),
            dict(contact_id="C2", account_id="A1", role="user", timezone="Europe/Paris"),
        ],
        ["contact_id", "account_id", "role", "timezone"],
        (),
    )
    opps = _frame(
        opportunities
        or [deal()],
        ["opportunity_id", "account_id", "owner_rep_id", "product_line", "lead_source", "amount",
         "created_at", "expected_close_at", "closed_at", "status"],
        ("created_at", "expected_close_at", "closed_at"),
    )  # fmt: skip
    sc = _frame(
        stage_changes or [],
        ["opportunity_id", "changed_at", "stage"],
        ("changed_at",),
    )
    acts = _frame(
        [dict(activity(**a)) for a in (activities or [])],
        ["activity_id", "occurred_at", "rep_id", "account_id", "contact_id", "opportunity_id",
         "channel", "direction", "outcome", "duration_s"],
        ("occurred_at",),
    )  # fmt: skip
    return History(
        reps=reps,
        accounts=accounts,
        opportunities=opps,
        contacts=contacts_df,
        stage_changes=sc,
        activities=acts,
    )


def deal(**kw) -> dict:
    base = dict(
        opportunity_id="O1",
        account_id="A1",
        owner_rep_id="R1",
        product_line="core",
        lead_source="web",
        amount=10_000.0,
        created_at=ts(-60),
        expected_close_at=ts(30),
        closed_at=None,
        status="open",
    )
    return {**base, **kw}


_N = iter(range(1, 10**6))


def activity(**kw) -> dict:
    base = dict(
        activity_id=f"X{next(_N)}",
        occurred_at=ts(-1),
        rep_id="R1",
        account_id="A1",
        contact_id="C1",
        opportunity_id="O1",
        channel="email",
        direction="outbound",
        outcome=None,
        duration_s=None,
    )
    return {**base, **kw}

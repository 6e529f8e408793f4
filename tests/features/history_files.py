"""A tiny hand-written valid history folder (as CSV text), and helpers to break it one rule at a time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

NOW = pd.Timestamp("2026-07-01")
"""The fixed "now" every loader test passes, so no test reads the clock."""

VALID: dict[str, str] = {
    "reps": """\
rep_id,name,team,region,manager_id,hired_at,left_at
r1,Ann,North,EMEA,m1,2024-01-15,
r2,Bob,North,EMEA,m1,2024-03-01T09:00:00+02:00,2026-05-31
r3,Cy,South,APAC,,2025-02-01,
""",
    "accounts": """\
account_id,name,industry,region,employees,created_at,owner_rep_id
a1,Acme,manufacturing,EMEA,250,2024-02-01,r1
a2,Globex,software,APAC,,2024-05-10,r3
a3,Initech,retail,EMEA,40,2025-01-20T08:30:00Z,r2
""",
    "contacts": """\
contact_id,account_id,role,timezone
c1,a1,decision_maker,Europe/Paris
c2,a2,influencer,Asia/Singapore
c3,a3,user,America/New_York
""",
    "opportunities": """\
opportunity_id,account_id,owner_rep_id,product_line,lead_source,amount,created_at,expected_close_at,closed_at,status
o1,a1,r1,platform,webinar,12000.5,2025-03-01,2025-06-30,2025-06-15,won
o2,a2,r3,services,referral,8000,2025-09-10,2026-08-31,,open
o3,a3,r2,platform,,5000,2025-11-01,2026-02-01,2026-01-20T16:00:00-05:00,lost
""",
    "stage_changes": """\
opportunity_id,changed_at,stage
o1,2025-03-01,qualify
o1,2025-04-10,demo
o1,2025-06-15,closed
o2,2025-09-10,qualify
""",
    "activities": """\
activity_id,occurred_at,rep_id,account_id,contact_id,opportunity_id,channel,direction,outcome,duration_s
x1,2025-03-02T10:00:00Z,r1,a1,c1,o1,call,outbound,connected,300
x2,2025-03-03T11:00:00Z,r1,a1,c1,o1,email,outbound,replied,
x3,2025-09-11T09:00:00+08:00,r3,a2,c2,o2,demo,outbound,held,1800
x4,2026-01-05T15:00:00Z,r2,a3,,,email,inbound,,
x5,2026-06-01T12:00:00Z,r3,a2,c2,o2,call,outbound,no_answer,0
""",
    "subscriptions": """\
subscription_id,account_id,product_line,started_at,ended_at,monthly_value
s1,a1,platform,2025-07-01,,1000
s2,a3,platform,2024-06-01,2025-12-31,250
""",
    "targets": """\
rep_id,period_start,period_end,amount
r1,2026-07-01,2026-09-30,50000
r3,2026-07-01,2026-09-30,30000
""",
}


def write_history(folder: Path, **changes: str | None) -> Path:
    """Write the valid history into ``folder``, replacing a table's CSV text by
    ``changes[table]`` (``None`` leaves the table out)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, text in {**VALID, **changes}.items():
        if text is not None:
            (folder / f"{table}.csv").write_text(text)
    return folder


def edit(table: str, old: str, new: str) -> str:
    """The valid CSV text of ``table`` with ``old`` replaced once by ``new``."""
    text = VALID[table]
    assert old in text, f"{old!r} not in {table}"
    return text.replace(old, new, 1)

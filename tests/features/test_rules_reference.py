"""The vectorised rules against a deliberately naive reference: a plain loop over records.

A seeded random activities table gets corrupted in random rows; the loop decides, value by
value, which lines break which rule; the loader must report exactly those lines.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import datetime

from salespilot.features.loader import find_all_problems
from salespilot.features.schema import CHANNELS, DIRECTIONS, OUTCOMES

from .history_files import NOW, write_history

REPS, ACCOUNTS = {"r1", "r2", "r3"}, {"a1", "a2", "a3"}
CONTACTS, OPPS = {"c1", "c2", "c3"}, {"o1", "o2", "o3"}


def _random_activities(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = {
            "activity_id": f"x{i}",
            "occurred_at": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z",
            "rep_id": rng.choice(sorted(REPS)),
            "account_id": rng.choice(sorted(ACCOUNTS)),
            "contact_id": rng.choice([*sorted(CONTACTS), ""]),
            "opportunity_id": rng.choice([*sorted(OPPS), ""]),
            "channel": rng.choice(CHANNELS),
            "direction": rng.choice(DIRECTIONS),
            "outcome": rng.choice([*OUTCOMES, ""]),
            "duration_s": rng.choice(["", "0", "35", "600.5"]),
        }
        if rng.random() < 0.3:  # corrupt one value
            col, bad = rng.choice(
                [
                    ("channel", "fax"),
                    ("direction", ""),
                    ("outcome", "maybe"),
                    ("duration_s", "-5"),
                    ("duration_s", "ten"),
                    ("rep_id", "r9"),
                    ("contact_id", "c77"),
                    ("occurred_at", "2025-13-01"),
                    ("occurred_at", "2027-01-01"),
                    ("activity_id", f"x{max(i - 1, 0)}"),
                ]
            )
            row[col] = bad
        rows.append(row)
    return rows


def _naive(rows: list[dict[str, str]]) -> dict[tuple[str, str], set[int]]:
    """Which lines break which (rule, column), one record at a time."""
    found: dict[tuple[str, str], set[int]] = defaultdict(set)
    lines_of: dict[str, list[int]] = defaultdict(list)
    for line, r in enumerate(rows, start=2):
        lines_of[r["activity_id"]].append(line)
        for col, allowed in (
            ("channel", CHANNELS),
            ("direction", DIRECTIONS),
            ("outcome", OUTCOMES),
        ):
            if r[col] == "":
                if col != "outcome":
                    found["empty_required", col].add(line)
            elif r[col] not in allowed:
                found["not_allowed", col].add(line)
        if r["duration_s"]:
            try:
                if float(r["duration_s"]) < 0:
                    found["negative", "duration_s"].add(line)
            except ValueError:
                found["wrong_type", "duration_s"].add(line)
        for col, known in (("rep_id", REPS), ("contact_id", CONTACTS), ("opportunity_id", OPPS)):
            if r[col] and r[col] not in known:
                found["unknown_reference", col].add(line)
        try:
            when = datetime.fromisoformat(r["occurred_at"].replace("Z", "+00:00"))
            if when.replace(tzinfo=None) > NOW.to_pydatetime():
                found["future_timestamp", "occurred_at"].add(line)
        except ValueError:
            found["unparseable_timestamp", "occurred_at"].add(line)
    for lines in lines_of.values():
        if len(lines) > 1:
            found["duplicate_key", "activity_id"].update(lines)
    return dict(found)


def test_loader_finds_exactly_the_lines_a_naive_loop_finds(tmp_path):
    rows = _random_activities(400, seed=3)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder = write_history(tmp_path, activities=out.getvalue())
    reported = {(p.rule, p.column): set(p.rows) for p in find_all_problems(folder, now=NOW)}
    expected = _naive(rows)
    assert len(expected) == 10  # every corruption kind occurs with this seed
    assert reported == expected

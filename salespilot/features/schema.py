"""The interaction-history contract: which tables, which columns, which rules.

This module only *describes* the contract (plain frozen dataclasses); reading
(:mod:`salespilot.features.reading`) and the validation rules
(:mod:`salespilot.features.validation_rules`), run by :mod:`salespilot.features.loader`, enforce it, the demo generator writes it and
every feature builder reads the typed frames it produces. Timestamps in a loaded history are
tz-naive UTC (``datetime64[ns]``): the loader converts offsets to UTC so feature code never
has to think about zones except for a contact's local hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ColumnKind = Literal["id", "text", "float", "int", "timestamp", "enum"]

CONTACT_ROLES = ("decision_maker", "influencer", "user", "other")
DEAL_STATUSES = ("open", "won", "lost")
CHANNELS = ("call", "email", "meeting", "demo", "message")
DIRECTIONS = ("outbound", "inbound")
OUTCOMES = ("connected", "no_answer", "replied", "no_reply", "held", "postponed", "cancelled")


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    ``nullable`` means the value may be empty in a row (``left_at`` while employed);
    ``optional`` means the column itself may be absent from the file.
    """

    name: str
    kind: ColumnKind
    nullable: bool = False
    optional: bool = False
    allowed: tuple[str, ...] | None = None
    references: tuple[str, str] | None = None  # (table, column) this id must exist in
    non_negative: bool = False
    # A planned date (expected close, a target period) may lie after "now"; an event may not.
    future_ok: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    required: bool = False
    description: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == "timestamp")

    @property
    def event_timestamp_columns(self) -> tuple[str, ...]:
        """Timestamps of things that happened (never after "now"), not planned dates."""
        return tuple(c.name for c in self.columns if c.kind == "timestamp" and not c.future_ok)


def _id(name: str, references: tuple[str, str] | None = None, **kw) -> Column:
    return Column(name, "id", references=references, **kw)


TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        TableSchema(
            "reps",
            key=("rep_id",),
            required=True,
            description="Sales reps, their team, region and manager.",
            columns=(
                _id("rep_id"),
                Column("name", "text"),
                Column("team", "text"),
                Column("region", "text"),
                Column("manager_id", "id", nullable=True),
                Column("hired_at", "timestamp"),
                Column("left_at", "timestamp", nullable=True),
            ),
        ),
        TableSchema(
            "accounts",
            key=("account_id",),
            required=True,
            description="Customer and prospect companies.",
            columns=(
                _id("account_id"),
                Column("name", "text"),
                Column("industry", "text", nullable=True),
                Column("region", "text", nullable=True),
                Column("employees", "int", nullable=True, non_negative=True),
                Column("created_at", "timestamp"),
                _id("owner_rep_id", ("reps", "rep_id"), nullable=True),
            ),
        ),
        TableSchema(
            "contacts",
            key=("contact_id",),
            description="People at accounts, with their role and time zone.",
            columns=(
                _id("contact_id"),
                _id("account_id", ("accounts", "account_id")),
                Column("role", "enum", allowed=CONTACT_ROLES),
                Column("timezone", "text"),  # IANA name, checked by the loader
            ),
        ),
        TableSchema(
            "opportunities",
            key=("opportunity_id",),
            required=True,
            description="Deals: one row per opportunity in its current state.",
            columns=(
                _id("opportunity_id"),
                _id("account_id", ("accounts", "account_id")),
                _id("owner_rep_id", ("reps", "rep_id")),
                Column("product_line", "text"),
                Column("lead_source", "text", nullable=True),
                Column("amount", "float", non_negative=True),
                Column("created_at", "timestamp"),
                Column("expected_close_at", "timestamp", nullable=True, future_ok=True),
                Column("closed_at", "timestamp", nullable=True),
                Column("status", "enum", allowed=DEAL_STATUSES),
            ),
        ),
        TableSchema(
            "stage_changes",
            key=("opportunity_id", "changed_at"),
            description="Every move of a deal into a stage.",
            columns=(
                _id("opportunity_id", ("opportunities", "opportunity_id")),
                Column("changed_at", "timestamp"),
                Column("stage", "text"),
            ),
        ),
        TableSchema(
            "activities",
            key=("activity_id",),
            description="Calls, emails, meetings, demos and messages, both directions.",
            columns=(
                _id("activity_id"),
                Column("occurred_at", "timestamp"),
                _id("rep_id", ("reps", "rep_id")),
                _id("account_id", ("accounts", "account_id")),
                _id("contact_id", ("contacts", "contact_id"), nullable=True),
                _id("opportunity_id", ("opportunities", "opportunity_id"), nullable=True),
                Column("channel", "enum", allowed=CHANNELS),
                Column("direction", "enum", allowed=DIRECTIONS),
                Column("outcome", "enum", allowed=OUTCOMES, nullable=True),
                Column("duration_s", "float", nullable=True, non_negative=True),
            ),
        ),
        TableSchema(
            "subscriptions",
            key=("subscription_id",),
            description="Recurring revenue: what each account pays for, from when to when.",
            columns=(
                _id("subscription_id"),
                _id("account_id", ("accounts", "account_id")),
                Column("product_line", "text"),
                Column("started_at", "timestamp"),
                Column("ended_at", "timestamp", nullable=True),
                Column("monthly_value", "float", non_negative=True),
            ),
        ),
        TableSchema(
            "targets",
            key=("rep_id", "period_start"),
            description="Targets already set, if any.",
            columns=(
                _id("rep_id", ("reps", "rep_id")),
                Column("period_start", "timestamp", future_ok=True),
                Column("period_end", "timestamp", future_ok=True),
                Column("amount", "float", non_negative=True),
            ),
        ),
    )
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.required)
OPTIONAL_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if not t.required)

# Pairs of timestamps where the second must not precede the first: (table, start, end, rule).
TIME_ORDER: tuple[tuple[str, str, str, str], ...] = (
    ("reps", "hired_at", "left_at", "end_before_start"),
    ("opportunities", "created_at", "closed_at", "closed_before_created"),
    ("subscriptions", "started_at", "ended_at", "end_before_start"),
    ("targets", "period_start", "period_end", "end_before_start"),
)

# The tables each model needs: the ONE place model specs and ``salespilot validate`` read.
MODEL_TABLES: dict[str, tuple[str, ...]] = {
    "win_probability": ("reps", "accounts", "opportunities"),
    "churn_risk": ("reps", "accounts", "opportunities", "subscriptions"),
    "contact_time": ("reps", "accounts", "opportunities", "contacts", "activities"),
}


def _present(history_or_tables: Any) -> set[str]:
    if hasattr(history_or_tables, "present_tables"):
        return set(history_or_tables.present_tables)
    return set(history_or_tables)


def models_available(history_or_tables: Any) -> list[str]:
    """The models whose tables are all present (a ``History`` or an iterable of table names)."""
    present = _present(history_or_tables)
    return [m for m, needed in MODEL_TABLES.items() if set(needed) <= present]


def models_skipped(history_or_tables: Any) -> dict[str, str]:
    """For each model that cannot be trained: a message naming the tables to add."""
    present = _present(history_or_tables)
    skipped = {}
    for model, needed in MODEL_TABLES.items():
        missing = [t for t in needed if t not in present]
        if missing:
            files = ", ".join(f"{t}.csv" for t in missing)
            skipped[model] = (
                f"{model} skipped: add {files} (or .parquet) to the history folder "
                f"(missing table{'s' if len(missing) > 1 else ''}: {', '.join(missing)})"
            )
    return skipped

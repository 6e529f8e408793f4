"""The interaction-history contract: which tables, which columns, which rules.

This module only *describes* the contract (plain frozen dataclasses); the loader and the
validation in :mod:`salespilot.features.loader` enforce it, the demo generator writes it and
every feature builder reads the typed frames it produces. Timestamps in a loaded history are
tz-naive UTC (``datetime64[ns]``): the loader converts offsets to UTC so feature code never
has to think about zones except for a contact's local hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
                Column("expected_close_at", "timestamp", nullable=True),
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
                Column("period_start", "timestamp"),
                Column("period_end", "timestamp"),
                Column("amount", "float", non_negative=True),
            ),
        ),
    )
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.required)
OPTIONAL_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if not t.required)

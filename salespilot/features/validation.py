"""Validation problems and the error that carries them.

The loader (:mod:`salespilot.features.loader`: :mod:`~salespilot.features.reading` reads and
types, :mod:`~salespilot.features.validation_rules` judges) collects every :class:`Problem` of every file
in one pass and raises one :class:`HistoryValidationError`; ``str(error)`` is the report a
user reads, :meth:`HistoryValidationError.to_dict` the one a program reads (``--json``).

Rule ids are short and stable so tests, docs and tools can match on them:

=========================  ==================================================================
rule                       meaning
=========================  ==================================================================
missing_folder             the history folder does not exist
missing_table              a required table (reps, accounts, opportunities) has no file
misspelt_table             a file name looks like a contract table but is spelt differently
duplicate_file             the same table exists twice (``reps.csv`` and ``reps.parquet``)
unreadable_file            the file cannot be parsed as CSV / Parquet
duplicate_column           a column name appears twice in the header
nul_byte                   a cell holds a NUL byte (``\\x00``), which no value may hold
bad_row                    a CSV line has more or fewer fields than the header
missing_column             a contract column is absent (a close match is suggested)
empty_required             a value is empty in a column that must always be filled
wrong_type                 a value is not a number / not a whole number
too_large                  a whole number beyond 2**53 (no longer exact, e.g. ``employees``)
unparseable_timestamp      a timestamp is not ISO 8601 (or out of range)
not_allowed                an enum value is outside the allowed set
negative                   a count or amount is below zero
duplicate_key              two rows share the table's key
unknown_reference          an id points at a row that does not exist (e.g. an unknown rep)
bad_timezone               a contact's time zone is not an IANA name (``Europe/Paris``)
closed_without_date        a won/lost deal has no ``closed_at``
open_with_close_date       an open deal has a ``closed_at``
closed_before_created      a deal's ``closed_at`` precedes its ``created_at``
end_before_start           ``left_at`` < ``hired_at``, ``ended_at`` < ``started_at``, ...
future_timestamp           an event timestamp lies after "now"
=========================  ==================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MAX_EXAMPLES = 5
"""How many offending rows a problem shows (the count says how many there are in all)."""

RowKind = Literal["line", "row"]


@dataclass(frozen=True)
class Problem:
    """One broken rule in one place: a folder, a file, a column or a set of rows.

    ``rows`` are the first offending rows *as in the file*: for CSV the line number (the
    header is line 1, so the first data row is line 2; ``row_kind="line"``), for Parquet the
    0-based row index (``row_kind="row"``). ``examples`` holds the offending values of those
    rows, as written in the file. ``count`` is the number of offending rows in all.
    """

    rule: str
    message: str
    file: str | None = None
    table: str | None = None
    column: str | None = None
    count: int = 0
    rows: tuple[int, ...] = ()
    row_kind: RowKind = "line"
    examples: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = list(self.rows)
        d["examples"] = [dict(e) for e in self.examples]
        return d

    def where(self) -> str:
        parts = [self.file or self.table or "history"]
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def render(self) -> str:
        """A few readable lines: where, rule, message and the first offending rows."""
        lines = [f"{self.where()} [{self.rule}]", f"  {self.message}"]
        label = "line" if self.row_kind == "line" else "row index"
        for row, values in zip(self.rows, self.examples, strict=False):
            shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
            lines.append(f"    {label} {row}: {shown}")
        if self.count > len(self.rows) and self.rows:
            lines.append(f"    ... and {self.count - len(self.rows)} more")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(empty)"
    return repr(value)


class HistoryValidationError(ValueError):
    """The history folder breaks the contract; ``problems`` lists every broken rule.

    Raised by :func:`salespilot.features.loader.load_history` before anything is returned,
    so a caller never sees a half-loaded history.
    """

    def __init__(self, problems: list[Problem], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.report())

    @property
    def rules(self) -> list[str]:
        return [p.rule for p in self.problems]

    def report(self) -> str:
        n = len(self.problems)
        files = sorted({p.file for p in self.problems if p.file})
        head = f"The history in {self.source!r}" if self.source else "The history"
        in_files = f" in {len(files)} file{'s' if len(files) != 1 else ''}" if files else ""
        header = f"{head} is not valid: {n} problem{'s' if n != 1 else ''}{in_files}."
        return "\n\n".join([header, *(p.render() for p in self.problems)])

    def __str__(self) -> str:
        return self.report()

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": False,
            "source": self.source,
            "problems": [p.to_dict() for p in self.problems],
        }

"""Calendar periods a target is set for: a month (``2026-03``) or a quarter (``2026-Q1``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: Years a period may fall in: forecasts look a few years back and forth, and pandas timestamps
#: end in April 2262.
YEARS = range(1900, 2200)


@dataclass(frozen=True)
class Period:
    """A half-open calendar window ``[start, end)`` of whole months."""

    start: pd.Timestamp
    months: int

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.DateOffset(months=self.months)

    @property
    def kind(self) -> str:
        return "quarter" if self.months == 3 else "month"

    @property
    def label(self) -> str:
        if self.months == 3:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def weeks(self) -> float:
        return (self.end - self.start).days / 7.0

    def shift(self, n: int) -> Period:
        """The period ``n`` periods of the same kind later (negative: earlier)."""
        return Period(self.start + pd.DateOffset(months=n * self.months), self.months)

    def __str__(self) -> str:
        return self.label


def parse_period(text: str) -> Period:
    """Parse ``2026-Q1`` / ``2026Q1`` (quarter) or ``2026-03`` (month).

    Raises ``ValueError`` with the accepted spellings for anything else.
    """
    s = str(text).strip()
    if (m := _QUARTER.match(s) or _MONTH.match(s)) and int(m.group(1)) not in YEARS:
        raise ValueError(
            f"period {text!r}: the year must be from {YEARS.start} to {YEARS.stop - 1}"
        )
    if m := _QUARTER.match(s):
        year, q = int(m.group(1)), int(m.group(2))
        return Period(pd.Timestamp(year=year, month=3 * (q - 1) + 1, day=1), 3)
    if m := _MONTH.match(s):
        year, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            return Period(pd.Timestamp(year=year, month=month, day=1), 1)
    raise ValueError(f"period {text!r} is not a quarter like 2026-Q1 or a month like 2026-03")


def period_containing(ts: pd.Timestamp, kind: str = "quarter") -> Period:
    """The month or quarter that contains ``ts``."""
    ts = pd.Timestamp(ts)
    if kind == "quarter":
        return Period(pd.Timestamp(year=ts.year, month=3 * ((ts.month - 1) // 3) + 1, day=1), 3)
    if kind == "month":
        return Period(pd.Timestamp(year=ts.year, month=ts.month, day=1), 1)
    raise ValueError(f"period kind {kind!r} must be 'quarter' or 'month'")


def next_period(ts: pd.Timestamp, kind: str = "quarter") -> Period:
    """The first whole period starting at or after ``ts``."""
    p = period_containing(ts, kind)
    return p if p.start >= pd.Timestamp(ts) else p.shift(1)

"""The in-memory interaction history: one typed DataFrame per contract table."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from salespilot.features.schema import TABLES


@dataclass(frozen=True)
class CrossAccount:
    """The figures one account group's slice of a history cannot compute from its own
    activities (see :mod:`salespilot.features.partitions`).

    ``calls_before``: everyone's outbound calls and connected ones strictly before each
    as_of of the grid (indexed by as_of, int64 ns). ``first_activity_ns``: the history's
    first activity. ``attempt_population``: the population answer rates of each attempt
    of the slice, indexed by ``activity_id``.
    """

    calls_before: pd.DataFrame
    first_activity_ns: int
    attempt_population: pd.DataFrame | None = None


@dataclass
class History:
    """A loaded, validated interaction history.

    Required tables are always DataFrames; optional ones are ``None`` when the folder
    did not have them. Ids are strings, timestamps tz-naive UTC, enums strings.
    """

    reps: pd.DataFrame
    accounts: pd.DataFrame
    opportunities: pd.DataFrame
    contacts: pd.DataFrame | None = None
    stage_changes: pd.DataFrame | None = None
    activities: pd.DataFrame | None = None
    subscriptions: pd.DataFrame | None = None
    targets: pd.DataFrame | None = None
    source: Path | None = field(default=None, compare=False)
    #: where the export ends when stated (mapping or settings: see features/export_end.py);
    #: None: the latest event
    observed_until: pd.Timestamp | None = field(default=None, compare=False)
    #: set on one account group's slice of a bigger history: the figures that read across
    #: accounts, computed from the whole (see features/partitions.py); None: from this one
    cross_account: CrossAccount | None = field(default=None, compare=False)

    def table(self, name: str) -> pd.DataFrame | None:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; the contract has {sorted(TABLES)}")
        return getattr(self, name)

    @property
    def present_tables(self) -> list[str]:
        return [n for n in TABLES if self.table(n) is not None]

    def missing_tables(self, needed: tuple[str, ...] | list[str]) -> list[str]:
        """The tables of ``needed`` this history does not have (for "skip model X: add ...")."""
        return [n for n in needed if self.table(n) is None]

    def content_hash(self) -> str:
        """A stable hash of the table contents (not of file names or formats).

        CSV and Parquet copies of the same history hash equally, so feature snapshots and
        MLflow runs can say exactly which data they reflect.
        """
        h = hashlib.sha256()
        for name in TABLES:
            df = self.table(name)
            if df is None:
                continue
            h.update(name.encode())
            ordered = df.sort_values(list(TABLES[name].key), kind="stable").reset_index(drop=True)
            ordered = ordered[sorted(ordered.columns)]
            h.update(",".join(ordered.columns).encode())
            h.update(pd.util.hash_pandas_object(ordered, index=False).values.tobytes())
        return h.hexdigest()[:16]


TABLE_FIELDS = tuple(
    f.name for f in fields(History) if f.name not in ("source", "observed_until", "cross_account")
)

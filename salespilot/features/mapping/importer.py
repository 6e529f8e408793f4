"""``import_history``: a raw export + a mapping -> a validated contract folder.

The steps: map the source tables (:mod:`.transform`), write them to a staging folder next to
the output, validate the staging folder with the loader's own rules (the report of
``salespilot validate``), and only when it is clean move the files into place. Nothing
half-imported is left behind.

With ``rejects`` the rows that break a rule are taken out, each written to the rejects file
with its reason, and validation runs again (a rejected account makes its deals unknown
references, which are rejected in the next pass) until what remains is clean.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from salespilot.features.custom_fields import CustomFields, write_custom_fields
from salespilot.features.export_end import write_observed_until
from salespilot.features.loader import find_all_problems
from salespilot.features.mapping.model import Mapping, MappingError, load_mapping
from salespilot.features.mapping.sources import Source, open_source
from salespilot.features.mapping.transform import MappedTable, map_tables
from salespilot.features.model_rows import RowChoice, write_model_rows
from salespilot.features.schema import TABLES
from salespilot.features.validation import MAX_EXAMPLES, HistoryValidationError, Problem

logger = logging.getLogger(__name__)

OutputFormat = Literal["csv", "parquet"]
MAX_PASSES = 10
REJECT_COLUMNS = ["table", "rule", "column", "message", "source", "source_row", "record"]
_COUNT_PREFIX = re.compile(r"^\d+ rows?: ")


class ImportValidationError(HistoryValidationError):
    """The mapped history breaks the contract: the validator's report, plus where the
    offending rows came from in the source."""

    def __init__(self, problems: list[Problem], origins: list[str]) -> None:
        self.origins = origins
        super().__init__(problems)

    def report(self) -> str:
        text = "The import stopped; nothing was written. " + super().report()
        if self.origins:
            text += "\n\nWhere those rows come from in the source:\n" + "\n".join(
                f"  {o}" for o in self.origins
            )
        text += "\n\nFix the mapping or the export, or run again with --rejects FILE to import "
        text += "the valid rows and write the others to FILE with their reasons."
        return text


@dataclass
class ImportResult:
    """What an import produced: row counts, rejected rows and notes for the user."""

    out_dir: Path
    rows: dict[str, int]
    rejected: int = 0
    rejects_path: Path | None = None
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    custom_fields: CustomFields = field(default_factory=CustomFields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "rows": self.rows,
            "rejected": self.rejected,
            "rejects_path": str(self.rejects_path) if self.rejects_path else None,
            "rejected_by_rule": self.rejected_by_rule,
            "notes": self.notes,
            "custom_fields": self.custom_fields.to_dict(),
        }


def import_history(
    mapping: Mapping | str | Path,
    source: Source | str | Path,
    out_dir: str | Path,
    *,
    rejects: str | Path | None = None,
    fmt: OutputFormat = "csv",
    now: datetime | str | None = None,
) -> ImportResult:
    """Turn a raw export (folder or SQLAlchemy URL) into a validated contract folder.

    Raises :class:`MappingError` for a mapping that cannot be applied, and
    :class:`ImportValidationError` (a :class:`HistoryValidationError`) when rows break the
    contract and no ``rejects`` file was given, or when a problem is not about rows (a missing
    column) and no row can be rejected to fix it. ``now`` bounds event timestamps as in
    :func:`~salespilot.features.loader.load_history`; it defaults to the mapping's
    ``observed_until`` when one is stated.
    """
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    own_source = not isinstance(source, Source)
    src = open_source(source) if own_source else source
    out = Path(out_dir)
    if now is None and mapping.observed_until_utc is not None:
        now = mapping.observed_until_utc  # nothing recorded after the export was taken
    try:
        tables, notes = map_tables(mapping, src)
    finally:
        if own_source:
            src.close()

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        rejected = _validate_until_clean(
            tables, staging, fmt, now, keep_rejects=rejects is not None
        )
        fields = _custom_fields(mapping, tables)
        _publish(staging, out)
        write_custom_fields(out, fields)
        write_observed_until(out, mapping.observed_until_utc)
        write_model_rows(
            out, {n: RowChoice(m.rows, m.decision_at) for n, m in mapping.models.items()}
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    result = ImportResult(
        out_dir=out,
        rows={name: len(t.frame) for name, t in tables.items()},
        notes=notes,
        custom_fields=fields,
    )
    if rejects is not None:
        rejects_path = Path(rejects)
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(rejected, columns=REJECT_COLUMNS)
        frame.to_csv(rejects_path, index=False)
        result.rejected = len(frame)
        result.rejects_path = rejects_path
        per_rule = frame.assign(rule=frame["rule"].str.split("; ")).explode("rule")
        counts = (per_rule["table"] + "." + per_rule["rule"]).value_counts(sort=False)
        result.rejected_by_rule = {k: int(n) for k, n in counts.sort_index().items()}
    logger.info("imported %s into %s (%d rejected)", result.rows, out, result.rejected)
    return result


def _validate_until_clean(
    tables: dict[str, MappedTable],
    staging: Path,
    fmt: OutputFormat,
    now: datetime | str | None,
    *,
    keep_rejects: bool,
) -> list[dict[str, Any]]:
    rejected: list[dict[str, Any]] = []
    for _ in range(MAX_PASSES):
        _write_tables(tables, staging, fmt)
        problems = find_all_problems(staging, now=now)
        if not problems:
            return rejected
        whole = [p for p in problems if not p.rows]
        if whole or not keep_rejects:
            shown = [_truncate(p) for p in problems]
            raise ImportValidationError(shown, _origins(problems, tables))
        drop: dict[str, set[int]] = {}
        # one line per rejected row, every rule it breaks on that line (rows in = out + rejected)
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for p in problems:
            table = tables[p.table]
            idx = [_index(p, r) for r in p.rows]
            drop.setdefault(p.table, set()).update(idx)
            message = _COUNT_PREFIX.sub("", p.message)
            for i in idx:
                if (p.table, i) in found:
                    line = found[(p.table, i)]
                    line["rule"] += f"; {p.rule}"
                    line["column"] = f"{line['column']}; {p.column}"
                    line["message"] += f" | {message}"
                    continue
                origin = table.origin.iloc[i]
                found[(p.table, i)] = {
                    "table": p.table,
                    "rule": p.rule,
                    "column": p.column,
                    "message": message,
                    "source": origin["source"],
                    "source_row": int(origin["source_row"]),
                    "record": _record(table.frame.iloc[i]),
                }
        rejected.extend(found.values())
        for name, idx in drop.items():
            t = tables[name]
            keep = np.ones(len(t.frame), dtype=bool)
            keep[sorted(idx)] = False
            tables[name] = MappedTable(
                name, t.frame[keep].reset_index(drop=True), t.origin[keep].reset_index(drop=True)
            )
    raise RuntimeError(f"rejecting rows did not converge in {MAX_PASSES} passes")


def _index(problem: Problem, row: int) -> int:
    """The frame position of a row number as the validator reports it."""
    return row - 2 if problem.row_kind == "line" else row


def _truncate(p: Problem) -> Problem:
    return Problem(
        p.rule,
        p.message,
        file=p.file,
        table=p.table,
        column=p.column,
        count=p.count,
        rows=p.rows[:MAX_EXAMPLES],
        row_kind=p.row_kind,
        examples=p.examples[:MAX_EXAMPLES],
    )


def _origins(problems: list[Problem], tables: dict[str, MappedTable]) -> list[str]:
    lines = []
    for p in problems:
        if not p.rows or p.table not in tables:
            continue
        origin = tables[p.table].origin
        label = "line" if p.row_kind == "line" else "row"
        for r in p.rows[:MAX_EXAMPLES]:
            o = origin.iloc[_index(p, r)]
            lines.append(
                f"{p.file} {label} {r} [{p.rule}] <- {o['source']} row {int(o['source_row'])}"
            )
    return lines


def _record(row: pd.Series) -> str:
    values = {k: (None if _isna(v) else _plain(v)) for k, v in row.items()}
    return json.dumps(values, ensure_ascii=False, default=str)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _write_tables(tables: dict[str, MappedTable], folder: Path, fmt: OutputFormat) -> None:
    for old in folder.iterdir():
        old.unlink()
    for name, table in tables.items():
        frame = table.frame
        if fmt == "parquet":
            frame = _parquet_safe(frame)
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing parsed timestamps and unparseable text are written as text."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: _plain(v) if not _isna(v) else None).astype("str")
    return out


def _custom_fields(mapping: Mapping, tables: dict[str, MappedTable]) -> CustomFields:
    categorical, numeric, excluded = {}, {}, {}
    for name, tm in mapping.tables.items():
        declared = tm.features.categorical + tm.features.numeric
        missing = [c for c in declared if c not in tables[name].frame.columns]
        if missing:
            raise MappingError(
                f"{name}: declared feature columns {missing} are not produced by the mapping; "
                f"add them under `columns:` (or set keep_extra: true)"
            )
        if tm.features.categorical:
            categorical[name] = tuple(tm.features.categorical)
        if tm.features.numeric:
            numeric[name] = tuple(tm.features.numeric)
        if tm.excluded:
            excluded[name] = tuple(tm.excluded)
    return CustomFields(categorical=categorical, numeric=numeric, excluded=excluded)


def _publish(staging: Path, out: Path) -> None:
    """Move the validated tables into ``out``, replacing earlier contract tables there."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        for suffix in (".csv", ".parquet", ".csv.gz", ".pq"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
    for f in staging.iterdir():
        shutil.move(str(f), out / f.name)

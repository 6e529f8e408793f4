"""Which rows a model trains on: the weekly grid, or each entity once at its decision time.

A pipeline with stage history is scored at every weekly snapshot while a deal is open (the
grid, the default). A flat export - a lead list, a call list, a churn snapshot - has one natural
decision time per entity instead: a lead when it comes in, a call when it starts, a customer at
the snapshot date. The mapping's ``models:`` section says so, ``salespilot import`` writes it
next to the tables as ``model_rows.json`` (a user may also write it by hand)::

    {"version": 1, "models": {"win_probability": {"rows": "decision", "decision_at": "created_at"}}}

and training reads it back (:func:`read_model_rows`) to choose the spec's ``rows``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from salespilot.atomic import write_text

FILE_NAME = "model_rows.json"

RowKind = Literal["grid", "decision"]

#: The decision time of each feature table when none is named: a deal at its creation, an
#: attempt (a call) at its start, an account at the snapshot date (the end of the observed
#: history minus the label horizon: the latest date whose outcome is fully known).
DEFAULT_DECISION_AT: dict[str, str] = {
    "deals": "created_at",
    "attempts": "occurred_at",
    "accounts": "snapshot",
}


@dataclass(frozen=True)
class RowChoice:
    """One model's rows: ``grid`` or ``decision`` (at ``decision_at``; None: the table's default)."""

    rows: RowKind = "grid"
    decision_at: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"rows": self.rows}
        if self.decision_at is not None:
            out["decision_at"] = self.decision_at
        return out


def read_model_rows(data_dir: str | Path | None) -> dict[str, RowChoice]:
    """The choices in ``<data_dir>/model_rows.json`` by model name; none when it is absent."""
    if data_dir is None:
        return {}
    path = Path(data_dir) / FILE_NAME
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: RowChoice(rows=c.get("rows", "grid"), decision_at=c.get("decision_at"))
        for name, c in (data.get("models") or {}).items()
    }


def write_model_rows(data_dir: str | Path, choices: dict[str, RowChoice]) -> Path | None:
    """Write the choices next to the tables (the file is removed when there are none)."""
    path = Path(data_dir) / FILE_NAME
    if not choices:
        path.unlink(missing_ok=True)
        return None
    data = {"version": 1, "models": {n: c.to_dict() for n, c in sorted(choices.items())}}
    write_text(path, json.dumps(data, indent=2) + "\n")
    return path

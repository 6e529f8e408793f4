"""A customer's own fields as features: which extra columns the models may use.

``salespilot import`` writes ``custom_fields.json`` into the history folder it produces (a user
may also write it by hand next to their own CSV files)::

    {"version": 1,
     "features": {"accounts": {"categorical": ["sector"], "numeric": ["revenue"]}},
     "excluded": {"opportunities": ["close_value", "loss_reason"]}}

Feature builders carry each declared column into their snapshots as ``custom_<name>``
(:func:`custom_feature_columns`), typed for LightGBM: categoricals as ``category``, numerics as
float. Excluded columns were filled in only after the outcome and must never become features.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from salespilot.atomic import write_text
from salespilot.features.history import History

logger = logging.getLogger(__name__)

FILE_NAME = "custom_fields.json"
PREFIX = "custom_"


@dataclass(frozen=True)
class CustomFields:
    """Declared custom feature columns per table (``opportunities``, ``accounts``, ``contacts``)."""

    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    numeric: dict[str, tuple[str, ...]] = field(default_factory=dict)
    excluded: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.categorical.values()) and not any(self.numeric.values())

    def declared(self, table: str) -> list[str]:
        return [*self.categorical.get(table, ()), *self.numeric.get(table, ())]

    def feature_names(self, table: str) -> list[str]:
        """The snapshot column names of ``table``'s custom features (``custom_<name>``)."""
        return [PREFIX + c for c in self.declared(table)]

    def categorical_feature_names(self, table: str) -> list[str]:
        return [PREFIX + c for c in self.categorical.get(table, ())]

    def to_dict(self) -> dict[str, Any]:
        tables = sorted(set(self.categorical) | set(self.numeric))
        return {
            "version": 1,
            "features": {
                t: {
                    "categorical": list(self.categorical.get(t, ())),
                    "numeric": list(self.numeric.get(t, ())),
                }
                for t in tables
            },
            "excluded": {t: list(v) for t, v in self.excluded.items() if v},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomFields:
        feats = data.get("features", {}) or {}
        excluded = data.get("excluded", {}) or {}
        return cls(
            categorical={
                t: tuple(v["categorical"]) for t, v in feats.items() if v.get("categorical")
            },
            numeric={t: tuple(v["numeric"]) for t, v in feats.items() if v.get("numeric")},
            excluded={t: tuple(v) for t, v in excluded.items() if v},
        )


def read_custom_fields(data_dir: str | Path | None) -> CustomFields:
    """The declarations in ``<data_dir>/custom_fields.json``; none when the file is absent."""
    if data_dir is None:
        return CustomFields()
    path = Path(data_dir) / FILE_NAME
    if not path.is_file():
        return CustomFields()
    return CustomFields.from_dict(json.loads(path.read_text(encoding="utf-8")))


def write_custom_fields(data_dir: str | Path, fields: CustomFields) -> Path | None:
    """Write the declarations next to the tables (nothing when none are declared)."""
    path = Path(data_dir) / FILE_NAME
    if fields.empty and not any(fields.excluded.values()):
        path.unlink(missing_ok=True)
        return None
    write_text(path, json.dumps(fields.to_dict(), indent=2) + "\n")
    return path


def custom_feature_columns(
    table: pd.DataFrame, table_name: str, fields: CustomFields
) -> pd.DataFrame:
    """The declared custom columns of one contract table, renamed ``custom_<name>`` and typed.

    Indexed like ``table`` so a feature builder can join it on the entity id. A declared
    column missing from the table is skipped with a warning rather than failing a snapshot.
    """
    out: dict[str, pd.Series] = {}
    for col in fields.categorical.get(table_name, ()):
        if col not in table.columns:
            logger.warning("custom feature %s.%s is declared but not in the data", table_name, col)
            continue
        out[PREFIX + col] = table[col].astype("str").where(table[col].notna()).astype("category")
    for col in fields.numeric.get(table_name, ()):
        if col not in table.columns:
            logger.warning("custom feature %s.%s is declared but not in the data", table_name, col)
            continue
        out[PREFIX + col] = pd.to_numeric(table[col], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=table.index)


#: Which contract tables' custom fields each snapshot table carries, and the id joining them.
SNAPSHOT_SOURCES: dict[str, tuple[str, ...]] = {
    "deals": ("opportunities", "accounts"),
    "accounts": ("accounts",),
    "attempts": ("contacts", "accounts"),
}
ENTITY_KEYS: dict[str, str] = {
    "opportunities": "opportunity_id",
    "accounts": "account_id",
    "contacts": "contact_id",
}


def add_custom_features(
    frame: pd.DataFrame, history: History, table: str, fields: CustomFields | None = None
) -> pd.DataFrame:
    """``frame`` (a ``deals``/``accounts``/``attempts`` snapshot) plus its ``custom_<name>`` columns.

    Values are joined on the entity ids the frame already has (a deal's own fields by
    ``opportunity_id``, its account's by ``account_id``). They are the export's current values:
    a field filled in after the outcome leaks it, which is why such fields are excluded in the
    mapping and why training warns about any single feature that predicts the label alone.
    """
    fields = read_custom_fields(history.source) if fields is None else fields
    if fields.empty:
        return frame
    out = frame.copy()
    for source in SNAPSHOT_SOURCES.get(table, ()):
        key, data = ENTITY_KEYS[source], history.table(source)
        if not fields.declared(source) or data is None or key not in frame.columns:
            continue
        values = custom_feature_columns(data, source, fields).set_axis(data[key].to_numpy())
        joined = values.reindex(frame[key].to_numpy())
        for col in joined.columns:
            out[col] = joined[col].set_axis(frame.index)
    return out


def model_custom_features(table: str, fields: CustomFields) -> dict[str, str]:
    """The custom feature columns a model on snapshot ``table`` uses: name -> categorical/numeric.

    The shape :meth:`salespilot.models.spec.ModelSpec.with_features` takes as ``extra``.
    """
    out: dict[str, str] = {}
    for source in SNAPSHOT_SOURCES.get(table, ()):
        out.update(dict.fromkeys(fields.categorical_feature_names(source), "categorical"))
        numeric = [PREFIX + c for c in fields.numeric.get(source, ())]
        out.update(dict.fromkeys(numeric, "numeric"))
    return out

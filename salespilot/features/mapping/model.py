"""The mapping file: how a raw CRM export becomes the interaction-history contract.

A mapping is YAML validated by the pydantic models below. Per contract table it says where
rows come from (a file of the source folder, a SQL table or query, or literal rows), which rows
to keep, and how each output column is computed from a source row. See docs/import.md.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from salespilot.features.schema import MODEL_TABLES, REQUIRED_TABLES, TABLES

FEATURE_TABLES = ("opportunities", "accounts", "contacts")
"""Tables whose extra columns may be declared as a customer's own features."""

IdStyle = Literal["slug", "hash"]
ExtraType = Literal["text", "float", "int", "timestamp"]


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(_Strict):
    """One row filter; a part's ``where`` keeps rows matching all of its conditions."""

    column: str
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    is_null: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        given = [n for n in ("in_", "not_in", "is_null") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"condition on {self.column!r} needs exactly one of 'in', 'not_in', 'is_null'"
            )
        return self


class Lookup(_Strict):
    """Replace a value by the matching row's ``value`` in another source table (a price list)."""

    source: str
    key: str
    value: str


class FoundIn(_Strict):
    """ "Is this value a key of another table?": ``true``/``false``, e.g. "won if the lead's id
    is in the closed deals file" (``values: {"true": won, "false": lost}`` maps the answer)."""

    source: str
    key: str
    delimiter: str | None = None


class FromParts(_Strict):
    """A timestamp built from columns (or constants) holding its parts: ``date`` (a whole
    date) or ``year``/``month``/``day`` (a month may be a name: ``may``, ``June``), and an
    optional ``time`` of day (``14:05``) or ``hour``."""

    date: str | None = None
    year: str | int | None = None
    month: str | int | None = None
    day: str | int | None = None
    time: str | None = None
    hour: str | int | None = None

    @model_validator(mode="after")
    def _a_date(self) -> FromParts:
        ymd = [self.year, self.month, self.day]
        whole, parts = self.date is not None, [v is not None for v in ymd]
        if not ((whole and not any(parts)) or (not whole and all(parts))):
            raise ValueError("from_parts needs either 'date' or all of 'year', 'month', 'day'")
        if self.time is not None and self.hour is not None:
            raise ValueError("from_parts takes 'time' or 'hour', not both")
        return self

    def columns(self) -> list[str]:
        """The source columns named (an int is a constant; a str is a column name)."""
        named = [self.date, self.year, self.month, self.day, self.time, self.hour]
        return [v for v in named if isinstance(v, str)]


#: The offset amount that is the row's number in the user's own file, never a source column of
#: that name: ``plus: {minutes: row_number}`` gives rows in the file's order, a minute apart
ROW_NUMBER = "row_number"
#: Units a date offset (``plus:``/``minus:``) may use.
OffsetUnit = Literal["years", "months", "weeks", "days", "hours", "minutes"]
#: Parts a derived feature (``derive:``) may take from a timestamp, in its local time.
DerivedPart = Literal["hour", "weekday", "day", "month", "year"]


class ColumnSpec(_Strict):
    """How one output column is computed from a source row.

    Exactly one origin: ``column`` (a source column), ``constant``, ``id_from`` (an id built
    from one or more name columns), ``coalesce`` (the first non-empty of several specs),
    ``row_number`` (the row's number in the user's own file, as an id) or ``from_parts`` (a
    timestamp from its parts). Then, in this order: ``found_in`` (true/false: the value is a
    key of another table), ``values`` (a value map), ``lookup`` (a join), ``fill`` (a value for
    what is still empty). Timestamps are parsed with ``date_format``/``dayfirst``/``timezone``
    (falling back to the mapping's defaults) and stored as UTC, then moved by ``plus``/``minus``
    (``{months: tenure}``: a number, a source column or ``row_number`` per unit). ``derive``
    turns a timestamp into a number (its local hour, weekday, ...). ``known: after_outcome``
    marks a field filled in only after the outcome: it is never a feature (as if listed under
    ``exclude:``).
    """

    column: str | None = None
    constant: Any = None
    id_from: str | list[str] | None = None
    id_style: IdStyle | None = None
    id_prefix: str = ""
    coalesce: list[ColumnSpec] | None = None
    values: dict[str, Any] | None = None
    lookup: Lookup | None = None
    fill: Any = None
    row_number: bool | None = None
    from_parts: FromParts | None = None
    found_in: FoundIn | None = None
    type: ExtraType | None = None
    date_format: str | None = None
    dayfirst: bool | None = None
    timezone: str | None = None
    plus: dict[OffsetUnit, str | float] | None = None
    minus: dict[OffsetUnit, str | float] | None = None
    derive: DerivedPart | None = None
    known: Literal["before_outcome", "after_outcome"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # "name: sales_agent" is a rename: the value is the source column.
        if isinstance(data, str):
            return {"column": data}
        return data

    @field_validator("values", mode="before")
    @classmethod
    def _string_keys(cls, v: Any) -> Any:
        # YAML turns `1: x` or `yes: x` into non-string keys; source values compare as text.
        if isinstance(v, dict):
            return {_key_text(k): val for k, val in v.items()}
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        return _check_zone(v)

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        names = ("column", "id_from", "coalesce", "row_number", "from_parts")
        origins = [n for n in names if getattr(self, n) not in (None, False)]
        if self.has_constant:
            origins.append("constant")
        if len(origins) != 1:
            raise ValueError(
                "a column needs exactly one of 'column', 'constant', 'id_from', 'coalesce', "
                "'row_number', 'from_parts'" + (f" (got {', '.join(origins)})" if origins else "")
            )
        return self

    @property
    def moves_time(self) -> bool:
        """Whether the value is a timestamp whatever its column (offsets, parts, derived)."""
        return bool(self.plus or self.minus or self.from_parts or self.derive)

    @property
    def has_constant(self) -> bool:
        return "constant" in self.model_fields_set

    def source_columns(self) -> list[str]:
        """The source columns this spec reads (to report a misspelt one before anything runs)."""
        if self.column is not None:
            return [self.column]
        if self.id_from is not None:
            return [self.id_from] if isinstance(self.id_from, str) else list(self.id_from)
        cols: list[str] = []
        if self.coalesce:
            cols = [c for spec in self.coalesce for c in spec.source_columns()]
        if self.from_parts is not None:
            cols = self.from_parts.columns()
        for offset in (self.plus or {}, self.minus or {}):
            cols += [v for v in offset.values() if isinstance(v, str) and v != ROW_NUMBER]
        return cols


class TablePart(_Strict):
    """Rows of one contract table from one origin: a source file/table, a SQL query, or literal rows."""

    source: str | None = None
    query: str | None = None
    rows: list[dict[str, Any]] | None = None
    delimiter: str | None = Field(
        None, description="Field separator of this CSV source (default: the mapping's, ',')."
    )
    where: list[Condition] = Field(default_factory=list)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    keep_extra: bool = Field(
        False, description="Also copy source columns that are neither mapped nor in the contract."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> TablePart:
        given = [n for n in ("source", "query", "rows") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("a table part needs exactly one of 'source', 'query', 'rows'")
        return self

    @property
    def origin(self) -> str:
        if self.source is not None:
            return self.source
        if self.query is not None:
            return "query"
        return "rows"


class FeatureColumns(_Strict):
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)


_PART_KEYS = set(TablePart.model_fields) | {"in"}


class TableMapping(_Strict):
    """One contract table: its parts (concatenated), and which extra columns are features."""

    parts: list[TablePart]
    features: FeatureColumns = Field(default_factory=FeatureColumns)
    exclude: list[str] = Field(
        default_factory=list,
        description="Columns filled in only after the outcome (a loss reason, a close value): "
        "never used as features.",
    )

    @model_validator(mode="before")
    @classmethod
    def _single_part(cls, data: Any) -> Any:
        # The common case, one origin, is written without a `parts:` list.
        if isinstance(data, dict) and "parts" not in data:
            part = {k: v for k, v in data.items() if k in _PART_KEYS}
            rest = {k: v for k, v in data.items() if k not in _PART_KEYS}
            return {**rest, "parts": [part]}
        return data

    @model_validator(mode="after")
    def _features_not_excluded(self) -> TableMapping:
        both = set(self.excluded) & (set(self.features.categorical) | set(self.features.numeric))
        if both:
            raise ValueError(
                "declared as a feature and excluded (or known: after_outcome) at once: "
                f"{sorted(both)}"
            )
        return self

    @property
    def excluded(self) -> list[str]:
        """``exclude:`` plus every column marked ``known: after_outcome`` in any part."""
        after = [
            col
            for part in self.parts
            for col, spec in part.columns.items()
            if spec.known == "after_outcome"
        ]
        return list(dict.fromkeys([*self.exclude, *after]))


class ModelRows(_Strict):
    """Which rows one model trains on (see :mod:`salespilot.features.model_rows`): ``grid``
    (every weekly snapshot while open) or ``decision`` (each entity once, at ``decision_at``:
    a deal's ``created_at`` by default, a call at its start, a customer at the snapshot date)."""

    rows: Literal["grid", "decision"] = "grid"
    decision_at: str | None = None


class Mapping(_Strict):
    """A whole mapping file."""

    version: Literal[1] = 1
    timezone: str = Field("UTC", description="Time zone of source timestamps without an offset.")
    date_format: str | None = Field(None, description="strptime format of source dates, if fixed.")
    dayfirst: bool = Field(False, description="Read 03/01/2017 as 3 January.")
    delimiter: str | None = Field(None, description="Field separator of CSV sources (',').")
    id_style: IdStyle = Field("slug", description="How ids are built from names: slug or hash.")
    observed_until: datetime | None = Field(
        None,
        description="Where the export ends (the instant it was taken; without an offset: in "
        "the mapping's timezone). Default: the latest event. Rows whose label horizon reaches "
        "past it are unlabelled.",
    )
    tables: dict[str, TableMapping]
    models: dict[str, ModelRows] = Field(
        default_factory=dict,
        description="Per model: train on the weekly grid or on decision-time rows.",
    )

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: dict[str, ModelRows]) -> dict[str, ModelRows]:
        for name in models:
            if name not in MODEL_TABLES:
                close = difflib.get_close_matches(name, list(MODEL_TABLES), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown model {name!r}{hint}")
        return models

    @property
    def observed_until_utc(self) -> datetime | None:
        """``observed_until`` in UTC, naive (the history's convention)."""
        v = self.observed_until
        if v is None:
            return None
        if v.tzinfo is None:
            v = v.replace(tzinfo=ZoneInfo(self.timezone))
        return v.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        return _check_zone(v) or "UTC"

    @field_validator("tables")
    @classmethod
    def _contract_tables(cls, tables: dict[str, TableMapping]) -> dict[str, TableMapping]:
        for name in tables:
            if name not in TABLES:
                close = difflib.get_close_matches(name, list(TABLES), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown contract table {name!r}{hint}")
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise ValueError(f"the required tables {missing} have no mapping")
        seen: dict[str, str] = {}
        for name, table in tables.items():
            declared = table.features.categorical + table.features.numeric
            for col in declared:
                # snapshots name them custom_<name>: one name, one meaning
                if seen.setdefault(col, name) != name:
                    raise ValueError(
                        f"custom feature {col!r} is declared on both {seen[col]} and {name}; "
                        "rename one of them under `columns:`"
                    )
            if declared and name not in FEATURE_TABLES:
                raise ValueError(
                    f"{name}: custom features can be declared on {', '.join(FEATURE_TABLES)} only"
                )
            contract = set(TABLES[name].column_names) & set(declared)
            if contract:
                raise ValueError(
                    f"{name}: {sorted(contract)} are contract columns; declare extra columns only"
                )
        return tables


def _key_text(k: Any) -> str:
    if isinstance(k, bool):
        return str(k).lower()
    return str(k)


def _check_zone(v: str | None) -> str | None:
    if v is None:
        return None
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {v!r} (use an IANA name like 'Europe/Berlin')"
        ) from None
    return v


def parse_mapping(data: Any, *, origin: str = "mapping") -> Mapping:
    """Validate an already-parsed mapping (a dict), raising :class:`MappingError` on problems."""
    try:
        return Mapping.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"] if p not in ("function-after",))
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where or '(top)'}: {msg}")
        raise MappingError(f"{origin}: invalid mapping\n" + "\n".join(lines)) from None


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    except yaml.YAMLError as e:
        raise MappingError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path}: a mapping file is a YAML object with a 'tables:' key")
    return parse_mapping(data, origin=str(path))

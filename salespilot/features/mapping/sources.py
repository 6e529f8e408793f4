"""Where raw rows come from: a folder of CSV/Parquet files or a SQL database (SQLAlchemy URL)."""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

logger = logging.getLogger(__name__)


class SourceError(ValueError):
    """A source table that cannot be read; the message names it and what exists instead."""


@dataclass
class Source:
    """Base class: ``read(name)`` returns a source table, cached per name.

    ``first_row`` is the number a user sees for the first data row (2 in a CSV with a header
    line, 1 in a database table), so rejects can point at the row in the user's own terms.
    """

    location: str
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def read(self, name: str, *, delimiter: str | None = None) -> pd.DataFrame:
        """The table ``name``; ``delimiter`` is the field separator of a CSV file (``,``)."""
        key = name if delimiter is None else f"{name}\0{delimiter}"
        if key not in self._cache:
            self._cache[key] = self._read(name, delimiter).reset_index(drop=True)
        return self._cache[key]

    def query(self, sql: str) -> pd.DataFrame:
        raise SourceError(f"{self.location}: SQL queries need a database source")

    def first_row(self, name: str) -> int:
        return 1

    def _read(self, name: str, delimiter: str | None) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        self._cache.clear()


@dataclass
class FolderSource(Source):
    """A folder of exports. ``name`` is a file name, with or without ``.csv``/``.parquet``."""

    def _path(self, name: str) -> Path:
        folder = Path(self.location)
        for candidate in (name, f"{name}.csv", f"{name}.parquet"):
            if (folder / candidate).is_file():
                return folder / candidate
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        close = difflib.get_close_matches(name, files, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; it has {files}"
        raise SourceError(f"{folder}: no file {name!r} (nor {name}.csv, {name}.parquet){hint}")

    def first_row(self, name: str) -> int:
        return 2 if self._path(name).suffix.lower() != ".parquet" else 1

    def _read(self, name: str, delimiter: str | None) -> pd.DataFrame:
        path = self._path(name)
        where = f"{path.name} [unreadable_file]"  # the file and the rule, as validate says them
        if path.suffix.lower() == ".parquet":
            try:
                return pd.read_parquet(path)
            except (OSError, ValueError, pa.ArrowException) as e:
                raise SourceError(
                    f"{where}: not a readable Parquet file (truncated, or not Parquet?): "
                    f"{_first_line(e)}"
                ) from None
        if path.stat().st_size == 0:
            raise SourceError(f"{where}: the file is empty (0 bytes); a CSV needs a header line")
        try:
            # Text as text: the mapping decides types, so "007" stays "007" and ids stay ids.
            return pd.read_csv(path, dtype=str, encoding="utf-8-sig", sep=delimiter or ",")
        except UnicodeDecodeError as e:
            line = path.read_bytes()[: e.start].count(b"\n") + 1
            raise SourceError(
                f"{where}: line {line} is not UTF-8 text (byte 0x{e.object[e.start]:02x}); "
                "export the file as UTF-8 CSV (re-save a Latin-1/Windows-1252 export as UTF-8), "
                "or it is not a CSV file at all"
            ) from None
        except pd.errors.EmptyDataError:
            raise SourceError(f"{where}: no header line, nothing to import") from None
        except (pd.errors.ParserError, ValueError) as e:
            raise SourceError(f"{where}: not valid CSV: {_csv_problem(e)}") from None


def _csv_problem(exc: Exception) -> str:
    """pandas' tokenizer message in the user's terms (file lines, the header is line 1)."""
    text = _first_line(exc)
    quote = re.search(r"EOF inside string starting at row (\d+)", text)
    if quote:
        return f"a quote opened on line {int(quote.group(1)) + 1} is never closed"
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        want, line, saw = fields.groups()
        return f"line {line} has {saw} fields, the header {want} (a stray separator or quote?)"
    return text


@dataclass
class SqlSource(Source):
    """A database reached through a SQLAlchemy URL (PostgreSQL is the tested case)."""

    schema: str | None = None

    def __post_init__(self) -> None:
        import sqlalchemy as sa

        try:
            self._engine = sa.create_engine(self.location)
        except Exception as e:  # bad URL or missing driver
            raise SourceError(f"cannot open database URL {_redact(self.location)}: {e}") from None

    def _read(self, name: str, delimiter: str | None) -> pd.DataFrame:
        import sqlalchemy as sa

        try:
            return pd.read_sql_table(name, self._engine, schema=self.schema)
        except ValueError:
            tables = sa.inspect(self._engine).get_table_names(schema=self.schema)
            close = difflib.get_close_matches(name, tables, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; it has {sorted(tables)}"
            raise SourceError(f"{_redact(self.location)}: no table {name!r}{hint}") from None
        except sa.exc.OperationalError as e:
            raise SourceError(f"cannot read from {_redact(self.location)}: {e.orig}") from None

    def query(self, sql: str) -> pd.DataFrame:
        """Rows of one SELECT, run in a read-only transaction that is rolled back."""
        import sqlalchemy as sa

        _check_single_select(sql)
        key = f"query:{sql}"
        if key not in self._cache:
            try:
                with self._engine.connect() as con:
                    dialect = self._engine.dialect.name
                    if dialect == "sqlite":
                        con.exec_driver_sql("PRAGMA query_only = ON")
                    elif dialect in ("postgresql", "mysql", "mariadb"):
                        con.exec_driver_sql("SET TRANSACTION READ ONLY")
                    try:
                        self._cache[key] = pd.read_sql(sa.text(sql), con)
                    finally:
                        con.rollback()
                        if dialect == "sqlite":
                            con.exec_driver_sql("PRAGMA query_only = OFF")
            except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as e:
                # pandas wraps what the driver raised (a write refused by the read-only
                # transaction, a syntax error) in its own DatabaseError
                raise SourceError(f"query failed on {_redact(self.location)}: {e}") from None
        return self._cache[key]

    def close(self) -> None:
        super().close()
        self._engine.dispose()


def _check_single_select(sql: str) -> None:
    """A mapping's ``query:`` reads: exactly one SELECT (or WITH ... SELECT) statement."""
    import sqlparse

    statements = [st for st in sqlparse.parse(sql) if st.token_first(skip_cm=True) is not None]
    if len(statements) != 1:
        raise SourceError(f"a query must be one SELECT statement; this one has {len(statements)}")
    kind = statements[0].get_type()
    if kind != "SELECT":
        raise SourceError(f"a query must be one SELECT statement, not {kind}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database>"


def open_source(location: str | Path) -> Source:
    """A folder path or a SQLAlchemy URL (``postgresql://user@host/db``)."""
    text = str(location)
    if "://" in text:
        for scheme in ("postgresql://", "postgres://"):
            if text.startswith(scheme):
                # psycopg 3 is the driver we ship; SQLAlchemy's default here is psycopg2.
                text = "postgresql+psycopg://" + text.removeprefix(scheme)
        return SqlSource(text)
    path = Path(text)
    if not path.is_dir():
        raise SourceError(f"source {text!r} is neither a folder nor a database URL")
    return FolderSource(str(path))

"""The model registry's SQLite tables, read and written with :mod:`sqlite3` for the metadata
commands.

``compare``, ``promote`` and ``rollback`` read a few rows and move an alias or two. Through
MLflow's client they cost about 3 s before the first row (importing MLflow 1.6 s, building its
SQLAlchemy store 1.3 s); through these tables they cost a few milliseconds. :class:`SqliteRegistry`
offers the part of ``MlflowClient``'s interface that :mod:`salespilot.training.promotion` and
:func:`salespilot.training.tracking.compare` use, with the same effects on the same rows as
MLflow's own store (tested against it in ``tests/training/test_registry_db.py``).

It is used only when the tracking URI is a SQLite file whose schema revision (the
``alembic_version`` row MLflow's migrations keep) is one of :data:`KNOWN_REVISIONS`, the revision
the pinned MLflow creates (a test fails when an upgrade brings another). Any other store, a
server, another database or a schema this module does not know, goes through MLflow's client.
Training, logging and loading a model always use MLflow.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

#: the schema revisions whose tables this module reads and writes (MLflow 3.17's head)
KNOWN_REVISIONS = frozenset({"dc11669786a5"})

#: MLflow's workspace column: every row of a store without workspaces holds this
WORKSPACE = "default"
#: the stage MLflow gives a deleted version's row until it is purged
_DELETED = "Deleted_Internal"


class NotFound(LookupError):
    """No such registered model, version, alias or run (MLflow raises ``MlflowException``)."""


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    tags: dict[str, str]


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    creation_timestamp: int
    tags: dict[str, str]
    aliases: list[str]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str


@dataclass(frozen=True)
class RunData:
    tags: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData = field(repr=False)


def open_sqlite(tracking_uri: str) -> SqliteRegistry | None:
    """The registry at ``tracking_uri`` through :mod:`sqlite3`, or None when it is not a SQLite
    file of a known schema revision (the caller then uses MLflow's client)."""
    if not tracking_uri.startswith("sqlite:///") or "?" in tracking_uri:
        return None
    path = Path(tracking_uri[len("sqlite:///") :])
    if not path.is_file():  # MLflow creates (and migrates) a new store
        return None
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] not in KNOWN_REVISIONS:
        con.close()
        return None
    return SqliteRegistry(con)


class SqliteRegistry:
    """``MlflowClient``'s registry reads and alias/tag writes, on the store's own tables.

    Each write is one transaction, as each call of MLflow's client is. Only the methods the
    metadata commands use are here; they raise :class:`NotFound` where MLflow raises
    ``MlflowException`` for a missing model, version, alias or run.
    """

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con

    def _rows(self, sql: str, *args: object) -> list[tuple]:
        return self._con.execute(sql, args).fetchall()

    def _write(self, sql: str, *args: object) -> None:
        with self._con:  # BEGIN ... COMMIT (ROLLBACK on error)
            self._con.execute("BEGIN IMMEDIATE")
            self._con.execute(sql, args)

    # -- reads ------------------------------------------------------------------------------

    def get_registered_model(self, name: str) -> RegisteredModel:
        if not self._rows(
            "SELECT 1 FROM registered_models WHERE workspace = ? AND name = ?", WORKSPACE, name
        ):
            raise NotFound(f"Registered Model with name={name} not found")
        tags = self._rows(
            "SELECT key, value FROM registered_model_tags WHERE workspace = ? AND name = ?",
            WORKSPACE,
            name,
        )
        return RegisteredModel(name=name, tags=dict(tags))

    def get_model_version(
        self, name: str, version: str | int, *, aliases: bool = True
    ) -> ModelVersion:
        """Version ``version`` of ``name`` (without its aliases when not ``aliases``)."""
        row = self._rows(
            "SELECT version, run_id, creation_time FROM model_versions "
            "WHERE workspace = ? AND name = ? AND version = ? AND current_stage != ?",
            WORKSPACE,
            name,
            int(version),
            _DELETED,
        )
        if not row:
            raise NotFound(f"Model Version (name={name}, version={version}) not found")
        v, run_id, created = row[0]
        tags = self._rows(
            "SELECT key, value FROM model_version_tags "
            "WHERE workspace = ? AND name = ? AND version = ?",
            WORKSPACE,
            name,
            v,
        )
        names = self._rows(
            "SELECT alias FROM registered_model_aliases "
            "WHERE workspace = ? AND name = ? AND version = ? ORDER BY alias",
            WORKSPACE,
            name,
            v,
        )
        return ModelVersion(
            name=name,
            version=str(v),
            run_id=run_id or None,
            creation_timestamp=int(created),
            tags=dict(tags),
            aliases=[a for (a,) in names] if aliases else [],
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        self.get_registered_model(name)
        row = self._rows(
            "SELECT version FROM registered_model_aliases "
            "WHERE workspace = ? AND name = ? AND alias = ?",
            WORKSPACE,
            name,
            alias,
        )
        if not row:
            raise NotFound(f"Registered model alias {alias} not found.")
        return self.get_model_version(name, row[0][0])

    def search_model_versions(self, filter_string: str) -> list[ModelVersion]:
        """Only the filter the callers use, ``name='<model>'``: every version of one model,
        newest first, without aliases (as MLflow's search gives them)."""
        match = re.fullmatch(r"name\s*=\s*'([^']*)'", filter_string.strip())
        if match is None:
            raise ValueError(f"unsupported filter {filter_string!r}: only name='<model>'")
        name = match.group(1)
        versions = self._rows(
            "SELECT version FROM model_versions "
            "WHERE workspace = ? AND name = ? AND current_stage != ? ORDER BY version DESC",
            WORKSPACE,
            name,
            _DELETED,
        )
        return [self.get_model_version(name, v, aliases=False) for (v,) in versions]

    def get_run(self, run_id: str) -> Run:
        row = self._rows("SELECT status FROM runs WHERE run_uuid = ?", run_id)
        if not row:
            raise NotFound(f"Run with id={run_id} not found")
        tags = self._rows("SELECT key, value FROM tags WHERE run_uuid = ?", run_id)
        metrics = {
            key: math.nan if is_nan else float(value)
            for key, value, is_nan in self._rows(
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", run_id
            )
        }
        return Run(info=RunInfo(run_id=run_id, status=row[0][0]), data=RunData(dict(tags), metrics))

    # -- writes -----------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self.get_model_version(name, version)
        self._write(
            "INSERT OR REPLACE INTO registered_model_aliases (alias, version, name, workspace) "
            "VALUES (?, ?, ?, ?)",
            alias,
            int(version),
            name,
            WORKSPACE,
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.get_registered_model(name)
        self._write(
            "DELETE FROM registered_model_aliases WHERE workspace = ? AND name = ? AND alias = ?",
            WORKSPACE,
            name,
            alias,
        )

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.get_registered_model(name)
        self._write(
            "INSERT OR REPLACE INTO registered_model_tags (key, value, name, workspace) "
            "VALUES (?, ?, ?, ?)",
            key,
            str(value),
            name,
            WORKSPACE,
        )

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        self.get_model_version(name, version)
        self._write(
            "INSERT OR REPLACE INTO model_version_tags (key, value, name, version, workspace) "
            "VALUES (?, ?, ?, ?, ?)",
            key,
            str(value),
            name,
            int(version),
            WORKSPACE,
        )

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        self.get_run(run_id)
        self._write(
            "UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
            status,
            int(time.time() * 1000),
            run_id,
        )

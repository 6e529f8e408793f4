"""Feature tables on disk: Parquet files that carry their own metadata.

Layout of a features folder (default ``settings.features_dir``)::

    deals.parquet  accounts.parquet  attempts.parquet      labelled training sets (grid)
    snapshots/deals.parquet  snapshots/accounts.parquet    one as_of ("now"), for serving

Each file's Parquet schema metadata (key ``salespilot``) holds the as_of range, the input
history's content hash, :data:`FEATURE_SET_VERSION` and when it was built, so training and
serving can check they read the same thing; a ``<name>.json`` beside it repeats it for people.

Every file is written whole (:mod:`salespilot.atomic`), and ``manifest.json`` is written last,
once every table of a build is in place: it names the build's history hash and, per table,
the history it was built from. A build killed half-way leaves tables the manifest does not
name, or names with another history; :func:`read_feature_table` refuses such a table with a
:class:`FeatureFolderError` naming the file and both hashes, and :func:`check_feature_folder`
lists every such file of a folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salespilot.atomic import replacing, write_json
from salespilot.features.training_sets import FEATURE_SET_VERSION

METADATA_KEY = b"salespilot"
SNAPSHOTS_DIR = "snapshots"
MANIFEST = "manifest.json"
#: what must agree between a table's own metadata and its manifest entry
_CHECKED = ("history_hash", "feature_set_version", "horizon_days", "rows")


class FeatureFolderError(ValueError):
    """A feature folder is not consistent (a build was interrupted); the message says which
    file, which hash, and what to run."""


class _AsOfTally:
    """Rows and as_of range of a table, counted batch by batch."""

    def __init__(self) -> None:
        self.rows = 0
        self.as_of: set[int] = set()

    def add(self, df: pd.DataFrame) -> None:
        self.rows += len(df)
        if "as_of" in df.columns and len(df):
            values = df["as_of"].dropna().to_numpy(dtype="datetime64[ns]").view("int64")
            self.as_of.update(np.unique(values).tolist())

    def metadata(
        self,
        name: str,
        columns: list[str],
        *,
        history_hash: str,
        feature_set_version: str = FEATURE_SET_VERSION,
        built_at: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        built_at = built_at or datetime.now(UTC)
        return {
            "table": name,
            "rows": self.rows,
            "as_of_min": pd.Timestamp(min(self.as_of)).isoformat() if self.as_of else None,
            "as_of_max": pd.Timestamp(max(self.as_of)).isoformat() if self.as_of else None,
            "as_of_count": len(self.as_of),
            "history_hash": history_hash,
            "feature_set_version": feature_set_version,
            "built_at": built_at.isoformat(),
            "label_columns": [c for c in columns if c.startswith("label_")],
            **extra,
        }


def write_feature_tables(
    tables: dict[str, pd.DataFrame],
    out_dir: str | Path,
    *,
    history_hash: str,
    feature_set_version: str = FEATURE_SET_VERSION,
    built_at: datetime | None = None,
    extras: dict[str, dict[str, Any]] | None = None,
    manifest: bool = True,
    **extra: Any,
) -> dict[str, Path]:
    """Write each table as ``out_dir/<name>.parquet`` (``name`` may hold a sub-folder, e.g.
    ``snapshots/deals``) with its metadata (``extra``, plus ``extras[name]`` for that table),
    each file whole, then the manifest last (``manifest=False``: the caller seals the build
    itself with :func:`write_manifest` once all its tables are written); returns the paths."""
    out_dir = Path(out_dir)
    built_at = built_at or datetime.now(UTC)
    written = {
        name: write_feature_batches(
            name,
            [df],
            out_dir,
            history_hash=history_hash,
            feature_set_version=feature_set_version,
            built_at=built_at,
            **extra,
            **(extras or {}).get(name, {}),
        )
        for name, df in tables.items()
    }
    if manifest:
        write_manifest(out_dir, history_hash, list(written))
    return written


def write_feature_batches(
    name: str,
    batches: Iterable[pd.DataFrame],
    out_dir: str | Path,
    *,
    history_hash: str,
    feature_set_version: str = FEATURE_SET_VERSION,
    built_at: datetime | None = None,
    types: dict[str, pa.DataType] | None = None,
    **extra: Any,
) -> Path:
    """Write ``out_dir/<name>.parquet`` from ``batches`` (at least one; the same columns and
    dtypes), one row group after the other, so only one batch is ever in memory; the file is
    read back as if written whole (:func:`read_feature_table`). ``types``: the Arrow type of
    columns the first batch may hold no value of (all missing). Its metadata (rows, as_of
    range) is counted on the way and stored in the file's footer and beside it. The manifest
    is the caller's (:func:`write_manifest`)."""
    path = Path(out_dir) / f"{name}.parquet"
    tally = _AsOfTally()
    with replacing(path) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            for df in batches:
                schema = None if writer is None else writer.schema
                table = pa.Table.from_pandas(df, preserve_index=False, schema=schema)
                if writer is None:
                    schema = table.schema
                    for i, field in enumerate(schema):
                        if pa.types.is_null(field.type) and field.name in (types or {}):
                            schema = schema.set(i, field.with_type(types[field.name]))
                    table = table.cast(schema)
                    writer = pq.ParquetWriter(tmp, schema)
                    columns = list(df.columns)
                writer.write_table(table)
                tally.add(df)
            if writer is None:
                raise ValueError(f"no rows nor columns for feature table {name!r}")
            meta = tally.metadata(
                name,
                columns,
                history_hash=history_hash,
                feature_set_version=feature_set_version,
                built_at=built_at,
                **extra,
            )
            writer.add_key_value_metadata({METADATA_KEY: json.dumps(meta).encode()})
        finally:
            if writer is not None:
                writer.close()
    write_json(path.with_suffix(".json"), meta, indent=2)
    return path


# -- the manifest: which history each table of the folder was built from ----------------------


def read_manifest(features_dir: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when there is none."""
    path = Path(features_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def write_manifest(features_dir: str | Path, history_hash: str, names: list[str]) -> Path:
    """Seal a build: record ``names`` (read back from their files) as built from
    ``history_hash``, keeping the entries of the folder's other tables; written last."""
    features_dir = Path(features_dir)
    previous = read_manifest(features_dir) or {}
    entries = dict(previous.get("tables", {}))
    for name in names:
        meta = read_metadata(features_dir / f"{name}.parquet")
        entries[name] = {k: meta.get(k) for k in (*_CHECKED, "built_at")}
    manifest = {
        "history_hash": history_hash,
        "written_at": datetime.now(UTC).isoformat(),
        "tables": dict(sorted(entries.items())),
    }
    return write_json(features_dir / MANIFEST, manifest, indent=2)


def _stored_tables(features_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(features_dir).with_suffix(""))
        for p in features_dir.rglob("*.parquet")
        if not p.name.startswith(".") and "_parts" not in p.relative_to(features_dir).parts
    )


def table_problem(features_dir: str | Path, name: str, manifest: dict | None = None) -> str | None:
    """Why ``features_dir/<name>.parquet`` cannot be trusted to match the rest of its folder
    (None when it can): no manifest, not in it, or built from another history than it says."""
    features_dir = Path(features_dir)
    manifest = read_manifest(features_dir) if manifest is None else manifest
    file = f"{name}.parquet"
    again = "run `salespilot features` again"
    if manifest is None:
        return (
            f"{features_dir} has {file} but no {MANIFEST}: a build did not finish "
            f"(killed, or written before manifests); {again}"
        )
    entry = manifest.get("tables", {}).get(name)
    meta = read_metadata(features_dir / file)
    if entry is None:
        return (
            f"{features_dir}/{file} (history {str(meta.get('history_hash'))[:12]}) is not in "
            f"{MANIFEST} (last build: history {str(manifest.get('history_hash'))[:12]}): the "
            f"build that wrote it did not finish; {again}"
        )
    differ = [k for k in _CHECKED if meta.get(k) != entry.get(k)]
    if differ:
        what = ", ".join(f"{k} {meta.get(k)} vs {entry.get(k)}" for k in differ)
        return (
            f"{features_dir}/{file} holds history {str(meta.get('history_hash'))[:12]} but "
            f"{MANIFEST} names history {str(entry.get('history_hash'))[:12]} for it ({what}): "
            f"a build was interrupted after writing it; {again}"
        )
    return None


def check_feature_folder(features_dir: str | Path) -> list[str]:
    """Every table of the folder that does not match its manifest, in words (empty: the
    folder is consistent)."""
    features_dir = Path(features_dir)
    manifest = read_manifest(features_dir)
    names = _stored_tables(features_dir)
    if manifest is None:
        return [table_problem(features_dir, names[0])] if names else []
    problems = [table_problem(features_dir, n, manifest) for n in names]
    missing = [n for n in manifest.get("tables", {}) if n not in names]
    problems += [f"{features_dir}/{n}.parquet is named in {MANIFEST} but missing" for n in missing]
    return [p for p in problems if p]


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of one feature table file (without reading its rows)."""
    # a table written whole has it in its schema too; one written batch by batch, in its footer
    raw = (pq.read_metadata(path).metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(
            f"{path} is not a SalesPilot feature table (no '{METADATA_KEY.decode()}' metadata)"
        )
    return json.loads(raw)


def read_feature_table(features_dir: str | Path, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(rows, metadata)`` of ``features_dir/<name>.parquet``; categories come back as category.

    Raises :class:`FeatureFolderError` when the table does not match the folder's manifest."""
    path = Path(features_dir) / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(
            f"no feature table {name!r} in {features_dir}: run `salespilot features --data DIR` first"
        )
    problem = table_problem(features_dir, name)
    if problem is not None:
        raise FeatureFolderError(problem)
    return pd.read_parquet(path), read_metadata(path)


def latest_snapshot(features_dir: str | Path, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows to score "now": ``snapshots/<name>`` if built, else the latest as_of of ``<name>``.

    Label columns are dropped: serving must never see them.
    """
    features_dir = Path(features_dir)
    snap = features_dir / SNAPSHOTS_DIR / f"{name}.parquet"
    if snap.exists():
        df, meta = read_feature_table(features_dir, f"{SNAPSHOTS_DIR}/{name}")
    else:
        df, meta = read_feature_table(features_dir, name)
        if len(df):
            df = df[df["as_of"] == df["as_of"].max()].reset_index(drop=True)
    labels = [c for c in df.columns if c.startswith("label_")]
    return df.drop(columns=labels), meta

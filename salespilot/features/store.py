"""Feature tables on disk: Parquet files that carry their own metadata.

Layout of a features folder (default ``settings.features_dir``)::

    deals.parquet  accounts.parquet  attempts.parquet      labelled training sets (grid)
    snapshots/deals.parquet  snapshots/accounts.parquet    one as_of ("now"), for serving

Each file's Parquet schema metadata (key ``salespilot``) holds the as_of range, the input
history's content hash, :data:`FEATURE_SET_VERSION` and when it was built, so training and
serving can check they read the same thing; a ``<name>.json`` beside it repeats it for people.
Files are written to a temporary name and renamed, so a reader never sees half a table.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salespilot.features.training_sets import FEATURE_SET_VERSION

METADATA_KEY = b"salespilot"
SNAPSHOTS_DIR = "snapshots"


def table_metadata(
    name: str,
    df: pd.DataFrame,
    *,
    history_hash: str,
    feature_set_version: str = FEATURE_SET_VERSION,
    built_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata stored with one feature table."""
    as_of = (
        df["as_of"] if "as_of" in df.columns and len(df) else pd.Series([], dtype="datetime64[ns]")
    )
    built_at = built_at or datetime.now(UTC)
    return {
        "table": name,
        "rows": len(df),
        "as_of_min": None if as_of.empty else pd.Timestamp(as_of.min()).isoformat(),
        "as_of_max": None if as_of.empty else pd.Timestamp(as_of.max()).isoformat(),
        "as_of_count": int(as_of.nunique()),
        "history_hash": history_hash,
        "feature_set_version": feature_set_version,
        "built_at": built_at.isoformat(),
        "label_columns": [c for c in df.columns if c.startswith("label_")],
        **extra,
    }


def write_feature_tables(
    tables: dict[str, pd.DataFrame],
    out_dir: str | Path,
    *,
    history_hash: str,
    feature_set_version: str = FEATURE_SET_VERSION,
    built_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Path]:
    """Write each table as ``out_dir/<name>.parquet`` (``name`` may hold a sub-folder, e.g.
    ``snapshots/deals``) with its metadata; returns the written paths."""
    out_dir = Path(out_dir)
    built_at = built_at or datetime.now(UTC)
    written = {}
    for name, df in tables.items():
        meta = table_metadata(
            name,
            df,
            history_hash=history_hash,
            feature_set_version=feature_set_version,
            built_at=built_at,
            **extra,
        )
        path = out_dir / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(df, preserve_index=False)
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[METADATA_KEY] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(schema_meta)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        side = path.with_suffix(".json")
        side_tmp = side.with_name(f".{side.name}.tmp-{os.getpid()}")
        side_tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(side_tmp, side)
        written[name] = path
    return written


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of one feature table file (without reading its rows)."""
    raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(
            f"{path} is not a SalesPilot feature table (no '{METADATA_KEY.decode()}' metadata)"
        )
    return json.loads(raw)


def read_feature_table(features_dir: str | Path, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(rows, metadata)`` of ``features_dir/<name>.parquet``; categories come back as category."""
    path = Path(features_dir) / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(
            f"no feature table {name!r} in {features_dir}: run `salespilot features --data DIR` first"
        )
    return pd.read_parquet(path), read_metadata(path)


def latest_snapshot(features_dir: str | Path, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows to score "now": ``snapshots/<name>`` if built, else the latest as_of of ``<name>``.

    Label columns are dropped: serving must never see them.
    """
    features_dir = Path(features_dir)
    snap = features_dir / SNAPSHOTS_DIR / f"{name}.parquet"
    if snap.exists():
        df, meta = read_feature_table(features_dir / SNAPSHOTS_DIR, name)
    else:
        df, meta = read_feature_table(features_dir, name)
        if len(df):
            df = df[df["as_of"] == df["as_of"].max()].reset_index(drop=True)
    labels = [c for c in df.columns if c.startswith("label_")]
    return df.drop(columns=labels), meta

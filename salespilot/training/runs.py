"""What ``salespilot features``/``train`` and the ``build_features``/``train_models`` flows share.

A command is its flow's twin, not its copy: both ask :func:`feature_table_plans` which tables
to build, with each model's own label horizon and required tables, and both train a model
through :func:`train_named` and report a failure with :func:`failure_report`. The commands
add progress bars and tables; the flows add partitions, caching and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from salespilot.features.history import History
from salespilot.models import SPECS, get_spec
from salespilot.models.spec import ModelSpec
from salespilot.settings import Settings
from salespilot.training.train import MissingTablesError, TrainResult, horizon_spec, train_model

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

#: the feature tables, in the order the models need them
FEATURE_TABLES: tuple[str, ...] = tuple(dict.fromkeys(spec.table for spec in SPECS.values()))


@dataclass(frozen=True)
class TablePlan:
    """One feature table to build: the model it feeds (with its horizon), or why it is skipped."""

    table: str
    spec: ModelSpec
    skipped: str | None = None

    @property
    def horizon_days(self) -> int:
        return self.spec.horizon_days


def feature_table_plans(
    history: History,
    settings: Settings,
    tables: Iterable[str] | None = None,
    *,
    horizon_days: int | None = None,
) -> list[TablePlan]:
    """The tables to build from ``history`` (default all), each labelled with the horizon its
    model trains on (``horizon_days``, else the ``horizon_days`` setting, else the spec's own),
    skipped with a message when the history lacks a table the model needs."""
    wanted = list(tables) if tables is not None else list(FEATURE_TABLES)
    unknown = [t for t in wanted if t not in FEATURE_TABLES]
    if unknown:
        raise ValueError(
            f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(FEATURE_TABLES)}"
        )
    plans = []
    for table in wanted:
        spec = next(s for s in SPECS.values() if s.table == table)
        explicit = horizon_days if spec.horizon_applies else None
        spec = horizon_spec(spec, settings, explicit)
        missing = history.missing_tables(spec.required_tables)
        where = f" to {history.source}" if history.source else ""
        skipped = (
            f"needs the {', '.join(missing)} table: add "
            + ", ".join(f"{m}.csv" for m in missing)
            + where
            if missing
            else None
        )
        plans.append(TablePlan(table, spec, skipped))
    return plans


def stored_frame(
    table: str, features_dir: str | Path | None, history_hash: str, horizon_days: int
) -> pd.DataFrame | None:
    """The persisted feature table when it was built from this very history with labels of
    this horizon, else None (the model then builds its own)."""
    if not features_dir:
        return None
    from salespilot.features.store import FeatureFolderError, read_feature_table

    try:
        frame, meta = read_feature_table(features_dir, table)
    except FileNotFoundError:
        return None
    except FeatureFolderError as exc:  # a build was interrupted: build a table of our own
        log.warning("not reusing the stored %s table: %s", table, exc)
        return None
    same = meta.get("history_hash") == history_hash and meta.get("horizon_days") == horizon_days
    return frame if same else None


def train_named(
    name: str,
    history: History,
    settings: Settings,
    *,
    params: dict[str, Any] | None = None,
    horizon_days: int | None = None,
    exclude_features: tuple[str, ...] = (),
    features_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train model ``name`` on ``history``, reusing the stored feature table of ``features_dir``
    when it was built from this history with this model's horizon; ``exclude_features`` are
    left out of its features (``train --exclude``)."""
    spec = get_spec(name)
    explicit = horizon_days if spec.horizon_applies else None
    resolved = horizon_spec(spec, settings, explicit)
    history_hash = history.content_hash()
    frame = stored_frame(resolved.table, features_dir, history_hash, resolved.horizon_days)
    return train_model(
        spec,
        history,
        settings,
        params=params or None,
        frame=frame,
        history_hash=history_hash,
        horizon_days=explicit,
        exclude_features=exclude_features,
        progress=progress,
    )


def failure_report(exc: BaseException) -> dict[str, str]:
    """How a model that did not train is reported: ``skipped`` (the history lacks what it
    needs; not a failure) or ``error`` (with the readable message)."""
    if isinstance(exc, MissingTablesError):
        return {"skipped": str(exc)}
    if isinstance(exc, KeyError) and exc.args:
        return {"error": str(exc.args[0])}
    if isinstance(exc, ValueError):  # not enough data, a split that cannot be made, bad params
        return {"error": str(exc)}
    return {"error": f"{type(exc).__name__}: {exc}"}

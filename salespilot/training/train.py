"""``train_model``: one model from a history to a registered, judged MLflow version.

Reads like a table of contents: check the tables, build the labelled feature table, fit and
evaluate (:mod:`~salespilot.training.core`), log the run, register, decide champion or
challenger (:mod:`~salespilot.training.tracking`, :mod:`~salespilot.training.promotion`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salespilot.features.pit import decided_at_once, observed_end
from salespilot.models.spec import ModelSpec
from salespilot.settings import Settings
from salespilot.training import promotion, tracking
from salespilot.training.core import Evaluation, OracleFn, SlotFn, fit_and_evaluate, summary

if TYPE_CHECKING:
    from salespilot.features.history import History

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class MissingTablesError(ValueError):
    """The history lacks a table the model needs; the message says which to add."""


class UnknownFeatureError(ValueError):
    """``train --exclude`` named a feature the model does not have; the message says which,
    and the close names."""


def check_excluded(spec: ModelSpec, offered: Mapping[str, str], exclude: Iterable[str]) -> None:
    """Raise :class:`UnknownFeatureError` when ``exclude`` names a feature that is neither one
    of ``spec``'s nor one of the customer's own fields ``offered`` (a mistyped name would
    otherwise leave the field in without a word)."""
    from salespilot.features.names import did_you_mean

    known = [*spec.features, *offered]
    unknown = [f for f in exclude if f not in known]
    if not unknown:
        return
    hints = {f: did_you_mean(f, known) for f in unknown}
    named = [f"{f!r}" + (f" ({hint})" if hint else "") for f, hint in hints.items()]
    raise UnknownFeatureError(
        f"no feature {', '.join(named)} to exclude; give feature names as the "
        "warnings write them (a customer's own field as custom_<name>); the run's features.json "
        "lists them all"
    )


@dataclass
class TrainResult:
    """What one ``train_model`` call produced and decided."""

    name: str
    evaluation: Evaluation
    version: str | None = None
    champion: bool = False
    reason: str = ""
    run_id: str | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    excluded_features: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON for this model: metrics, baselines, oracle, version, champion, ..."""
        out = summary(self.evaluation)
        out.update(
            {
                "version": self.version,
                "champion": self.champion,
                "reason": self.reason,
                "run_id": self.run_id,
                "excluded_features": list(self.excluded_features),
            }
        )
        return out


def horizon_spec(spec: ModelSpec, settings: Settings, horizon_days: int | None = None) -> ModelSpec:
    """``spec`` with the label horizon the user set: ``horizon_days`` (``train --horizon-days``),
    else the settings' ``horizon_days[spec.name]``, else the spec's own. A model without a
    horizon (contact time) is returned as it is unless one is asked of it explicitly."""
    days = horizon_days if horizon_days is not None else settings.horizon_days.get(spec.name)
    if days is None or (horizon_days is None and not spec.horizon_applies):
        return spec
    return spec.with_horizon(days)


def check_tables(spec: ModelSpec, history: History) -> None:
    """Raise :class:`MissingTablesError` when ``history`` lacks a table ``spec`` needs, or
    its tables hold no outcome to learn from (the same message ``validate`` shows)."""
    missing = history.missing_tables(spec.required_tables)
    if missing:
        where = f" to {history.source}" if history.source else ""
        raise MissingTablesError(
            f"{spec.name} skipped: the history has no {', '.join(missing)} table; add "
            + ", ".join(f"{m}.csv (or {m}.parquet)" for m in missing)
            + where
        )
    from salespilot.features.training_sets import outcome_gap

    gap = outcome_gap(history, spec.table, decision_rows=spec.rows == "decision")
    if gap is not None:
        raise MissingTablesError(f"{spec.name} cannot be trained: {gap}")


def spec_for_history(spec: ModelSpec, history: History | None) -> ModelSpec:
    """``spec`` on the rows the history's folder chose for it (``model_rows.json``, written
    by ``salespilot import`` from the mapping's ``models:``): the grid or decision-time rows."""
    from salespilot.features.model_rows import read_model_rows

    choice = read_model_rows(history.source if history is not None else None).get(spec.name)
    if choice is None:
        return spec
    return dataclasses.replace(
        spec, rows=choice.rows, decision_at=choice.decision_at or spec.decision_at
    )


def declared_custom_features(spec: ModelSpec, history: History) -> dict[str, str]:
    """A customer's own fields declared in the history's ``custom_fields.json`` (written by
    ``salespilot import``) that ``spec``'s feature table carries: column -> kind."""
    from salespilot.features.custom_fields import model_custom_features, read_custom_fields

    return model_custom_features(spec.table, read_custom_fields(history.source))


def truth_dir(history: History | None) -> Path | None:
    """The demo generator's ``truth/`` folder next to the history's tables, if any."""
    if history is None or history.source is None:
        return None
    path = Path(history.source) / "truth"
    return path if path.is_dir() else None


_DATASETS: dict[tuple, pd.DataFrame] = {}


def _cached_dataset(spec: ModelSpec, history: History, history_hash: str) -> pd.DataFrame:
    """``build_dataset`` memoised on the history's content hash: a retrain with other
    parameters in the same process (CLI tests, notebooks) reuses the feature table."""
    key = (history_hash, spec.table, spec.horizon_days, spec.grid_freq, spec.time_column)
    key += (spec.rows, spec.decision_at, observed_end(history))  # a stated end changes the labels
    if key not in _DATASETS:
        if len(_DATASETS) >= 4:
            _DATASETS.pop(next(iter(_DATASETS)))
        _DATASETS[key] = build_dataset(spec, history)
    return _DATASETS[key]


def build_dataset(spec: ModelSpec, history: History) -> pd.DataFrame:
    """The feature table of ``spec`` built from ``history`` (weekly ``as_of`` grid), with its
    labels: NaN where the label is unknown (training leaves those rows out as the unlabelled
    end).

    Snapshot rows whose horizon reaches past the end of the history are unlabelled even when
    their outcome happens to be known (the deal closed early): keeping only those would bias
    the latest period towards quick outcomes.
    """
    from salespilot.features import training_sets

    if spec.rows == "decision":  # one row per entity at its decision time; NaN labels: unknown
        return training_sets.build_decision_set(
            history, spec.table, spec.horizon_days, at=spec.decision_at
        )
    grid = training_sets.as_of_grid(history, freq=spec.grid_freq)
    frame = training_sets.build_training_set(history, spec.table, grid, spec.horizon_days)
    return observed_horizon_rows(spec, frame, history)


def observed_horizon_rows(spec: ModelSpec, frame: pd.DataFrame, history: History) -> pd.DataFrame:
    """``frame`` with the label unknown (NaN) where the label horizon reaches past the
    history's end (``observed_until``, else the last event); attempts, and rows all decided at
    their own decision time (:func:`~salespilot.features.pit.decided_at_once`): as they are."""
    frame = frame.reset_index(drop=True)
    if not spec.horizon_applies or spec.time_column not in frame.columns:
        return frame
    if "resolved_at" in frame.columns and decided_at_once(
        frame[spec.time_column], frame["resolved_at"]
    ):
        return frame
    past = frame[spec.time_column] + pd.Timedelta(days=spec.horizon_days) > observed_end(history)
    if past.any() and spec.label in frame.columns:
        frame = frame.copy()
        frame.loc[past, spec.label] = np.nan
    return frame


def warm_up_ids(spec: ModelSpec, history: History | None) -> pd.Series | None:
    """The entity ids of the candidate rows the grid's warm-up left out (decision rows: none)."""
    from salespilot.features import training_sets

    if history is None or spec.rows == "decision":
        return None
    rows = training_sets.warm_up_rows(history, spec.table, spec.grid_freq)
    column = training_sets.ENTITY_COLUMNS[spec.table]
    return rows[spec.entity if spec.entity in rows.columns else column]


def custom_features(spec: ModelSpec, frame: pd.DataFrame) -> dict[str, str]:
    """A customer's own fields the feature builders carried in as ``custom_<name>`` columns."""
    out = {}
    for col in frame.columns:
        if col.startswith("custom_") and col not in spec.features:
            kind = "categorical" if isinstance(frame[col].dtype, pd.CategoricalDtype) else "numeric"
            out[col] = kind
    return out


def feature_set_version() -> str:
    try:
        from salespilot.features.training_sets import FEATURE_SET_VERSION
    except ImportError:  # the feature builders are not installed: a synthetic frame
        return "unknown"
    return str(FEATURE_SET_VERSION)


def _frame_hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=False).values.tobytes()
    ).hexdigest()[:16]


def train_model(
    spec: ModelSpec,
    history: History | None,
    settings: Settings,
    *,
    params: Mapping[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
    oracle: OracleFn | None = None,
    slots: SlotFn | None = None,
    extra_features: Mapping[str, str] | None = None,
    exclude_features: tuple[str, ...] | list[str] = (),
    figures: bool = True,
    progress: Progress | None = None,
    horizon_days: int | None = None,
    history_hash: str | None = None,
) -> TrainResult:
    """Train, evaluate, log, register and judge one model.

    ``history`` is a loaded :class:`~salespilot.features.history.History`; ``frame`` (optional)
    is an already built labelled feature table to use instead of building one. ``params``
    overrides LightGBM parameters; ``extra_features`` adds a customer's own columns
    (name -> ``"categorical"`` / ``"numeric"``), ``exclude_features`` drops some.
    ``horizon_days`` sets the label horizon (see :func:`horizon_spec`). ``history_hash`` is
    ``history.content_hash()`` when the caller has it already (hashing a big history costs).
    The oracle and the contact-time slot evaluation come from the history's ``truth/`` folder
    when there is one (or from ``oracle``/``slots`` when given).

    Raises :class:`MissingTablesError` (model skipped), :class:`~salespilot.training.checks.NotEnoughDataError`
    or :class:`~salespilot.training.split.SplitError` (too little history) with readable messages.
    """
    say = progress or (lambda msg: log.info(msg))
    spec = spec_for_history(horizon_spec(spec, settings, horizon_days), history)
    if params:
        from salespilot.training.fit import check_lightgbm_params

        check_lightgbm_params(params)
        spec = spec.with_params(**params)
    if extra_features is None and history is not None:
        extra_features = declared_custom_features(spec, history)
    if extra_features is not None:  # else a bare frame's custom columns are found below
        check_excluded(spec, extra_features, exclude_features)
    if extra_features or exclude_features:
        spec = spec.with_features(extra=extra_features, exclude=exclude_features)
    if history is not None:
        check_tables(spec, history)
    if history_hash is None and history is not None:
        history_hash = history.content_hash()
    if frame is None:
        if history is None:
            raise ValueError("train_model needs a history or a frame")
        say(f"{spec.name}: building the {spec.table} feature table")
        frame = _cached_dataset(spec, history, history_hash)
    elif history is not None:  # a stored feature table: same rule as a freshly built one
        frame = observed_horizon_rows(spec, frame, history)
    custom = custom_features(spec, frame)
    if custom:
        say(f"{spec.name}: using the customer's own fields {', '.join(custom)}")
        spec = spec.with_features(
            extra=custom,
            exclude=exclude_features,
            readable={c: f"Custom field: {c.removeprefix('custom_')}" for c in custom},
        )
    truth = truth_dir(history)
    if oracle is None and truth is not None:
        from salespilot.training.oracle import oracle_for

        oracle = oracle_for(spec, truth, history)
    if (
        slots is None
        and spec.slot_evaluation is not None
        and truth is not None
        and history is not None
    ):
        from salespilot.training.oracle import slot_evaluator

        slots = slot_evaluator(spec, truth, history)

    from salespilot.training.distributed import training_client

    where = "" if settings.training_cluster == "none" else f" on {settings.training_cluster}"
    say(f"{spec.name}: fitting LightGBM on {len(frame):,} rows{where}")
    with training_client(settings) as client:
        ev = fit_and_evaluate(
            spec,
            frame,
            oracle=oracle,
            slots=slots,
            client=client,
            warm_up=warm_up_ids(spec, history),
        )

    say(f"{spec.name}: logging the run and registering the model")
    history_hash = history_hash or _frame_hash(frame)
    run_id, version = tracking.log_run(
        ev,
        settings=settings,
        history_hash=history_hash,
        feature_set_version=feature_set_version(),
        figures=figures,
        extra_tags={
            "training_cluster": settings.training_cluster,
            **({"excluded_features": ",".join(exclude_features)} if exclude_features else {}),
            **({"data_dir": str(history.source)} if history is not None and history.source else {}),
        },
        progress=say,
    )
    try:
        becomes, reason, champ_metrics = promotion.decide_promotion(ev, settings, version)
        if becomes:
            promotion.promote(spec.name, version, settings=settings, reason=reason)
        else:
            promotion.mark_challenger(spec.name, version, settings=settings, reason=reason)
    except Exception as exc:  # registered but not judged: never to be promoted or served
        tracking.mark_failed(
            tracking.client(settings), spec.name, version, f"judging it failed: {exc}"
        )
        raise
    say(
        f"{spec.name}: v{version} {'is the new champion' if becomes else 'stays challenger'} ({reason})"
    )
    return TrainResult(
        name=spec.name,
        evaluation=ev,
        version=version,
        champion=becomes,
        reason=reason,
        run_id=run_id,
        champion_metrics=champ_metrics,
        excluded_features=tuple(exclude_features),
    )

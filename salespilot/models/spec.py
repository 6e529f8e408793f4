"""What a model *is*, declared once: the frozen :class:`ModelSpec` every model module fills in.

A spec is data, not code: the training machinery (:mod:`salespilot.training`) reads it to know
which feature table to build, which columns to feed LightGBM, how to judge a new version and
which no-model rule to put beside it. Serving reads the readable names from the logged model,
which copies them from the spec at training time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

RuleKind = Literal["per_category_rate", "monotone_score", "usual_hour"]


@dataclass(frozen=True)
class BaselineRule:
    """The rule a sales team uses without a model, scored on the same test rows.

    ``per_category_rate``: the probability attached to each value of ``column`` (a CRM's fixed
    probability per stage), taken as that value's positive rate on the training period.
    ``monotone_score``: ``column`` alone ranks the rows (days since last contact); turned into a
    probability by isotonic regression on the training period so calibration metrics are fair.
    ``usual_hour``: the hour ``column`` (the rep) usually calls; an attempt scores the training
    rate of "at the usual hour" versus "not".
    """

    name: str
    kind: RuleKind
    column: str
    description: str


@dataclass(frozen=True)
class SlotEvaluation:
    """How to judge a contact-time model by the slot it recommends (hour-of-week, local time)."""

    contact_column: str = "contact_id"
    rep_column: str = "rep_id"
    hour_column: str = "local_hour"
    weekday_column: str = "local_weekday"
    channel: str = "call"
    truth_probability: str = "p_connect_call"
    max_contacts: int = 150


@dataclass(frozen=True)
class ModelSpec:
    """A model, declaratively: entity, label, horizon, features, LightGBM params, promotion rule.

    ``table`` names the feature table :func:`salespilot.features.training_sets.build_training_set`
    builds; ``time_column`` is the point in time a row is known at (its ``as_of``). Every feature
    must have a readable name: explanations show those, never raw column names.
    """

    name: str
    description: str
    entity: str
    table: str
    label: str
    horizon_days: int
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    readable_names: Mapping[str, str]
    params: Mapping[str, Any]
    required_tables: tuple[str, ...]
    baseline_rule: BaselineRule
    time_column: str = "as_of"
    promotion_metric: str = "roc_auc"
    promotion_margin: float = 0.002
    ece_tolerance: float = 0.01
    min_examples_per_class: int = 30
    min_eval_examples_per_class: int = 5
    suspicious_auc: float = 0.97
    leak_auc: float = 0.95
    num_boost_round: int = 400
    early_stopping_rounds: int = 30
    #: ``False``: the early-stopped booster (trained on the training period) is served, with
    #: the calibrator fitted on its own scores of the validation period. ``True``: after the
    #: validation period has chosen the number of trees, refit on training + validation with
    #: that many trees scaled to the rows (the newest labelled weeks in the trees too); its
    #: calibrator then learns from validation scores of boosters of the same configuration that
    #: did not see those rows (four more fits). The test period stays untouched either way.
    refit_on_validation: bool = False
    grid_freq: str = "W-MON"
    #: ``grid``: each entity scored at every snapshot of the ``grid_freq`` grid while open (a
    #: pipeline with stage history); ``decision``: scored once, at its own decision time
    #: (``decision_at``; None: the table's own - a lead at its creation, a call at its start,
    #: a customer at the snapshot date) - the shape of a flat lead list, call list or churn
    #: snapshot. A history's ``model_rows.json`` (the mapping's ``models:``) may choose it.
    rows: Literal["grid", "decision"] = "grid"
    #: False when the label is the row's own immediate outcome (a call connected): no horizon
    #: to set, ``horizon_days`` is unused
    horizon_applies: bool = True
    decision_at: str | None = None
    slot_evaluation: SlotEvaluation | None = None
    #: feature -> +1 (never lowers the score when it grows) or -1 (never raises it): LightGBM
    #: monotone constraints, so behaviour a rep can check holds (a fresh reply never hurts)
    monotone: Mapping[str, int] = field(default_factory=dict)
    positive_name: str = "positive"
    negative_name: str = "negative"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [f for f in self.features if f not in self.readable_names]
        if missing:
            raise ValueError(f"{self.name}: features without a readable name: {missing}")
        bad = {f: v for f, v in self.monotone.items() if f in self.categorical or v not in (-1, 1)}
        if bad:
            raise ValueError(
                f"{self.name}: monotone constraints must be +1/-1 on numeric features: {bad}"
            )
        stray = [c for c in self.categorical if c not in self.features]
        if stray:
            raise ValueError(f"{self.name}: categorical features not in features: {stray}")
        # Frozen means frozen: callers cannot mutate the shared spec's params by accident.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "readable_names", MappingProxyType(dict(self.readable_names)))

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(f for f in self.features if f not in self.categorical)

    def with_params(self, **overrides: Any) -> ModelSpec:
        """The same spec with some LightGBM parameters replaced (``--params k=v``)."""
        return dataclasses.replace(self, params={**self.params, **overrides})

    def with_horizon(self, days: int) -> ModelSpec:
        """The same spec with another label horizon (``train --horizon-days``, the
        ``horizon_days`` setting): labels look ``days`` ahead of each row's time and the time
        split's embargo is as long."""
        if not self.horizon_applies:
            raise ValueError(
                f"{self.name} has no label horizon (its label is the row's own outcome)"
            )
        if int(days) != days or days < 1:
            raise ValueError(f"{self.name}: a horizon is a whole number of days >= 1, got {days}")
        return dataclasses.replace(self, horizon_days=int(days))

    def horizon_of(self, model: Any | None) -> int | None:
        """The horizon a trained version of this model looks ahead: recorded in its metadata
        at training time (the spec's own for a version from before horizons could be set);
        None when the model has no horizon."""
        if not self.horizon_applies:
            return None
        metadata = getattr(model, "metadata", None) or {}
        return int(metadata.get("horizon_days", self.horizon_days))

    def with_features(
        self,
        *,
        extra: Mapping[str, str] | None = None,
        exclude: tuple[str, ...] | list[str] = (),
        readable: Mapping[str, str] | None = None,
    ) -> ModelSpec:
        """The same spec with a customer's own fields added and/or some features excluded.

        ``extra`` maps a column to ``"categorical"`` or ``"numeric"``; ``exclude`` drops columns
        (fields filled in only after the outcome, such as a loss reason).
        """
        extra = dict(extra or {})
        bad = {k: v for k, v in extra.items() if v not in ("categorical", "numeric")}
        if bad:
            raise ValueError(f"feature kinds must be 'categorical' or 'numeric', got {bad}")
        features = [f for f in self.features if f not in exclude]
        features += [f for f in extra if f not in features and f not in exclude]
        categorical = [c for c in self.categorical if c in features]
        categorical += [
            c
            for c, k in extra.items()
            if k == "categorical" and c in features and c not in categorical
        ]
        names = dict(self.readable_names)
        for f in extra:
            names.setdefault(f, f.replace("_", " ").capitalize())
        names.update(readable or {})
        return dataclasses.replace(
            self,
            features=tuple(features),
            categorical=tuple(categorical),
            readable_names=names,
        )

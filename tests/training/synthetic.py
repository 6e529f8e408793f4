"""Synthetic labelled feature tables with a known signal, for the training-machinery tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salespilot.models._params import BASE_PARAMS
from salespilot.models.spec import BaselineRule, ModelSpec

STAGES = ("prospecting", "qualified", "proposal", "negotiation")


def synthetic_frame(
    n: int = 6000, *, seed: int = 0, days: int = 420, scale: float = 1.0, leak: bool = False
) -> pd.DataFrame:
    """Deal-like rows on a weekly ``as_of`` grid; ``p_true`` is the probability behind the label.

    ``scale`` multiplies the true log-odds (a miscalibrated fit is easy to provoke with it);
    ``leak`` adds a column equal to the label plus a little noise.
    """
    rng = np.random.default_rng(seed)
    weeks = days // 7
    as_of = pd.Timestamp("2025-01-06") + pd.to_timedelta(rng.integers(0, weeks, n) * 7, unit="D")
    stage_idx = rng.integers(0, len(STAGES), n)
    touch = rng.exponential(10, n)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    noise = rng.normal(size=n)
    logit = -1.0 + 0.6 * stage_idx - 0.08 * touch + 1.0 * x1 + 0.5 * x2 * (x1 > 0)
    p = 1 / (1 + np.exp(-scale * logit))
    y = (rng.random(n) < p).astype(int)
    frame = pd.DataFrame(
        {
            "opportunity_id": [f"O{i % 900:04d}" for i in range(n)],
            "as_of": as_of,
            "stage": pd.Categorical([STAGES[i] for i in stage_idx]),
            "days_since_last_touch": touch,
            "x1": x1,
            "x2": x2,
            "noise": noise,
            "label_won": y,
            "p_true": p,
        }
    )
    frame.loc[rng.random(n) < 0.05, "x2"] = np.nan
    if leak:
        frame["loss_reason_code"] = y + rng.normal(scale=0.05, size=n)
    return frame.sort_values("as_of", kind="stable").reset_index(drop=True)


def timing_only_frame(n: int = 4000, *, seed: int = 0) -> pd.DataFrame:
    """:func:`synthetic_frame` rows where ``x1`` and the deal's age tell only *whether a deal
    closes within the horizon*; among the deals that close, won or lost is a coin flip."""
    frame = synthetic_frame(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    frame["deal_age_days"] = rng.exponential(40, n)
    logit = -0.3 + 1.5 * frame["x1"] - 0.02 * frame["deal_age_days"]
    closed = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame["label_closed"] = closed.astype(float)
    frame["label_won"] = (closed & (rng.random(n) < 0.5)).astype(int)
    return frame.drop(columns="p_true")


def timing_spec() -> ModelSpec:
    """:func:`synthetic_spec` with the deal's age and the won-against-lost check of the win
    model (``closed_label``, ``age_feature``)."""
    base = synthetic_spec()
    return synthetic_spec(
        features=(*base.features, "deal_age_days"),
        readable_names={**base.readable_names, "deal_age_days": "Days since the deal was created"},
        extra={"closed_label": "label_closed", "age_feature": "deal_age_days"},
    )


def synthetic_spec(**overrides) -> ModelSpec:
    features = ("stage", "days_since_last_touch", "x1", "x2", "noise")
    names = {
        "stage": "Current stage",
        "days_since_last_touch": "Days since the last touch",
        "x1": "Signal one",
        "x2": "Signal two",
        "noise": "Pure noise",
    }
    kw = dict(
        name="synthetic_win",
        description="synthetic",
        entity="opportunity_id",
        table="deals",
        label="label_won",
        horizon_days=14,
        features=features,
        categorical=("stage",),
        readable_names=names,
        params={**BASE_PARAMS, "learning_rate": 0.1},
        required_tables=("opportunities",),
        baseline_rule=BaselineRule("stage_rule", "per_category_rate", "stage", "per stage"),
        num_boost_round=200,
        early_stopping_rounds=20,
    )
    kw.update(overrides)
    return ModelSpec(**kw)

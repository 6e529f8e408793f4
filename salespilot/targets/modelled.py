"""Where the p_win of open deals comes from: the :class:`Scorer` type, and a LightGBM
win-probability model trained only on data before ``as_of`` (:func:`lightgbm_scorer`).

A scorer is the champion model (:func:`salespilot.targets.service.champion_scorer`), the
served champion's scores (the API), the history's empirical win rates
(:data:`salespilot.targets.service.empirical_scorer`) or a model refitted per period (here).

For the backtest: the champion in the registry was trained on everything, so replaying a past
quarter with it would leak that quarter's outcomes. This scorer fits, for each ``as_of``, a
light version of the ``win_probability`` spec (same features, categoricals and LightGBM
parameters, via the training package's ``fit_lightgbm`` and ``Calibrator``) on deal snapshots
whose label window closed before ``as_of``, and scores the deals open at ``as_of``. It skips
MLflow logging and registration, which is what makes it cheap enough to run once per period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salespilot.features.history import History

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scorer:
    """The p_win of the deals open at ``as_of`` and what it means.

    ``predict(history, as_of)`` -> ``DataFrame(opportunity_id, p_win)``; calling the scorer
    does the same. ``source`` says where p_win comes from in words (``champion v3``,
    ``empirical``); ``horizon_days`` what it means: "won within N days" (None: won at all,
    the empirical rates); ``version`` the registered model version and ``features`` its
    feature names, when a model scores.
    """

    predict: Callable[[History, pd.Timestamp], pd.DataFrame]
    source: str = "empirical"
    horizon_days: float | None = None
    version: str | None = None
    features: tuple[str, ...] = ()

    def __call__(self, history: History, as_of: pd.Timestamp) -> pd.DataFrame:
        return self.predict(history, as_of)


def lightgbm_scorer(
    *, horizon_days: int | None = None, freq: str = "2W-MON", valid_share: float = 0.25
) -> Scorer:
    """A :class:`Scorer` fitting the win spec per as_of.

    ``p_win`` means "won within ``horizon_days``" (default: the spec's horizon); the scorer
    says so (``horizon_days``) so the forecast can convert it. The backtest sets the horizon to
    the replayed period's length, so the model predicts "won inside the period" directly and
    the history's close-timing estimate cancels out.
    """
    from salespilot.models.win_probability import SPEC

    horizon = int(horizon_days or SPEC.horizon_days)

    def score(history: History, as_of: pd.Timestamp) -> pd.DataFrame:
        from salespilot.features.deals import deal_snapshot
        from salespilot.features.training_sets import as_of_grid, build_training_set
        from salespilot.training.fit import choose_calibration, fit_lightgbm
        from salespilot.training.scoring import Calibrator

        as_of = pd.Timestamp(as_of)
        # Labels must be fully observed before as_of: the grid stops a horizon earlier.
        grid = as_of_grid(history, end=as_of - pd.Timedelta(days=horizon), freq=freq)
        frame = build_training_set(history, "deals", grid, horizon_days=horizon)
        frame = frame.dropna(subset=[SPEC.label])
        rows = deal_snapshot(history, as_of, horizon_days=horizon)
        if len(grid) < 4 or frame[SPEC.label].nunique() < 2 or rows.empty:
            log.warning("too little labelled history before %s for a model: empirical p_win", as_of)
            from salespilot.targets.service import empirical_scorer

            return empirical_scorer(history, as_of)
        cut = grid[int(len(grid) * (1 - valid_share))]
        train, valid = frame[frame["as_of"] < cut], frame[frame["as_of"] >= cut]
        features, categorical = _feature_columns(frame)
        booster, categories = fit_lightgbm(
            train,
            train[SPEC.label].to_numpy(int),
            valid,
            valid[SPEC.label].to_numpy(int),
            features=features,
            categorical=categorical,
            params=dict(SPEC.params),
            num_boost_round=500,
            early_stopping_rounds=30,
        )
        from salespilot.training.scoring import prepare_features

        def raw(df: pd.DataFrame) -> np.ndarray:
            x = prepare_features(
                df.astype({c: "object" for c in categorical}), features, categories
            )
            return booster.predict(x, raw_score=True)

        y_valid = valid[SPEC.label].to_numpy(int)
        method, _ = choose_calibration(raw(valid), y_valid)
        calibrator = Calibrator(method).fit(raw(valid), y_valid)
        p = calibrator.predict(raw(rows))
        return pd.DataFrame({"opportunity_id": rows["opportunity_id"].to_numpy(), "p_win": p})

    return Scorer(
        predict=score,
        source=f"lightgbm refit per period ({horizon}-day label)",
        horizon_days=horizon,
        features=tuple(SPEC.features),
    )


def _feature_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The win spec's features and categoricals (the feature builder makes every one of them:
    tests/test_feature_names.py)."""
    from salespilot.models.win_probability import SPEC

    features = [f for f in SPEC.features if f in frame.columns]
    return features, [c for c in SPEC.categorical if c in features]

"""One batch call per model: probabilities, raw scores and SHAP contributions together.

Everything the API returns about a score (its probability, its explanation, the factors in
plain words) is read from a :class:`Scored` computed once per state load, so requests never
call the model on the hot path and explanations always match the score served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd


class ServingModel(Protocol):
    """What serving needs of a loaded model (``salespilot.training.load_model`` returns one)."""

    name: str
    version: str
    features: list[str]
    readable_names: dict[str, str]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...
    def raw_score(self, X: pd.DataFrame) -> np.ndarray: ...
    def contributions(self, X: pd.DataFrame) -> Any: ...


@dataclass(frozen=True)
class Scored:
    """Scores of one model for a batch of entities, row-aligned with ``ids``."""

    model: str
    version: str | None
    ids: np.ndarray
    proba: np.ndarray
    raw: np.ndarray
    contrib: np.ndarray  # (n, n_features) SHAP values in log-odds
    base: np.ndarray  # (n,) expected value
    features: list[str]
    readable: dict[str, str]
    values: pd.DataFrame  # the feature values scored, same order as ids
    index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, entity_id: str) -> int | None:
        return self.index.get(entity_id)


def split_contributions(contrib: Any, features: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a model's contributions to ``(per-feature matrix, base vector)``.

    Accepts LightGBM's ``pred_contrib`` layout (features then a last bias column), a DataFrame
    with the features plus a base column, or a ``(matrix, base)`` pair.
    """
    if isinstance(contrib, tuple):
        mat, base = contrib
        mat = np.asarray(mat, dtype=float)
        base = np.broadcast_to(np.asarray(base, dtype=float), (n,)).copy()
        return mat, base
    if isinstance(contrib, pd.DataFrame):
        base_col = next(
            (c for c in ("base_value", "expected_value", "bias", "base") if c in contrib.columns),
            None,
        )
        if base_col is None:
            raise ValueError("contributions frame has no base value column")
        return contrib[features].to_numpy(float), contrib[base_col].to_numpy(float)
    arr = np.asarray(contrib, dtype=float)
    return arr[:, :-1], arr[:, -1]


def score(model: ServingModel, rows: pd.DataFrame, id_col: str) -> Scored:
    """Score ``rows`` (feature snapshot rows, one per entity) with ``model``."""
    features = list(model.features)
    ids = rows[id_col].astype(str).to_numpy()
    n = len(rows)
    if n == 0:
        empty = np.zeros(0)
        return Scored(
            model.name, str(model.version), ids, empty, empty, np.zeros((0, len(features))),
            empty, features, dict(model.readable_names), rows.reindex(columns=features), {},
        )  # fmt: skip
    score_all = getattr(model, "score_all", None)
    if score_all is not None:  # one input matrix, one booster call
        proba, raw, contrib = score_all(rows)
    else:
        proba = model.predict_proba(rows)
        raw = model.raw_score(rows)
        contrib = model.contributions(rows)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 2:
        proba = proba[:, -1]
    raw = np.asarray(raw, dtype=float).reshape(-1)
    mat, base = split_contributions(contrib, features, n)
    values = rows[features].reset_index(drop=True)
    return Scored(
        model=model.name,
        version=None if model.version is None else str(model.version),
        ids=ids,
        proba=proba,
        raw=raw,
        contrib=mat,
        base=base,
        features=features,
        readable=dict(getattr(model, "readable_names", {}) or {}),
        values=values,
        index={k: i for i, k in enumerate(ids)},
    )

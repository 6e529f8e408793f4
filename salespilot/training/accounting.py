"""Where every candidate row of a training run went: used in a period, or left out and why.

A candidate row is one the model could have been trained on: an entity at a snapshot of its
grid from the history's first day to its end (or at its decision time), before anything is
cut. Each lands in exactly one place, so ``used + left out = candidates`` for rows; distinct
entities are counted per place (one deal is in several weekly rows, and may be in training and
in the embargo), so they do not add up.

Reasons a row is left out:

- ``warm_up``: a snapshot in the first weeks of the history, before the look-back windows
  have anything behind them (the grid starts ``DEFAULT_WARMUP_DAYS`` in);
- ``unlabelled_end``: its label horizon reaches past the export's end (``observed_until``),
  or its outcome is not decided yet;
- ``embargo``: its label window overlaps the next period, so its outcome could leak into it;
- ``outside_periods``: labelled and outside every period and embargo gap (none, today: kept so
  the sum always holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PERIODS = ("train", "validation", "test")
REASONS = ("warm_up", "unlabelled_end", "embargo", "outside_periods")


@dataclass(frozen=True)
class Count:
    rows: int
    entities: int

    @classmethod
    def of(cls, ids: pd.Series | np.ndarray) -> Count:
        values = pd.Series(np.asarray(ids, dtype=object))
        return cls(rows=len(values), entities=int(values.nunique(dropna=True)))

    def to_json(self) -> dict[str, int]:
        return {"rows": self.rows, "entities": self.entities}


@dataclass(frozen=True)
class RowAccount:
    """Rows and distinct entities per period used and per reason left out."""

    entity: str
    candidates: Count
    used: dict[str, Count]
    left_out: dict[str, Count]

    def describe(self) -> str:
        """One sentence for messages: the rows (entities) each period used and each reason
        left out, e.g. in the "not enough data" error of ``train``."""

        def part(name: str, c: Count) -> str:
            return f"{name} {c.rows:,} ({c.entities:,} {self.entity})"

        used = ", ".join(part(k, v) for k, v in self.used.items())
        out = ", ".join(part(k.replace("_", " "), v) for k, v in self.left_out.items() if v.rows)
        return f"Rows of {self.candidates.rows:,} candidates: used in {used}; left out: " + (
            out or "none"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "candidates": self.candidates.to_json(),
            "used": {k: v.to_json() for k, v in self.used.items()},
            "left_out": {k: v.to_json() for k, v in self.left_out.items()},
        }


def account_rows(
    entity: str,
    rows: pd.DataFrame,
    split: Any,
    *,
    unlabelled: pd.Series,
    warm_up: pd.Series | None = None,
) -> RowAccount:
    """The account of one run: ``rows`` are the labelled rows ``split`` (a
    :class:`~salespilot.training.split.TimeSplit`) cut, ``unlabelled`` and ``warm_up`` the
    entity ids of the candidate rows left out before the split."""
    ids = rows[entity].to_numpy(dtype=object)
    masks = {"train": split.train, "validation": split.valid, "test": split.test}
    used = {k: Count.of(ids[m]) for k, m in masks.items()}
    in_period = split.train | split.valid | split.test
    embargo = split.embargo if split.embargo is not None else np.zeros(len(ids), dtype=bool)
    embargo = embargo & ~in_period
    warm = pd.Series([], dtype=object) if warm_up is None else warm_up
    left_out = {
        "warm_up": Count.of(warm),
        "unlabelled_end": Count.of(unlabelled),
        "embargo": Count.of(ids[embargo]),
        "outside_periods": Count.of(ids[~in_period & ~embargo]),
    }
    everything = np.concatenate(
        [ids, np.asarray(unlabelled, dtype=object), np.asarray(warm, dtype=object)]
    )
    return RowAccount(entity=entity, candidates=Count.of(everything), used=used, left_out=left_out)

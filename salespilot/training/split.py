"""Time-based train / validation / test split with an embargo of one label horizon.

Train on the past, validate on the next period (early stopping, calibration choice), test on
the latest period. Between periods sits a gap of ``horizon_days``: a row's label looks
``horizon_days`` into the future of its ``as_of``, so without the gap a training label could be
decided by events inside the validation or test period - the same deal's outcome leaking from
the test period into training. Every training row is strictly older than every validation row,
which is older than every test row, so no entity's future is ever in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class SplitError(ValueError):
    """The history is too short for a split with the required embargo."""


@dataclass(frozen=True)
class TimeSplit:
    """Boolean masks over the frame's rows and the boundaries that produced them."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    train_end: pd.Timestamp
    valid_start: pd.Timestamp
    valid_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    embargo_days: float
    #: rows left out because their label window overlaps the next period (None: none are)
    embargo: np.ndarray | None = None
    #: per cut (``"validation"``, ``"test"``) that falls among decisions made at one instant,
    #: how many share that instant: there the periods are a seeded draw, not earlier and later
    cut_ties: dict[str, int] = field(default_factory=dict)

    def cut_ties_warning(self, model: str) -> str | None:
        """What a user must know when a cut is a draw among simultaneous decisions."""
        if not self.cut_ties:
            return None
        n = int(self.train.sum() + self.valid.sum() + self.test.sum())
        if self.train_end == self.test_end:
            return (
                f"{model}: every decision is at one instant ({self.test_end.date()}): the "
                f"training, validation and test rows are a seeded random draw of the {n:,} rows, "
                "not earlier and later data; the test figures say how the model ranks rows like "
                "these, not how it will do on later ones (where rows have times of their own, "
                "map them: docs/import.md)"
            )
        cuts = ", ".join(
            f"the {cut} cut falls among {k:,} decisions at {self._cut_time(cut).date()}"
            for cut, k in self.cut_ties.items()
        )
        return f"{model}: {cuts}: there the periods are a seeded random draw, not a time order"

    def _cut_time(self, cut: str) -> pd.Timestamp:
        return self.test_start if cut == "test" else self.valid_start

    def describe(self) -> dict[str, str | int | float]:
        """The split as plain values, for MLflow params and the CLI."""
        return {
            "train_rows": int(self.train.sum()),
            "valid_rows": int(self.valid.sum()),
            "test_rows": int(self.test.sum()),
            "train_end": str(self.train_end),
            "valid_start": str(self.valid_start),
            "valid_end": str(self.valid_end),
            "test_start": str(self.test_start),
            "test_end": str(self.test_end),
            "embargo_days": self.embargo_days,
            **{f"{cut}_cut_ties": k for cut, k in self.cut_ties.items()},
        }


def time_split(
    times: pd.Series,
    *,
    horizon_days: float,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.2,
) -> TimeSplit:
    """Split rows by their point in time ``times`` (one ``as_of`` per row).

    The span left after the two embargo gaps is shared: ``test_fraction`` of it for the latest
    period (test), ``valid_fraction`` for the period before (validation), the rest for training.
    A training row satisfies ``as_of + horizon < valid_start``; a validation row
    ``as_of + horizon < test_start``.
    """
    t = pd.to_datetime(times).to_numpy()
    if len(t) == 0:
        raise SplitError("no labelled rows to split")
    t_min, t_max = pd.Timestamp(t.min()), pd.Timestamp(t.max())
    gap = pd.Timedelta(days=horizon_days)
    usable = (t_max - t_min) - 2 * gap
    if usable <= pd.Timedelta(0):
        raise SplitError(
            f"labelled rows span {(t_max - t_min).days} days ({t_min.date()} to {t_max.date()}); "
            f"a split needs more than two label horizons ({2 * horizon_days:g} days) plus "
            "train, validation and test periods - supply a longer history"
        )
    test_start = t_max - usable * test_fraction
    valid_end_excl = test_start - gap  # a validation row's label window ends before test_start
    valid_start = valid_end_excl - usable * valid_fraction
    train_end_excl = valid_start - gap
    ts = pd.Series(t)
    test = (ts >= test_start).to_numpy()
    valid = ((ts >= valid_start) & (ts < valid_end_excl)).to_numpy()
    train = (ts < train_end_excl).to_numpy()
    embargo = (ts < test_start).to_numpy() & ~valid & ~train
    return TimeSplit(
        train=train,
        valid=valid,
        test=test,
        train_end=pd.Timestamp(ts[train].max()) if train.any() else train_end_excl,
        valid_start=valid_start,
        valid_end=pd.Timestamp(ts[valid].max()) if valid.any() else valid_end_excl,
        test_start=test_start,
        test_end=t_max,
        embargo_days=float(horizon_days),
        embargo=embargo,
    )


def decision_split(
    times: pd.Series,
    resolved: pd.Series,
    *,
    groups: pd.Series | None = None,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.2,
) -> TimeSplit:
    """Split decision-time rows (one per entity, at its decision time) by their order in time.

    The latest ``test_fraction`` of decisions are the test period, the ``valid_fraction``
    before them validation, the rest training. Each entity has one row, so a later period
    never holds the same row again; the embargo is only as long as labels really overlap
    *within a group* (``groups``: the account of a deal or call): a training row is left out
    when its label was not yet known (``resolved``: the deal closed, or its horizon ended) at
    the start of the validation period and its account has a row there or later, a
    validation row likewise for the test period. Leaving out every unresolved row instead
    would keep only the quick outcomes next to each cut (won or lost fast, never "still
    open at the horizon"): a validation period of skewed win rate, and a skewed calibration.
    Without ``groups`` every row is its own group.

    Decisions made at the same instant (a churn snapshot: every customer at one date) are
    ordered by a seeded draw, so a cut through them is a cross-section: the rows at the cut's
    own instant stay on their side, since none of them was decided after the other.
    """
    t = pd.to_datetime(times).to_numpy("datetime64[ns]")
    r = pd.to_datetime(resolved).to_numpy("datetime64[ns]")
    n = len(t)
    if n == 0:
        raise SplitError("no labelled rows to split")
    order = np.lexsort((np.random.default_rng(0).permutation(n), t))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    test_pos = int(np.floor(n * (1 - test_fraction)))
    valid_pos = int(np.floor(n * (1 - test_fraction - valid_fraction)))
    if not 0 < valid_pos < test_pos < n:
        raise SplitError(
            f"{n} decisions cannot be cut into train, validation and test periods (too few rows)"
        )
    test_start, valid_start = t[order[test_pos]], t[order[valid_pos]]
    test = position >= test_pos
    later_test, later_valid = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if groups is not None:
        g = pd.Series(np.asarray(groups, dtype=object))
        later_test = g.isin(set(g[test])).to_numpy()
        later_valid = g.isin(set(g[position >= valid_pos])).to_numpy()
    overlaps_test = (r >= test_start) & (t < test_start) & later_test
    overlaps_valid = (r >= valid_start) & (t < valid_start) & later_valid
    valid = (position >= valid_pos) & ~test & ~overlaps_test
    train = (position < valid_pos) & ~overlaps_valid
    # how far before its cut the earliest row left out for an overlapping label was decided
    left_valid = overlaps_valid & (position < valid_pos)
    left_test = overlaps_test & (position >= valid_pos) & ~test
    reach = np.concatenate([(valid_start - t)[left_valid], (test_start - t)[left_test]])
    embargo = float(reach.max() / np.timedelta64(1, "D")) if reach.size else 0.0
    cut_ties = {}
    for cut, start, later in (
        ("validation", valid_start, position >= valid_pos),
        ("test", test_start, test),
    ):
        at = t == start
        if (at & later).any() and (at & ~later).any():  # a draw among them sets the sides
            cut_ties[cut] = int(at.sum())
    ts = pd.Series(t)
    return TimeSplit(
        train=train,
        valid=valid,
        test=test,
        train_end=pd.Timestamp(ts[train].max()) if train.any() else pd.Timestamp(valid_start),
        valid_start=pd.Timestamp(valid_start),
        valid_end=pd.Timestamp(ts[valid].max()) if valid.any() else pd.Timestamp(test_start),
        test_start=pd.Timestamp(test_start),
        test_end=pd.Timestamp(t.max()),
        embargo_days=embargo,
        embargo=~(train | valid | test),
        cut_ties=cut_ties,
    )

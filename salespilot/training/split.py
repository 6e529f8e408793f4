"""Time-based train / validation / test split with an embargo of one label horizon.

Train on the past, validate on the next period (early stopping, calibration choice), test on
the latest period. Between periods sits a gap of ``horizon_days``: a row's label looks
``horizon_days`` into the future of its ``as_of``, so without the gap a training label could be
decided by events inside the validation or test period - the same deal's outcome leaking from
the test period into training. Every training row is strictly older than every validation row,
which is older than every test row, so no entity's future is ever in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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
    test_fraction: float = 0.2,
    valid_fraction: float = 0.2,
) -> TimeSplit:
    """Split decision-time rows (one per entity, at its decision time) by their order in time.

    The latest ``test_fraction`` of decisions are the test period, the ``valid_fraction``
    before them validation, the rest training. The embargo is only as long as labels really
    overlap: a training row stays when its label was known (``resolved``: the deal closed,
    or its horizon ended) before the validation period starts, a validation row when its label
    was known before the test period.
    """
    t = pd.to_datetime(times).to_numpy()
    r = pd.to_datetime(resolved).to_numpy()
    if len(t) == 0:
        raise SplitError("no labelled rows to split")
    ordered = np.sort(t)
    n = len(t)
    test_start = pd.Timestamp(ordered[min(n - 1, int(np.floor(n * (1 - test_fraction))))])
    valid_start = pd.Timestamp(
        ordered[min(n - 1, int(np.floor(n * (1 - test_fraction - valid_fraction))))]
    )
    if not (ordered[0] < valid_start.to_datetime64() < test_start.to_datetime64()):
        raise SplitError(
            f"{n} decisions between {pd.Timestamp(ordered[0]).date()} and "
            f"{pd.Timestamp(ordered[-1]).date()} cannot be cut into train, validation and "
            "test periods (too few distinct decision times)"
        )
    test = t >= test_start.to_datetime64()
    valid = (t >= valid_start.to_datetime64()) & ~test & (r < test_start.to_datetime64())
    train = (t < valid_start.to_datetime64()) & (r < valid_start.to_datetime64())
    overlap = np.maximum(r[train | valid] - t[train | valid], np.timedelta64(0, "ns"))
    embargo = float(overlap.max() / np.timedelta64(1, "D")) if overlap.size else 0.0
    ts = pd.Series(t)
    return TimeSplit(
        train=train,
        valid=valid,
        test=test,
        train_end=pd.Timestamp(ts[train].max()) if train.any() else valid_start,
        valid_start=valid_start,
        valid_end=pd.Timestamp(ts[valid].max()) if valid.any() else test_start,
        test_start=test_start,
        test_end=pd.Timestamp(ordered[-1]),
        embargo_days=embargo,
        embargo=~(train | valid | test),
    )

"""Contact-time slot evaluation: is the slot the model recommends really a good one?

For a sample of contacts reached in the test period, the model scores every candidate slot
(hour-of-week in the contact's time zone, laid out by
:func:`salespilot.features.contacts.candidate_slots`) as of the start of the test period and
picks the best. The demo generator's true answer pattern (``truth/contact_profiles``) then
says how good that slot is, against the contact's truly best slot and against the hour the
rep usually calls (the rep's most frequent hour on their own clock, i.e. in UTC, shown in the
contact's local time).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from salespilot.models.spec import ModelSpec
from salespilot.training.core import SlotFn
from salespilot.training.evaluate import slot_metrics
from salespilot.training.scoring import SalesPilotModel

if TYPE_CHECKING:
    from salespilot.features.history import History

log = logging.getLogger(__name__)


def rep_usual_utc_hour(attempts: pd.DataFrame, rep_column: str, time_column: str) -> pd.Series:
    """Each rep's most frequent calling hour on the UTC clock (ties: the earliest hour)."""
    hours = pd.DataFrame(
        {"rep": attempts[rep_column], "hour": pd.to_datetime(attempts[time_column]).dt.hour}
    )
    counts = hours.groupby(["rep", "hour"]).size().rename("n").reset_index()
    counts = counts.sort_values(["rep", "n", "hour"], ascending=[True, False, True])
    return counts.drop_duplicates("rep").set_index("rep")["hour"]


def local_hour_of_utc_hour(utc_hour: int, timezone: str, day: pd.Timestamp) -> int:
    """The local hour in ``timezone`` of ``utc_hour`` o'clock UTC on ``day``."""
    t = pd.Timestamp(day).normalize() + pd.Timedelta(hours=int(utc_hour))
    try:
        return int(t.tz_localize("UTC").tz_convert(timezone).hour)
    except Exception:  # an unknown zone: the loader rejects those, but never fail evaluation
        return int(utc_hour)


def make_slot_evaluator(spec: ModelSpec, truth: Path, history: History) -> SlotFn | None:
    """A function ``(model, train, test) -> slot metrics`` for ``spec`` on ``history``."""
    slot = spec.slot_evaluation
    if slot is None:
        return None
    try:
        from salespilot.features.contacts import candidate_slots_for_contacts
        from salespilot.features.demo.truth import contact_profile

        profile = contact_profile(truth)
    except Exception as exc:
        log.warning("%s: no slot evaluation (%s)", spec.name, exc)
        return None
    timezones = (
        history.contacts.set_index("contact_id")["timezone"]
        if history.contacts is not None
        else pd.Series(dtype=str)
    )

    def evaluate(
        model: SalesPilotModel, train: pd.DataFrame, test: pd.DataFrame
    ) -> dict[str, float]:
        time_col = "occurred_at" if "occurred_at" in train.columns else spec.time_column
        calls = (
            test[test["channel"].astype(str) == slot.channel] if "channel" in test.columns else test
        )
        as_of = pd.Timestamp(test[spec.time_column].min()).normalize()
        # the rep who last called each contact in the test period is the one whose habit we judge
        last = calls.sort_values(spec.time_column).drop_duplicates(slot.contact_column, keep="last")
        rng = np.random.default_rng(0)
        if len(last) > slot.max_contacts:
            last = last.iloc[np.sort(rng.choice(len(last), slot.max_contacts, replace=False))]
        train_calls = (
            train[train["channel"].astype(str) == slot.channel]
            if "channel" in train.columns
            else train
        )
        usual_utc = rep_usual_utc_hour(train_calls, slot.rep_column, time_col)
        last = last[
            last[slot.rep_column].isin(usual_utc.index)
            & last[slot.contact_column].isin(timezones.index)
        ]
        if last.empty:
            return {}
        cand = candidate_slots_for_contacts(history, last[slot.contact_column].tolist(), as_of)
        if "channel" in cand.columns:
            cand = cand[cand["channel"].astype(str) == slot.channel]
        cand = cand.assign(_p=model.predict_proba(cand))
        best = cand.sort_values("_p", ascending=False, kind="stable").drop_duplicates(
            slot.contact_column
        )
        recs = (
            best[[slot.contact_column, slot.weekday_column, slot.hour_column]].to_numpy().tolist()
        )
        usual = [
            (contact, local_hour_of_utc_hour(usual_utc[rep], timezones[contact], as_of))
            for contact, rep in zip(last[slot.contact_column], last[slot.rep_column], strict=True)
        ]
        grids = [cand[[slot.weekday_column, slot.hour_column]]]
        if not recs:
            return {}
        c = slot.contact_column
        grid = pd.concat(grids).drop_duplicates()
        grid.columns = ["weekday", "hour"]
        return slot_metrics(
            pd.DataFrame(recs, columns=[c, "weekday", "hour"]),
            pd.DataFrame(usual, columns=[c, "hour"]),
            profile,
            contact_column=c,
            truth_probability=slot.truth_probability,
            slots=grid,
        )

    return evaluate

"""SHAP explanations in numbers (for data scientists) and in plain words (for reps)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from salespilot.serving.schemas import Contribution, ExplanationResponse, Factor, Factors
from salespilot.serving.scoring import Scored


def plain_value(value: Any) -> float | str | None:
    """A JSON-friendly feature value (numbers stay numbers, categories become text)."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if pd.isna(value):
        return None
    return str(value)


def _fmt(v: float | str | None) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, str):
        return v
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


_SINGULAR = {"replies": "reply", "touches": "touch", "days": "day", "hours": "hour"}


_ADJECTIVES = {"inbound", "outbound", "earlier", "other", "active", "open"}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _plural(word: str) -> bool:
    return word.endswith("s") and word.isalpha()


def _count_like(readable: str) -> bool:
    """ "Inbound replies in the last 7 days" reads well as "3 inbound replies ..."."""
    lower = readable.lower()
    if "(" in lower or "rate" in lower or " against " in lower or "compared" in lower:
        return False  # ratios and annotated units read better as "name: value"
    words = lower.split()
    if not words:
        return False
    if _plural(words[0]):
        return True
    return len(words) > 1 and words[0] in _ADJECTIVES and _plural(words[1])


def _singular(phrase: str) -> str:
    words = phrase.split()
    for k, w in enumerate(words[:2]):
        if w.endswith("s") and "'" not in w:
            words[k] = _SINGULAR.get(w, w[:-1])
            break
    return " ".join(words)


def factor_text(readable: str, value: float | str | None) -> str:
    """The factor as a rep reads it: ``"3 inbound replies in the last 7 days"``.

    A readable name may hold a ``{value}`` placeholder. Otherwise: count-like names get the
    value in front ("12 days since the customer last replied"), yes/no statements ("A decision
    maker is engaged") read as the statement or "...: no", rates as percentages, anything else
    "name: value".
    """
    if "{value}" in readable:
        return readable.replace("{value}", _fmt(value))
    if value is None:
        return f"{readable}: unknown"
    if isinstance(value, str):
        return f"{readable}: {value}"
    lower = readable.lower()
    statement = lower.startswith(("a ", "an ", "the ", "is ", "has ")) or " changed " in lower
    if statement and value in (0.0, 1.0):
        return readable if value == 1.0 else f"{readable}: no"
    if lower.startswith("weekday") and float(value).is_integer() and 0 <= value <= 6:
        return f"{readable}: {_WEEKDAYS[int(value)]}"
    if lower.startswith("hour of day") and float(value).is_integer():
        return f"{readable}: {int(value):02d}:00"
    if "rate" in lower and 0.0 <= value <= 1.0:
        return f"{readable}: {value:.0%}"
    if _count_like(readable):
        v = round(value) if lower.startswith(("days", "hours")) or abs(value) >= 10 else value
        rest = readable[0].lower() + readable[1:]
        if v == 1:
            rest = _singular(rest)
        return f"{_fmt(float(v))} {rest}"
    return f"{readable}: {_fmt(value)}"


def _factor(s: Scored, i: int, j: int) -> Factor:
    name = s.features[j]
    readable = s.readable.get(name, name.replace("_", " "))
    value = plain_value(s.values.iat[i, j])
    return Factor(
        feature=name,
        readable_name=readable,
        value=value,
        contribution=round(float(s.contrib[i, j]), 6),
        text=factor_text(readable, value),
    )


def top_factors(s: Scored, i: int, k: int = 3) -> Factors:
    """The ``k`` strongest positive and negative SHAP contributions of row ``i``."""
    c = s.contrib[i]
    order = np.argsort(c)
    pos = [_factor(s, i, j) for j in order[::-1][:k] if c[j] > 0]
    neg = [_factor(s, i, j) for j in order[:k] if c[j] < 0]
    return Factors(positive=pos, negative=neg)


def explanation(s: Scored, i: int, *, as_of: pd.Timestamp) -> ExplanationResponse:
    """Every feature's contribution for row ``i``; they add up to the raw score."""
    contributions = [
        Contribution(
            feature=f,
            readable_name=s.readable.get(f, f.replace("_", " ")),
            value=plain_value(s.values.iat[i, j]),
            contribution=float(s.contrib[i, j]),
        )
        for j, f in enumerate(s.features)
    ]
    contributions.sort(key=lambda c: -abs(c.contribution))
    return ExplanationResponse(
        model=s.model,  # type: ignore[arg-type]
        model_version=s.version,
        entity_id=str(s.ids[i]),
        as_of=as_of.to_pydatetime(),
        probability=float(s.proba[i]),
        raw_score=float(s.raw[i]),
        base_value=float(s.base[i]),
        contributions=contributions,
    )


def explain_entity(
    state, model: str, entity_id: str
) -> tuple[ExplanationResponse, set[str]] | None:
    """The explanation of one scored entity and the reps who own it (None: not scored)."""
    if model == "win_probability" and state.win is not None:
        i = state.win.row(entity_id)
        if i is None:
            return None
        return explanation(state.win, i, as_of=state.as_of), {state.deal_owner.get(entity_id, "")}
    if model == "churn_risk" and state.churn is not None:
        i = state.churn.row(entity_id)
        if i is None:
            return None
        return explanation(state.churn, i, as_of=state.as_of), {
            state.account_owner.get(entity_id, "")
        }
    if model == "contact_time":
        return _explain_contact(state, entity_id)
    return None


def _explain_contact(state, contact_id: str):
    """Contact time: explain the contact's best working-hour slot of the coming week."""
    from salespilot.serving import best_times as bt
    from salespilot.serving.scoring import score

    if contact_id not in state.contact_account or state.model("contact_time") is None:
        return None
    key = ("explain_contact", contact_id)
    if key not in state.cache:
        slots = bt.candidate_slots_for(
            state.history,
            contact_id,
            state.as_of,
            7,
            (8, 18),
            rates=state.cache.get("_rates"),
            not_before=state.slots_from,
        )
        if slots.empty:
            return None
        slots = slots.reset_index(drop=True).assign(_slot=lambda d: d.index.astype(str))
        s = score(state.model("contact_time"), slots, "_slot")
        best = int(np.argmax(s.proba))
        exp = explanation(s, best, as_of=state.as_of).model_copy(update={"entity_id": contact_id})
        state.cache[key] = exp
    return state.cache[key], state.contact_reps(contact_id)

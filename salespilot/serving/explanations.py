"""SHAP explanations in numbers (for data scientists) and in plain words (for reps).

A rep's factors are what they can act on, phrased as evidence ("no reply for 5 days"); the
factors no rep can change (the owner's tenure and record, the team's pace, the account's
industry and size) are grouped into one "background" factor. The full explanation
(:func:`explanation`) keeps every feature with its readable name, for data scientists.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from salespilot.features.names import display_name
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


#: Features a rep cannot change by anything they do on the deal or account: shown to a rep as
#: one "background" factor (their summed contribution), never one by one.
BACKGROUND: dict[str, str] = {
    "owner_tenure_days": "your tenure",
    "owner_deals_closed": "your record",
    "owner_win_rate_smoothed": "your record",
    "owner_won_in_horizon_rate": "your record",
    "team_win_rate_smoothed": "the team's record",
    "team": "the team",
    "region": "the region",
    "pace_vs_team": "the deal's earlier pace",
    "stage_norm_days": "the stage's usual length",
    "team_stage_norm_days": "the stage's usual length",
    "stage_index": "the stage",
    "deal_age_days": "the deal's age",
    "lead_source": "the lead source",
    "product_line": "the product",
    "amount": "the deal size",
    "account_prior_deals_won": "the account's history",
    "account_prior_deals_lost": "the account's history",
    "industry": "the industry",
    "account_region": "the region",
    "employees": "the company size",
    "account_age_days": "the account's age",
    "customer_tenure_days": "the customer's tenure",
    "owner_left": "the owner change",
    "days_since_owner_change": "the owner change",
    "monthly_value_90d_ago": "the subscription history",
    "subscriptions_ended": "the subscription history",
    "value_ended_180d": "the subscription history",
    "active_monthly_value": "the subscription",
    "active_subscriptions": "the subscription",
    "products_held": "the products held",
    "deals_won_365d": "the account's history",
    "deals_lost_365d": "the account's history",
}
BACKGROUND_FEATURE = "background"


def _days(v: float) -> str:
    n = round(abs(float(v)))
    return f"{n} day" if n == 1 else f"{n} days"


def _times(v: float) -> str:
    return f"{float(v):.1f}x"


def _ratio_text(v: float, what: str) -> str:
    v = float(v)
    if v >= 1.15:
        return f"{what} {_times(v)} the usual pace"
    if v <= 0.85:
        return f"{what} below the usual pace ({_times(v)})"
    return f"{what} at the usual pace"


#: feature -> the factor as evidence a rep can act on (value in, sentence out); the same
#: feature name means the same thing in the win and the churn model
EVIDENCE: dict[str, Any] = {
    "days_since_last_inbound": lambda v: f"no reply from the customer for {_days(v)}",
    "days_since_last_touch": lambda v: f"no touch for {_days(v)}",
    "days_since_last_outbound": lambda v: f"you last reached out {_days(v)} ago",
    "hours_awaiting_reply": lambda v: (
        "no message waiting for a reply" if not v else f"waiting {float(v):.0f} h for a reply"
    ),
    "median_reply_delay_h": lambda v: f"the customer usually replies within {float(v):.0f} h",
    "days_in_stage": lambda v: f"{_days(v)} in the current stage",
    "days_in_stage_vs_norm": lambda v: f"in this stage {_times(v)} as long as usual",
    "days_in_stage_vs_team_norm": lambda v: (
        f"in this stage {_times(v)} as long as the team's usual"
    ),
    "days_to_expected_close": lambda v: (
        f"the expected close date passed {_days(v)} ago"
        if float(v) < 0
        else f"expected to close in {_days(v)}"
    ),
    "days_since_meeting_held": lambda v: f"last meeting or demo {_days(v)} ago",
    "days_since_last_meeting": lambda v: f"last meeting {_days(v)} ago",
    "decision_maker_engaged": lambda v: (
        "a decision maker is engaged" if v else "no decision maker engaged yet"
    ),
    "decision_maker_touched": lambda v: (
        "a decision maker has been contacted" if v else "no decision maker contacted yet"
    ),
    "outbound_7d_vs_usual": lambda v: _ratio_text(v, "your touches this week"),
    "outbound_14d_vs_usual": lambda v: _ratio_text(v, "your touches in the last 14 days"),
    "inbound_14d_vs_usual": lambda v: _ratio_text(v, "customer replies in the last 14 days"),
    "customer_inbound_vs_usual": lambda v: _ratio_text(v, "the customer's contacts this quarter"),
    "owner_changed_without_handover": lambda v: (
        "new owner without a hand-over touch" if v else "handed over with a touch"
    ),
    "call_connect_rate": lambda v: f"the customer answers {float(v):.0%} of your calls",
    "outbound_per_day": lambda v: (
        _rate(v, "a touch", "touches") + " from you since the deal opened"
    ),
    "inbound_per_day": lambda v: (
        _rate(v, "a reply or call", "replies or calls") + " from the customer since the deal opened"
    ),
    "stage_moves": lambda v: f"moved stage {round(float(v))} times so far",
}

#: feature -> the factor when its value is unknown (nothing to compare with yet)
UNKNOWN_EVIDENCE: dict[str, str] = {
    "outbound_7d_vs_usual": "too few touches yet to know your usual pace",
    "outbound_14d_vs_usual": "too few touches yet to know your usual pace",
    "inbound_14d_vs_usual": "no usual reply pace of the customer yet to compare with",
    "customer_inbound_vs_usual": "no usual contact rate of the customer yet to compare with",
    "days_since_last_inbound": "no reply from the customer yet",
    "days_since_meeting_held": "no meeting or demo held yet",
    "days_since_last_meeting": "no meeting held yet",
    "median_reply_delay_h": "no reply yet to time",
}


def _rate(v: float, one: str, many: str) -> str:
    """0.8 -> "0.8 touches a day"; 0.2 -> "a touch every 5 days"; 0 -> "no touches"."""
    v = float(v)
    if v <= 0:
        return f"no {many}"
    if v >= 0.5:
        return f"{v:.1f} {many} a day"
    return f"{one} every {round(1 / v)} days"


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
        return f"{readable}: {display_name(value)}"
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


def evidence_text(feature: str, readable: str, value: float | str | None) -> str:
    """The factor as a rep reads it: evidence where the feature has a phrase (``EVIDENCE``),
    else :func:`factor_text` of its readable name."""
    phrase = EVIDENCE.get(feature)
    text = None
    if value is None:
        text = UNKNOWN_EVIDENCE.get(feature)
    elif phrase is not None and isinstance(value, int | float) and not isinstance(value, bool):
        text = phrase(value)
    if text is None:
        return factor_text(readable, value)
    return text[:1].upper() + text[1:]


def _factor(s: Scored, i: int, j: int) -> Factor:
    name = s.features[j]
    readable = s.readable.get(name, name.replace("_", " "))
    value = plain_value(s.values.iat[i, j])
    return Factor(
        feature=name,
        readable_name=readable,
        value=value,
        contribution=round(float(s.contrib[i, j]), 6),
        text=evidence_text(name, readable, value),
    )


def _background(s: Scored, i: int, js: list[int], total: float) -> Factor:
    what: list[str] = []
    for j in sorted(js, key=lambda j: -abs(s.contrib[i, j])):
        w = BACKGROUND[s.features[j]]
        if w not in what:
            what.append(w)
    effect = "raises" if total > 0 else "lowers"
    subject = "the risk" if s.model == "churn_risk" else "the chance"
    listed = ", ".join(what[:3]) + (" and more" if len(what) > 3 else "")
    return Factor(
        feature=BACKGROUND_FEATURE,
        readable_name="Background no rep can change",
        value=None,
        contribution=round(float(total), 6),
        text=f"Background you cannot change ({listed}) {effect} {subject}",
    )


def top_factors(s: Scored, i: int, k: int = 3) -> Factors:
    """The ``k`` strongest positive and negative contributions of row ``i`` a rep can act on.

    The features no rep can change (:data:`BACKGROUND`) count as one factor per sign, their
    contributions summed, shown when it is among the ``k`` strongest of its sign.
    """
    c = s.contrib[i]
    fixed = [j for j, f in enumerate(s.features) if f in BACKGROUND]
    fixed_set = set(fixed)
    own = [j for j in range(len(s.features)) if j not in fixed_set]
    out: dict[bool, list[tuple[float, Factor | int]]] = {True: [], False: []}
    for j in own:
        if c[j] != 0:
            out[c[j] > 0].append((abs(float(c[j])), j))
    for positive in (True, False):
        js = [j for j in fixed if (c[j] > 0) == positive and c[j] != 0]
        total = float(sum(c[j] for j in js))
        if js and total != 0:
            out[positive].append((abs(total), _background(s, i, js, total)))
    sides = {}
    for positive, rows in out.items():
        rows.sort(key=lambda r: -r[0])
        sides[positive] = [f if isinstance(f, Factor) else _factor(s, i, f) for _, f in rows[:k]]
    return Factors(positive=sides[True], negative=sides[False])


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

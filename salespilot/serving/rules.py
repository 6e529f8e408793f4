"""Warning rules: process signals a sales manager checks by hand, with their evidence.

Two steps, both pure: :func:`deal_facts` / :func:`account_facts` reduce the history to one row
of plain facts per open deal (or customer account) as of a timestamp, using only events strictly
before it (the point-in-time rules of :mod:`salespilot.features.pit`; open deals, stage, time in
stage and the stage's norm are the deal features' own, :func:`deals.stage_state`); each ``rule_*`` function then looks at one facts row and returns a :class:`Warning`
(or None). Rules read facts, never the model, so a warning always has evidence a rep can check
in the CRM ("last outbound email 3 days ago, no reply since").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salespilot.features.deals import open_deal_rows, stage_state
from salespilot.features.history import History
from salespilot.features.pit import known_before, to_utc_naive

DAY = pd.Timedelta(days=1)
_ENGAGED_OUTCOMES = ("connected", "replied", "held")


@dataclass(frozen=True)
class RuleConfig:
    """Thresholds of the rules (from settings; defaults are the sales playbook's)."""

    no_reply_hours: float = 48.0
    stall_min_days: float = 5.0
    default_stage_norm_days: float = 14.0
    postponed_min: int = 2


@dataclass(frozen=True)
class Warning:
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


# -- facts ---------------------------------------------------------------------------------


def _before(df: pd.DataFrame | None, col: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """``df``'s rows known before ``as_of`` (:func:`pit.known_before`); none without a table."""
    if df is None or df.empty:
        return pd.DataFrame(columns=[] if df is None else df.columns)
    return known_before(df, col, as_of)


def open_deals(history: History, as_of: pd.Timestamp) -> pd.DataFrame:
    """Deals open at ``as_of`` (the deal features' rows: :func:`deals.open_deal_rows`)."""
    rows, _ = open_deal_rows(history, as_of)
    return history.opportunities.iloc[np.sort(rows)]


def _touch_facts(acts: pd.DataFrame, key: str, contacts: pd.DataFrame | None) -> pd.DataFrame:
    """Last outbound/inbound, postponements, decision-maker engagement, per ``key``."""
    if acts.empty:
        return pd.DataFrame()
    acts = acts.sort_values("occurred_at", kind="stable")
    g = acts.groupby(key, sort=False)
    out = pd.DataFrame(index=pd.Index(g.size().index, name=key))
    outbound = acts[acts["direction"] == "outbound"]
    inbound = acts[acts["direction"] == "inbound"]
    last_out = outbound.groupby(key, sort=False).tail(1).set_index(key)
    out["last_outbound_at"] = last_out["occurred_at"]
    out["last_outbound_channel"] = last_out["channel"]
    out["last_inbound_at"] = inbound.groupby(key, sort=False)["occurred_at"].max()
    post = acts[acts["channel"].isin(["demo", "meeting"]) & (acts["outcome"] == "postponed")]
    out["postponed_count"] = post.groupby(key, sort=False).size()
    out["last_postponed_at"] = post.groupby(key, sort=False)["occurred_at"].max()
    out["postponed_count"] = out["postponed_count"].fillna(0).astype(int)
    if contacts is not None and "contact_id" in acts.columns:
        roles = contacts.set_index("contact_id")["role"]
        engaged = acts[(acts["direction"] == "inbound") | acts["outcome"].isin(_ENGAGED_OUTCOMES)]
        role = engaged["contact_id"].map(roles)
        dm = engaged[role == "decision_maker"]
        out["decision_maker_engaged"] = out.index.isin(dm[key].unique())
        out["contacts_engaged"] = engaged.groupby(key, sort=False)["contact_id"].nunique()
        out["contacts_engaged"] = out["contacts_engaged"].fillna(0).astype(int)
    else:
        out["decision_maker_engaged"] = np.nan  # unknown without contacts: the rule stays quiet
        out["contacts_engaged"] = 0
    return out


def _owner_facts(acts: pd.DataFrame, key: str, owners: pd.Series) -> pd.DataFrame:
    """Previous owner (last other rep who worked it) and whether the current one took over."""
    if acts.empty:
        return pd.DataFrame()
    owner = acts[key].map(owners)
    others = acts[acts["rep_id"] != owner]
    if others.empty:
        return pd.DataFrame()
    last_other = others.sort_values("occurred_at", kind="stable").groupby(key, sort=False).tail(1)
    last_other = last_other.set_index(key)
    out = pd.DataFrame(
        {
            "previous_owner_rep_id": last_other["rep_id"],
            "previous_owner_last_at": last_other["occurred_at"],
        }
    )
    mine = acts[acts["rep_id"] == owner]
    first_after = mine.merge(out.rename_axis(None), left_on=key, right_index=True)
    took_over = first_after[first_after["occurred_at"] > first_after["previous_owner_last_at"]]
    out["handover_at"] = took_over.groupby(key, sort=False)["occurred_at"].min()
    return out


def deal_facts(history: History, as_of: pd.Timestamp, opportunity_ids=None) -> pd.DataFrame:
    """One row of rule facts per deal open at ``as_of`` (index: opportunity_id), or per deal
    of ``opportunity_ids`` open then."""
    as_of = to_utc_naive(as_of)
    rows = np.sort(open_deal_rows(history, as_of)[0])
    deals = history.opportunities.iloc[rows]
    if opportunity_ids is not None:
        keep = deals["opportunity_id"].isin(list(opportunity_ids)).to_numpy()
        rows, deals = rows[keep], deals.loc[keep]
    deals = deals.set_index("opportunity_id")
    out = deals[["account_id", "owner_rep_id", "amount", "expected_close_at", "created_at"]].copy()
    # the stage, time in it and its norm are the deal features' own (deals.stage_state)
    st = stage_state(history, rows, np.full(rows.size, as_of.value, dtype=np.int64))
    out["stage"] = np.asarray(st.stage.astype(object))
    out["stage"] = out["stage"].where(out["stage"].notna(), np.nan)
    out["stage_entered_at"] = st.entered_ns.astype("datetime64[ns]")
    out["days_in_stage"] = st.days_in_stage
    if history.stage_changes is None or history.stage_changes.empty:
        # no stage history: "days in stage" would be the deal's age against a default norm
        # ("stalled for 407 days"); the stall rule stays quiet (see rules_left_out)
        out["days_in_stage"] = np.nan
    out["stage_norm_days"] = st.norm_days
    acts = _before(history.activities, "occurred_at", as_of)
    if not acts.empty:
        acts = acts[acts["opportunity_id"].isin(out.index)]
    out = out.join(_touch_facts(acts, "opportunity_id", history.contacts), how="left")
    out = out.join(_owner_facts(acts, "opportunity_id", out["owner_rep_id"]), how="left")
    return _fill(out, as_of)


def account_facts(history: History, as_of: pd.Timestamp, account_ids=None) -> pd.DataFrame:
    """One row of rule facts per account (index: account_id), from account-level activity."""
    as_of = pd.Timestamp(as_of)
    acc = history.accounts.set_index("account_id")
    if account_ids is not None:
        acc = acc.loc[acc.index.isin(list(account_ids))]
    out = acc[["owner_rep_id"]].copy()
    acts = _before(history.activities, "occurred_at", as_of)
    if not acts.empty:
        acts = acts[acts["account_id"].isin(out.index)]
    out = out.join(_touch_facts(acts, "account_id", history.contacts), how="left")
    out = out.join(_owner_facts(acts, "account_id", out["owner_rep_id"]), how="left")
    return _fill(out, as_of)


def _fill(out: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    for col in (
        "stage", "last_outbound_at", "last_outbound_channel", "last_inbound_at",
        "postponed_count", "last_postponed_at", "decision_maker_engaged", "contacts_engaged",
        "previous_owner_rep_id", "previous_owner_last_at", "handover_at",
    ):  # fmt: skip
        if col not in out.columns:
            out[col] = np.nan
    out["postponed_count"] = out["postponed_count"].fillna(0).astype(int)
    out["contacts_engaged"] = out["contacts_engaged"].fillna(0).astype(int)
    out["as_of"] = as_of
    return out


# -- rules ---------------------------------------------------------------------------------


def _ts(v: Any) -> pd.Timestamp | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v)


def _iso(ts: pd.Timestamp) -> str:
    """An evidence instant as RFC 3339 text: the naive UTC timestamps say ``+00:00``."""
    ts = pd.Timestamp(ts)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts).isoformat()


NO_REPLY_PREFIX = "no_reply_"


def no_reply_code(hours: float) -> str:
    """The no-reply warning's code names its threshold: ``no_reply_48h``, ``no_reply_72h``."""
    return f"{NO_REPLY_PREFIX}{hours:g}h"


def rule_no_reply(f: Mapping[str, Any], cfg: RuleConfig = RuleConfig()) -> Warning | None:
    """Our last outbound touch got no inbound answer for ``no_reply_hours`` or more."""
    out, inn, as_of = _ts(f.get("last_outbound_at")), _ts(f.get("last_inbound_at")), f["as_of"]
    if out is None or (inn is not None and inn >= out):
        return None
    hours = (as_of - out) / pd.Timedelta(hours=1)
    if hours < cfg.no_reply_hours:
        return None
    channel = f.get("last_outbound_channel") or "touch"
    return Warning(
        no_reply_code(cfg.no_reply_hours),
        f"No reply for {hours / 24:.0f} days since your last {channel} ({out:%b %d}).",
        {
            "last_outbound_at": _iso(out),
            "last_outbound_channel": channel,
            "last_inbound_at": None if inn is None else _iso(inn),
            "hours_without_reply": round(hours, 1),
            "threshold_hours": cfg.no_reply_hours,
        },
    )


def rule_stalled(f: Mapping[str, Any], cfg: RuleConfig = RuleConfig()) -> Warning | None:
    """In the current stage longer than the stage's usual dwell, and longer than the floor."""
    days = f.get("days_in_stage")
    if days is None or pd.isna(days):
        return None
    norm = f.get("stage_norm_days")
    norm = cfg.default_stage_norm_days if norm is None or pd.isna(norm) else float(norm)
    limit = max(norm, cfg.stall_min_days)
    if days <= limit:
        return None
    stage = f.get("stage")
    stage = "its stage" if stage is None or pd.isna(stage) else str(stage)
    return Warning(
        "stalled_in_stage",
        f"Stalled in {stage} for {days:.0f} days; deals usually move on after {norm:.0f}.",
        {
            "stage": stage,
            "days_in_stage": round(float(days), 1),
            "stage_norm_days": round(norm, 1),
            "threshold_days": round(limit, 1),
        },
    )


def rule_postponed(f: Mapping[str, Any], cfg: RuleConfig = RuleConfig()) -> Warning | None:
    """A demo or meeting postponed ``postponed_min`` times or more."""
    n = int(f.get("postponed_count") or 0)
    if n < cfg.postponed_min:
        return None
    last = _ts(f.get("last_postponed_at"))
    return Warning(
        "repeatedly_postponed",
        f"Demo or meeting postponed {n} times.",
        {"postponed_count": n, "last_postponed_at": None if last is None else _iso(last)},
    )


def rule_no_decision_maker(f: Mapping[str, Any], cfg: RuleConfig = RuleConfig()) -> Warning | None:
    """Nobody with the decision_maker role has engaged (answered, met) on this deal."""
    engaged = f.get("decision_maker_engaged")
    if engaged is None or pd.isna(engaged) or bool(engaged):
        return None
    return Warning(
        "no_decision_maker",
        "No decision maker engaged yet.",
        {"contacts_engaged": int(f.get("contacts_engaged") or 0)},
    )


def rule_past_close(f: Mapping[str, Any], cfg: RuleConfig = RuleConfig()) -> Warning | None:
    """Still open after its expected close date."""
    close = _ts(f.get("expected_close_at"))
    if close is None or close >= f["as_of"]:
        return None
    days = (f["as_of"] - close) / DAY
    return Warning(
        "past_expected_close",
        f"{days:.0f} days past its expected close date ({close:%b %d}).",
        {"expected_close_at": _iso(close), "days_past": round(float(days), 1)},
    )


def rule_owner_changed(f: Mapping[str, Any], cfg: RuleConfig = RuleConfig()) -> Warning | None:
    """Another rep worked it before, and the current owner has not touched it since."""
    prev = f.get("previous_owner_rep_id")
    if prev is None or pd.isna(prev) or _ts(f.get("handover_at")) is not None:
        return None
    last = _ts(f.get("previous_owner_last_at"))
    return Warning(
        "owner_changed_without_handover",
        f"Taken over from {prev} with no touch from you since their last one.",
        {
            "previous_owner_rep_id": str(prev),
            "previous_owner_last_at": None if last is None else _iso(last),
        },
    )


DEAL_RULES: tuple[Callable[..., Warning | None], ...] = (
    rule_no_reply,
    rule_stalled,
    rule_postponed,
    rule_no_decision_maker,
    rule_past_close,
    rule_owner_changed,
)
ACCOUNT_RULES: tuple[Callable[..., Warning | None], ...] = (rule_no_reply, rule_owner_changed)


def rules_left_out(history: History, cfg: RuleConfig = RuleConfig()) -> dict[str, str]:
    """The rules with no data to stand on in ``history``: warning code -> why, in words.

    Each stays quiet (it never fires on a guess such as a default stage dwell), and the lists
    say so, so that "no warnings" is not read as "nothing to worry about".
    """
    out = {}
    if history.stage_changes is None or history.stage_changes.empty:
        out["stalled_in_stage"] = "the history has no stage changes: no time in stage to judge"
    if history.activities is None or history.activities.empty:
        why = "the history has no activities"
        out[no_reply_code(cfg.no_reply_hours)] = f"{why}: no touches and replies to judge"
        out["repeatedly_postponed"] = f"{why}: no meetings or demos to judge"
        out["owner_changed_without_handover"] = f"{why}: no touches to see a hand-over in"
    if history.contacts is None or history.contacts.empty:
        out["no_decision_maker"] = "the history has no contacts: no roles to judge"
    return out


def evaluate(
    facts: Mapping[str, Any], rules=DEAL_RULES, cfg: RuleConfig = RuleConfig()
) -> list[Warning]:
    """Every warning one facts row trips, in the order of ``rules``."""
    return [w for rule in rules if (w := rule(facts, cfg)) is not None]

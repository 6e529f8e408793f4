"""The morning priority list: a rep's open deals and at-risk accounts, ranked by value at stake.

Ranking key (documented, weights in settings):

* deal:    ``priority_deal_weight    x win probability x amount``
* account: ``priority_account_weight x churn risk      x annual value``

so a 60 % deal of 10 000 (6 000 at stake) comes before a 40 % churn risk on 12 000 a year
(4 800). Accounts enter the list only from ``priority_min_churn_risk`` up, unless handed over
to the rep with something missing (their hand-over note then comes with them). Grades are
quartiles of the rep's list (A = top quarter); the trend compares each score with the rep's
previous scoring (an earlier data ``as_of``) persisted under the state folder.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salespilot.atomic import write_json
from salespilot.features.history import History
from salespilot.features.names import display_name
from salespilot.serving import best_times as bt
from salespilot.serving import rules
from salespilot.serving.explanations import top_factors
from salespilot.serving.rules import NO_REPLY_PREFIX, Warning
from salespilot.serving.schemas import (
    AtRiskAccount,
    BestTime,
    Factors,
    HandoverNote,
    PriorityItem,
    Trend,
    WarningOut,
)
from salespilot.serving.scoring import Scored, ServingModel
from salespilot.settings import Settings

log = logging.getLogger(__name__)

GRADES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class PriorityConfig:
    deal_weight: float = 1.0
    account_weight: float = 1.0
    min_churn_risk: float = 0.1
    grade_cuts: tuple[float, float, float] = (0.25, 0.5, 0.75)
    trend_threshold: float = 0.03


@dataclass(frozen=True)
class Candidate:
    """Everything known about one list entry before ranking."""

    kind: str  # "deal" | "account"
    entity_id: str
    account_id: str
    account_name: str | None
    title: str
    model: str
    score: float
    value: float
    warnings: tuple[Warning, ...]
    factors: Factors
    best_time: BestTime | None
    stage: str | None = None
    handover: HandoverNote | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.entity_id}"


def value_at_stake(c: Candidate, cfg: PriorityConfig) -> float:
    weight = cfg.deal_weight if c.kind == "deal" else cfg.account_weight
    v = weight * c.score * c.value
    return 0.0 if math.isnan(v) else v


def grade(position: int, total: int, cuts: Sequence[float] = (0.25, 0.5, 0.75)) -> str:
    """A-D by position in the ranked list (0-based): A for the top quarter, D for the last."""
    if total <= 0:
        return "D"
    q = position / total
    for letter, cut in zip(GRADES, cuts, strict=False):
        if q < cut:
            return letter
    return "D"


def trend(
    *,
    kind: str,
    score: float,
    previous: float | None,
    previous_as_of: pd.Timestamp | None,
    threshold: float,
) -> Trend:
    """Improving / steady / declining against the previous scoring (churn: lower is better)."""
    if previous is None:
        return Trend(direction="new")
    change = score - previous
    better = change if kind == "deal" else -change
    direction = "steady"
    if better >= threshold:
        direction = "improving"
    elif better <= -threshold:
        direction = "declining"
    return Trend(
        direction=direction,
        previous_score=round(previous, 4),
        previous_as_of=None if previous_as_of is None else previous_as_of.to_pydatetime(),
        change=round(change, 4),
    )


def risk_raised_by(factors: Factors) -> list[str]:
    """What raises an account's churn risk, in words: its positive factors, strongest first
    (or that none does: the account's risk is the usual one, listed for its value)."""
    if factors.positive:
        return [f.text for f in factors.positive]
    return ["Nothing raises the risk above the usual: the account is listed for its value"]


def next_step(c: Candidate) -> str:
    """One concrete action, from the most pressing warning (or the score when none)."""
    codes = {w.code: w for w in c.warnings}
    no_reply = any(code.startswith(NO_REPLY_PREFIX) for code in codes)
    when = ""
    if c.best_time is not None:
        bt = c.best_time
        when = (
            f" at {bt.contact_local_time:%a %H:%M} their time ({bt.contact_timezone}),"
            f" {bt.rep_local_time:%a %H:%M} yours ({bt.rep_timezone})"
        )
    if c.handover is not None:
        return f"Call{when} as the new owner and work through the hand-over note."
    if "owner_changed_without_handover" in codes:
        prev = codes["owner_changed_without_handover"].evidence.get("previous_owner_rep_id")
        return f"Introduce yourself as the new owner{when}; ask {prev} for a hand-over note."
    if c.kind == "account":
        if no_reply:
            return f"Call{when}: your last message is unanswered; check how they use the product."
        return f"Book a check-in{when} to review usage and renewal before the risk grows."
    if no_reply:
        return f"Call{when} instead of another email: your last touch got no reply."
    if "repeatedly_postponed" in codes:
        return f"Call{when} to fix a firm date for the demo, with the decision maker in it."
    if "past_expected_close" in codes:
        return "Confirm the close date with the buyer and update it in the CRM, or close the deal."
    if "stalled_in_stage" in codes:
        stage = c.stage or "this stage"
        return f"Agree the step that moves the deal out of {stage}{when}."
    if "no_decision_maker" in codes:
        return f"Ask your contact to bring the decision maker into the next meeting{when}."
    if c.score >= 0.5:
        return f"Push for the close{when}: send the proposal and agree a signing date."
    return f"Follow up{when} to qualify the next step."


class PreviousScores:
    """Each rep's last scorings (per data ``as_of``), in ``<dir>/<rep_id>.json``."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.dir = Path(directory)
        self.keep = keep

    def _path(self, rep_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", rep_id)
        return self.dir / f"{safe}.json"

    def _load(self, rep_id: str) -> list[dict]:
        p = self._path(rep_id)
        if not p.exists():
            return []
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("ignoring unreadable previous scores %s", p)
            return []

    def before(self, rep_id: str, as_of: pd.Timestamp) -> tuple[pd.Timestamp | None, dict]:
        """The latest scoring strictly before ``as_of``: ``(its as_of, {key: score})``."""
        earlier = [s for s in self._load(rep_id) if pd.Timestamp(s["as_of"]) < as_of]
        if not earlier:
            return None, {}
        last = max(earlier, key=lambda s: s["as_of"])
        return pd.Timestamp(last["as_of"]), last["scores"]

    def save(self, rep_id: str, as_of: pd.Timestamp, scores: dict[str, float]) -> None:
        snaps = [s for s in self._load(rep_id) if pd.Timestamp(s["as_of"]) != as_of]
        snaps.append({"as_of": as_of.isoformat(), "scores": scores})
        snaps = sorted(snaps, key=lambda s: s["as_of"])[-self.keep :]
        write_json(self._path(rep_id), snaps)


def rank(
    candidates: Sequence[Candidate],
    *,
    cfg: PriorityConfig,
    previous: dict[str, float] | None = None,
    previous_as_of: pd.Timestamp | None = None,
) -> list[PriorityItem]:
    """Rank one rep's candidates by value at stake (ties: higher score, then id)."""
    # a handed-over account stays on the list whatever its risk: the successor must act on it
    keep = [
        c
        for c in candidates
        if c.kind == "deal" or c.score >= cfg.min_churn_risk or c.handover is not None
    ]
    keyed = sorted(
        ((value_at_stake(c, cfg), c) for c in keep),
        key=lambda vc: (-vc[0], -vc[1].score, vc[1].key),
    )
    previous = previous or {}
    total = len(keyed)
    return [
        PriorityItem(
            rank=pos + 1,
            kind=c.kind,  # type: ignore[arg-type]
            entity_id=c.entity_id,
            account_id=c.account_id,
            account_name=c.account_name,
            title=c.title,
            model=c.model,  # type: ignore[arg-type]
            score=round(c.score, 6),
            value=round(c.value, 2),
            value_at_stake=round(v, 2),
            grade=grade(pos, total, cfg.grade_cuts),  # type: ignore[arg-type]
            trend=trend(
                kind=c.kind,
                score=c.score,
                previous=previous.get(c.key),
                previous_as_of=previous_as_of,
                threshold=cfg.trend_threshold,
            ),
            best_time=c.best_time,
            warnings=[
                WarningOut(code=w.code, message=w.message, evidence=w.evidence) for w in c.warnings
            ],
            factors=c.factors,
            next_step=next_step(c),
            handover=c.handover,
        )
        for pos, (v, c) in enumerate(keyed)
    ]


def rep_priorities_json(state, rep_id: str, limit: int) -> bytes:
    """The rep's list as JSON bytes, from items serialised once at load (the hot path)."""
    from salespilot.serving.schemas import DataInfo, PrioritiesResponse

    head = state.cache.get(("prio_head", rep_id))
    if head is None:
        rep = state.reps.loc[rep_id]
        doc = PrioritiesResponse(
            rep_id=rep_id,
            rep_name=None if pd.isna(rep.get("name")) else str(rep.get("name")),
            team=state.rep_team(rep_id),
            as_of=state.as_of.to_pydatetime(),
            data=DataInfo(
                # the data folder's name, never the server's path to it
                source=None if state.source is None else Path(state.source).name,
                content_hash=state.content_hash,
                as_of=state.as_of.to_pydatetime(),
                rules_left_out=state.rules_left_out,
            ),
            model_versions=state.versions,
            total=len(state.rep_items.get(rep_id, ())),
            items=[],
        ).model_dump_json()
        assert doc.endswith('"items":[]}')
        head = doc[: -len("[]}")].encode()
        state.cache[("prio_head", rep_id)] = head
    items = state.rep_items_json.get(rep_id, ())[:limit]
    return head + b"[" + b",".join(items) + b"]}"


def as_of_memo(state, settings):
    """The state's memo of rebuilt as_of lists (bounded: each holds one rep's scores)."""
    from salespilot.serving.limits import BoundedCache

    memo = state.cache.get("_as_of")
    if memo is None:
        memo = state.cache.setdefault("_as_of", BoundedCache(settings.serving_as_of_entries))
    return memo


def state_as_of(state, settings, as_of: pd.Timestamp, rep_id: str):
    """A throw-away state for one rep, scored as of an earlier instant (same data and models).

    Only the rep's deals and accounts are built, scored and explained; the features still read
    the whole history, so each item equals the one a full build as of that instant would rank.
    """
    from salespilot.serving.state import build_state

    key = (as_of.isoformat(), rep_id)
    memo = as_of_memo(state, settings)
    past = memo.get(key)
    if past is None:
        past = build_state(
            settings,
            history=state.history,
            as_of=as_of,
            models=state.models,
            persist_scores=False,
            only_reps={rep_id},
            rates=state.cache.get("_rates"),
        )
        memo[key] = past
    return past


def handover_notes(
    history, as_of: pd.Timestamp, only_reps: set[str] | None = None
) -> dict[tuple[str, str], HandoverNote]:
    """``(kind, entity_id) -> note`` of the open deals and paying accounts handed over to
    their current owner with something missing (:mod:`salespilot.targets.handover`)."""
    from salespilot.targets.handover import handover_note, handover_risk

    rows = handover_risk(history, as_of=as_of)
    if only_reps is not None:
        rows = rows[rows["owner_rep_id"].isin(only_reps)]
    return {
        (str(r.kind), str(r.id)): HandoverNote(
            previous_owner_rep_id=str(r.previous_owner),
            previous_owner_left=bool(r.previous_owner_left),
            handed_over_at=r.handed_over_at.to_pydatetime(),
            missing=list(r.missing),
            note=handover_note(
                previous_owner=str(r.previous_owner),
                previous_owner_left=bool(r.previous_owner_left),
                handed_over_at=r.handed_over_at,
                missing=r.missing,
            ),
        )
        for r in rows.itertuples(index=False)
    }


# ------------------------------------------------------------------------------------------
# assembling every rep's list (the serving state calls this once per load)
# ------------------------------------------------------------------------------------------
_ENGAGED = ("connected", "replied", "held")


@dataclass(frozen=True)
class Lookups:
    """Who owns what and how to reach them, read once from the history by the state."""

    reps: pd.DataFrame  # index rep_id: name, team, region
    account_names: dict[str, str]
    contact_zone: dict[str, str]
    contact_role: dict[str, str]


@dataclass(frozen=True)
class Lists:
    """Every rep's ranked list and the at-risk accounts, with what the routes look up later."""

    rep_items: dict[str, tuple[PriorityItem, ...]]
    #: each rep's scores of this ``as_of`` (``{candidate key: score}``), for the next trend
    scores: dict[str, dict[str, float]]
    at_risk: tuple[AtRiskAccount, ...]
    rep_zones: dict[str, str]
    deal_owner: dict[str, str]
    account_deal_reps: dict[str, set[str]]
    rates: Any


def rule_config(settings: Settings) -> rules.RuleConfig:
    """The warning rules' thresholds from the settings."""
    return rules.RuleConfig(
        no_reply_hours=settings.warn_no_reply_hours,
        stall_min_days=settings.warn_stall_min_days,
        postponed_min=settings.warn_postponed_min,
    )


def assemble_lists(
    history: History,
    as_of: pd.Timestamp,
    *,
    deal_rows: pd.DataFrame,
    acc_rows: pd.DataFrame,
    deal_ids_wanted: pd.Series | None,
    only_reps: set[str] | None,
    win: Scored | None,
    churn: Scored | None,
    contact_model: ServingModel | None,
    lookups: Lookups,
    settings: Settings,
    previous: PreviousScores,
    rates: Any = None,
    slots_from: pd.Timestamp | None = None,
) -> Lists:
    """Turn the scored deals and accounts into every rep's ranked list: the rules each item
    trips, whom to call and when, its top factors, its trend against ``previous``."""
    reps, account_names = lookups.reps, lookups.account_names
    contact_zone, contact_role = lookups.contact_zone, lookups.contact_role
    cfg = rule_config(settings)
    dfacts = rules.deal_facts(history, as_of, deal_ids_wanted)
    afacts = rules.account_facts(history, as_of, acc_rows["account_id"])

    deal_ids = deal_rows["opportunity_id"].astype(str).tolist()
    acc_ids = acc_rows["account_id"].astype(str).tolist()
    fallback = _account_fallback_contacts(history)
    deal_contact = _primary_contacts(history, as_of, "opportunity_id", deal_ids)
    acc_contact = _primary_contacts(history, as_of, "account_id", acc_ids)
    for d, acc in zip(deal_ids, deal_rows["account_id"].astype(str), strict=True):
        if d not in deal_contact and acc in fallback:
            deal_contact[d] = fallback[acc]
    for acc in acc_ids:
        if acc not in acc_contact and acc in fallback:
            acc_contact[acc] = fallback[acc]

    if rates is None and contact_model is not None and history.contacts is not None:
        rates = bt.attempt_rates(history)
    # best times only for contacts an item on some list will show
    handovers = handover_notes(history, as_of, only_reps)
    listed_accounts = (
        set()
        if churn is None
        else {
            a
            for a, p in zip(acc_ids, churn.proba, strict=True)
            if p >= settings.priority_min_churn_risk or ("account", a) in handovers
        }
    )
    wanted = set(deal_contact.values()) if win is not None else set()
    wanted |= {c for a, c in acc_contact.items() if a in listed_accounts}
    best = _best_times(
        history,
        as_of,
        wanted,
        contact_model,
        settings,
        rates,
        slots_from=slots_from,
    )

    # the rep's zone: the settings map by team or region, else the usual zone of their contacts
    rep_zones = bt.rep_timezones(history, settings.rep_timezones)

    def best_time(contact: str | None, rep_id: str) -> BestTime | None:
        if contact is None or contact not in best:
            return None
        start, p = best[contact]
        return BestTime(
            contact_id=contact,
            contact_role=contact_role.get(contact),
            contact_timezone=contact_zone.get(contact, "UTC"),
            contact_local_time=bt.local(start, contact_zone.get(contact)),
            rep_timezone=rep_zones.get(rep_id, "UTC"),
            rep_local_time=bt.local(start, rep_zones.get(rep_id)),
            connect_probability=round(p, 4),
        )

    # -- candidates per rep ------------------------------------------------------------------
    per_rep: dict[str, list[Candidate]] = {str(r): [] for r in reps.index}
    deal_owner: dict[str, str] = {}
    account_deal_reps: dict[str, set[str]] = {}
    if win is not None:
        ctx_cols = [
            c
            for c in ("owner_rep_id", "account_id", "stage", "product_line", "amount")
            if c in deal_rows.columns
        ]
        dctx = deal_rows[ctx_cols].reset_index(drop=True).to_dict("records")
        dfacts_by_id = dfacts.to_dict("index")
        for i, d in enumerate(deal_ids):
            row = dctx[i]
            owner = str(row["owner_rep_id"])
            acc = str(row["account_id"])
            deal_owner[d] = owner
            account_deal_reps.setdefault(acc, set()).add(owner)
            facts = dfacts_by_id.get(d, {"as_of": as_of})
            stage = None if pd.isna(row.get("stage")) else str(row.get("stage"))
            per_rep.setdefault(owner, []).append(
                Candidate(
                    kind="deal",
                    entity_id=d,
                    account_id=acc,
                    account_name=account_names.get(acc),
                    title=f"{account_names.get(acc, acc)} - {display_name(row.get('product_line'))}"
                    f" ({stage or 'open'})",
                    model="win_probability",
                    score=float(win.proba[i]),
                    value=float(row["amount"]),
                    warnings=tuple(rules.evaluate(facts, rules.DEAL_RULES, cfg)),
                    factors=top_factors(win, i, settings.serving_factors),
                    best_time=best_time(deal_contact.get(d), owner),
                    stage=stage,
                    handover=handovers.get(("deal", d)),
                )
            )
    at_risk_rows: list[tuple[float, dict]] = []
    if churn is not None:
        actx = acc_rows.reset_index(drop=True)
        annual = _annual_values(history, as_of, actx)
        owners = (
            actx["owner_rep_id"].tolist() if "owner_rep_id" in actx.columns else [None] * len(actx)
        )
        afacts_by_id = afacts.to_dict("index")
        for i, acc in enumerate(acc_ids):
            owner = owners[i]
            owner = None if owner is None or pd.isna(owner) else str(owner)
            facts = afacts_by_id.get(acc, {"as_of": as_of})
            warns = tuple(rules.evaluate(facts, rules.ACCOUNT_RULES, cfg))
            factors = top_factors(churn, i, settings.serving_factors)
            risk = float(churn.proba[i])
            if owner is not None:
                per_rep.setdefault(owner, []).append(
                    Candidate(
                        kind="account",
                        entity_id=acc,
                        account_id=acc,
                        account_name=account_names.get(acc),
                        title=f"{account_names.get(acc, acc)} - renewal at risk",
                        model="churn_risk",
                        score=risk,
                        value=float(annual[i]),
                        warnings=warns,
                        factors=factors,
                        best_time=best_time(acc_contact.get(acc), owner),
                        handover=handovers.get(("account", acc)),
                    )
                )
            at_risk_rows.append(
                (
                    risk * float(annual[i]) * settings.priority_account_weight,
                    dict(
                        account_id=acc,
                        account_name=account_names.get(acc),
                        owner_rep_id=owner,
                        team=None
                        if owner is None or owner not in reps.index
                        else reps.at[owner, "team"],
                        churn_risk=round(risk, 6),
                        annual_value=round(float(annual[i]), 2),
                        warnings=[
                            WarningOut(code=w.code, message=w.message, evidence=w.evidence)
                            for w in warns
                        ],
                        factors=factors,
                        risk_raised_by=risk_raised_by(factors),
                    ),
                )
            )

    pcfg = PriorityConfig(
        deal_weight=settings.priority_deal_weight,
        account_weight=settings.priority_account_weight,
        min_churn_risk=settings.priority_min_churn_risk,
    )
    rep_items: dict[str, tuple[PriorityItem, ...]] = {}
    scores: dict[str, dict[str, float]] = {}
    for rep_id, cands in per_rep.items():
        prev_as_of, prev = previous.before(rep_id, as_of)
        rep_items[rep_id] = tuple(rank(cands, cfg=pcfg, previous=prev, previous_as_of=prev_as_of))
        if cands:
            scores[rep_id] = {c.key: round(c.score, 6) for c in cands}

    at_risk_rows.sort(key=lambda r: (-r[0], r[1]["account_id"]))
    n = len(at_risk_rows)
    at_risk = tuple(
        AtRiskAccount(rank=k + 1, value_at_stake=round(v, 2), grade=grade(k, n), **d)  # type: ignore[arg-type]
        for k, (v, d) in enumerate(at_risk_rows)
    )
    return Lists(
        rep_items=rep_items,
        scores=scores,
        at_risk=at_risk,
        rep_zones=rep_zones,
        deal_owner=deal_owner,
        account_deal_reps=account_deal_reps,
        rates=rates,
    )


def _primary_contacts(history: History, as_of: pd.Timestamp, key: str, ids) -> dict[str, str]:
    """Whom to call about each deal/account: the last contact who engaged, else the last one
    reached out to, else the account's decision maker, else any contact of the account."""
    out: dict[str, str] = {}
    acts = history.activities
    if acts is not None and not acts.empty:
        a = acts[(acts["occurred_at"] < as_of) & acts["contact_id"].notna() & acts[key].isin(ids)]
        a = a.sort_values("occurred_at", kind="stable")
        any_last = a.groupby(key, sort=False)["contact_id"].last()
        out.update(any_last.astype(str).to_dict())
        eng = a[(a["direction"] == "inbound") | a["outcome"].isin(_ENGAGED)]
        out.update(eng.groupby(key, sort=False)["contact_id"].last().astype(str).to_dict())
    return out


def _account_fallback_contacts(history: History) -> dict[str, str]:
    c = history.contacts
    if c is None or c.empty:
        return {}
    order = c.assign(_dm=(c["role"] != "decision_maker")).sort_values(["_dm", "contact_id"])
    return order.groupby("account_id", sort=False)["contact_id"].first().astype(str).to_dict()


def _best_times(
    history: History,
    as_of: pd.Timestamp,
    contacts: set[str],
    model: ServingModel | None,
    settings: Settings,
    rates: Any,
    slots_from: pd.Timestamp | None = None,
) -> dict[str, tuple[pd.Timestamp, float]]:
    """Best slot today / next working day for each contact: ``{contact: (utc start, p)}``.

    One batch of candidate slots (3 days ahead, working hours, none before ``slots_from``)
    for every contact on any list, one model call.
    """
    start = as_of if slots_from is None else max(as_of, slots_from)
    if model is None or not contacts or history.contacts is None:
        return {}
    zones = history.contacts.set_index("contact_id")["timezone"].astype(str).to_dict()
    try:
        slots = bt.candidate_slots_for(
            history,
            sorted(contacts),
            as_of,
            3,
            settings.serving_working_hours,
            rates=rates,
            not_before=start,
        )
    except (KeyError, ValueError) as exc:
        log.warning("no candidate slots: %s", exc)
        return {}
    if slots.empty:
        return {}
    slots = slots.reset_index(drop=True)
    proba = bt.score_slots(model, slots)
    contact = slots["contact_id"].astype(str)
    return bt.best_soon(
        contact,
        bt.slot_times(slots),
        contact.map(zones).fillna("UTC"),
        proba,
        as_of=start,
    )


def _annual_values(history: History, as_of: pd.Timestamp, rows: pd.DataFrame) -> np.ndarray:
    if "annual_value" in rows.columns:
        return rows["annual_value"].fillna(0).to_numpy(float)
    subs = history.subscriptions
    if subs is None:
        return np.zeros(len(rows))
    active = subs[
        (subs["started_at"] < as_of) & (subs["ended_at"].isna() | (subs["ended_at"] >= as_of))
    ]
    monthly = active.groupby("account_id")["monthly_value"].sum()
    return rows["account_id"].map(monthly).fillna(0).to_numpy(float) * 12
